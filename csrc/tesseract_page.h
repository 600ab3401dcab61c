/* Internal to ocr.tesseract: page recognition (tesseract_page.c) as the pool (tesseract_pool.c)
 * uses it. Everything that calls libtesseract or leptonica is behind this header; the pool keeps
 * the threads, the queue and the job states and calls in with a job and an engine. An engine is
 * created, used and freed by one worker thread. */
#ifndef OCR_TESSERACT_PAGE_H
#define OCR_TESSERACT_PAGE_H

#include <time.h>
#include <leptonica/allheaders.h>
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

#define TP_TEXT_LIMIT   (64u << 20)    /* recognised text and geometry per image, all pages */
#define TP_MAX_SIDE     32767          /* tesseract refuses larger images */

/* One page of a multi-page TIFF or of a PDF: where its directory is (a TIFF's), its number and
 * size in pixels (a PDF's), and its result once read. */
typedef struct {
    ic_tiff_page dir;
    int          number, width, height;
    tp_result    res;
} tp_page_slot;

/* A multi-page TIFF or a PDF read by several workers, a page each (tesseract_pool.c hands them
 * out). Only the encoded bytes are shared (read-only); each worker decodes or renders its own
 * page, a PDF's from a document of its own (pdf_docs[worker]: poppler's are not thread-safe). */
struct tp_doc {
    ocr_buffer file;                   /* the bytes read from the job's path (else job->data) */
    const unsigned char *bytes;
    size_t len;
    int npages;                        /* pages to read (a PDF's selected ones) */
    int is_pdf;
    double scale;                      /* a PDF's pixels per point (dpi / 72) */
    tpdf_doc *pdf_docs[TP_MAX_THREADS];
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

OCR_HIDDEN void tp_result_init(tp_result *r);
OCR_HIDDEN void tp_result_free(tp_result *r);

/* Appends n bytes of text without their trailing white space; an ocr_buffer status. */
OCR_HIDDEN int tp_result_add_bytes(tp_result *r, const char *text, size_t n, size_t *off,
                                   size_t *len);

/* Whether a page of w x h pixels (each under 2^32) may be decoded; out's error naming it
 * `where` otherwise. */
OCR_HIDDEN int tp_size_ok(tp_outcome *out, const tp_options *o, uint64_t w, uint64_t h,
                          const char *where);

/* Recognises a decoded page (and destroys nothing: the caller owns pix) into r as page `page`,
 * the `index`th of the job's output file (0-based); dpi > 0 for a PDF's rendered page. */
OCR_HIDDEN void tp_recognise_page(tp_job *job, tp_result *r, tp_outcome *out, const tp_options *o,
                                  tp_engine *e, PIX *pix, int page, int index, int dpi);

/* Counts a page as read for pool:progress() (its percentage so far was `reported`). */
OCR_HIDDEN void tp_page_done(tp_job *job, int reported);

/* ---- PDFs (tesseract_pdfdoc.c) ------------------------------------------------------------ */

/* Whether the bytes are a PDF: "%PDF" within the first 1024 bytes (where PDF readers look for
 * the header; poppler then decides whether it can read them). */
OCR_HIDDEN int tp_is_pdf(const unsigned char *bytes, size_t len);

/* Opens a PDF job on worker `worker`: its pages selected (job->ranges) and counted against
 * max_pages, every selected page's size at job->dpi checked against max_pixels before any is
 * rendered. Bytes moved from *file (or the job's data) into job->doc. 0 with the job's error. */
OCR_HIDDEN int tp_pdf_doc_create(tp_job *job, const tp_options *o, ocr_buffer *file,
                                 const unsigned char *bytes, size_t len, int worker);

/* Renders (or, with keep_text, takes the text layer of) the PDF's `page`th selected page into
 * its slot on worker `worker`. Returns 1 when the page reached tp_recognise_page. */
OCR_HIDDEN int tp_pdf_read_page(tp_job *job, int page, const tp_options *o, tp_engine *e,
                                int worker, tp_outcome *out);

/* Closes every worker's document of a PDF job. */
OCR_HIDDEN void tp_pdf_doc_close(tp_job *job);

/* ---- output files (tesseract_output.c) ---------------------------------------------------- */

/* Starts the job's file with libtesseract's renderer of job->format (no-op for TP_FORMAT_TXT):
 * job->output plus the renderer's extension. 0 with the job's error. */
OCR_HIDDEN int tp_output_open(tp_job *job, tp_engine *e);

/* Adds the page engine `api` has just recognised as the `index`th page of the file, waiting for
 * the pages before it (they are recognised in parallel, written in order). 1 when added; 0
 * with out's error, or when an earlier page failed (the job fails then anyway). */
struct TessBaseAPI;
OCR_HIDDEN struct TessBaseAPI *tp_engine_api(tp_engine *e);
OCR_HIDDEN int tp_output_add(tp_job *job, int index, struct TessBaseAPI *api, tp_outcome *out,
                             int page);

/* A page will not be added: the file is abandoned (the job fails); pages waiting stop. */
OCR_HIDDEN void tp_output_fail(tp_job *job);

/* Ends the file when `complete` (job->out says if that failed) and frees the renderer. */
OCR_HIDDEN void tp_output_close(tp_job *job, int complete);

/* A job's first turn: reads and checks the image and recognises it with e. Returns 1 when it is
 * a multi-page TIFF, split into pages (job->doc) with page 1 left for this worker to read; else
 * job->out (and job->res when TP_OK) say how it ended. */
OCR_HIDDEN int tp_run_job(tp_job *job, const tp_options *o, tp_engine *e, int worker);

/* Decodes and recognises page `page` of a split job into its slot; *out says how it went. With
 * out->kind already set (no engine could be loaded), only records the page as failed. */
OCR_HIDDEN void tp_read_page(tp_job *job, int page, const tp_options *o, tp_engine *e,
                             int worker, tp_outcome *out);

/* Joins a split job's pages, in page order, into job->res (job->out on failure). */
OCR_HIDDEN void tp_doc_join(tp_job *job);

/* Frees a split job's pages and bytes; nothing when the job was not split. */
OCR_HIDDEN void tp_doc_free(tp_job *job);

#endif
