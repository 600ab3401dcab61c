/* fast_server: the HTTP/1.1 server of the benchmarks (bench/run.lua). A Python emulator costs
 * hundreds of microseconds per request and one thread per connection, so it would be what a
 * client benchmark measures; this one is a single-threaded epoll loop that costs a few
 * microseconds per request and holds thousands of delayed requests without a thread or a sleep.
 *
 *   fast_server [--port N] [--latency-ms MS] [--host 127.0.0.1]
 *
 * Prints "READY <port> <pid>" once it listens and exits when its parent dies (or on SIGTERM).
 *
 * Every request (any method, any path) has its Content-Length body read and discarded, then
 * waits `ms` (query parameter ms=, else --latency-ms) and gets the same JSON answer, kept alive
 * unless the client says "Connection: close". Delays sit in a deadline heap that bounds the
 * epoll_wait timeout: nothing sleeps. Control routes (not counted, never delayed):
 *   GET /_stats   {"requests", "bytes", "conns", "conns_max", "accepted", "cpu"}: requests answered,
 *                 bytes of their headers and bodies, open and peak connections, accepted
 *                 connections, CPU seconds this process used (user + system)
 *   GET /_reset   zeroes the counters (conns_max becomes the current count)
 *   GET /_last    the header block of the last counted request, as text, then "body: <n>"
 * Not supported (answered 501 and closed): Transfer-Encoding bodies. "Expect: 100-continue" is
 * answered with an interim 100 at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX   16384          /* request line + headers; larger is answered 431 */
#define OUT_MAX    1024
#define EVENTS_MAX 512

static const char ANSWER[] =
    "{\"status\":200,\"message\":\"success\",\"data\":{\"task_id\":\"bench-task\","
    "\"state\":1,\"progress\":100,\"text\":\"benchmark text\\nsecond line\"}}";

enum { READING, WAITING, WRITING };

typedef struct {
    int      open;
    unsigned gen;                 /* bumped at close: stale heap entries are skipped */
    int      state;
    uint32_t events;              /* current epoll interest */
    char     in[HEAD_MAX];
    size_t   in_len;
    /* the request being read */
    int      have_head;
    size_t   body_left;
    size_t   req_bytes;
    long     ms;
    int      route;               /* ROUTE_* */
    int      close_after;
    /* the answer being written */
    char     out[OUT_MAX];
    size_t   out_len, out_off;
} conn;

enum { ROUTE_ANSWER, ROUTE_STATS, ROUTE_RESET, ROUTE_LAST };

typedef struct {
    uint64_t due;                 /* ns, CLOCK_MONOTONIC */
    int      fd;
    unsigned gen;
} timer;

static int epfd;
static conn **conns;              /* indexed by fd */
static size_t nconns_alloc;
static timer *heap;
static size_t heap_len, heap_cap;
static long default_ms;

static struct {
    unsigned long long requests, bytes, accepted;
    long conns, conns_max;
} stats;

static char last_head[HEAD_MAX];
static size_t last_head_len, last_body;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* ---------------------------------------------------------------------------------------- */
/* deadline heap (min-heap on due)                                                          */

static void heap_push(uint64_t due, int fd, unsigned gen) {
    size_t i;
    if (heap_len == heap_cap) {
        size_t cap = heap_cap ? heap_cap * 2 : 1024;
        timer *h = realloc(heap, cap * sizeof *h);
        if (h == NULL) die("realloc");
        heap = h;
        heap_cap = cap;
    }
    i = heap_len++;
    while (i > 0 && heap[(i - 1) / 2].due > due) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i].due = due;
    heap[i].fd = fd;
    heap[i].gen = gen;
}

static timer heap_pop(void) {
    timer top = heap[0], last = heap[--heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_len) break;
        if (c + 1 < heap_len && heap[c + 1].due < heap[c].due) c++;
        if (heap[c].due >= last.due) break;
        heap[i] = heap[c];
        i = c;
    }
    if (heap_len > 0) heap[i] = last;
    return top;
}

/* ---------------------------------------------------------------------------------------- */
/* connections                                                                              */

