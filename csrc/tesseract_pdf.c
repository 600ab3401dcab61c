/* ocr.tesseract_pdf: PDF pages rendered with poppler's glib API onto cairo image surfaces, for
 * ocr.tesseract's workers (see tesseract_pdf.h). The Lua face is a table holding the renderer
 * (a userdata ocr.tesseract passes to the pool with a PDF job) and poppler's version.
 *
 *   local pdf = require "ocr.tesseract_pdf"    pdf.renderer    pdf._VERSION
 *
 * The module is pinned once loaded (never unloaded, even by lua_close): a pool's workers may
 * still be inside it while a Lua state closes, and glib's type system cannot be unloaded. */
#define _GNU_SOURCE            /* dladdr */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cairo.h>
#include <gio/gio.h>
#include <poppler.h>
#include "compat.h"
#include "tesseract_pdf.h"

OCR_EXPORT int luaopen_ocr_tesseract_pdf(lua_State *L);

/* A document reads its bytes through a memory stream over them (not copied). (Not
 * poppler_document_new_from_bytes nor _from_data: poppler 22's retry of a wrong password with
 * the password as UTF-8 dereferences a null stream there and crashes.) */
struct tpdf_doc {
    PopplerDocument *doc;
    GInputStream *stream;
};

/* Every poppler call of the process goes through this lock (see tesseract_pdf.h). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data) {
    (void)domain; (void)level; (void)msg; (void)data;
}

/* poppler reports a damaged file's every flaw through glib's log ("Syntax Error ..."); a failure
 * is returned as a value instead. OCR_TESSERACT_DEBUG=1 keeps them. */
static void quiet_once(void) {
    if (getenv("OCR_TESSERACT_DEBUG") == NULL)
        g_log_set_handler("Poppler", (GLogLevelFlags)(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL
                                                      | G_LOG_FLAG_RECURSION), quiet_log, NULL);
}

static pthread_once_t quiet_init = PTHREAD_ONCE_INIT;

static tpdf_doc *pdf_open(const unsigned char *bytes, size_t len, const char *password,
                          tpdf_status *st, char *msg, size_t msglen) {
    pthread_once(&quiet_init, quiet_once);
    tpdf_doc *d = calloc(1, sizeof *d);
    if (d == NULL) {
        *st = TPDF_NOMEM;
        snprintf(msg, msglen, "out of memory opening a PDF");
        return NULL;
    }
    GError *err = NULL;
    pthread_mutex_lock(&lock);
    d->stream = g_memory_input_stream_new_from_data(bytes, (gssize)len, NULL);
    d->doc = len > 0 && len <= G_MAXINT64
             ? poppler_document_new_from_stream(d->stream, (goffset)len, password, NULL, &err) : NULL;
    pthread_mutex_unlock(&lock);
    if (d->doc != NULL) return d;
    if (err != NULL && err->domain == POPPLER_ERROR && err->code == POPPLER_ERROR_ENCRYPTED) {
        *st = password ? TPDF_WRONG_PASSWORD : TPDF_NEEDS_PASSWORD;
        snprintf(msg, msglen, "%s", password ? "the password given does not open this encrypted PDF"
                                             : "the PDF is encrypted: pass its password");
    } else {
        *st = TPDF_DAMAGED;
        snprintf(msg, msglen, "cannot read the PDF (%zu bytes): damaged or truncated (%.200s)", len,
                 err && err->message ? err->message : "poppler cannot open it");
    }
    if (err) g_error_free(err);
    g_object_unref(d->stream);
    free(d);
    return NULL;
}

static int pdf_page_count(tpdf_doc *d) {
    pthread_mutex_lock(&lock);
    int n = poppler_document_get_n_pages(d->doc);
    pthread_mutex_unlock(&lock);
    return n;
}

/* Under the lock: page `page` (1-based), or NULL. */
static PopplerPage *get_page(tpdf_doc *d, int page) {
    if (page < 1 || page > poppler_document_get_n_pages(d->doc)) return NULL;
    return poppler_document_get_page(d->doc, page - 1);
}

static int pdf_page_size(tpdf_doc *d, int page, double *width, double *height) {
    pthread_mutex_lock(&lock);
    PopplerPage *p = get_page(d, page);
    if (p) {
        poppler_page_get_size(p, width, height);
        g_object_unref(p);
    }
    pthread_mutex_unlock(&lock);
    return p ? 0 : -1;
}

/* Whether every pixel of the surface is gray (R == G == B). */
static int all_gray(const unsigned char *data, int width, int height, int stride) {
    for (int y = 0; y < height; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(data + (size_t)y * (size_t)stride);
        for (int x = 0; x < width; x++) {
            uint32_t v = row[x];
            uint32_t b = v & 0xff;
            if (((v >> 8) & 0xff) != b || ((v >> 16) & 0xff) != b) return 0;
        }
    }
    return 1;
}

