/* multipart/form-data bodies (RFC 7578) encoded in plain C: the one encoder behind
 * ocr.core.multipart (for Lua callers), ocr.core.multipart_plan (the same bytes around files a
 * transport streams) and ocr.curl's in-memory forms (sent as one buffer instead of through
 * curl_mime, which costs a CSPRNG call and a part-by-part reader per request).
 * No Lua here: callers validate their parts and own every pointer. */
#ifndef OCR_FORM_H
#define OCR_FORM_H

#include <stddef.h>
#include "compat.h"

#define OCR_FORM_MAX_BOUNDARY 70   /* RFC 2046 §5.1.1 */

typedef struct {
    const char *name;     size_t namel;
    const char *filename; size_t filenamel;   /* NULL: no filename= parameter */
    const char *ctype;    size_t ctypel;      /* NULL: no Content-Type line */
    const char *body;     size_t bodyl;
} ocr_form_part;

/* Writes the body into dst (at most cap bytes) and returns its full length; with dst == NULL it
 * only measures. The length saturates at (size_t)-1 instead of wrapping. */
OCR_HIDDEN size_t ocr_form_encode(char *dst, size_t cap, const ocr_form_part *p, int n,
                                  const char *boundary, size_t bl);

/* The same, and stores in starts[i] (n entries) the offset at which part i's content begins in
 * the output: a caller that leaves some contents out of p (empty bodies) and sends them from
 * elsewhere, such as ocr.core.multipart_plan's files, splits the output there. */
OCR_HIDDEN size_t ocr_form_encode_at(char *dst, size_t cap, const ocr_form_part *p, int n,
                                     const char *boundary, size_t bl, size_t *starts);

/* 1-based index of the first part whose body contains the boundary, 0 when none does. */
OCR_HIDDEN int ocr_form_collision(const ocr_form_part *p, int n, const char *boundary, size_t bl);

#endif
