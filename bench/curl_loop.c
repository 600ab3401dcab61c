/* curl_loop: the plain-libcurl baselines of the benchmarks (bench/run.lua), configured as well as
 * libcurl allows, so lua-ocr is compared with the best a C program does, not with a strawman.
 *
 *   curl_loop --url URL [--requests N] [--concurrency C] [--form FILE] [--user-agent UA]
 *
 * C = 1 (default): one easy handle reused for every request (keep-alive, blocking
 *   curl_easy_perform): the sequential baseline.
 * C > 1: a multi handle keeping C transfers in flight until N are done, each finished easy
 *   handle re-added at once: the server-capacity probe.
 * --form FILE: each request is a multipart POST of image_file = FILE's bytes (filename
 *   "page.png", type image/png) and format = "txt", rebuilt per request as a program posting a
 *   new image each time must; without it each request is a GET.
 * --prebuilt (with --form): the same body encoded once into one buffer and sent with
 *   CURLOPT_POSTFIELDS, as lua-ocr sends in-memory forms: the floor for that approach.
 * The request carries the same headers lua-ocr sends (User-Agent, Accept-Encoding from
 * CURLOPT_ACCEPT_ENCODING "", "Expect:" so no 100-continue round trip), so the bytes on the wire
 * are the same but for the multipart boundary. Answers are kept in memory and must be 200.
 *
 * Prints one line: "requests=N failed=F seconds=S rps=R cpu=C" (C: CPU seconds of this process
 * during the loop). Exit status 1 if any request failed.
 *
 * --frames HZ: benchmark 3 without Lua. JOBS jobs (--concurrency) of the bench_task shape —
 *   multipart POST BASE/create?ms=L, a timer of --interval-ms, GET BASE/task/bench-task?ms=L,
 *   L drawn from --ms — kept in flight for --seconds in a loop of HZ frames per second, each frame
 *   timed around curl_multi_perform + reading finished transfers + starting the next requests
 *   (what ocr.step(0) does). Prints "frames= jobs= seconds= p50= p90= p99= max= smax=" (seconds;
 *   smax: the maximum after the first second). */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX 65536

typedef struct {
    CURL *easy;
    curl_mime *mime;
    struct curl_slist *headers;
    char body[BODY_MAX];
    size_t body_len;
} xfer;

static const char *url;
static const char *user_agent = "lua-ocr/bench";
static char ua_header[512];
static char *form_data;
static size_t form_len;
/* --prebuilt: the same form encoded once into one buffer and sent with CURLOPT_POSTFIELDS, as
 * lua-ocr sends in-memory forms (no curl_mime per request): the floor for that approach. */
static int prebuilt;
static char *pre_body;
static size_t pre_len;
#define PRE_BOUNDARY "------------------------0123456789abcdef"

static void build_prebuilt(void) {
    static const char head[] = "--" PRE_BOUNDARY "\r\nContent-Disposition: form-data; "
        "name=\"image_file\"; filename=\"page.png\"\r\nContent-Type: image/png\r\n\r\n";
    static const char tail[] = "\r\n--" PRE_BOUNDARY "\r\nContent-Disposition: form-data; "
        "name=\"format\"\r\n\r\ntxt\r\n--" PRE_BOUNDARY "--\r\n";
    pre_len = sizeof head - 1 + form_len + sizeof tail - 1;
    if ((pre_body = malloc(pre_len)) == NULL) exit(2);
    memcpy(pre_body, head, sizeof head - 1);
    memcpy(pre_body + sizeof head - 1, form_data, form_len);
    memcpy(pre_body + sizeof head - 1 + form_len, tail, sizeof tail - 1);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) this process used: robust where wall time is noisy. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t n = size * nmemb;
    if (n > BODY_MAX - x->body_len) return 0;   /* the benchmark answer is tiny: fail loudly */
    memcpy(x->body + x->body_len, p, n);
    x->body_len += n;
    return n;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(2);
    }
    if ((buf = malloc((size_t)n + 1)) == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "curl_loop: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Sets up x->easy for the next request. Options survive between requests on a reused handle;
 * only the mime part changes, but setting everything keeps one code path for both modes. */
static void prepare_to(xfer *x, const char *u, int form) {
    x->body_len = 0;
    curl_easy_setopt(x->easy, CURLOPT_URL, u);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, (void *)x);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (void *)x);
    if (form && prebuilt) {
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)pre_len);
        curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, pre_body);
    } else if (form) {
        curl_mimepart *part;
        if (x->mime) curl_mime_free(x->mime);
        x->mime = curl_mime_init(x->easy);
        part = curl_mime_addpart(x->mime);
        curl_mime_name(part, "image_file");
        curl_mime_data(part, form_data, form_len);
        curl_mime_filename(part, "page.png");
        curl_mime_type(part, "image/png");
        part = curl_mime_addpart(x->mime);
        curl_mime_name(part, "format");
        curl_mime_data(part, "txt", CURL_ZERO_TERMINATED);
        curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, x->mime);
    } else {
        curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L);
    }
}

