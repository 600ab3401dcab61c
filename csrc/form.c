/* multipart/form-data bodies shared by ocr.core and ocr.curl (see form.h). */
#define _GNU_SOURCE   /* memmem, getentropy, O_CLOEXEC: glibc, musl and the BSDs have them */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "form.h"
#include "bytes.h"

/* ---- parts ------------------------------------------------------------------------------- */

void ocr_form_defaults(ocr_form_part *p) {
    if (p->file != NULL) {
        size_t i = p->filel;
        if (p->filename == NULL) {
            while (i > 0 && p->file[i - 1] != '/') i--;
            p->filename = p->file + i;
            p->filenamel = p->filel - i;
        }
        p->body = "";   /* the hole the file's content goes into */
        p->bodyl = 0;
    }
    if (p->filename != NULL && p->ctype == NULL) {
        p->ctype = OCR_FORM_DEFAULT_TYPE;
        p->ctypel = sizeof OCR_FORM_DEFAULT_TYPE - 1;
    }
}

const char *ocr_form_check(const ocr_form_part *p, int crlf_escaped) {
    const char *crlf = crlf_escaped ? "\r\n" : "";
    if (p->namel == 0) return "'name' must not be empty";
    if (ocr_has_ctl(p->name, p->namel, crlf)) return "'name' contains a control character";
    if (p->filename && ocr_has_ctl(p->filename, p->filenamel, crlf))
        return "'filename' contains a control character";
    if (p->ctype && p->ctypel == 0) return "'content_type' must not be empty";
    if (p->ctype && ocr_has_ctl(p->ctype, p->ctypel, ""))
        return "'content_type' contains a control character";
    return NULL;
}

/* O_NONBLOCK: opening a FIFO must not hang (it is then refused as not a regular file); on a
 * regular file the flag does nothing. */
const char *ocr_form_probe(ocr_form_part *p) {
    struct stat st;
    int fd, e;
    if (memchr(p->file, '\0', p->filel) != NULL) return "the path contains a NUL byte";
    if ((fd = open(p->file, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0) return strerror(errno);
    e = fstat(fd, &st) != 0 ? errno : 0;
    close(fd);
    if (e != 0) return strerror(e);
    if (!S_ISREG(st.st_mode)) return "not a regular file";
    p->size = (unsigned long long)st.st_size;
    return NULL;
}

/* ---- boundary ---------------------------------------------------------------------------- */

/* A boundary need not be secret, but it must be unpredictable: a content that holds it would
 * end its part early, and a sender of crafted content (a document that is uploaded as it came)
 * must not be able to aim at it. So 128 bits come from the kernel's CSPRNG: getentropy(3)
 * (getrandom(2) on Linux) and /dev/urandom where that is missing. Not OpenSSL's RAND_bytes:
 * ocr.curl does not link libcrypto, and one syscall per form costs nothing next to a request. */
static int random_bytes(unsigned char *out, size_t n) {
    size_t got = 0;
    int fd;
    if (getentropy(out, n) == 0) return 1;
    if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0) return 0;
    while (got < n) {
        ssize_t r = read(fd, out + got, n - got);
        if (r <= 0 && !(r < 0 && errno == EINTR)) break;
        if (r > 0) got += (size_t)r;
    }
    close(fd);
    return got == n;
}

/* "----ocr" + 32 hex digits: all RFC 2046 bcharsnospace, and an RFC 2045 token (never quoted). */
static int random_boundary(char *out) {
    unsigned char rnd[16];
    if (!random_bytes(rnd, sizeof rnd)) return 0;
    memcpy(out, "----ocr", 7);
    ocr_hex_encode(rnd, sizeof rnd, out + 7);
    return 1;
}

int ocr_form_boundary(const ocr_form_part *p, int n, char *out) {
    int tries, hit = 0;
    for (tries = 0; tries < 5; tries++) {
        if (!random_boundary(out)) return -1;
        if ((hit = ocr_form_collision(p, n, out, OCR_FORM_BOUNDARY_LEN)) == 0) return 0;
    }
    return hit;
}

int ocr_form_collision(const ocr_form_part *p, int n, const char *bnd, size_t bl) {
    int i;
    for (i = 0; i < n; i++)
        if (bl == 0 || memmem(p[i].body, p[i].bodyl, bnd, bl) != NULL) return i + 1;
    return 0;
}

/* ---- size and bytes ---------------------------------------------------------------------- */

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

size_t ocr_form_size(const ocr_form_part *p, int n, size_t bl, unsigned long long *total) {
    size_t mem;
    unsigned long long t;
    int i;
    /* Measuring never reads the boundary's bytes, only its length. */
    mem = ocr_form_encode(NULL, 0, p, n, "", bl, NULL);
    t = mem;
    for (i = 0; i < n; i++)
        if (p[i].file != NULL) t = p[i].size > ULLONG_MAX - t ? ULLONG_MAX : t + p[i].size;
    *total = t;
    return mem;
}
