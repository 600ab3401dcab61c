/* A job's output file, written by libtesseract's own renderers (hOCR, ALTO, TSV, searchable
 * PDF): one document for the whole input, its pages in order. Pages are recognised in parallel
 * on several workers, each with its own engine, and a renderer reads a page from the engine that
 * recognised it; so each worker adds its page right after recognising it, once the pages before
 * it are in, and only then lets its engine go on. A worker waits at most as long as the page
 * before its own takes to finish; the pages are taken in order, so that page is always being
 * read by a worker that waits for nothing. The renderer writes job->output plus its extension;
 * the provider chose that path inside a folder of its own (see lua/ocr/providers/tesseract.lua). */
#include <pthread.h>
#include <stdlib.h>
#include <tesseract/capi.h>
#include "tesseract_page.h"

struct tp_output {
    TessResultRenderer *renderer;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int next;                          /* the index of the next page to add */
    int failed;                        /* a page will not be added: the file is abandoned */
};

static const char *const extensions[] = { "", "hocr", "xml", "tsv", "pdf" };

int tp_output_open(tp_job *job, tp_engine *e) {
    if (job->format == TP_FORMAT_TXT || job->output == NULL) return 1;
    struct tp_output *o = calloc(1, sizeof *o);
    if (o == NULL || pthread_mutex_init(&o->mu, NULL) != 0) {
        free(o);
        TP_FAIL(&job->out, TP_SERVER, "out of memory starting the %s file", extensions[job->format]);
        return 0;
    }
    pthread_cond_init(&o->cv, NULL);
    TessBaseAPI *api = tp_engine_api(e);   /* its tessdata: the PDF renderer's font is there */
    switch (job->format) {
    case TP_FORMAT_HOCR: o->renderer = TessHOcrRendererCreate(job->output); break;
    case TP_FORMAT_ALTO: o->renderer = TessAltoRendererCreate(job->output); break;
    case TP_FORMAT_TSV:  o->renderer = TessTsvRendererCreate(job->output); break;
    case TP_FORMAT_PDF:  o->renderer = TessPDFRendererCreate(job->output, TessBaseAPIGetDatapath(api), 0);
                         break;
    default: break;
    }
    job->out_doc = o;
    if (o->renderer == NULL
        || !TessResultRendererBeginDocument(o->renderer, job->title ? job->title : "")) {
        TP_FAIL(&job->out, TP_TASK_FAILED, "cannot start the %s file %s.%s%s",
                extensions[job->format], job->output, extensions[job->format],
                job->format == TP_FORMAT_PDF ? " (or tesseract's pdf.ttf is missing from its "
                                               "tessdata directory)" : "");
        tp_output_close(job, 0);
        return 0;
    }
    return 1;
}

int tp_output_add(tp_job *job, int index, TessBaseAPI *api, tp_outcome *out, int page) {
    struct tp_output *o = job->out_doc;
    pthread_mutex_lock(&o->mu);
    while (o->next != index && !o->failed) pthread_cond_wait(&o->cv, &o->mu);
    int ok = !o->failed;
    if (ok) {
        ok = TessResultRendererAddImage(o->renderer, api) != 0;
        if (ok) o->next++;
        else {
            o->failed = 1;
            TP_FAIL(out, TP_TASK_FAILED, "libtesseract's %s renderer could not add page %d to %s.%s",
                    extensions[job->format], page, job->output, extensions[job->format]);
        }
    }
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    return ok;
}

void tp_output_fail(tp_job *job) {
    struct tp_output *o = job->out_doc;
    if (o == NULL) return;
    pthread_mutex_lock(&o->mu);
    o->failed = 1;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

void tp_output_close(tp_job *job, int complete) {
    struct tp_output *o = job->out_doc;
    if (o == NULL) return;
    job->out_doc = NULL;
    if (complete && job->out.kind == TP_OK && !o->failed
        && !TessResultRendererEndDocument(o->renderer))
        TP_FAIL(&job->out, TP_TASK_FAILED, "cannot finish the %s file %s.%s",
                extensions[job->format], job->output, extensions[job->format]);
    if (o->renderer) TessDeleteResultRenderer(o->renderer);   /* closes the file */
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