static void prepare(xfer *x) {
    prepare_to(x, url, form_data != NULL);
}

static int finished_ok(xfer *x, CURLcode code) {
    long status = 0;
    if (code != CURLE_OK) {
        fprintf(stderr, "curl_loop: %s\n", curl_easy_strerror(code));
        return 0;
    }
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 || x->body_len == 0) {
        fprintf(stderr, "curl_loop: HTTP %ld, %zu bytes\n", status, x->body_len);
        return 0;
    }
    return 1;
}

/* The next finished transfer, taken off the multi handle (NULL when none finished). */
static xfer *take_done(CURLM *multi, CURLcode *code) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        xfer *x;
        if (msg->msg != CURLMSG_DONE) continue;
        *code = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(multi, x->easy);
        return x;
    }
    return NULL;
}

static xfer *xfer_new(void) {
    xfer *x = calloc(1, sizeof *x);
    if (x == NULL || (x->easy = curl_easy_init()) == NULL) {
        fprintf(stderr, "curl_loop: out of memory\n");
        exit(2);
    }
    x->headers = curl_slist_append(NULL, ua_header);
    x->headers = curl_slist_append(x->headers, "Expect:");
    if (prebuilt)
        x->headers = curl_slist_append(x->headers,
                                       "Content-Type: multipart/form-data; boundary=" PRE_BOUNDARY);
    if (x->headers == NULL) {
        fprintf(stderr, "curl_loop: out of memory\n");
        exit(2);
    }
    return x;
}

static void xfer_free(xfer *x) {
    curl_easy_cleanup(x->easy);
    curl_mime_free(x->mime);
    curl_slist_free_all(x->headers);
    free(x);
}

static long run_sequential(long n) {
    xfer *x = xfer_new();
    long i, failed = 0;
    for (i = 0; i < n; i++) {
        prepare(x);
        if (!finished_ok(x, curl_easy_perform(x->easy))) failed++;
    }
    xfer_free(x);
    return failed;
}

