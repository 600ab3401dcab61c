/* Worker threads for ocr.tesseract. One mutex guards the queue, the finished list and each
 * worker's current job; two condition variables wake workers (work) and waiters (state). A pipe
 * holds one byte exactly while finished jobs wait to be collected, so a scheduler can poll it.
 * Each worker creates, uses and deletes its own TessBaseAPI: no tesseract object crosses threads. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <leptonica/allheaders.h>
#include <tesseract/capi.h>
#include "image_check.h"
#include "tesseract_pool.h"

/* libgomp's, when libtesseract was built with OpenMP. Weak, so the module neither links libgomp
 * nor fails where tesseract has no OpenMP. */
extern void omp_set_max_active_levels(int levels) __attribute__((weak));

#define TP_TEXT_LIMIT   (64u << 20)    /* recognised text and geometry per image, all pages */
#define TP_STACK_SIZE   (8u << 20)     /* tesseract recurses; musl's default stack is 128 KiB */
#define TP_MAX_SIDE     32767          /* tesseract refuses larger images */

typedef struct {
    tp_pool  *pool;
    pthread_t thread;
    int       started;
    int       init_state;              /* 0 loading, 1 ready, -1 failed (message in init_msg) */
    char      init_msg[TP_MSG_LEN];
    tp_job   *current;                 /* the job being recognised, under pool->mu */
} tp_worker;

struct tp_pool {
    tp_options opt;
    pthread_mutex_t mu;
    pthread_cond_t  work_cv;           /* queue non-empty or stopping */
    pthread_cond_t  state_cv;          /* a job finished or a worker finished loading */
    tp_job *queue_head, *queue_tail;
    tp_job *done_head, *done_tail;
    tp_job *collected;                 /* handed to the caller, not yet released (caller's thread) */
    size_t  outstanding;               /* submitted and not released */
    size_t  running;                   /* taken by a worker and not finished */
    int64_t next_id;
    int     stopping;
    int     pipefd[2];
    tp_worker workers[TP_MAX_THREADS];
};

static void set_msg(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(char *dst, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* Sets the kind and message of a tp_outcome. */
#define FAIL(out, k, ...) \
    do { (out)->kind = (k); set_msg((out)->message, sizeof (out)->message, __VA_ARGS__); } while (0)

/* ---- results ----------------------------------------------------------------------------- */

static void result_init(tp_result *r) {
    ocr_buffer_init(&r->strings, TP_TEXT_LIMIT);
    ocr_buffer_init(&r->pages, TP_TEXT_LIMIT);
    ocr_buffer_init(&r->lines, TP_TEXT_LIMIT);
    ocr_buffer_init(&r->words, TP_TEXT_LIMIT);
}

static void result_free(tp_result *r) {
    ocr_buffer_free(&r->strings);
    ocr_buffer_free(&r->pages);
    ocr_buffer_free(&r->lines);
    ocr_buffer_free(&r->words);
}

/* Appends a tesseract string (freed here on every path) without its trailing newlines/spaces. */
static int result_add_text(tp_result *r, char *text, size_t *off, size_t *len) {
    size_t n = text ? strlen(text) : 0;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r')) n--;
    *off = r->strings.len;
    *len = n;
    int rc = ocr_buffer_append(&r->strings, text, n);
    if (text) TessDeleteText(text);
    return rc;
}

static float confidence01(float c) {
    c /= 100.0f;
    return c < 0.0f ? 0.0f : c > 1.0f ? 1.0f : c;
}

static tp_box box_at(const TessPageIterator *pi, TessPageIteratorLevel level) {
    int l = 0, t = 0, r = 0, b = 0;
    tp_box box = {0, 0, 0, 0};
    if (TessPageIteratorBoundingBox(pi, level, &l, &t, &r, &b)) {
        box.x = l;
        box.y = t;
        box.w = r - l;
        box.h = b - t;
    }
    return box;
}

/* Walks page `page` word by word in reading order; a word that begins a text line opens a new
 * tp_line. Returns an ocr_buffer status. */
static int result_collect_lines(tp_result *r, TessResultIterator *ri, int page) {
    const TessPageIterator *pi = TessResultIteratorGetPageIteratorConst(ri);
    tp_line *line = NULL;
    int rc = OCR_BUF_OK;
    do {
        char *wtext = TessResultIteratorGetUTF8Text(ri, RIL_WORD);
        if (wtext == NULL) continue;
        if (wtext[0] == '\0') { TessDeleteText(wtext); continue; }
        if (line == NULL || TessPageIteratorIsAtBeginningOf(pi, RIL_TEXTLINE)) {
            tp_line nl;
            memset(&nl, 0, sizeof nl);
            rc = result_add_text(r, TessResultIteratorGetUTF8Text(ri, RIL_TEXTLINE),
                                 &nl.text_off, &nl.text_len);
            nl.confidence = confidence01(TessResultIteratorConfidence(ri, RIL_TEXTLINE));
            nl.box = box_at(pi, RIL_TEXTLINE);
            nl.first_word = r->words.len / sizeof(tp_word);
            nl.page = page;
            if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->lines, &nl, sizeof nl);
            if (rc != OCR_BUF_OK) { TessDeleteText(wtext); return rc; }
            line = (tp_line *)(void *)(r->lines.data + r->lines.len - sizeof nl);
        }
        tp_word w;
        memset(&w, 0, sizeof w);
        rc = result_add_text(r, wtext, &w.text_off, &w.text_len);
        w.confidence = confidence01(TessResultIteratorConfidence(ri, RIL_WORD));
        w.box = box_at(pi, RIL_WORD);
        if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->words, &w, sizeof w);
        if (rc != OCR_BUF_OK) return rc;
        line->nwords++;
    } while (TessResultIteratorNext(ri, RIL_WORD));
    return rc;
}

