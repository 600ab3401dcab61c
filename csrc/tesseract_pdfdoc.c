/* A PDF in ocr.tesseract's pool: opened on the job's first turn (its pages selected, counted and
 * measured before any is rendered), then its pages rendered one per worker through
 * ocr.tesseract_pdf (tesseract_pdf.h) and recognised like a TIFF's (tesseract_page.c). A page
 * that carries a text layer is either recognised anyway or, with keep_text, its text taken as
 * it is. Every worker renders from a document of its own. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <leptonica/allheaders.h>
#include "tesseract_page.h"

int tp_is_pdf(const unsigned char *bytes, size_t len) {
    size_t n = len < 1024 ? len : 1024;
    for (size_t i = 0; i + 4 <= n; i++)
        if (bytes[i] == '%' && memcmp(bytes + i, "%PDF", 4) == 0) return 1;
    return 0;
}

/* Opens the job's PDF (its bytes: doc's, or those given); NULL with out's error. */
static tpdf_doc *open_pdf(tp_job *job, const unsigned char *bytes, size_t len, tp_outcome *out) {
    tpdf_status st = TPDF_OK;
    tpdf_doc *pd = job->pdf->open(bytes, len, job->password, &st, out->message, sizeof out->message);
    if (pd == NULL) out->kind = st == TPDF_NOMEM ? TP_SERVER : TP_INVALID_INPUT;
    return pd;
}

/* How many pages the job reads of a PDF of n; 0 with the job's error. */
static int64_t selected_pages(tp_job *job, const tp_options *o, int n) {
    int64_t count = 0;
    if (n <= 0) {
        TP_FAIL(&job->out, TP_INVALID_INPUT, "the PDF has no pages poppler can read: damaged or truncated");
        return 0;
    }
    if (job->nranges == 0) count = n;
    for (int i = 0; i < job->nranges; i++) {
        int first = job->ranges[2 * i], last = job->ranges[2 * i + 1];
        if (last > n) {
            TP_FAIL(&job->out, TP_INVALID_INPUT, "pages: page %d is past the end of the PDF "
                    "(%d page%s)", first > n ? first : last, n, n == 1 ? "" : "s");
            return 0;
        }
        count += (int64_t)last - first + 1;
    }
    if (count > o->max_pages) {
        if (job->nranges == 0)
            TP_FAIL(&job->out, TP_TOO_LARGE, "the PDF has %d pages, over max_pages (%d); pages = "
                    "\"1-%d\" reads the first ones", n, o->max_pages, o->max_pages);
        else
            TP_FAIL(&job->out, TP_TOO_LARGE, "pages selects %lld pages of the PDF, over "
                    "max_pages (%d)", (long long)count, o->max_pages);
        return 0;
    }
    return count;
}

/* Every selected page's size in pixels at the job's dpi, checked against max_pixels and
 * tesseract's 32767 pixels a side. 0 with the job's error. */
static int measure_pages(tp_job *job, const tp_options *o, struct tp_doc *doc, tpdf_doc *pd) {
    for (int i = 0; i < doc->npages; i++) {
        tp_page_slot *slot = &doc->slots[i];
        double w = 0, h = 0;
        if (job->pdf->page_size(pd, slot->number, &w, &h) != 0) {
            TP_FAIL(&job->out, TP_INVALID_INPUT, "page %d of the PDF cannot be read: damaged",
                    slot->number);
            return 0;
        }
        if (!(w > 0 && h > 0 && isfinite(w) && isfinite(h))) {
            TP_FAIL(&job->out, TP_INVALID_INPUT, "page %d of the PDF has no usable size",
                    slot->number);
            return 0;
        }
        double pw = floor(w * doc->scale + 0.5), ph = floor(h * doc->scale + 0.5);
        if (pw < 1) pw = 1;
        if (ph < 1) ph = 1;
        char where[96];
        snprintf(where, sizeof where, "page %d of the PDF at %d dpi", slot->number, job->dpi);
        if (pw > 4e9 || ph > 4e9) {
            TP_FAIL(&job->out, TP_TOO_LARGE, "%s is %.0fx%.0f pixels, over max_pixels (%llu)",
                    where, pw, ph, (unsigned long long)o->max_pixels);
            return 0;
        }
        if (!tp_size_ok(&job->out, o, (uint64_t)pw, (uint64_t)ph, where)) return 0;
        slot->width = (int)pw;
        slot->height = (int)ph;
    }
    return 1;
}

