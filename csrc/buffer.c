#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "buffer.h"

void ocr_buffer_init(ocr_buffer *b, size_t limit) {
    b->data = NULL;
    b->len = b->cap = 0;
    b->limit = limit;
}

int ocr_buffer_reserve(ocr_buffer *b, size_t n) {
    if (n > SIZE_MAX - b->len) return OCR_BUF_LIMIT;
    size_t need = b->len + n;
    if (b->limit && need > b->limit) return OCR_BUF_LIMIT;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (b->limit && cap > b->limit) cap = b->limit;
        char *d = realloc(b->data, cap);
        if (d == NULL) return OCR_BUF_NOMEM;
        b->data = d;
        b->cap = cap;
    }
    return OCR_BUF_OK;
}

int ocr_buffer_append(ocr_buffer *b, const void *p, size_t n) {
    int rc;
    if (n == 0) return OCR_BUF_OK;
    if ((rc = ocr_buffer_reserve(b, n)) != OCR_BUF_OK) return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return OCR_BUF_OK;
}

int ocr_buffer_appendstr(ocr_buffer *b, const char *s) {
    return ocr_buffer_append(b, s, strlen(s));
}

void ocr_buffer_free(ocr_buffer *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
