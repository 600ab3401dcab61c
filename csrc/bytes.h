/* Byte-string checks and transforms that ocr.core and ocr.curl both need, each written once:
 * the one validator of HTTP header names and values (RFC 9110 tokens and field values, used for
 * request headers, methods, the user agent and multipart part headers), ASCII lowercasing and
 * lowercase hex. Plain C, no Lua. */
#ifndef OCR_BYTES_H
#define OCR_BYTES_H

#include <stddef.h>
#include "compat.h"

/* A non-empty RFC 9110 token: header names, methods. */
OCR_HIDDEN int ocr_is_token(const char *s, size_t n);

/* A header value: no control character but HTAB, so no CR, LF or NUL (no header injection). */
OCR_HIDDEN int ocr_is_field_value(const char *s, size_t n);

/* Whether s holds a control character (0x00-0x1f, 0x7f) other than those in allowed. */
OCR_HIDDEN int ocr_has_ctl(const char *s, size_t n, const char *allowed);

/* dst[i] = ASCII-lowercase(src[i]) for n bytes (dst may be src). */
OCR_HIDDEN void ocr_lower(char *dst, const char *src, size_t n);

/* Hex-encodes n bytes of src into dst (2n bytes, lowercase; not NUL-terminated). */
OCR_HIDDEN void ocr_hex_encode(const unsigned char *src, size_t n, char *dst);

#endif