/* ---- reading one page ---------------------------------------------------------------------- */

/* Reads a whole file into b (bounded by max_bytes). */
static void read_file(tp_job *job, ocr_buffer *b, size_t max_bytes) {
    FILE *f = fopen(job->path, "rb");
    if (f == NULL) {
        FAIL(&job->out, TP_INVALID_INPUT, "cannot open image '%s': %s", job->path, strerror(errno));
        return;
    }
    ocr_buffer_init(b, max_bytes);
    char chunk[65536];
    size_t n;
    int rc = OCR_BUF_OK;
    while (rc == OCR_BUF_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ocr_buffer_append(b, chunk, n);
    if (rc == OCR_BUF_LIMIT)
        FAIL(&job->out, TP_TOO_LARGE, "image file '%s' is larger than max_bytes (%zu bytes)",
                 job->path, max_bytes);
    else if (rc == OCR_BUF_NOMEM)
        FAIL(&job->out, TP_SERVER, "out of memory reading '%s'", job->path);
    else if (ferror(f))
        FAIL(&job->out, TP_INVALID_INPUT, "cannot read image '%s'", job->path);
    fclose(f);
}

/* Whether a page of w x h may be decoded; out's error otherwise. Pages after the first are
 * named in the message. */
static int size_ok(tp_outcome *out, const tp_options *o, uint64_t w, uint64_t h, int page) {
    char where[48] = "image";
    if (page > 1) snprintf(where, sizeof where, "page %d of the image", page);
    if (w * h > o->max_pixels) {
        FAIL(out, TP_TOO_LARGE, "%s is %llux%llu = %llu pixels, over max_pixels (%llu)", where,
             (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
             (unsigned long long)o->max_pixels);
        return 0;
    }
    if (w > TP_MAX_SIDE || h > TP_MAX_SIDE) {
        FAIL(out, TP_TOO_LARGE, "%s is %llux%llu; tesseract handles at most %d pixels a side",
             where, (unsigned long long)w, (unsigned long long)h, TP_MAX_SIDE);
        return 0;
    }
    return 1;
}

/* An image_check.c status as the kind of a job's or a call's error. */
tp_kind tp_kind_of_check(ic_status st) {
    return st == IC_TOO_LARGE ? TP_TOO_LARGE : st == IC_UNSUPPORTED ? TP_UNSUPPORTED
                                                                    : TP_INVALID_INPUT;
}

/* Reads what can be known before decoding: the byte checks (image_check.c), then the header:
 * bytes leptonica cannot read and a first page too large to decode safely are refused; counts a
 * TIFF's pages (*tiff_pages, 0 for other formats). 0 with out's error set. */
static int probe(tp_outcome *out, const tp_options *o, const unsigned char *data, size_t len,
                 int *tiff_pages) {
    ic_status st = ic_check(data, len, o->max_pages, tiff_pages, out->message, sizeof out->message);
    if (st != IC_OK) {
        out->kind = tp_kind_of_check(st);
        return 0;
    }
    l_int32 format = 0, w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
    if (len == 0 || pixReadHeaderMem(data, len, &format, &w, &h, &bps, &spp, &cmap) != 0
        || w <= 0 || h <= 0) {
        FAIL(out, TP_INVALID_INPUT, "cannot decode image (%zu bytes): not a PNG, JPEG, TIFF, "
             "BMP, GIF, WebP or PNM image leptonica can read", len);
        return 0;
    }
    return size_ok(out, o, (uint64_t)w, (uint64_t)h, 1);
}

/* `seconds` from now on CLOCK_MONOTONIC, the clock of state_cv and of page deadlines. */
static void deadline_after(struct timespec *ts, double seconds) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    if (seconds > 1e9) seconds = 1e9;
    time_t whole = (time_t)seconds;
    long nsec = ts->tv_nsec + (long)((seconds - (double)whole) * 1e9);
    ts->tv_sec += whole + nsec / 1000000000L;
    ts->tv_nsec = nsec % 1000000000L;
}

/* What tesseract's monitor calls back with while it recognises one page (between words): the
 * job, for its cancel flag and progress, and the page's deadline. */
typedef struct {
    tp_job *job;
    ETEXT_DESC *monitor;
    int reported;                      /* the page's percentage already added to job->progress */
    int has_deadline, timed_out;
    struct timespec deadline;          /* CLOCK_MONOTONIC */
} tp_watch;

static void add_progress(tp_watch *w, int percent) {
    if (percent <= w->reported) return;
    __atomic_add_fetch(&w->job->progress, (unsigned)(percent - w->reported), __ATOMIC_RELAXED);
    w->reported = percent;
}

static int past(const struct timespec *deadline) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec
           || (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Returns true to stop recognising: cancelled, or the page is over its deadline. A page counts
 * 100 only once its result is stored, so what tesseract says is kept under 100 here. */
static bool cancel_cb(void *cancel_this, int words) {
    (void)words;
    tp_watch *w = cancel_this;
    if (w == NULL) return false;
    int percent = TessMonitorGetProgress(w->monitor);
    add_progress(w, percent > 99 ? 99 : percent);
    if (__atomic_load_n(&w->job->cancel, __ATOMIC_ACQUIRE)) return true;
    if (w->has_deadline && past(&w->deadline)) {
        w->timed_out = 1;
        return true;
    }
    return false;
}

static int cancelled(tp_job *job, tp_outcome *out) {
    if (!__atomic_load_n(&job->cancel, __ATOMIC_ACQUIRE)) return 0;
    FAIL(out, TP_CANCELLED, "job %lld cancelled", (long long)job->id);
    return 1;
}

/* The page segmentation modes that detect the page's orientation first (with the layout). */
static int detects_orientation(int psm) {
    return psm == PSM_AUTO_OSD || psm == PSM_SPARSE_TEXT_OSD;
}

/* Which way the first text block's "up" points, as clockwise degrees from upright; -1 when
 * there is no text. Tesseract has turned the page upright to read it; boxes stay in the
 * image's own coordinates. */
static int page_angle(TessResultIterator *ri) {
    TessPageIterator *pi = TessResultIteratorGetPageIterator(ri);
    TessOrientation orientation = ORIENTATION_PAGE_UP;
    TessWritingDirection direction;
    TessTextlineOrder order;
    float deskew = 0.0f;
    if (pi == NULL || TessPageIteratorIsAtBeginningOf(pi, RIL_BLOCK) == 0) return -1;
    TessPageIteratorOrientation(pi, &orientation, &direction, &order, &deskew);
    return (int)orientation * 90;   /* PAGE_UP, PAGE_RIGHT, PAGE_DOWN, PAGE_LEFT */
}

/* Recognises one decoded page of `job` into r as page `page`; out says how it went. */
static void recognise_page(tp_job *job, tp_result *r, tp_outcome *out, const tp_options *o,
                           TessBaseAPI *api, ETEXT_DESC *monitor, PIX *pix, int page) {
    tp_page pg;
    tp_watch watch;
    memset(&pg, 0, sizeof pg);
    memset(&watch, 0, sizeof watch);
    pg.angle = -1;
    pg.width = (int)pixGetWidth(pix);
    pg.height = (int)pixGetHeight(pix);
    watch.job = job;
    watch.monitor = monitor;
    watch.has_deadline = o->page_timeout > 0;
    if (watch.has_deadline) deadline_after(&watch.deadline, o->page_timeout);
    TessBaseAPISetImage2(api, pix);
    TessMonitorSetCancelThis(monitor, &watch);
    int rc = TessBaseAPIRecognize(api, monitor);
    TessMonitorSetCancelThis(monitor, NULL);
    char what[32] = "the image";   /* what a failure names: a TIFF's page, even page 1 */
    if (job->doc != NULL) snprintf(what, sizeof what, "page %d", page);
    if (cancelled(job, out)) {
        /* out says so */
    } else if (watch.timed_out) {
        FAIL(out, TP_TIMEOUT, "%s was not recognised within page_timeout (%g s)", what,
             o->page_timeout);
    } else if (rc != 0) {
        FAIL(out, TP_TASK_FAILED, "tesseract could not recognise %s", what);
    } else {
        int brc = result_add_text(r, TessBaseAPIGetUTF8Text(api), &pg.text_off, &pg.text_len);
        TessResultIterator *ri = TessBaseAPIGetIterator(api);
        if (ri != NULL && detects_orientation(o->psm)) pg.angle = page_angle(ri);
        if (brc == OCR_BUF_OK) brc = ocr_buffer_append(&r->pages, &pg, sizeof pg);
        if (brc == OCR_BUF_OK && ri != NULL) brc = result_collect_lines(r, ri, page);
        if (ri != NULL) TessResultIteratorDelete(ri);
        if (brc == OCR_BUF_LIMIT)
            FAIL(out, TP_TOO_LARGE, "recognised text over %u bytes", TP_TEXT_LIMIT);
        else if (brc == OCR_BUF_NOMEM)
            FAIL(out, TP_SERVER, "out of memory storing the result");
    }
    add_progress(&watch, 100);
    /* release: whoever sees the page done sees its 100 too */
    __atomic_add_fetch(&job->pages_done, 1, __ATOMIC_RELEASE);
    /* Frees the page and, with the legacy engine, what it adapted to this page: results must not
     * depend on which images a worker saw before. The model stays loaded. */
    TessBaseAPIClear(api);
    TessBaseAPIClearAdaptiveClassifier(api);
}

/* ---- a multi-page TIFF, read by several workers ------------------------------------------- */

/* The pages of a TIFF are handed out one at a time to whichever worker is free: the job goes
 * back to the end of the queue after each page handed out, so other images keep their turn, and
 * every free worker can take the next page. Results wait in their page's slot and are joined in
 * page order once the last page is read. Only the encoded bytes are shared (read-only); each
 * worker decodes its own page, so one decoded page per worker is in memory. */
typedef struct {
    ic_tiff_page dir;                  /* where its directory is, its size */
    tp_result    res;                  /* its result, once recognised */
} tp_page_slot;

typedef struct tp_doc tp_doc;
struct tp_doc {
    ocr_buffer file;                   /* the bytes read from the job's path (else job->data) */
    const unsigned char *bytes;
    size_t len;
    int npages;
    /* under pool->mu: */
    int next_page;                     /* the next page to hand out, 1-based */
    int reading;                       /* pages being recognised */
    int queued;                        /* the job is in the queue for its next page */
    int failed_page;                   /* the first page that failed (the job's error), or 0 */
    tp_page_slot slots[];
};

static void doc_free(tp_job *job) {
    tp_doc *doc = job->doc;
    if (doc == NULL) return;
    for (int i = 0; i < doc->npages; i++) result_free(&doc->slots[i].res);
    ocr_buffer_free(&doc->file);
    free(doc);
    job->doc = NULL;
    free(job->data);
    job->data = NULL;
}

/* Splits a TIFF of n > 1 pages (bytes moved from *file, or the job's data). Every page's size is
 * checked from its directory before any is decoded. 0 with the job's error set. */
static int doc_create(tp_job *job, const tp_options *o, ocr_buffer *file,
                      const unsigned char *bytes, size_t len, int n) {
    tp_doc *doc = calloc(1, sizeof *doc + (size_t)n * sizeof(tp_page_slot));
    if (doc == NULL) {
        FAIL(&job->out, TP_SERVER, "out of memory reading a TIFF of %d pages", n);
        return 0;
    }
    ic_tiff_page *dirs = malloc((size_t)n * sizeof *dirs);
    ic_status st = dirs ? ic_tiff_pages(bytes, len, dirs, n, job->out.message, sizeof job->out.message)
                        : IC_INVALID;
    if (dirs == NULL) FAIL(&job->out, TP_SERVER, "out of memory reading a TIFF of %d pages", n);
    else if (st != IC_OK) job->out.kind = tp_kind_of_check(st);
    for (int i = 0; job->out.kind == TP_OK && i < n; i++) {
        size_ok(&job->out, o, dirs[i].width, dirs[i].height, i + 1);
        doc->slots[i].dir = dirs[i];
        result_init(&doc->slots[i].res);
    }
    free(dirs);
    if (job->out.kind != TP_OK) {
        free(doc);
        return 0;
    }
    doc->file = *file;
    ocr_buffer_init(file, 0);
    doc->bytes = bytes;
    doc->len = len;
    doc->npages = n;
    doc->next_page = 1;
    job->doc = doc;
    __atomic_store_n(&job->npages, n, __ATOMIC_RELAXED);
    return 1;
}

/* Decodes and recognises page `page` into its slot; a failure becomes the job's error when no
 * earlier page failed, so the error does not depend on which worker finished first. */
static void read_page(tp_pool *p, tp_job *job, int page, TessBaseAPI *api, ETEXT_DESC *monitor) {
    tp_doc *doc = job->doc;
    tp_page_slot *slot = &doc->slots[page - 1];
    tp_outcome out = { TP_OK, "" };
    size_t offset = page == 1 ? 0 : (size_t)slot->dir.offset;
    PIX *pix = cancelled(job, &out) ? NULL : pixReadMemFromMultipageTiff(doc->bytes, doc->len, &offset);
    if (pix != NULL)
        recognise_page(job, &slot->res, &out, &p->opt, api, monitor, pix, page);
    else if (out.kind == TP_OK)
        FAIL(&out, TP_INVALID_INPUT, "cannot decode page %d of %d of a TIFF image: corrupt or "
             "truncated", page, doc->npages);
    pixDestroy(&pix);
    if (out.kind == TP_OK) return;
    result_free(&slot->res);
    pthread_mutex_lock(&p->mu);
    if (doc->failed_page == 0 || page < doc->failed_page) {
        doc->failed_page = page;
        job->out = out;
    }
    pthread_mutex_unlock(&p->mu);
}

/* Joins the pages' results, in page order, into the job's, freeing each page's as it goes. */
static void doc_join(tp_job *job) {
    tp_doc *doc = job->doc;
    tp_result *r = &job->res;
    int rc = OCR_BUF_OK;
    result_init(r);
    for (int i = 0; rc == OCR_BUF_OK && i < doc->npages; i++) {
        tp_result *pr = &doc->slots[i].res;
        size_t text_base = r->strings.len, word_base = r->words.len / sizeof(tp_word);
        size_t pages_at = r->pages.len, lines_at = r->lines.len, words_at = r->words.len;
        rc = ocr_buffer_append(&r->strings, pr->strings.data, pr->strings.len);
        if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->pages, pr->pages.data, pr->pages.len);
        if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->lines, pr->lines.data, pr->lines.len);
        if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->words, pr->words.data, pr->words.len);
        if (rc != OCR_BUF_OK) break;
        for (size_t at = pages_at; at < r->pages.len; at += sizeof(tp_page))
            ((tp_page *)(void *)(r->pages.data + at))->text_off += text_base;
        for (size_t at = lines_at; at < r->lines.len; at += sizeof(tp_line)) {
            tp_line *l = (tp_line *)(void *)(r->lines.data + at);
            l->text_off += text_base;
            l->first_word += word_base;
        }
        for (size_t at = words_at; at < r->words.len; at += sizeof(tp_word))
            ((tp_word *)(void *)(r->words.data + at))->text_off += text_base;
        result_free(pr);   /* a page's result is held once, here or in its slot */
    }
    if (rc == OCR_BUF_LIMIT)
        FAIL(&job->out, TP_TOO_LARGE, "recognised text over %u bytes", TP_TEXT_LIMIT);
    else if (rc == OCR_BUF_NOMEM)
        FAIL(&job->out, TP_SERVER, "out of memory storing the result");
    if (rc != OCR_BUF_OK) result_free(r);
}

