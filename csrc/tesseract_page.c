/* Page recognition for ocr.tesseract's pool: the image checks before decoding, one page's
 * recognition into the plain result structs, the pages of a multi-page TIFF and their joining,
 * and the engines (a TessBaseAPI per language set). Every libtesseract and leptonica call of the
 * module is here; no thread, lock or queue is (tesseract_pool.c has those). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <leptonica/allheaders.h>
#include <tesseract/capi.h>
#include "image_check.h"
#include "tesseract_page.h"

struct tp_engine {
    TessBaseAPI *api;
    ETEXT_DESC  *monitor;
};

void tp_set_msg(char *dst, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* ---- results ----------------------------------------------------------------------------- */

void tp_result_init(tp_result *r) {
    ocr_buffer_init(&r->strings, TP_TEXT_LIMIT);
    ocr_buffer_init(&r->pages, TP_TEXT_LIMIT);
    ocr_buffer_init(&r->lines, TP_TEXT_LIMIT);
    ocr_buffer_init(&r->words, TP_TEXT_LIMIT);
}

void tp_result_free(tp_result *r) {
    ocr_buffer_free(&r->strings);
    ocr_buffer_free(&r->pages);
    ocr_buffer_free(&r->lines);
    ocr_buffer_free(&r->words);
}

/* Appends n bytes of text without their trailing newlines/spaces. */
int tp_result_add_bytes(tp_result *r, const char *text, size_t n, size_t *off, size_t *len) {
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r'
                     || text[n - 1] == '\f'))
        n--;
    *off = r->strings.len;
    *len = n;
    return ocr_buffer_append(&r->strings, text, n);
}

/* Appends a tesseract string (freed here on every path) without its trailing newlines/spaces. */
static int result_add_text(tp_result *r, char *text, size_t *off, size_t *len) {
    int rc = tp_result_add_bytes(r, text ? text : "", text ? strlen(text) : 0, off, len);
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
        TP_FAIL(&job->out, TP_INVALID_INPUT, "cannot open image '%s': %s", job->path, strerror(errno));
        return;
    }
    ocr_buffer_init(b, max_bytes);
    char chunk[65536];
    size_t n;
    int rc = OCR_BUF_OK;
    while (rc == OCR_BUF_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ocr_buffer_append(b, chunk, n);
    if (rc == OCR_BUF_LIMIT)
        TP_FAIL(&job->out, TP_TOO_LARGE, "image file '%s' is larger than max_bytes (%zu bytes)",
                 job->path, max_bytes);
    else if (rc == OCR_BUF_NOMEM)
        TP_FAIL(&job->out, TP_SERVER, "out of memory reading '%s'", job->path);
    else if (ferror(f))
        TP_FAIL(&job->out, TP_INVALID_INPUT, "cannot read image '%s'", job->path);
    fclose(f);
}

/* Whether a page of w x h (each under 2^32) may be decoded; out's error, naming it `where`,
 * otherwise. */
int tp_size_ok(tp_outcome *out, const tp_options *o, uint64_t w, uint64_t h, const char *where) {
    if (w * h > o->max_pixels) {
        TP_FAIL(out, TP_TOO_LARGE, "%s is %llux%llu = %llu pixels, over max_pixels (%llu)", where,
             (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
             (unsigned long long)o->max_pixels);
        return 0;
    }
    if (w > TP_MAX_SIDE || h > TP_MAX_SIDE) {
        TP_FAIL(out, TP_TOO_LARGE, "%s is %llux%llu; tesseract handles at most %d pixels a side",
             where, (unsigned long long)w, (unsigned long long)h, TP_MAX_SIDE);
        return 0;
    }
    return 1;
}

/* Pages after the first are named in the message. */
static int size_ok(tp_outcome *out, const tp_options *o, uint64_t w, uint64_t h, int page) {
    char where[48] = "image";
    if (page > 1) snprintf(where, sizeof where, "page %d of the image", page);
    return tp_size_ok(out, o, w, h, where);
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
        TP_FAIL(out, TP_INVALID_INPUT, "cannot decode image (%zu bytes): not a PNG, JPEG, TIFF, "
             "BMP, GIF, WebP or PNM image leptonica can read", len);
        return 0;
    }
    return size_ok(out, o, (uint64_t)w, (uint64_t)h, 1);
}

