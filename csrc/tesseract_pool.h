/* The worker pool behind ocr.tesseract, free of Lua: N threads, each keeping a few engines (a
 * TessBaseAPI per language set, loaded on that worker when a job or a warm-up first needs it, the
 * least recently used let go past max_engines) and recognising one image after another. The Lua
 * thread submits jobs into a bounded queue and collects finished ones; it never loads a model
 * nor waits for one unless it asks to (tp_pool_warm_wait). Workers never touch a lua_State, and
 * every result is built on the worker into the plain structs below. tesseract_pool.c has the
 * threads and the queue; tesseract_page.c (tesseract_page.h) the engines and the pages. */
#ifndef OCR_TESSERACT_POOL_H
#define OCR_TESSERACT_POOL_H

#include <stddef.h>
#include <stdint.h>
#include "buffer.h"
#include "image_check.h"
#include "tesseract_pdf.h"

#define TP_MAX_THREADS   64
#define TP_MAX_LANGS_LEN 255
#define TP_MAX_PATH      4096
#define TP_MSG_LEN       512
#define TP_MAX_ENGINES   16

/* Outcome of a job or of a pool operation; the Lua side turns it into an error kind. */
typedef enum {
    TP_OK = 0,
    TP_INVALID_INPUT,   /* unreadable image, missing language data */
    TP_UNSUPPORTED,     /* a PDF without ocr.tesseract_pdf */
    TP_TOO_LARGE,       /* over max_pixels / max_bytes / max_pages / tesseract's 32767 px side */
    TP_TASK_FAILED,     /* tesseract accepted the image and failed on it */
    TP_CANCELLED,       /* tp_pool_cancel() or close while running */
    TP_RATE_LIMITED,    /* the queue is full */
    TP_TIMEOUT,         /* tp_pool_wait() gave up; a page over page_timeout */
    TP_NOT_FOUND,       /* no such pending job */
    TP_SERVER           /* out of memory, no threads: the machine failed, not the input */
} tp_kind;

typedef struct {
    char   languages[TP_MAX_LANGS_LEN + 1]; /* the default language set of a job and of a
                                               warm-up: "eng" or "eng+chi_sim", validated */
    char   datapath[TP_MAX_PATH];           /* tessdata directory; "" = libtesseract's default */
    int    psm;                             /* TessPageSegMode; -1 = libtesseract's default */
    int    oem;                             /* TessOcrEngineMode, 3 = default */
    int    threads;                         /* 1..TP_MAX_THREADS */
    int    max_engines;                     /* engines (language sets) kept per worker,
                                               1..TP_MAX_ENGINES */
    uint64_t max_pixels;                    /* width * height limit of a page, checked before decoding */
    int    max_pages;                       /* pages of a multi-page TIFF, counted before decoding */
    size_t max_bytes;                       /* encoded image size limit */
    size_t max_pending;                     /* submitted and not yet collected */
    double page_timeout;                    /* seconds one page's recognition may take (checked
                                               between words); 0 = no limit */
} tp_options;

/* How a job, or one page of it, ended: TP_OK, or a kind and what went wrong. */
typedef struct {
    tp_kind kind;
    char    message[TP_MSG_LEN];
} tp_outcome;

typedef struct { int x, y, w, h; } tp_box;

/* Texts live in one arena (tp_result.strings) and are referenced by offset, so a result is a
 * handful of allocations however many words it holds. */
typedef struct {
    size_t text_off, text_len;
    float  confidence;                      /* 0..1 */
    tp_box box;
} tp_word;

typedef struct {
    size_t text_off, text_len;
    float  confidence;
    tp_box box;
    size_t first_word, nwords;              /* a range of tp_result.words */
    int    page;                            /* 1-based */
} tp_line;

