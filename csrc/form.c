/* multipart/form-data encoding shared by ocr.core and ocr.curl (see form.h). */
#define _GNU_SOURCE   /* memmem: glibc, musl, the BSDs and macOS have it; linear time in glibc */
#include <string.h>
#include "form.h"

/* A writer that only counts when dst is NULL; counting saturates instead of wrapping. */
typedef struct {
    char  *dst;
    size_t len;
    size_t cap;
} writer;

static void put(writer *w, const char *p, size_t n) {
    if (w->dst == NULL || n > w->cap - w->len) {   /* measuring, or no room: count only */
        w->len = (n > (size_t)-1 - w->len) ? (size_t)-1 : w->len + n;
        w->dst = NULL;                              /* once short, never write a torn body */
        return;
    }
    memcpy(w->dst + w->len, p, n);
    w->len += n;
}

#define PUT_LIT(w, s) put((w), (s), sizeof(s) - 1)

/* Quoted-string contents of name= and filename=. RFC 7578 §4.2 leaves the escaping of these to
 * the HTML form-submission algorithm, and WHATWG (like every current browser, and libcurl)
 * percent-escapes exactly '"' as %22, CR as %0D and LF as %0A, leaving other bytes -- UTF-8
 * included -- raw. Backslash-escaping is not used: servers do not agree on undoing it. */
static void put_escaped(writer *w, const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] != '"' && s[run] != '\r' && s[run] != '\n') run++;
        put(w, s + i, run - i);
        if (run < n) {
            if (s[run] == '"') PUT_LIT(w, "%22");
            else if (s[run] == '\r') PUT_LIT(w, "%0D");
            else PUT_LIT(w, "%0A");
            run++;
        }
        i = run;
    }
}

size_t ocr_form_encode(char *dst, size_t cap, const ocr_form_part *p, int n,
                       const char *bnd, size_t bl) {
    return ocr_form_encode_at(dst, cap, p, n, bnd, bl, NULL);
}

size_t ocr_form_encode_at(char *dst, size_t cap, const ocr_form_part *p, int n,
                          const char *bnd, size_t bl, size_t *starts) {
    writer w;
    int i;
    w.dst = dst;
    w.len = 0;
    w.cap = dst ? cap : 0;
    for (i = 0; i < n; i++) {
        PUT_LIT(&w, "--");
        put(&w, bnd, bl);
        PUT_LIT(&w, "\r\nContent-Disposition: form-data; name=\"");
        put_escaped(&w, p[i].name, p[i].namel);
        PUT_LIT(&w, "\"");
        if (p[i].filename != NULL) {
            PUT_LIT(&w, "; filename=\"");
            put_escaped(&w, p[i].filename, p[i].filenamel);
            PUT_LIT(&w, "\"");
        }
        if (p[i].ctype != NULL) {
            PUT_LIT(&w, "\r\nContent-Type: ");
            put(&w, p[i].ctype, p[i].ctypel);
        }
        PUT_LIT(&w, "\r\n\r\n");
        if (starts != NULL) starts[i] = w.len;
        put(&w, p[i].body, p[i].bodyl);
        PUT_LIT(&w, "\r\n");
    }
    PUT_LIT(&w, "--");
    put(&w, bnd, bl);
    PUT_LIT(&w, "--\r\n");
    return w.len;
}

int ocr_form_collision(const ocr_form_part *p, int n, const char *bnd, size_t bl) {
    int i;
    for (i = 0; i < n; i++)
        if (bl == 0 || memmem(p[i].body, p[i].bodyl, bnd, bl) != NULL) return i + 1;
    return 0;
}
