/* A growable byte buffer with a hard size limit. Every C-side accumulation (response bodies,
 * multipart bodies, XML text) goes through it so that no server or caller can make us grow
 * without bound, and so that there is exactly one place that checks for overflow. */
#ifndef OCR_BUFFER_H
#define OCR_BUFFER_H

#include <stddef.h>
#include "compat.h"

typedef struct {
    char  *data;
    size_t len;
    size_t cap;
    size_t limit;   /* 0 = no limit beyond SIZE_MAX */
} ocr_buffer;

/* Results of ocr_buffer_append. */
enum { OCR_BUF_OK = 0, OCR_BUF_NOMEM = 1, OCR_BUF_LIMIT = 2 };

OCR_HIDDEN void ocr_buffer_init(ocr_buffer *b, size_t limit);
OCR_HIDDEN int  ocr_buffer_append(ocr_buffer *b, const void *p, size_t n);
/* Makes room for n more bytes (len unchanged); the same results as append. */
OCR_HIDDEN int  ocr_buffer_reserve(ocr_buffer *b, size_t n);
OCR_HIDDEN int  ocr_buffer_appendstr(ocr_buffer *b, const char *s);
OCR_HIDDEN void ocr_buffer_free(ocr_buffer *b);

#endif