typedef struct {
    size_t text_off, text_len;              /* the page text (GetUTF8Text) */
    int width, height;
    int angle;                              /* clockwise degrees the text is turned (0, 90, 180,
                                               270) when orientation was detected, else -1 */
    int number;                             /* a PDF page's number in the document, else 0 */
    int dpi;                                /* a PDF page's rendering resolution, else 0 */
    int kept;                               /* its text is the PDF's own text layer */
} tp_page;

/* An image's result: one tp_page for most formats, one per page of a multi-page TIFF. */
typedef struct {
    ocr_buffer strings;                     /* UTF-8 texts, not NUL-terminated */
    ocr_buffer pages;                       /* tp_page[] */
    ocr_buffer lines;                       /* tp_line[], every page's in page order */
    ocr_buffer words;                       /* tp_word[] */
} tp_result;

/* What a job writes besides its result: libtesseract's renderers, one file for the whole input. */
typedef enum { TP_FORMAT_TXT = 0, TP_FORMAT_HOCR, TP_FORMAT_ALTO, TP_FORMAT_TSV, TP_FORMAT_PDF } tp_format;

#define TP_MAX_RANGES 1024                  /* page ranges of a PDF job ("1-3,6" is two) */

/* A job's options beyond its input (tp_pool_submit copies them). */
typedef struct {
    tp_format format;
    const char *output;                     /* the renderer's path without its extension (the
                                               renderer adds .hocr, .xml, .tsv or .pdf); NULL
                                               for TP_FORMAT_TXT */
    const char *title;                      /* the output document's title, or NULL */
    const tpdf_api *pdf;                    /* the PDF renderer, NULL when not loaded */
    const char *password;                   /* a PDF's, or NULL */
    int dpi;                                /* a PDF's pages are rendered at (30..1200) */
    int keep_text;                          /* a PDF page with a text layer: taken as is */
    const int *ranges;                      /* ascending, disjoint [first, last] pairs of page
                                               numbers (1-based); NULL: every page */
    int nranges;
} tp_job_options;

typedef struct tp_job tp_job;
struct tp_job {
    int64_t id;
    char   *path;                           /* input: a file, or */
    unsigned char *data;                    /* input: bytes (owned copy) */
    size_t  len;
    char    languages[TP_MAX_LANGS_LEN + 1];/* the engine it needs, validated */
    int     cancel;                         /* set atomically; read by tesseract's monitor */
    /* Progress, written by workers and read by tp_pool_progress (atomically): */
    unsigned progress;                      /* 100 per page read, plus the pages in hand's
                                               percentages as tesseract reports them */
    int     npages;                         /* pages of the image once known (a TIFF's), else 0:
                                               doc->npages's own copy, as doc is set and freed
                                               outside the pool's lock */
    int     pages_done;                     /* pages read (successfully or not) */
    tp_outcome out;                         /* valid once the job is finished */
    tp_result res;                          /* valid when out.kind == TP_OK */
    tp_job *next;
    struct tp_doc *doc;                     /* pool-internal: a multi-page TIFF or a PDF being
                                               read by several workers, a page each */
    /* Its options (tp_job_options, owned copies): */
    tp_format format;
    char   *output, *title, *password;
    const tpdf_api *pdf;
    int     dpi, keep_text, nranges;
    int    *ranges;
    struct tp_output *out_doc;              /* pool-internal: the renderer writing the file */
};

typedef struct tp_pool tp_pool;

/* The error kind for a status of image_check.c's checks (which know nothing of jobs). */
OCR_HIDDEN tp_kind tp_kind_of_check(ic_status st);

/* Starts the workers and returns at once: no model is loaded until a job or tp_pool_warm needs
 * one, and then on a worker. NULL on failure, with *kind (TP_SERVER: threads, memory) and msg. */
OCR_HIDDEN tp_pool *tp_pool_create(const tp_options *o, tp_kind *kind, char *msg, size_t msglen);

/* Asks every worker to load the engine for `languages` (validated; NULL: the pool's default)
 * before its next job, unless it has it already. Never blocks. */
