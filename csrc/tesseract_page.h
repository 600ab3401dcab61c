/* Internal to ocr.tesseract: page recognition (tesseract_page.c) as the pool (tesseract_pool.c)
 * uses it. Everything that calls libtesseract or leptonica is behind this header; the pool keeps
 * the threads, the queue and the job states and calls in with a job and an engine. An engine is
 * created, used and freed by one worker thread. */
#ifndef OCR_TESSERACT_PAGE_H
#define OCR_TESSERACT_PAGE_H

#include <time.h>
#include "tesseract_pool.h"

/* A loaded model: one TessBaseAPI initialised for a language set, and its progress monitor. */
typedef struct tp_engine tp_engine;

/* Silences leptonica's and tesseract's stderr chatter; once per process, before any engine and
 * any image is read (each worker calls it first: nothing else calls the libraries). */
OCR_HIDDEN void tp_quiet_libraries(void);

/* Loads the model of `languages` ("eng+chi_sim") with o's datapath, oem and psm. NULL with msg
 * saying why (missing or damaged data, a model without that engine, memory). */
OCR_HIDDEN tp_engine *tp_engine_load(const tp_options *o, const char *languages, char *msg,
                                     size_t msglen);
OCR_HIDDEN void tp_engine_free(tp_engine *e);

/* One page of a multi-page TIFF: where its directory is, and its result once read. */
typedef struct {
    ic_tiff_page dir;
    tp_result    res;
} tp_page_slot;

/* A multi-page TIFF read by several workers, a page each (tesseract_pool.c hands them out).
 * Only the encoded bytes are shared (read-only); each worker decodes its own page. */
struct tp_doc {
    ocr_buffer file;                   /* the bytes read from the job's path (else job->data) */
    const unsigned char *bytes;
    size_t len;
    int npages;
    /* under the pool's lock: */
    int next_page;                     /* the next page to hand out, 1-based */
    int reading;                       /* pages being recognised */
    int queued;                        /* the job is in the queue for its next page */
    int failed_page;                   /* the first page that failed (the job's error), or 0 */
    tp_page_slot slots[];
};

OCR_HIDDEN void tp_set_msg(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the kind and message of a tp_outcome. */
#define TP_FAIL(out, k, ...) \
    do { (out)->kind = (k); tp_set_msg((out)->message, sizeof (out)->message, __VA_ARGS__); } while (0)

/* `seconds` from now on CLOCK_MONOTONIC (the clock of the pool's waits and of page deadlines). */
OCR_HIDDEN void tp_deadline_after(struct timespec *ts, double seconds);

OCR_HIDDEN void tp_result_free(tp_result *r);

/* A job's first turn: reads and checks the image and recognises it with e. Returns 1 when it is
 * a multi-page TIFF, split into pages (job->doc) with page 1 left for this worker to read; else
 * job->out (and job->res when TP_OK) say how it ended. */
OCR_HIDDEN int tp_run_job(tp_job *job, const tp_options *o, tp_engine *e);

/* Decodes and recognises page `page` of a split job into its slot; *out says how it went. With
 * out->kind already set (no engine could be loaded), only records the page as failed. */
OCR_HIDDEN void tp_read_page(tp_job *job, int page, const tp_options *o, tp_engine *e,
                             tp_outcome *out);

/* Joins a split job's pages, in page order, into job->res (job->out on failure). */
OCR_HIDDEN void tp_doc_join(tp_job *job);

/* Frees a split job's pages and bytes; nothing when the job was not split. */
OCR_HIDDEN void tp_doc_free(tp_job *job);

#endif
