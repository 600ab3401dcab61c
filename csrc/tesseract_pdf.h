/* The PDF renderer of ocr.tesseract, in a module of its own: ocr.tesseract_pdf (tesseract_pdf.c)
 * links poppler's glib API and cairo, and nothing else of the project does, so poppler, glib and
 * cairo are loaded only when the provider first sees a PDF (it requires the module then) and a
 * build without libpoppler-glib-dev still reads images. The module hands ocr.tesseract this
 * table of functions (inside a userdata of metatable TPDF_MT); the pool's workers call it.
 *
 * Threads: every call takes one process-wide lock inside the module. Each worker opens its own
 * document (poppler documents are not thread-safe), and the lock also covers what poppler and
 * its font code keep per process (GlobalParams, FreeType); rendering is a few per cent of a
 * page's recognition, so the workers rarely wait on it. Nothing here knows Lua, jobs or
 * leptonica. */
#ifndef OCR_TESSERACT_PDF_H
#define OCR_TESSERACT_PDF_H

#include <stddef.h>

#define TPDF_MT  "ocr.tesseract.pdf_renderer"
#define TPDF_ABI 1

typedef enum {
    TPDF_OK = 0,
    TPDF_DAMAGED,          /* not a PDF poppler can read: damaged, truncated */
    TPDF_NEEDS_PASSWORD,   /* encrypted, and no password given */
    TPDF_WRONG_PASSWORD,   /* encrypted, and the password given opens it not */
    TPDF_NOMEM
} tpdf_status;

typedef struct tpdf_doc tpdf_doc;

/* A rendered page: cairo's RGB24, one native-endian uint32 0x00RRGGBB per pixel. */
typedef struct {
    int width, height, stride;
    int gray;                        /* every pixel has R == G == B */
    const unsigned char *data;
    void *surface;                   /* the cairo surface that owns data */
} tpdf_raster;

/* A character's box in points, origin at the page's top left. */
typedef struct { double x1, y1, x2, y2; } tpdf_rect;

typedef struct {
    int abi;                         /* TPDF_ABI */
    const char *version;             /* poppler's */
    /* Opens a PDF held in memory (not copied: bytes must outlive the document). NULL with *st
     * and msg when it cannot be read or opened. */
    tpdf_doc *(*open)(const unsigned char *bytes, size_t len, const char *password,
                      tpdf_status *st, char *msg, size_t msglen);
    int (*page_count)(tpdf_doc *d);
    /* Page `page` (1-based)'s size in points, its rotation applied. 0, or -1 if unreadable. */
    int (*page_size)(tpdf_doc *d, int page, double *width, double *height);
    /* Renders page `page` onto white at `scale` pixels per point into r (width x height pixels,
     * the caller having checked them). 0, or -1 (damaged) or -2 (out of memory) with msg. */
    int (*render)(tpdf_doc *d, int page, int width, int height, double scale, tpdf_raster *r,
                  char *msg, size_t msglen);
    void (*raster_free)(tpdf_raster *r);
    /* The page's own text layer (UTF-8, lines ending in '\n') and one box per character of it;
     * *text NULL when the page has none. 0, or -1 when the page cannot be read. */
    int (*text)(tpdf_doc *d, int page, char **text, tpdf_rect **rects, unsigned *nrects);
    void (*text_free)(char *text, tpdf_rect *rects);
    void (*close)(tpdf_doc *d);
} tpdf_api;

#endif