int tp_pdf_doc_create(tp_job *job, const tp_options *o, ocr_buffer *file,
                      const unsigned char *bytes, size_t len, int worker) {
    tpdf_doc *pd = open_pdf(job, bytes, len, &job->out);
    if (pd == NULL) return 0;
    int n = job->pdf->page_count(pd);
    int64_t count = selected_pages(job, o, n);
    struct tp_doc *doc = NULL;
    if (count > 0) {
        doc = calloc(1, sizeof *doc + (size_t)count * sizeof(tp_page_slot));
        if (doc == NULL)
            TP_FAIL(&job->out, TP_SERVER, "out of memory reading a PDF of %lld pages", (long long)count);
    }
    if (doc != NULL) {
        int k = 0;
        if (job->nranges == 0)
            for (int p = 1; p <= n; p++) doc->slots[k++].number = p;
        for (int i = 0; i < job->nranges; i++)
            for (int p = job->ranges[2 * i]; p <= job->ranges[2 * i + 1]; p++) doc->slots[k++].number = p;
        for (int i = 0; i < k; i++) tp_result_init(&doc->slots[i].res);
        doc->npages = k;
        doc->scale = job->dpi / 72.0;
        if (!measure_pages(job, o, doc, pd)) {
            free(doc);
            doc = NULL;
        }
    }
    if (doc == NULL) {
        job->pdf->close(pd);
        return 0;
    }
    doc->file = *file;
    ocr_buffer_init(file, 0);
    doc->bytes = bytes;
    doc->len = len;
    doc->next_page = 1;
    doc->is_pdf = 1;
    doc->pdf_docs[worker] = pd;
    job->doc = doc;
    __atomic_store_n(&job->npages, doc->npages, __ATOMIC_RELAXED);
    return 1;
}

void tp_pdf_doc_close(tp_job *job) {
    struct tp_doc *doc = job->doc;
    if (doc == NULL || !doc->is_pdf) return;
    for (int i = 0; i < TP_MAX_THREADS; i++) {
        if (doc->pdf_docs[i]) job->pdf->close(doc->pdf_docs[i]);
        doc->pdf_docs[i] = NULL;
    }
}

/* A rendered page as a leptonica image: 8 bits gray when every pixel is gray (what tesseract
 * reads anyway, and a third of the searchable PDF's image), else 32 bits RGB. */
static PIX *raster_to_pix(const tpdf_raster *r) {
    PIX *pix = pixCreate(r->width, r->height, r->gray ? 8 : 32);
    if (pix == NULL) return NULL;
    l_uint32 *data = pixGetData(pix);
    int wpl = pixGetWpl(pix);
    for (int y = 0; y < r->height; y++) {
        const uint32_t *src = (const uint32_t *)(const void *)(r->data + (size_t)y * (size_t)r->stride);
        l_uint32 *line = data + (size_t)y * (size_t)wpl;
        if (r->gray)
            for (int x = 0; x < r->width; x++) SET_DATA_BYTE(line, x, src[x] & 0xff);
        else
            for (int x = 0; x < r->width; x++) line[x] = (src[x] & 0xffffffu) << 8;   /* RGBA */
    }
    return pix;
}

/* ---- a page's own text layer (keep_text) -------------------------------------------------- */

typedef struct { double x1, y1, x2, y2; int any; } span;

static void span_add(span *s, const tpdf_rect *r) {
    if (!(isfinite(r->x1) && isfinite(r->y1) && isfinite(r->x2) && isfinite(r->y2))) return;
    if (!s->any || r->x1 < s->x1) s->x1 = r->x1;
    if (!s->any || r->y1 < s->y1) s->y1 = r->y1;
    if (!s->any || r->x2 > s->x2) s->x2 = r->x2;
    if (!s->any || r->y2 > s->y2) s->y2 = r->y2;
    s->any = 1;
}

/* A span in points as a box in the page's pixels, inside the page. */
static tp_box span_box(const span *s, double scale, int width, int height) {
    tp_box b = { 0, 0, 0, 0 };
    if (!s->any) return b;
    double x1 = floor(s->x1 * scale), y1 = floor(s->y1 * scale);
    double x2 = ceil(s->x2 * scale), y2 = ceil(s->y2 * scale);
    x1 = x1 < 0 ? 0 : x1 > width ? width : x1;
    y1 = y1 < 0 ? 0 : y1 > height ? height : y1;
    x2 = x2 < x1 ? x1 : x2 > width ? width : x2;
    y2 = y2 < y1 ? y1 : y2 > height ? height : y2;
    b.x = (int)x1;
    b.y = (int)y1;
    b.w = (int)(x2 - x1);
    b.h = (int)(y2 - y1);
    return b;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; }

/* The page's text as its result: lines at its line breaks, words at its spaces, each boxed
 * by its characters' boxes (poppler gives one per character of the text). One pass over the
 * text. An ocr_buffer status. */
