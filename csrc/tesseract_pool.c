/* The threads and the queue of ocr.tesseract's pool. One mutex guards the queue, the finished
 * list, each worker's current job and warm-up request, and the counters; two condition variables
 * wake workers (work) and waiters (state). A pipe holds one byte exactly while finished jobs wait
 * to be collected, so a scheduler can poll it. Each worker creates, uses and frees its own
 * engines (tesseract_page.c): no tesseract object crosses threads, and no model is loaded on the
 * caller's thread. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "tesseract_page.h"
#include "tesseract_pool.h"

/* libgomp's, when libtesseract was built with OpenMP. Weak, so the module neither links libgomp
 * nor fails where tesseract has no OpenMP. */
extern void omp_set_max_active_levels(int levels) __attribute__((weak));

#define TP_STACK_SIZE   (8u << 20)     /* tesseract recurses; musl's default stack is 128 KiB */

/* An engine a worker keeps, for one language set. */
typedef struct {
    char       languages[TP_MAX_LANGS_LEN + 1];
    tp_engine *engine;
    uint64_t   used;                   /* the worker's tick when last used: the LRU order */
} tp_cached;

/* A worker's warm-up request (tp_pool_warm), under pool->mu. */
enum { WARM_NONE, WARM_ASKED, WARM_LOADING, WARM_DONE, WARM_FAILED };

typedef struct {
    tp_pool  *pool;
    pthread_t thread;
    int       started;
    tp_job   *current;                 /* the job being recognised, under pool->mu */
    int       warm;                    /* WARM_*, under pool->mu */
    char      warm_languages[TP_MAX_LANGS_LEN + 1];
    char      warm_msg[TP_MSG_LEN];    /* why WARM_FAILED */
    /* the worker's own (no lock): */
    pthread_t self;                    /* set by the worker itself, first thing */
    tp_cached engines[TP_MAX_ENGINES];
    int       nengines;
    uint64_t  tick;
} tp_worker;

struct tp_pool {
    tp_options opt;
    pthread_mutex_t mu;
    pthread_cond_t  work_cv;           /* queue non-empty, a warm-up asked, or stopping */
    pthread_cond_t  state_cv;          /* a job finished or a worker finished loading */
    tp_job *queue_head, *queue_tail;
    tp_job *done_head, *done_tail;
    tp_job *collected;                 /* handed to the caller, not yet released (caller's thread) */
    size_t  outstanding;               /* submitted and not released */
    size_t  running;                   /* taken by a worker and not finished */
    size_t  engines;                   /* loaded, over all workers */
    size_t  loading;                   /* workers loading one now */
    uint64_t loads, caller_loads;
    int64_t next_id;
    int     stopping;
    int     pipefd[2];
    tp_worker workers[TP_MAX_THREADS];
};

/* ---- engines ------------------------------------------------------------------------------ */

/* Worker w's engine for `languages`: the one it keeps, or one it loads now (letting the least
 * recently used go first when it keeps max_engines). NULL with msg when the load fails. Called
 * on w's thread only, without the lock. */
static tp_engine *engine_for(tp_worker *w, const char *languages, char *msg, size_t msglen) {
    tp_pool *p = w->pool;
    w->tick++;
    for (int i = 0; i < w->nengines; i++) {
        if (strcmp(w->engines[i].languages, languages) != 0) continue;
        w->engines[i].used = w->tick;
        return w->engines[i].engine;
    }
    if (w->nengines >= p->opt.max_engines) {   /* strictly bounded: let one go before loading */
        int lru = 0;
        for (int i = 1; i < w->nengines; i++)
            if (w->engines[i].used < w->engines[lru].used) lru = i;
        tp_engine_free(w->engines[lru].engine);
        w->engines[lru] = w->engines[--w->nengines];
        pthread_mutex_lock(&p->mu);
        p->engines--;
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->loading++;
    pthread_mutex_unlock(&p->mu);
    tp_engine *e = tp_engine_load(&p->opt, languages, msg, msglen);
    pthread_mutex_lock(&p->mu);
    p->loading--;
    if (e != NULL) {
        p->engines++;
        p->loads++;
        /* a model loaded off this worker's own thread is counted (tp_stats.caller_loads). (Not a
         * __thread flag: LeakSanitizer's exit-time scan crashes on a dlopen'ed module's TLS.) */
        if (!pthread_equal(pthread_self(), w->self)) p->caller_loads++;
    }
    pthread_cond_broadcast(&p->state_cv);
    pthread_mutex_unlock(&p->mu);
    if (e == NULL) return NULL;
    tp_cached *c = &w->engines[w->nengines++];
    snprintf(c->languages, sizeof c->languages, "%s", languages);
    c->engine = e;
    c->used = w->tick;
    return e;
}

static void free_engines(tp_worker *w) {
    for (int i = 0; i < w->nengines; i++) tp_engine_free(w->engines[i].engine);
    w->nengines = 0;
}


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
        tp_result_free(&job->res);
        TP_FAIL(&job->out, TP_CANCELLED, "job %lld cancelled", (long long)job->id);
    }
    p->running--;
    push_done(p, job);
}