OCR_HIDDEN void tp_pool_warm(tp_pool *p, const char *languages);

/* Waits (timeout < 0: forever) until every worker has answered the last tp_pool_warm: TP_OK,
 * TP_INVALID_INPUT with msg when a worker could not load the model, or TP_TIMEOUT. */
OCR_HIDDEN tp_kind tp_pool_warm_wait(tp_pool *p, double timeout, char *msg, size_t msglen);

/* Queues an image (exactly one of path / data+len; both are copied) for the engine of
 * `languages` (validated; NULL: the pool's default). Never blocks on recognition nor on a model:
 * a worker without that engine loads it first (a load that fails fails the job, as
 * TP_INVALID_INPUT). The pages of a multi-page TIFF or of a PDF (jo->pdf) are spread over the
 * workers: each worker free takes the input's next page, so one input's pages are read in
 * parallel; the result (and the file of jo->format) is assembled in page order. TP_OK and *id, or a kind and msg (queue full, too large, out of memory). */
OCR_HIDDEN tp_kind tp_pool_submit(tp_pool *p, const char *path, const void *data, size_t len,
                                  const char *languages, const tp_job_options *jo, int64_t *id,
                                  char *msg, size_t msglen);

/* Moves every finished job to the pool's collected list and returns its head. The caller walks
 * it with ->next and hands each job to tp_pool_release once it no longer needs it; jobs not
 * released stay owned by the pool (returned again next time, freed by destroy). */
OCR_HIDDEN tp_job *tp_pool_collect(tp_pool *p);

/* Waits for job `id` (timeout < 0: forever) and moves it to the collected list. NULL with
 * *kind = TP_TIMEOUT or TP_NOT_FOUND otherwise. */
OCR_HIDDEN tp_job *tp_pool_wait(tp_pool *p, int64_t id, double timeout, tp_kind *kind);

/* Unlinks a collected job and frees it with its result. */
OCR_HIDDEN void tp_pool_release(tp_pool *p, tp_job *job);

/* Cancels a queued or running job: it finishes with TP_CANCELLED. 0 if no such job is pending. */
OCR_HIDDEN int tp_pool_cancel(tp_pool *p, int64_t id);

OCR_HIDDEN size_t tp_pool_pending(tp_pool *p);

/* Where job `id` is: waiting for its first worker, being recognised, or finished (not yet
 * released). */
typedef enum { TP_QUEUED = 1, TP_RUNNING, TP_FINISHED } tp_state;

/* How far job `id` has got: *percent 0..100 over all its pages, *pages_done of *pages (1 until
 * a multi-page TIFF is opened). 0 if no such job, else its tp_state. */
OCR_HIDDEN int tp_pool_progress(tp_pool *p, int64_t id, int *percent, int *pages_done, int *pages);

/* A snapshot of the pool. */
typedef struct {
    size_t queued;                          /* jobs waiting for their first worker */
    size_t running;                         /* jobs started and not finished */
    size_t finished;                        /* jobs finished and not yet released */
    size_t busy;                            /* workers recognising (several on one multi-page TIFF) */
    size_t engines;                         /* engines loaded, over all workers */
    size_t loading;                         /* workers loading an engine now */
    uint64_t loads;                         /* engines loaded since the pool was made */
    uint64_t caller_loads;                  /* of those, loaded on a thread that is not one of
                                               the pool's workers: 0, by design */
} tp_stats;

OCR_HIDDEN void tp_pool_stats(tp_pool *p, tp_stats *s);

/* Readable while finished jobs wait to be collected (a pipe, level-triggered). */
OCR_HIDDEN int tp_pool_fd(tp_pool *p);

/* Cancels running jobs, joins every worker (each frees its engines; one loading finishes its
 * load first), frees all jobs. */
OCR_HIDDEN void tp_pool_destroy(tp_pool *p);

#endif