/* ---- a job's first turn ------------------------------------------------------------------- */

/* Frees the job's encoded bytes (read from its file, or given). */
static void release_bytes(tp_job *job, ocr_buffer *file) {
    ocr_buffer_free(file);
    free(job->data);
    job->data = NULL;
}

/* A job's first turn: reads and checks the image and recognises it. Returns 1 when it is a
 * multi-page TIFF, split into pages (job->doc) with page 1 left for this worker to read. */
static int run_job(tp_job *job, const tp_options *o, TessBaseAPI *api, ETEXT_DESC *monitor) {
    ocr_buffer file;
    const unsigned char *bytes = job->data;
    size_t len = job->len;
    int tiff_pages = 0, split = 0;
    ocr_buffer_init(&file, 0);
    job->out.kind = TP_OK;
    result_init(&job->res);
    if (job->path != NULL) {
        read_file(job, &file, o->max_bytes);
        bytes = (const unsigned char *)file.data;
        len = file.len;
    }
    if (job->out.kind != TP_OK || !probe(&job->out, o, bytes, len, &tiff_pages)) {
        /* the job's error is set */
    } else if (tiff_pages > 1) {
        split = doc_create(job, o, &file, bytes, len, tiff_pages);
    } else {
        PIX *pix = pixReadMem(bytes, len);
        release_bytes(job, &file);   /* not needed once decoded: freed before recognition */
        if (pix == NULL)
            FAIL(&job->out, TP_INVALID_INPUT, "cannot decode image (%zu bytes): corrupt or truncated", len);
        else
            recognise_page(job, &job->res, &job->out, o, api, monitor, pix, 1);
        pixDestroy(&pix);
    }
    if (split) return 1;
    release_bytes(job, &file);
    if (job->out.kind != TP_OK) result_free(&job->res);
    return 0;
}