static long run_multi(long n, long concurrency) {
    CURLM *multi = curl_multi_init();
    xfer **xs = calloc((size_t)concurrency, sizeof *xs);
    long launched = 0, done = 0, failed = 0, i;
    if (multi == NULL || xs == NULL) {
        fprintf(stderr, "curl_loop: out of memory\n");
        exit(2);
    }
    for (i = 0; i < concurrency && launched < n; i++, launched++) {
        xs[i] = xfer_new();
        prepare(xs[i]);
        curl_multi_add_handle(multi, xs[i]->easy);
    }
    while (done < n) {
        int running;
        CURLcode code;
        xfer *x;
        curl_multi_perform(multi, &running);
        while ((x = take_done(multi, &code)) != NULL) {
            if (!finished_ok(x, code)) failed++;
            done++;
            if (launched < n) {
                launched++;
                prepare(x);
                curl_multi_add_handle(multi, x->easy);
            }
        }
        if (done < n) curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    for (i = 0; i < concurrency; i++)
        if (xs[i]) xfer_free(xs[i]);
    free(xs);
    curl_multi_cleanup(multi);
    return failed;
}

/* ---------------------------------------------------------------------------------------- */
/* --frames: benchmark 3's game loop without Lua, the floor that libcurl and the kernel set    */

typedef struct {
    xfer  *x;
    int    state;              /* 0 create in flight, 1 timer, 2 poll in flight */
    double due;
} slot;

typedef struct { long lo, hi; } range;

static range lat_ms = { 50, 50 }, gap_ms = { 50, 50 };
static unsigned rng = 5;

static long pick(range r) {
    rng = rng * 1103515245u + 12345u;
    return r.lo + (long)((rng >> 16) % (unsigned)(r.hi - r.lo + 1));
}

static void start_request(CURLM *multi, slot *s, int state) {
    char u[1024];
    if (state == 0) snprintf(u, sizeof u, "%s/create?ms=%ld", url, pick(lat_ms));
    else snprintf(u, sizeof u, "%s/task/bench-task?ms=%ld", url, pick(lat_ms));
    s->state = state;
    prepare_to(s->x, u, state == 0);
    curl_multi_add_handle(multi, s->x->easy);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, long n, double p) {
    long rank = (long)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    return sorted[rank - 1];
}

/* The same job shape as bench_task (multipart create, a timer, a GET poll), `inflight` jobs
 * kept going, one frame every 1/hz s. Timed per frame: what ocr.step(0) does there —
 * curl_multi_perform, reading the finished transfers, starting the next requests. */
static long run_frames(long inflight, long hz, double seconds) {
    CURLM *multi = curl_multi_init();
    slot *slots = calloc((size_t)inflight, sizeof *slots);
    long frames = (long)(seconds * (double)hz), f, i, jobs = 0, failed = 0;
    double *t = calloc((size_t)frames, sizeof *t), next, t_start, steady_max = 0;
    if (multi == NULL || slots == NULL || t == NULL || frames < 1) {
        fprintf(stderr, "curl_loop: out of memory or no frames\n");
        exit(2);
    }
    t_start = next = now_s();
    for (f = 0; f < frames; f++) {
        double t0 = now_s(), rest;
        int running;
        CURLcode code;
        xfer *x;
        if (f == 0) {
            for (i = 0; i < inflight; i++) {
                slots[i].x = xfer_new();
                start_request(multi, &slots[i], 0);
            }
        }
        curl_multi_perform(multi, &running);
        while ((x = take_done(multi, &code)) != NULL) {
            if (!finished_ok(x, code)) failed++;
            for (i = 0; i < inflight && slots[i].x != x; i++) {}
            if (slots[i].state == 0) {
                slots[i].state = 1;
                slots[i].due = now_s() + (double)pick(gap_ms) / 1000.0;
            } else {
                jobs++;
                start_request(multi, &slots[i], 0);
            }
        }
        for (i = 0; i < inflight; i++) {
            if (slots[i].state == 1 && slots[i].due <= now_s()) start_request(multi, &slots[i], 2);
        }
        t[f] = now_s() - t0;
        next += 1.0 / (double)hz;
        rest = next - now_s();
        if (rest > 0) {
            struct timespec ts;
            ts.tv_sec = (time_t)rest;
            ts.tv_nsec = (long)((rest - (double)ts.tv_sec) * 1e9);
            nanosleep(&ts, NULL);
        } else {
            next = now_s();
        }
    }
    seconds = now_s() - t_start;
    for (f = hz; f < frames; f++)   /* after the first second: connections are open */
        if (t[f] > steady_max) steady_max = t[f];
    qsort(t, (size_t)frames, sizeof *t, cmp_double);
    printf("frames=%ld jobs=%ld seconds=%.3f p50=%.6f p90=%.6f p99=%.6f max=%.6f smax=%.6f\n", frames,
           jobs, seconds, pct(t, frames, 50), pct(t, frames, 90), pct(t, frames, 99), t[frames - 1],
           steady_max);
    for (i = 0; i < inflight; i++) {
        curl_multi_remove_handle(multi, slots[i].x->easy);
        xfer_free(slots[i].x);
    }
    free(slots);
    free(t);
    curl_multi_cleanup(multi);
    return failed;
}

static range parse_range(const char *s) {
    range r;
    char *end;
    r.lo = strtol(s, &end, 10);
    r.hi = *end == '-' ? strtol(end + 1, NULL, 10) : r.lo;
    if (r.lo < 0 || r.hi < r.lo) {
        fprintf(stderr, "curl_loop: bad range %s (LO-HI milliseconds)\n", s);
        exit(2);
    }
    return r;
}

int main(int argc, char **argv) {
    long n = 1000, concurrency = 1, failed, hz = 0;
    double seconds = 6;
    double t0, dt, c0, dc;
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) url = argv[++i];
        else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc) n = atol(argv[++i]);
        else if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc) concurrency = atol(argv[++i]);
        else if (strcmp(argv[i], "--form") == 0 && i + 1 < argc) form_data = read_file(argv[++i], &form_len);
        else if (strcmp(argv[i], "--user-agent") == 0 && i + 1 < argc) user_agent = argv[++i];
        else if (strcmp(argv[i], "--prebuilt") == 0) prebuilt = 1;
        else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) hz = atol(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc) lat_ms = parse_range(argv[++i]);
        else if (strcmp(argv[i], "--interval-ms") == 0 && i + 1 < argc) gap_ms = parse_range(argv[++i]);
        else {
            fprintf(stderr, "usage: curl_loop --url URL [--requests N] [--concurrency C] "
                            "[--form FILE [--prebuilt]] [--user-agent UA]\n"
                            "       curl_loop --url BASE --frames HZ --concurrency JOBS --form FILE "
                            "[--seconds S] [--ms LO-HI] [--interval-ms LO-HI]\n");
            return 2;
        }
    }
    if (url == NULL || n < 1 || concurrency < 1) {
        fprintf(stderr, "curl_loop: --url is required; N and C must be >= 1\n");
        return 2;
    }
    /* A header line (lua-ocr sets CURLOPT_USERAGENT: the same header; benchmark 4 compares the
     * request heads regardless of header order). */
    snprintf(ua_header, sizeof ua_header, "User-Agent: %s", user_agent);
    if (prebuilt && form_data == NULL) {
        fprintf(stderr, "curl_loop: --prebuilt needs --form\n");
        return 2;
    }
    if (prebuilt) build_prebuilt();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (hz > 0) {
        if (form_data == NULL) {
            fprintf(stderr, "curl_loop: --frames needs --form\n");
            return 2;
        }
        failed = run_frames(concurrency, hz, seconds);
        free(form_data);
        curl_global_cleanup();
        return failed ? 1 : 0;
    }
    c0 = cpu_s();
    t0 = now_s();
    failed = concurrency == 1 ? run_sequential(n) : run_multi(n, concurrency);
    dt = now_s() - t0;
    dc = cpu_s() - c0;
    printf("requests=%ld failed=%ld seconds=%.6f rps=%.1f cpu=%.6f\n", n, failed, dt, (double)n / dt, dc);
    free(form_data);
    free(pre_body);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