/* `seconds` from now on CLOCK_MONOTONIC, the clock of state_cv and of page deadlines. */
void tp_deadline_after(struct timespec *ts, double seconds) {
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
    TP_FAIL(out, TP_CANCELLED, "job %lld cancelled", (long long)job->id);
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

/* Records a page as read, for pool:progress(): its 100 per cent, and one more page done. */
void tp_page_done(tp_job *job, int reported) {
    if (reported < 100) __atomic_add_fetch(&job->progress, (unsigned)(100 - reported), __ATOMIC_RELAXED);
    /* release: whoever sees the page done sees its 100 too */
    __atomic_add_fetch(&job->pages_done, 1, __ATOMIC_RELEASE);
}

/* Recognises one decoded page of `job` into r as page `page` (its number: a TIFF's page, a PDF's
 * page in the document), the `index`th page of the job's output file, if any (0-based, in
 * order); a PDF's page was rendered at `dpi`. out says how it went. */
void tp_recognise_page(tp_job *job, tp_result *r, tp_outcome *out, const tp_options *o,
                       tp_engine *e, PIX *pix, int page, int index, int dpi) {
    TessBaseAPI *api = e->api;
    ETEXT_DESC *monitor = e->monitor;
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
    if (watch.has_deadline) tp_deadline_after(&watch.deadline, o->page_timeout);
    pg.number = dpi > 0 ? page : 0;
    pg.dpi = dpi;
    TessBaseAPISetImage2(api, pix);
    if (dpi > 0) TessBaseAPISetSourceResolution(api, dpi);
    TessMonitorSetCancelThis(monitor, &watch);
    int rc = TessBaseAPIRecognize(api, monitor);
    TessMonitorSetCancelThis(monitor, NULL);
    char what[32] = "the image";   /* what a failure names: a TIFF's page, even page 1 */
    if (job->doc != NULL) snprintf(what, sizeof what, "page %d", page);
    int added = 0;   /* the page went into the output file */
    if (cancelled(job, out)) {
        /* out says so */
    } else if (watch.timed_out) {
        TP_FAIL(out, TP_TIMEOUT, "%s was not recognised within page_timeout (%g s)", what,
             o->page_timeout);
    } else if (rc != 0) {
        TP_FAIL(out, TP_TASK_FAILED, "tesseract could not recognise %s", what);
    } else {
        int brc = result_add_text(r, TessBaseAPIGetUTF8Text(api), &pg.text_off, &pg.text_len);
        TessResultIterator *ri = TessBaseAPIGetIterator(api);
        if (ri != NULL && detects_orientation(o->psm)) pg.angle = page_angle(ri);
        if (brc == OCR_BUF_OK) brc = ocr_buffer_append(&r->pages, &pg, sizeof pg);
        if (brc == OCR_BUF_OK && ri != NULL) brc = result_collect_lines(r, ri, page);
        if (ri != NULL) TessResultIteratorDelete(ri);
        if (brc == OCR_BUF_LIMIT)
            TP_FAIL(out, TP_TOO_LARGE, "recognised text over %u bytes", TP_TEXT_LIMIT);
        else if (brc == OCR_BUF_NOMEM)
            TP_FAIL(out, TP_SERVER, "out of memory storing the result");
        /* while the engine still holds the page: libtesseract's renderer reads it from there */
        else if (job->out_doc != NULL)
            added = tp_output_add(job, index, api, out, page);
    }
    if (!added && job->out_doc != NULL) tp_output_fail(job);
    tp_page_done(job, watch.reported);
    /* Frees the page and, with the legacy engine, what it adapted to this page: results must not
     * depend on which images a worker saw before. The model stays loaded. */
    TessBaseAPIClear(api);
    TessBaseAPIClearAdaptiveClassifier(api);
}

/* ---- a multi-page TIFF or a PDF, read by several workers ---------------------------------- */

/* tesseract_pool.c hands the pages out one at a time to whichever worker is free. Results wait
 * in their page's slot and are joined in page order once the last page is read; each worker
 * decodes its own page, so one decoded page per worker is in memory. */
void tp_doc_free(tp_job *job) {
    struct tp_doc *doc = job->doc;
    if (doc == NULL) return;
    tp_pdf_doc_close(job);
    for (int i = 0; i < doc->npages; i++) tp_result_free(&doc->slots[i].res);
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
    struct tp_doc *doc = calloc(1, sizeof *doc + (size_t)n * sizeof(tp_page_slot));
    if (doc == NULL) {
        TP_FAIL(&job->out, TP_SERVER, "out of memory reading a TIFF of %d pages", n);
        return 0;
    }
    ic_tiff_page *dirs = malloc((size_t)n * sizeof *dirs);
    ic_status st = dirs ? ic_tiff_pages(bytes, len, dirs, n, job->out.message, sizeof job->out.message)
                        : IC_INVALID;
    if (dirs == NULL) TP_FAIL(&job->out, TP_SERVER, "out of memory reading a TIFF of %d pages", n);
    else if (st != IC_OK) job->out.kind = tp_kind_of_check(st);
    for (int i = 0; job->out.kind == TP_OK && i < n; i++) {
        size_ok(&job->out, o, dirs[i].width, dirs[i].height, i + 1);
        doc->slots[i].dir = dirs[i];
        tp_result_init(&doc->slots[i].res);
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

/* Decodes and recognises page `page` into its slot (the pool makes a failure the job's error
 * when no earlier page failed, so the error does not depend on which worker finished first). */
void tp_read_page(tp_job *job, int page, const tp_options *o, tp_engine *e, int worker,
                  tp_outcome *out) {
    struct tp_doc *doc = job->doc;
    tp_page_slot *slot = &doc->slots[page - 1];
    if (doc->is_pdf) {
        if (!tp_pdf_read_page(job, page, o, e, worker, out) && job->out_doc) tp_output_fail(job);
        if (out->kind != TP_OK) tp_result_free(&slot->res);
        return;
    }
    size_t offset = page == 1 ? 0 : (size_t)slot->dir.offset;
    PIX *pix = NULL;
    if (out->kind == TP_OK && !cancelled(job, out))
        pix = pixReadMemFromMultipageTiff(doc->bytes, doc->len, &offset);
    if (pix != NULL)
        tp_recognise_page(job, &slot->res, out, o, e, pix, page, page - 1, 0);
    else if (out->kind == TP_OK)
        TP_FAIL(out, TP_INVALID_INPUT, "cannot decode page %d of %d of a TIFF image: corrupt or "
             "truncated", page, doc->npages);
    if (pix == NULL && job->out_doc) tp_output_fail(job);
    pixDestroy(&pix);
    if (out->kind != TP_OK) tp_result_free(&slot->res);
}

/* Joins the pages' results, in page order, into the job's, freeing each page's as it goes. */
void tp_doc_join(tp_job *job) {
    struct tp_doc *doc = job->doc;
    tp_result *r = &job->res;
    int rc = OCR_BUF_OK;
    tp_result_init(r);
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
        tp_result_free(pr);   /* a page's result is held once, here or in its slot */
    }
    if (rc == OCR_BUF_LIMIT)
        TP_FAIL(&job->out, TP_TOO_LARGE, "recognised text over %u bytes", TP_TEXT_LIMIT);
    else if (rc == OCR_BUF_NOMEM)
        TP_FAIL(&job->out, TP_SERVER, "out of memory storing the result");
    if (rc != OCR_BUF_OK) tp_result_free(r);
}

/* ---- a job's first turn ------------------------------------------------------------------- */

/* Frees the job's encoded bytes (read from its file, or given). */
static void release_bytes(tp_job *job, ocr_buffer *file) {
    ocr_buffer_free(file);
    free(job->data);
    job->data = NULL;
}

/* A job's first turn: reads and checks the image and recognises it. Returns 1 when it is a
 * multi-page TIFF or a PDF, split into pages (job->doc) with page 1 left for this worker (of
 * index `worker`) to read; the job's output file is started first. */
int tp_run_job(tp_job *job, const tp_options *o, tp_engine *e, int worker) {
    ocr_buffer file;
    const unsigned char *bytes = job->data;
    size_t len = job->len;
    int tiff_pages = 0, split = 0;
    ocr_buffer_init(&file, 0);
    job->out.kind = TP_OK;
    tp_result_init(&job->res);
    if (job->path != NULL) {
        read_file(job, &file, o->max_bytes);
        bytes = (const unsigned char *)file.data;
        len = file.len;
    }
    if (job->out.kind != TP_OK) {
        /* the job's error is set */
    } else if (job->pdf != NULL && tp_is_pdf(bytes, len)) {
        split = tp_pdf_doc_create(job, o, &file, bytes, len, worker);
    } else if (!probe(&job->out, o, bytes, len, &tiff_pages)) {
        /* the job's error is set */
    } else if (tiff_pages > 1) {
        split = doc_create(job, o, &file, bytes, len, tiff_pages);
    } else {
        PIX *pix = pixReadMem(bytes, len);
        release_bytes(job, &file);   /* not needed once decoded: freed before recognition */
        if (pix == NULL)
            TP_FAIL(&job->out, TP_INVALID_INPUT, "cannot decode image (%zu bytes): corrupt or truncated", len);
        else if (tp_output_open(job, e))
            tp_recognise_page(job, &job->res, &job->out, o, e, pix, 1, 0, 0);
        pixDestroy(&pix);
        tp_output_close(job, job->out.kind == TP_OK);
    }
    if (split && !tp_output_open(job, e)) {
        tp_doc_free(job);
        split = 0;
    }
    if (split) return 1;
    release_bytes(job, &file);
    if (job->out.kind != TP_OK) tp_result_free(&job->res);
    return 0;
}

/* ---- engines ------------------------------------------------------------------------------ */

tp_engine *tp_engine_load(const tp_options *o, const char *languages, char *msg, size_t msglen) {
    tp_engine *e = calloc(1, sizeof *e);
    if (e != NULL) {
        e->api = TessBaseAPICreate();
        e->monitor = TessMonitorCreate();
    }
    if (e == NULL || e->api == NULL || e->monitor == NULL) {
        tp_set_msg(msg, msglen, "out of memory creating a tesseract instance");
        goto fail;
    }
    if (TessBaseAPIInit2(e->api, o->datapath[0] ? o->datapath : NULL, languages,
                         (TessOcrEngineMode)o->oem) != 0) {
        tp_set_msg(msg, msglen, "tesseract cannot load language data '%s' from %s with oem %d "
                   "(a model without that engine, or a damaged file)", languages,
                   o->datapath[0] ? o->datapath : "its default tessdata directory", o->oem);
        goto fail;
    }
    if (o->psm >= 0) TessBaseAPISetPageSegMode(e->api, (TessPageSegMode)o->psm);
    TessMonitorSetCancelFunc(e->monitor, cancel_cb);
    return e;
fail:
    tp_engine_free(e);
    return NULL;
}

TessBaseAPI *tp_engine_api(tp_engine *e) {
    return e->api;
}

void tp_engine_free(tp_engine *e) {
    if (e == NULL) return;
    if (e->api) TessBaseAPIDelete(e->api);   /* End()s it: frees the model */
    if (e->monitor) TessMonitorDelete(e->monitor);
    free(e);
}

/* ---- process-wide quiet ------------------------------------------------------------------- */

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

/* Both libraries print diagnostics on stderr ("Estimating resolution as ...", "Error in
 * pixReadMem ..."); this module reports failures as values instead. Done once, by the first
 * worker before it reads anything (both settings are process-wide). OCR_TESSERACT_DEBUG=1 and
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

void tp_quiet_libraries(void) {
    pthread_once(&quiet_once, quiet_libraries);
}