/* ---- workers ------------------------------------------------------------------------------ */

/* Under p->mu. Keeps "a byte is in the pipe" equal to "done list non-empty". */
static void push_done(tp_pool *p, tp_job *job) {
    job->next = NULL;
    if (p->done_tail) p->done_tail->next = job; else p->done_head = job;
    p->done_tail = job;
    if (p->done_head == job) {
        ssize_t w;
        do w = write(p->pipefd[1], "j", 1); while (w < 0 && errno == EINTR);
    }
    pthread_cond_broadcast(&p->state_cv);
}

static void drain_pipe_if_idle(tp_pool *p) {
    if (p->done_head != NULL) return;
    char buf[64];
    ssize_t n;
    do n = read(p->pipefd[0], buf, sizeof buf); while (n > 0 || (n < 0 && errno == EINTR));
}

/* Under p->mu. */
static void enqueue(tp_pool *p, tp_job *job) {
    job->next = NULL;
    if (p->queue_tail) p->queue_tail->next = job; else p->queue_head = job;
    p->queue_tail = job;
    pthread_cond_signal(&p->work_cv);
}

static tp_job *dequeue(tp_pool *p) {
    tp_job *job = p->queue_head;
    p->queue_head = job->next;
    if (p->queue_head == NULL) p->queue_tail = NULL;
    return job;
}