static int kept_page(tp_result *r, const tp_page_slot *slot, double scale, int dpi,
                     const char *text, const tpdf_rect *rects, unsigned nrects) {
    tp_page pg;
    memset(&pg, 0, sizeof pg);
    pg.angle = -1;
    pg.width = slot->width;
    pg.height = slot->height;
    pg.number = slot->number;
    pg.dpi = dpi;
    pg.kept = 1;
    size_t len = strlen(text);
    int rc = tp_result_add_bytes(r, text, len, &pg.text_off, &pg.text_len);
    if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->pages, &pg, sizeof pg);
    size_t i = 0, ch = 0;   /* a byte of the text, and the character it is in (counted) */
    while (rc == OCR_BUF_OK && i < len) {
        tp_line ln;
        memset(&ln, 0, sizeof ln);
        ln.confidence = 1.0f;
        ln.page = slot->number;
        ln.first_word = r->words.len / sizeof(tp_word);
        span lspan = { 0, 0, 0, 0, 0 };
        size_t lstart = SIZE_MAX, lend = 0;
        while (rc == OCR_BUF_OK && i < len && text[i] != '\n') {
            if (is_space(text[i])) {
                i++;
                ch++;
                continue;
            }
            size_t ws = i;
            span wspan = { 0, 0, 0, 0, 0 };
            while (i < len && text[i] != '\n' && !is_space(text[i])) {
                if (((unsigned char)text[i] & 0xC0) != 0x80) {   /* a character starts here */
                    if (ch < nrects) span_add(&wspan, &rects[ch]);
                    ch++;
                }
                i++;
            }
            tp_word w;
            memset(&w, 0, sizeof w);
            w.confidence = 1.0f;
            w.box = span_box(&wspan, scale, slot->width, slot->height);
            if (wspan.any) {
                span_add(&lspan, &(tpdf_rect){ wspan.x1, wspan.y1, wspan.x2, wspan.y2 });
            }
            rc = tp_result_add_bytes(r, text + ws, i - ws, &w.text_off, &w.text_len);
            if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->words, &w, sizeof w);
            ln.nwords++;
            if (lstart == SIZE_MAX) lstart = ws;
            lend = i;
        }
        if (i < len) {   /* the line break, a character too */
            i++;
            ch++;
        }
        if (rc != OCR_BUF_OK || ln.nwords == 0) continue;
        ln.box = span_box(&lspan, scale, slot->width, slot->height);
        rc = tp_result_add_bytes(r, text + lstart, lend - lstart, &ln.text_off, &ln.text_len);
        if (rc == OCR_BUF_OK) rc = ocr_buffer_append(&r->lines, &ln, sizeof ln);
    }
    return rc;
}

/* ---- a page, on a worker ------------------------------------------------------------------ */

int tp_pdf_read_page(tp_job *job, int page, const tp_options *o, tp_engine *e, int worker,
                     tp_outcome *out) {
    struct tp_doc *doc = job->doc;
    tp_page_slot *slot = &doc->slots[page - 1];
    if (out->kind != TP_OK) return 0;
    if (__atomic_load_n(&job->cancel, __ATOMIC_ACQUIRE)) {
        TP_FAIL(out, TP_CANCELLED, "job %lld cancelled", (long long)job->id);
        return 0;
    }
    if (doc->pdf_docs[worker] == NULL) {
        doc->pdf_docs[worker] = open_pdf(job, doc->bytes, doc->len, out);
        if (doc->pdf_docs[worker] == NULL) return 0;
    }
    tpdf_doc *pd = doc->pdf_docs[worker];
    if (job->keep_text) {
        char *text = NULL;
        tpdf_rect *rects = NULL;
        unsigned n = 0;
        if (job->pdf->text(pd, slot->number, &text, &rects, &n) != 0) {
            TP_FAIL(out, TP_INVALID_INPUT, "page %d of the PDF cannot be read: damaged", slot->number);
            return 0;
        }
        if (text != NULL) {
            int rc = job->out_doc ? OCR_BUF_NOMEM
                                  : kept_page(&slot->res, slot, doc->scale, job->dpi, text, rects, n);
            job->pdf->text_free(text, rects);
            if (job->out_doc)   /* (refused by the caller: a renderer reads only its engine) */
                TP_FAIL(out, TP_INVALID_INPUT, "text_layer = \"keep\" goes with format = \"txt\" only");
            else if (rc == OCR_BUF_LIMIT)
                TP_FAIL(out, TP_TOO_LARGE, "text over %u bytes", TP_TEXT_LIMIT);
            else if (rc != OCR_BUF_OK)
                TP_FAIL(out, TP_SERVER, "out of memory storing the result");
            tp_page_done(job, 0);
            return 0;
        }
    }
    tpdf_raster r;
    char msg[TP_MSG_LEN];
    int rc = job->pdf->render(pd, slot->number, slot->width, slot->height, doc->scale, &r, msg,
                              sizeof msg);
    if (rc != 0) {
        TP_FAIL(out, rc == -2 ? TP_SERVER : TP_INVALID_INPUT, "%s", msg);
        return 0;
    }
    PIX *pix = raster_to_pix(&r);
    job->pdf->raster_free(&r);
    if (pix == NULL) {
        TP_FAIL(out, TP_SERVER, "out of memory for page %d of the PDF (%dx%d pixels)",
                slot->number, slot->width, slot->height);
        return 0;
    }
    pixSetResolution(pix, job->dpi, job->dpi);
    tp_recognise_page(job, &slot->res, out, o, e, pix, slot->number, page - 1, job->dpi);
    pixDestroy(&pix);
    return 1;
}
