/* Byte-string checks and transforms shared by ocr.core and ocr.curl (see bytes.h). */
#include <string.h>
#include "bytes.h"

static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int ocr_is_token(const char *s, size_t n) {
    size_t i;
    if (n == 0) return 0;
    for (i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return 0;
    return 1;
}

int ocr_has_ctl(const char *s, size_t n, const char *allowed) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 || c == 0x7f) && (c == '\0' || strchr(allowed, c) == NULL)) return 1;
    }
    return 0;
}

int ocr_is_field_value(const char *s, size_t n) {
    return !ocr_has_ctl(s, n, "\t");
}

void ocr_lower(char *dst, const char *src, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        dst[i] = (src[i] >= 'A' && src[i] <= 'Z') ? (char)(src[i] - 'A' + 'a') : src[i];
}

void ocr_hex_encode(const unsigned char *src, size_t n, char *dst) {
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 0x0f];
    }
}