static int pdf_render(tpdf_doc *d, int page, int width, int height, double scale, tpdf_raster *r,
                      char *msg, size_t msglen) {
    memset(r, 0, sizeof *r);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        snprintf(msg, msglen, "out of memory rendering page %d of the PDF (%dx%d pixels)", page,
                 width, height);
        return -2;
    }
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1.0, 1.0, 1.0);
    cairo_paint(cr);
    cairo_scale(cr, scale, scale);
    pthread_mutex_lock(&lock);
    PopplerPage *p = get_page(d, page);
    if (p) {
        poppler_page_render(p, cr);
        g_object_unref(p);
    }
    pthread_mutex_unlock(&lock);
    int failed = p == NULL || cairo_status(cr) != CAIRO_STATUS_SUCCESS;
    cairo_destroy(cr);
    if (failed) {
        cairo_surface_destroy(s);
        snprintf(msg, msglen, "cannot render page %d of the PDF: damaged", page);
        return -1;
    }
    cairo_surface_flush(s);
    r->width = width;
    r->height = height;
    r->stride = cairo_image_surface_get_stride(s);
    r->data = cairo_image_surface_get_data(s);
    r->surface = s;
    r->gray = all_gray(r->data, width, height, r->stride);
    return 0;
}

static void pdf_raster_free(tpdf_raster *r) {
    if (r->surface) cairo_surface_destroy((cairo_surface_t *)r->surface);
    memset(r, 0, sizeof *r);
}

/* A text layer counts when it holds more than white space. */
static int blank(const char *s) {
    for (; *s; s++)
        if (!(*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t' || *s == '\f')) return 0;
    return 1;
}

static int pdf_text(tpdf_doc *d, int page, char **text, tpdf_rect **rects, unsigned *nrects) {
    *text = NULL;
    *rects = NULL;
    *nrects = 0;
    PopplerRectangle *layout = NULL;
    guint n = 0;
    pthread_mutex_lock(&lock);
    PopplerPage *p = get_page(d, page);
    char *t = p ? poppler_page_get_text(p) : NULL;
    if (t && !blank(t) && !poppler_page_get_text_layout(p, &layout, &n)) {
        layout = NULL;
        n = 0;
    }
    if (p) g_object_unref(p);
    pthread_mutex_unlock(&lock);
    if (p == NULL) return -1;
    if (t == NULL || blank(t)) {
        g_free(t);
        g_free(layout);
        return 0;
    }
    /* copied into malloc'ed memory: the caller frees with text_free, whatever allocator glib uses */
    size_t len = strlen(t);
    *text = malloc(len + 1);
    if (*text) memcpy(*text, t, len + 1);
    if (*text && n > 0) {
        *rects = malloc((size_t)n * sizeof **rects);
        if (*rects) {
            for (guint i = 0; i < n; i++) {
                (*rects)[i].x1 = layout[i].x1;
                (*rects)[i].y1 = layout[i].y1;
                (*rects)[i].x2 = layout[i].x2;
                (*rects)[i].y2 = layout[i].y2;
            }
            *nrects = n;
        }
    }
    g_free(t);
    g_free(layout);
    return *text ? 0 : -1;
}

static void pdf_text_free(char *text, tpdf_rect *rects) {
    free(text);
    free(rects);
}

static void pdf_close(tpdf_doc *d) {
    if (d == NULL) return;
    pthread_mutex_lock(&lock);
    g_object_unref(d->doc);
    g_object_unref(d->stream);
    pthread_mutex_unlock(&lock);
    free(d);
}

static tpdf_api api = {
    TPDF_ABI, NULL, pdf_open, pdf_page_count, pdf_page_size, pdf_render, pdf_raster_free,
    pdf_text, pdf_text_free, pdf_close
};

/* Keeps this module (and with it poppler, glib and cairo) loaded for the life of the process. */
static void pin_self(void) {
    Dl_info info;
    if (dladdr((void *)&pin_self, &info) != 0 && info.dli_fname != NULL)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

int luaopen_ocr_tesseract_pdf(lua_State *L) {
    pin_self();
    api.version = poppler_get_version();
    lua_createtable(L, 0, 2);
    const tpdf_api **ud = lua_newuserdata(L, sizeof *ud);
    *ud = &api;
    if (luaL_newmetatable(L, TPDF_MT)) {
        lua_pushliteral(L, "ocr.tesseract.pdf_renderer");
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "renderer");
    lua_pushstring(L, api.version);
    lua_setfield(L, -2, "_VERSION");
    return 1;
}