/* Under p->mu: a started job is finished; w stops holding it. */
static void finish(tp_pool *p, tp_worker *w, tp_job *job) {
    w->current = NULL;
    /* cancel() said yes while this job was current: honour it even if tesseract finished */
    if (job->out.kind == TP_OK && __atomic_load_n(&job->cancel, __ATOMIC_ACQUIRE)) {
        result_free(&job->res);
        FAIL(&job->out, TP_CANCELLED, "job %lld cancelled", (long long)job->id);
    }
    p->running--;
    push_done(p, job);
}

/* Under p->mu: the next page of a split job for worker w, or 0 when none is left to hand out
 * (all handed out, a page failed, or the job was cancelled). The job goes back in the queue
 * while it has pages left. */
static int take_page(tp_pool *p, tp_job *job) {
    tp_doc *doc = job->doc;
    if (doc->next_page > doc->npages || doc->failed_page
        || __atomic_load_n(&job->cancel, __ATOMIC_ACQUIRE))
        return 0;
    int page = doc->next_page++;
    doc->reading++;
    if (doc->next_page <= doc->npages) {
        doc->queued = 1;
        enqueue(p, job);
    }
    return page;
}

/* Under p->mu, when worker w is done with a split job (a page read, or none left to take):
 * the last one out joins the pages and finishes the job. */
static void leave_doc(tp_pool *p, tp_worker *w, tp_job *job) {
    tp_doc *doc = job->doc;
    if (doc->reading > 0 || doc->queued) {
        w->current = NULL;
        return;
    }
    pthread_mutex_unlock(&p->mu);   /* w->current keeps the job in flight meanwhile */
    if (job->out.kind == TP_OK && !__atomic_load_n(&job->cancel, __ATOMIC_ACQUIRE)) doc_join(job);
    doc_free(job);
    pthread_mutex_lock(&p->mu);
    finish(p, w, job);
}