static conn *conn_get(int fd) {
    if ((size_t)fd >= nconns_alloc) {
        size_t n = nconns_alloc ? nconns_alloc : 256;
        conn **c;
        while (n <= (size_t)fd) n *= 2;
        c = realloc(conns, n * sizeof *c);
        if (c == NULL) die("realloc");
        memset(c + nconns_alloc, 0, (n - nconns_alloc) * sizeof *c);
        conns = c;
        nconns_alloc = n;
    }
    if (conns[fd] == NULL && (conns[fd] = calloc(1, sizeof(conn))) == NULL) die("calloc");
    return conns[fd];
}

static void set_events(int fd, conn *c, uint32_t ev) {
    struct epoll_event e;
    if (c->events == ev) return;
    memset(&e, 0, sizeof e);
    e.events = ev;
    e.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e) != 0) die("epoll_ctl MOD");
    c->events = ev;
}

static void conn_close(int fd) {
    conn *c = conns[fd];
    c->open = 0;
    c->gen++;
    close(fd);                    /* also removes it from the epoll set */
    stats.conns--;
}

static void accept_all(int lfd) {
    for (;;) {
        struct epoll_event e;
        conn *c;
        int one = 1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) perror("accept4");
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = conn_get(fd);
        c->open = 1;
        c->state = READING;
        c->in_len = 0;
        c->have_head = 0;
        c->body_left = 0;
        c->out_len = c->out_off = 0;
        memset(&e, 0, sizeof e);
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.fd = fd;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0) die("epoll_ctl ADD");
        c->events = e.events;
        stats.accepted++;
        if (++stats.conns > stats.conns_max) stats.conns_max = stats.conns;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* answers                                                                                  */

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void set_answer(conn *c, int status, const char *ctype, const char *body, size_t n) {
    int len = snprintf(c->out, OUT_MAX,
                       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                       status, status == 200 ? "OK" : "Error", ctype, n,
                       c->close_after ? "Connection: close\r\n" : "");
    if (len < 0 || (size_t)len + n > OUT_MAX) {   /* cannot happen with the bodies below */
        c->out_len = 0;
        c->close_after = 1;
        return;
    }
    memcpy(c->out + len, body, n);
    c->out_len = (size_t)len + n;
    c->out_off = 0;
}

static void build_answer(conn *c) {
    char body[768];
    int n;
    switch (c->route) {
    case ROUTE_STATS:
        n = snprintf(body, sizeof body,
                     "{\"requests\":%llu,\"bytes\":%llu,\"conns\":%ld,\"conns_max\":%ld,"
                     "\"accepted\":%llu,\"cpu\":%.6f}",
                     stats.requests, stats.bytes, stats.conns, stats.conns_max, stats.accepted,
                     cpu_seconds());
        set_answer(c, 200, "application/json", body, (size_t)n);
        break;
    case ROUTE_RESET:
        stats.requests = stats.bytes = stats.accepted = 0;
        stats.conns_max = stats.conns;
        set_answer(c, 200, "application/json", "{\"ok\":true}", 11);
        break;
    case ROUTE_LAST:
        n = snprintf(body, sizeof body, "%.*sbody: %zu\n",
                     (int)(last_head_len < 600 ? last_head_len : 600), last_head, last_body);
        set_answer(c, 200, "text/plain", body, (size_t)n < sizeof body ? (size_t)n : sizeof body - 1);
        break;
    default:
        set_answer(c, 200, "application/json", ANSWER, sizeof ANSWER - 1);
    }
}

static void process(int fd);

/* Writes what is left of the answer; returns 0 when the connection was closed. */
static int flush_out(int fd, conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                c->state = WRITING;
                set_events(fd, c, EPOLLOUT);
                return 1;
            }
            conn_close(fd);
            return 0;
        }
        c->out_off += (size_t)w;
    }
    if (c->close_after) {
        conn_close(fd);
        return 0;
    }
    c->state = READING;
    set_events(fd, c, EPOLLIN | EPOLLRDHUP);
    return 1;
}

