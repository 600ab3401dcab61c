/* What can be known of an encoded image from its bytes alone, before a decoder sees them: a PDF
 * (not an image), how many pages a TIFF has, and whether a TIFF, PNG or JPEG was cut short. Pure functions (no
 * leptonica, no tesseract), so they are fuzzed directly (ocr.tesseract's _check_image). */
#ifndef OCR_IMAGE_CHECK_H
#define OCR_IMAGE_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include "compat.h"

typedef enum {
    IC_OK = 0,
    IC_INVALID,     /* cut short, a loop of TIFF directories, a TIFF without pages */
    IC_TOO_LARGE,   /* more TIFF pages than max_pages */
    IC_UNSUPPORTED  /* a PDF */
} ic_status;

/* Checks the formats it knows by their magic numbers and passes anything else (IC_OK): a PDF is
 * refused (tesseract reads images; a PDF's pages must be rendered first), a TIFF's
 * directory chain is walked and its pages counted into *tiff_pages (0 for other formats), a
 * PNG's chunks are walked to IEND, a JPEG's segments to its first scan and its end-of-image
 * marker looked for after it. On failure, msg says what is wrong. */
OCR_HIDDEN ic_status ic_check(const unsigned char *data, size_t len, int max_pages, int *tiff_pages,
                              char *msg, size_t msglen);

/* A TIFF page as its directory says: where the directory is (what leptonica's
 * pixReadMemFromMultipageTiff takes to decode that page) and the page's size. */
typedef struct {
    uint64_t offset;
    uint32_t width, height;
} ic_tiff_page;

/* Fills pages[0..n-1] for a TIFF in which ic_check counted n pages, walking the chain once, so
 * every page's size is known before any is decoded and any page can be decoded on its own.
 * IC_INVALID (msg) when a directory has no usable ImageWidth or ImageLength. */
OCR_HIDDEN ic_status ic_tiff_pages(const unsigned char *data, size_t len, ic_tiff_page *pages,
                                   int n, char *msg, size_t msglen);

#endif