static TessBaseAPI *load_model(tp_worker *w, ETEXT_DESC **monitor) {
    const tp_options *o = &w->pool->opt;
    TessBaseAPI *api = TessBaseAPICreate();
    *monitor = TessMonitorCreate();
    if (api == NULL || *monitor == NULL) {
        set_msg(w->init_msg, sizeof w->init_msg, "out of memory creating a tesseract instance");
        goto fail;
    }
    if (TessBaseAPIInit2(api, o->datapath[0] ? o->datapath : NULL, o->languages,
                         (TessOcrEngineMode)o->oem) != 0) {
        set_msg(w->init_msg, sizeof w->init_msg, "tesseract cannot load language data '%s' from %s "
                "with oem %d (a model without that engine, or a damaged file)", o->languages,
                o->datapath[0] ? o->datapath : "its default tessdata directory", o->oem);
        goto fail;
    }
    if (o->psm >= 0) TessBaseAPISetPageSegMode(api, (TessPageSegMode)o->psm);
    TessMonitorSetCancelFunc(*monitor, cancel_cb);
    return api;
fail:
    if (api) TessBaseAPIDelete(api);
    if (*monitor) TessMonitorDelete(*monitor);
    *monitor = NULL;
    return NULL;
}

static void *worker_main(void *arg) {
    tp_worker *w = arg;
    tp_pool *p = w->pool;
    ETEXT_DESC *monitor = NULL;
    /* Parallelism comes from the pool: tesseract's own OpenMP teams only spin against the other
     * workers (the CLI is twice as fast with OMP_THREAD_LIMIT=1), so this thread runs them
     * with one thread. */
    if (omp_set_max_active_levels) omp_set_max_active_levels(0);
    TessBaseAPI *api = load_model(w, &monitor);

    pthread_mutex_lock(&p->mu);
    w->init_state = api ? 1 : -1;
    pthread_cond_broadcast(&p->state_cv);
    while (api) {
        while (!p->stopping && p->queue_head == NULL) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping) break;
        tp_job *job = dequeue(p);
        w->current = job;
        int page;
        if (job->doc == NULL) {                    /* its first turn */
            p->running++;
            pthread_mutex_unlock(&p->mu);
            int split = run_job(job, &p->opt, api, monitor);
            pthread_mutex_lock(&p->mu);
            if (!split) {
                finish(p, w, job);
                continue;
            }
            page = take_page(p, job);              /* page 1, for this worker */
        } else {                                    /* a split job's next page */
            job->doc->queued = 0;
            page = take_page(p, job);
        }
        if (page == 0) {
            leave_doc(p, w, job);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        read_page(p, job, page, api, monitor);
        pthread_mutex_lock(&p->mu);
        job->doc->reading--;
        leave_doc(p, w, job);
    }
    pthread_mutex_unlock(&p->mu);
    if (api) TessBaseAPIDelete(api);   /* End()s it: frees the model */
    if (monitor) TessMonitorDelete(monitor);
    return NULL;
}

/* ---- process-wide quiet ------------------------------------------------------------------- */

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

/* Both libraries print diagnostics on stderr ("Estimating resolution as ...", "Error in
 * pixReadMem ..."); this module reports failures as values instead. Done once, before any
 * worker exists, since both settings are process-wide. OCR_TESSERACT_DEBUG=1 and
 * LEPT_MSG_SEVERITY keep them. */
static void lept_silent(const char *msg) { (void)msg; }

static void quiet_libraries(void) {
    if (getenv("LEPT_MSG_SEVERITY") == NULL) {
        setMsgSeverity(L_SEVERITY_NONE);
        leptSetStderrHandler(lept_silent);   /* what leptonica prints besides its messages */
    }
    if (getenv("OCR_TESSERACT_DEBUG") == NULL) {
        TessBaseAPI *api = TessBaseAPICreate();
        if (api) {
            TessBaseAPISetVariable(api, "debug_file", "/dev/null");
            TessBaseAPIDelete(api);
        }
    }
}

/* ---- pool --------------------------------------------------------------------------------- */

static void free_job(tp_job *job) {
    doc_free(job);
    if (job->out.kind == TP_OK) result_free(&job->res);
    free(job->path);
    free(job->data);
    free(job);
}

static void free_list(tp_job *j) {
    while (j) {
        tp_job *next = j->next;
        free_job(j);
        j = next;
    }
}

static int set_fd_flags(int fd) {
    int fl = fcntl(fd, F_GETFL);
    int fd_fl = fcntl(fd, F_GETFD);
    return fl < 0 || fd_fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0
           || fcntl(fd, F_SETFD, fd_fl | FD_CLOEXEC) < 0 ? -1 : 0;
}

static int pool_sync_init(tp_pool *p) {
    pthread_condattr_t ca;
    if (pthread_mutex_init(&p->mu, NULL) != 0) return -1;
    if (pthread_condattr_init(&ca) != 0) return -1;
    /* wait() deadlines must not move when the wall clock is set */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&p->work_cv, NULL) | pthread_cond_init(&p->state_cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc ? -1 : 0;
}