/* The pages of a multi-page TIFF are handed out one at a time to whichever worker is free: the
 * job goes back to the end of the queue after each page handed out, so other images keep their
 * turn, and every free worker can take the next page (tesseract_page.c reads it into its slot).
 *
 * Under p->mu: the next page of a split job for worker w, or 0 when none is left to hand out
 * (all handed out, a page failed, or the job was cancelled). The job goes back in the queue
 * while it has pages left. */
static int take_page(tp_pool *p, tp_job *job) {
    struct tp_doc *doc = job->doc;
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
    struct tp_doc *doc = job->doc;
    if (doc->reading > 0 || doc->queued) {
        w->current = NULL;
        return;
    }
    pthread_mutex_unlock(&p->mu);   /* w->current keeps the job in flight meanwhile */
    int complete = job->out.kind == TP_OK && !__atomic_load_n(&job->cancel, __ATOMIC_ACQUIRE);
    if (complete) tp_doc_join(job);
    tp_output_close(job, complete && job->out.kind == TP_OK);
    tp_doc_free(job);
    pthread_mutex_lock(&p->mu);
    finish(p, w, job);
}


/* Recognises page `page` of a split job on worker w; a failure becomes the job's error when no
 * earlier page failed, so the error does not depend on which worker finished first. */
static void read_page(tp_pool *p, tp_worker *w, tp_job *job, int page) {
    tp_outcome out = { TP_OK, "" };
    tp_engine *e = engine_for(w, job->languages, out.message, sizeof out.message);
    if (e == NULL) out.kind = TP_INVALID_INPUT;
    tp_read_page(job, page, &p->opt, e, (int)(w - p->workers), &out);
    if (out.kind == TP_OK) return;
    pthread_mutex_lock(&p->mu);
    struct tp_doc *doc = job->doc;
    if (doc->failed_page == 0 || page < doc->failed_page) {
        doc->failed_page = page;
        job->out = out;
    }
    pthread_mutex_unlock(&p->mu);
}

/* A job's first turn on worker w: 1 when it was split into pages, page 1 left for w. */
static int run_job(tp_pool *p, tp_worker *w, tp_job *job) {
    tp_engine *e = engine_for(w, job->languages, job->out.message, sizeof job->out.message);
    if (e == NULL) {
        job->out.kind = TP_INVALID_INPUT;   /* no result was made: free_job frees none */
        return 0;
    }
    return tp_run_job(job, &p->opt, e, (int)(w - p->workers));
}

/* Under p->mu: answers w's warm-up request (the lock is let go while the model loads). */
static void warm_up(tp_pool *p, tp_worker *w) {
    char languages[TP_MAX_LANGS_LEN + 1], msg[TP_MSG_LEN] = "";
    memcpy(languages, w->warm_languages, sizeof languages);
    w->warm = WARM_LOADING;
    pthread_mutex_unlock(&p->mu);
    tp_engine *e = engine_for(w, languages, msg, sizeof msg);
    pthread_mutex_lock(&p->mu);
    if (w->warm == WARM_LOADING) {   /* (else asked again meanwhile: the new request stands) */
        w->warm = e ? WARM_DONE : WARM_FAILED;
        memcpy(w->warm_msg, msg, sizeof msg);
    }
    pthread_cond_broadcast(&p->state_cv);
}

static void *worker_main(void *arg) {
    tp_worker *w = arg;
    tp_pool *p = w->pool;
    w->self = pthread_self();
    /* Parallelism comes from the pool: tesseract's own OpenMP teams only spin against the other
     * workers (the CLI is twice as fast with OMP_THREAD_LIMIT=1), so this thread runs them
     * with one thread. */
    if (omp_set_max_active_levels) omp_set_max_active_levels(0);
    /* Once per process, before any engine: here rather than in tp_pool_create, since the first
     * TessBaseAPI it makes costs milliseconds (the other workers wait for it in pthread_once). */
    tp_quiet_libraries();

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && p->queue_head == NULL && w->warm != WARM_ASKED)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stopping) break;
        if (w->warm == WARM_ASKED) {               /* before the next job: it was asked first */
            warm_up(p, w);
            continue;
        }
        tp_job *job = dequeue(p);
        w->current = job;
        int page;
        if (job->doc == NULL) {                    /* its first turn */
            p->running++;
            pthread_mutex_unlock(&p->mu);
            int split = run_job(p, w, job);
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
        read_page(p, w, job, page);
        pthread_mutex_lock(&p->mu);
        job->doc->reading--;
        leave_doc(p, w, job);
    }
    pthread_mutex_unlock(&p->mu);
    free_engines(w);
    return NULL;
}

/* ---- pool --------------------------------------------------------------------------------- */

static void free_job(tp_job *job) {
    tp_output_close(job, 0);
    tp_doc_free(job);
    free(job->output);
    free(job->title);
    free(job->password);
    free(job->ranges);
    if (job->out.kind == TP_OK) tp_result_free(&job->res);
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
        tp_set_msg(msg, msglen, "cannot create thread attributes");
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
            tp_set_msg(msg, msglen, "cannot start tesseract worker thread %d: %s", i + 1, strerror(rc));
            break;
        }
        w->started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return rc ? -1 : 0;
}