static void respond(int fd, conn *c) {
    build_answer(c);
    if (flush_out(fd, c)) process(fd);   /* a pipelined request may already be buffered */
}

/* ---------------------------------------------------------------------------------------- */
/* request parsing                                                                          */

static const char *find_head_end(const char *p, size_t n) {
    size_t i;
    for (i = 3; i < n; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return p + i + 1;
    return NULL;
}

/* The value of header `name` in the block [p, end) (NUL-free, lines end in CRLF), or NULL. */
static const char *header(const char *p, const char *end, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    const char *line = memchr(p, '\n', (size_t)(end - p));
    while (line && ++line < end) {
        const char *eol = memchr(line, '\r', (size_t)(end - line));
        if (eol == NULL) break;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        line = memchr(eol, '\n', (size_t)(end - eol));
    }
    return NULL;
}

static long query_ms(const char *target, size_t n) {
    const char *q = memchr(target, '?', n), *end = target + n;
    while (q && q < end) {
        q++;
        if (end - q > 3 && memcmp(q, "ms=", 3) == 0) {
            long v = 0;
            for (q += 3; q < end && *q >= '0' && *q <= '9'; q++)
                if (v < 3600000) v = v * 10 + (*q - '0');
            return v;
        }
        q = memchr(q, '&', (size_t)(end - q));
    }
    return default_ms;
}

static int route_of(const char *target, size_t n) {
    if (n == 7 && memcmp(target, "/_stats", 7) == 0) return ROUTE_STATS;
    if (n == 7 && memcmp(target, "/_reset", 7) == 0) return ROUTE_RESET;
    if (n == 6 && memcmp(target, "/_last", 6) == 0) return ROUTE_LAST;
    return ROUTE_ANSWER;
}

/* Parses the head at the start of c->in; returns its length, or 0 after answering an error. */
static size_t parse_head(int fd, conn *c, const char *end) {
    const char *p = c->in, *sp1, *sp2, *v;
    size_t head = (size_t)(end - p), vlen;
    int http10;
    sp1 = memchr(p, ' ', head);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || memchr(p, '\0', head)) {
        c->close_after = 1;
        set_answer(c, 400, "text/plain", "bad request\n", 12);
        flush_out(fd, c);
        return 0;
    }
    http10 = end - sp2 > 9 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
    c->route = route_of(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    c->ms = query_ms(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    c->body_left = 0;
    if ((v = header(p, end, "content-length", &vlen)) != NULL) {
        size_t i, len = 0;
        for (i = 0; i < vlen && v[i] >= '0' && v[i] <= '9'; i++)
            if (len < ((size_t)1 << 40)) len = len * 10 + (size_t)(v[i] - '0');
        c->body_left = len;
    }
    v = header(p, end, "connection", &vlen);
    c->close_after = v ? (vlen >= 5 && strncasecmp(v, "close", 5) == 0) : http10;
    if (header(p, end, "transfer-encoding", &vlen)) {
        c->close_after = 1;
        set_answer(c, 501, "text/plain", "no Transfer-Encoding bodies here\n", 33);
        flush_out(fd, c);
        return 0;
    }
    if ((v = header(p, end, "expect", &vlen)) != NULL && vlen >= 3 && memcmp(v, "100", 3) == 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        (void)!send(fd, cont, sizeof cont - 1, MSG_NOSIGNAL);   /* tiny: fits the socket buffer */
    }
    c->req_bytes = head + c->body_left;
    if (c->route == ROUTE_ANSWER) {
        last_head_len = head;
        memcpy(last_head, p, head);
        last_body = c->body_left;
    }
    return head;
}

static void consume(conn *c, size_t n) {
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* A complete request was read: answer now, or park it until its deadline. */
static void dispatch(int fd, conn *c) {
    c->have_head = 0;
    if (c->route != ROUTE_ANSWER) {
        respond(fd, c);
        return;
    }
    stats.requests++;
    stats.bytes += c->req_bytes;
    if (c->ms <= 0) {
        respond(fd, c);
        return;
    }
    c->state = WAITING;
    set_events(fd, c, EPOLLRDHUP);      /* hang-ups still wake us; data waits in the kernel */
    heap_push(now_ns() + (uint64_t)c->ms * 1000000u, fd, c->gen);
}

/* Advances the connection over whatever is buffered. */
static void process(int fd) {
    conn *c = conns[fd];
    while (c->open && c->state == READING) {
        if (!c->have_head) {
            const char *end = find_head_end(c->in, c->in_len);
            size_t head;
            if (end == NULL) {
                if (c->in_len == HEAD_MAX) {
                    c->close_after = 1;
                    set_answer(c, 431, "text/plain", "head too large\n", 15);
                    flush_out(fd, c);
                }
                return;
            }
            if ((head = parse_head(fd, c, end)) == 0) return;
            consume(c, head);
            c->have_head = 1;
        }
        if (c->body_left > 0) {
            size_t n = c->in_len < c->body_left ? c->in_len : c->body_left;
            consume(c, n);
            c->body_left -= n;
            if (c->body_left > 0) return;
        }
        dispatch(fd, c);
    }
}

static void on_readable(int fd) {
    conn *c = conns[fd];
    for (;;) {
        ssize_t r;
        if (c->in_len == HEAD_MAX) break;
        r = recv(fd, c->in + c->in_len, HEAD_MAX - c->in_len, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_close(fd);
            return;
        }
        if (r == 0) {
            conn_close(fd);
            return;
        }
        c->in_len += (size_t)r;
        /* Bodies are skipped as they arrive, so a big upload never needs a big buffer. */
        process(fd);
        if (!c->open || c->state != READING) return;
    }
}

static void fire_due_timers(void) {
    uint64_t now = now_ns();
    while (heap_len > 0 && heap[0].due <= now) {
        timer t = heap_pop();
        conn *c = (size_t)t.fd < nconns_alloc ? conns[t.fd] : NULL;
        if (c == NULL || !c->open || c->gen != t.gen || c->state != WAITING) continue;
        c->state = READING;
        respond(t.fd, c);
    }
}

static int wait_timeout_ms(void) {
    uint64_t now;
    if (heap_len == 0) return -1;
    now = now_ns();
    if (heap[0].due <= now) return 0;
    return (int)((heap[0].due - now + 999999u) / 1000000u);   /* rounded up: never early */
}

/* ---------------------------------------------------------------------------------------- */

static int listen_on(const char *host, int port) {
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "fast_server: bad host %s\n", host);
        exit(2);
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
    if (listen(fd, 4096) != 0) die("listen");
    if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0) die("getsockname");
    printf("READY %d %d\n", ntohs(a.sin_port), (int)getpid());
    fflush(stdout);
    return fd;
}

/* Hundreds of concurrent connections need more descriptors than some default soft limits. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0, lfd, i;
    pid_t parent = getppid();
    struct epoll_event ev, events[EVENTS_MAX];
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--latency-ms") == 0 && i + 1 < argc) default_ms = atol(argv[++i]);
        else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) host = argv[++i];
        else {
            fprintf(stderr, "usage: fast_server [--port N] [--latency-ms MS] [--host ADDR]\n");
            return 2;
        }
    }
    /* No server outlives the benchmark that started it, even when that one is killed. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) return 0;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    lfd = listen_on(host, port);
    if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1");
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl listen");
    for (;;) {
        int n = epoll_wait(epfd, events, EVENTS_MAX, wait_timeout_ms());
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            uint32_t e = events[i].events;
            conn *c;
            if (fd == lfd) {
                accept_all(lfd);
                continue;
            }
            c = conns[fd];
            if (c == NULL || !c->open) continue;
            if (e & (EPOLLERR | EPOLLHUP)) {
                conn_close(fd);
            } else if (c->state == WRITING && (e & EPOLLOUT)) {
                if (flush_out(fd, c)) process(fd);
            } else if (c->state == READING && (e & (EPOLLIN | EPOLLRDHUP))) {
                on_readable(fd);
            } else if (c->state == WAITING && (e & EPOLLRDHUP)) {
                conn_close(fd);   /* the client gave up on its delayed request */
            }
        }
        fire_due_timers();
    }
}