/* Starts the threads with every signal blocked, so signals keep going to the caller's thread. */
static int start_workers(tp_pool *p, char *msg, size_t msglen) {
    pthread_attr_t attr;
    sigset_t all, old;
    size_t stack = 0;
    if (pthread_attr_init(&attr) != 0) {
        set_msg(msg, msglen, "cannot create thread attributes");
        return -1;
    }
    if (pthread_attr_getstacksize(&attr, &stack) == 0 && stack < TP_STACK_SIZE)
        pthread_attr_setstacksize(&attr, TP_STACK_SIZE);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int i = 0; i < p->opt.threads; i++) {
        tp_worker *w = &p->workers[i];
        w->pool = p;
        rc = pthread_create(&w->thread, &attr, worker_main, w);
        if (rc != 0) {
            set_msg(msg, msglen, "cannot start tesseract worker thread %d: %s", i + 1, strerror(rc));
            break;
        }
        w->started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc ? -1 : 0;
}

/* Blocks until every started worker has loaded its model; the first failure's message. */
static int await_models(tp_pool *p, char *msg, size_t msglen) {
    int failed = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->opt.threads; i++) {
        tp_worker *w = &p->workers[i];
        while (w->init_state == 0) pthread_cond_wait(&p->state_cv, &p->mu);
        if (w->init_state < 0 && !failed) {
            failed = 1;
            set_msg(msg, msglen, "%s", w->init_msg);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return failed ? -1 : 0;
}

tp_pool *tp_pool_create(const tp_options *o, tp_kind *kind, char *msg, size_t msglen) {
    tp_pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        *kind = TP_SERVER;
        set_msg(msg, msglen, "out of memory");
        return NULL;
    }
    p->opt = *o;
    p->next_id = 1;
    p->pipefd[0] = p->pipefd[1] = -1;
    if (pool_sync_init(p) != 0) {
        free(p);
        *kind = TP_SERVER;
        set_msg(msg, msglen, "cannot create pool mutex/condition variables");
        return NULL;
    }
    pthread_once(&quiet_once, quiet_libraries);
    if (pipe(p->pipefd) != 0 || set_fd_flags(p->pipefd[0]) != 0 || set_fd_flags(p->pipefd[1]) != 0) {
        *kind = TP_SERVER;
        set_msg(msg, msglen, "cannot create the pool's notification pipe: %s", strerror(errno));
        tp_pool_destroy(p);
        return NULL;
    }
    if (start_workers(p, msg, msglen) != 0) {
        *kind = TP_SERVER;
        tp_pool_destroy(p);
        return NULL;
    }
    if (await_models(p, msg, msglen) != 0) {
        *kind = TP_INVALID_INPUT;
        tp_pool_destroy(p);
        return NULL;
    }
    return p;
}

tp_kind tp_pool_submit(tp_pool *p, const char *path, const void *data, size_t len, int64_t *id,
                       char *msg, size_t msglen) {
    if (p->outstanding >= p->opt.max_pending) {
        set_msg(msg, msglen, "tesseract queue is full (%zu jobs pending)", p->outstanding);
        return TP_RATE_LIMITED;
    }
    if (path == NULL && len > p->opt.max_bytes) {
        set_msg(msg, msglen, "image is %zu bytes, over max_bytes (%zu)", len, p->opt.max_bytes);
        return TP_TOO_LARGE;
    }
    tp_job *job = calloc(1, sizeof *job);
    if (job != NULL && path != NULL) {
        job->path = strdup(path);
        if (job->path == NULL) { free(job); job = NULL; }
    } else if (job != NULL && len > 0) {
        job->data = malloc(len);
        if (job->data == NULL) { free(job); job = NULL; }
        else memcpy(job->data, data, len);
        job->len = len;
    }
    if (job == NULL) {
        set_msg(msg, msglen, "out of memory queueing the image");
        return TP_SERVER;
    }
    job->out.kind = TP_CANCELLED;   /* until a worker runs it (free_job must not free a result) */
    pthread_mutex_lock(&p->mu);
    job->id = p->next_id++;
    enqueue(p, job);
    p->outstanding++;
    pthread_mutex_unlock(&p->mu);
    *id = job->id;
    return TP_OK;
}

static void prepend_collected(tp_pool *p, tp_job *job) {
    job->next = p->collected;
    p->collected = job;
}

tp_job *tp_pool_collect(tp_pool *p) {
    pthread_mutex_lock(&p->mu);
    tp_job *got = p->done_head;
    p->done_head = p->done_tail = NULL;
    drain_pipe_if_idle(p);
    pthread_mutex_unlock(&p->mu);
    /* Append after what an earlier, interrupted collection left, keeping finishing order. */
    tp_job **tail = &p->collected;
    while (*tail) tail = &(*tail)->next;
    *tail = got;
    return p->collected;
}

/* Under p->mu for the shared lists; the collected list is the caller's. A split TIFF's job may
 * be queued (for its next page) and current on workers at once: it is running. */
static tp_job *find_job(tp_pool *p, int64_t id, tp_state *state) {
    *state = TP_RUNNING;
    for (int i = 0; i < p->opt.threads; i++)
        if (p->workers[i].current && p->workers[i].current->id == id) return p->workers[i].current;
    for (tp_job *j = p->queue_head; j; j = j->next)
        if (j->id == id) {
            if (j->doc == NULL) *state = TP_QUEUED;
            return j;
        }
    *state = TP_FINISHED;
    for (tp_job *j = p->done_head; j; j = j->next)
        if (j->id == id) return j;
    for (tp_job *j = p->collected; j; j = j->next)
        if (j->id == id) return j;
    return NULL;
}