tp_pool *tp_pool_create(const tp_options *o, tp_kind *kind, char *msg, size_t msglen) {
    tp_pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        *kind = TP_SERVER;
        tp_set_msg(msg, msglen, "out of memory");
        return NULL;
    }
    p->opt = *o;
    p->next_id = 1;
    p->pipefd[0] = p->pipefd[1] = -1;
    if (pool_sync_init(p) != 0) {
        free(p);
        *kind = TP_SERVER;
        tp_set_msg(msg, msglen, "cannot create pool mutex/condition variables");
        return NULL;
    }
    if (pipe(p->pipefd) != 0 || set_fd_flags(p->pipefd[0]) != 0 || set_fd_flags(p->pipefd[1]) != 0) {
        *kind = TP_SERVER;
        tp_set_msg(msg, msglen, "cannot create the pool's notification pipe: %s", strerror(errno));
        tp_pool_destroy(p);
        return NULL;
    }
    if (start_workers(p, msg, msglen) != 0) {
        *kind = TP_SERVER;
        tp_pool_destroy(p);
        return NULL;
    }
    return p;
}

void tp_pool_warm(tp_pool *p, const char *languages) {
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->opt.threads; i++) {
        tp_worker *w = &p->workers[i];
        snprintf(w->warm_languages, sizeof w->warm_languages, "%s",
                 languages ? languages : p->opt.languages);
        w->warm = WARM_ASKED;
    }
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

tp_kind tp_pool_warm_wait(tp_pool *p, double timeout, char *msg, size_t msglen) {
    struct timespec deadline;
    if (timeout >= 0) tp_deadline_after(&deadline, timeout);
    tp_kind kind = TP_OK;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->opt.threads && kind == TP_OK; i++) {
        tp_worker *w = &p->workers[i];
        while (w->warm == WARM_ASKED || w->warm == WARM_LOADING) {
            int rc = timeout < 0 ? pthread_cond_wait(&p->state_cv, &p->mu)
                                 : pthread_cond_timedwait(&p->state_cv, &p->mu, &deadline);
            if (rc == ETIMEDOUT && (w->warm == WARM_ASKED || w->warm == WARM_LOADING)) {
                kind = TP_TIMEOUT;
                tp_set_msg(msg, msglen, "tesseract model '%s' not loaded on every worker after %g s",
                           w->warm_languages, timeout);
                break;
            }
        }
        if (w->warm == WARM_FAILED) {
            kind = TP_INVALID_INPUT;
            tp_set_msg(msg, msglen, "%s", w->warm_msg);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return kind;
}

/* Copies a job's options into it; 0 when out of memory. */
static int copy_job_options(tp_job *job, const tp_job_options *jo) {
    if (jo == NULL) return 1;
    job->format = jo->format;
    job->pdf = jo->pdf;
    job->dpi = jo->dpi;
    job->keep_text = jo->keep_text;
    if (jo->output && (job->output = strdup(jo->output)) == NULL) return 0;
    if (jo->title && (job->title = strdup(jo->title)) == NULL) return 0;
    if (jo->password && (job->password = strdup(jo->password)) == NULL) return 0;
    if (jo->nranges > 0) {
        job->ranges = malloc((size_t)jo->nranges * 2 * sizeof *job->ranges);
        if (job->ranges == NULL) return 0;
        memcpy(job->ranges, jo->ranges, (size_t)jo->nranges * 2 * sizeof *job->ranges);
        job->nranges = jo->nranges;
    }
    return 1;
}

tp_kind tp_pool_submit(tp_pool *p, const char *path, const void *data, size_t len,
                       const char *languages, const tp_job_options *jo, int64_t *id, char *msg,
                       size_t msglen) {
    if (p->outstanding >= p->opt.max_pending) {
        tp_set_msg(msg, msglen, "tesseract queue is full (%zu jobs pending)", p->outstanding);
        return TP_RATE_LIMITED;
    }
    if (path == NULL && len > p->opt.max_bytes) {
        tp_set_msg(msg, msglen, "image is %zu bytes, over max_bytes (%zu)", len, p->opt.max_bytes);
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
    if (job != NULL && !copy_job_options(job, jo)) {
        job->out.kind = TP_CANCELLED;
        free_job(job);
        job = NULL;
    }
    if (job == NULL) {
        tp_set_msg(msg, msglen, "out of memory queueing the image");
        return TP_SERVER;
    }
    snprintf(job->languages, sizeof job->languages, "%s", languages ? languages : p->opt.languages);
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
    if (timeout >= 0) tp_deadline_after(&deadline, timeout);
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
        tp_set_msg(j->out.message, sizeof j->out.message, "job %lld cancelled", (long long)id);
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
    s->engines = p->engines;
    s->loading = p->loading;
    s->loads = p->loads;
    s->caller_loads = p->caller_loads;
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