/* Under p->mu: unlinks job `id` from the done list. */
static tp_job *take_done(tp_pool *p, int64_t id) {
    tp_job *prev = NULL;
    for (tp_job *j = p->done_head; j; prev = j, j = j->next) {
        if (j->id != id) continue;
        if (prev) prev->next = j->next; else p->done_head = j->next;
        if (p->done_tail == j) p->done_tail = prev;
        drain_pipe_if_idle(p);
        return j;
    }
    return NULL;
}


tp_job *tp_pool_wait(tp_pool *p, int64_t id, double timeout, tp_kind *kind) {
    for (tp_job *j = p->collected; j; j = j->next)
        if (j->id == id) return j;
    struct timespec deadline;
    if (timeout >= 0) deadline_after(&deadline, timeout);
    tp_job *job = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        job = take_done(p, id);
        if (job != NULL) break;
        tp_state state;
        if (find_job(p, id, &state) == NULL || state == TP_FINISHED) { *kind = TP_NOT_FOUND; break; }
        int rc = timeout < 0 ? pthread_cond_wait(&p->state_cv, &p->mu)
                             : pthread_cond_timedwait(&p->state_cv, &p->mu, &deadline);
        if (rc == ETIMEDOUT) {
            job = take_done(p, id);
            if (job == NULL) *kind = TP_TIMEOUT;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (job != NULL) prepend_collected(p, job);
    return job;
}

void tp_pool_release(tp_pool *p, tp_job *job) {
    for (tp_job **pp = &p->collected; *pp; pp = &(*pp)->next) {
        if (*pp != job) continue;
        *pp = job->next;
        free_job(job);
        p->outstanding--;
        return;
    }
}

int tp_pool_cancel(tp_pool *p, int64_t id) {
    int found = 0;
    pthread_mutex_lock(&p->mu);
    tp_job *prev = NULL;
    for (tp_job *j = p->queue_head; j; prev = j, j = j->next) {
        if (j->id != id) continue;
        found = 1;
        if (j->doc != NULL) {   /* pages being read: the worker that takes it next finishes it */
            __atomic_store_n(&j->cancel, 1, __ATOMIC_RELEASE);
            break;
        }
        if (prev) prev->next = j->next; else p->queue_head = j->next;
        if (p->queue_tail == j) p->queue_tail = prev;
        set_msg(j->out.message, sizeof j->out.message, "job %lld cancelled", (long long)id);
        j->out.kind = TP_CANCELLED;
        push_done(p, j);
        break;
    }
    for (int i = 0; !found && i < p->opt.threads; i++) {
        tp_job *cur = p->workers[i].current;
        if (cur && cur->id == id) {
            __atomic_store_n(&cur->cancel, 1, __ATOMIC_RELEASE);
            found = 1;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

size_t tp_pool_pending(tp_pool *p) {
    return p->outstanding;
}

int tp_pool_progress(tp_pool *p, int64_t id, int *percent, int *pages_done, int *pages) {
    tp_state state = TP_QUEUED;
    pthread_mutex_lock(&p->mu);
    tp_job *job = find_job(p, id, &state);
    if (job != NULL) {
        /* A job is freed only by tp_pool_release, on this thread, so reading it is safe; the
         * counters are written by workers, hence the atomics. */
        int n = __atomic_load_n(&job->npages, __ATOMIC_RELAXED);
        *pages_done = __atomic_load_n(&job->pages_done, __ATOMIC_ACQUIRE);
        unsigned units = __atomic_load_n(&job->progress, __ATOMIC_RELAXED);
        *pages = n > 0 ? n : 1;
        *percent = units >= 100u * (unsigned)*pages ? 100 : (int)(units / (unsigned)*pages);
    }
    pthread_mutex_unlock(&p->mu);
    return job != NULL ? (int)state : 0;
}

void tp_pool_stats(tp_pool *p, tp_stats *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&p->mu);
    for (tp_job *j = p->queue_head; j; j = j->next) s->queued += j->doc == NULL;  /* not started */
    for (tp_job *j = p->done_head; j; j = j->next) s->finished++;
    for (int i = 0; i < p->opt.threads; i++) s->busy += p->workers[i].current != NULL;
    s->running = p->running;
    pthread_mutex_unlock(&p->mu);
    for (tp_job *j = p->collected; j; j = j->next) s->finished++;
}

int tp_pool_fd(tp_pool *p) {
    return p->pipefd[0];
}

void tp_pool_destroy(tp_pool *p) {
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    for (int i = 0; i < p->opt.threads; i++)
        if (p->workers[i].current)
            __atomic_store_n(&p->workers[i].current->cancel, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->opt.threads; i++)
        if (p->workers[i].started) pthread_join(p->workers[i].thread, NULL);
    free_list(p->queue_head);
    free_list(p->done_head);
    free_list(p->collected);
    if (p->pipefd[0] >= 0) close(p->pipefd[0]);
    if (p->pipefd[1] >= 0) close(p->pipefd[1]);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->state_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
