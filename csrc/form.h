/* multipart/form-data bodies (RFC 7578): the one form module of lua-ocr. ocr.core.multipart (a
 * body in memory), ocr.core.multipart_plan (the bytes around files a transport streams) and
 * ocr.curl's request.form all go through it, so they agree on which parts are valid, on the
 * defaults, on the boundary and on every byte.
 * No Lua here: callers read their parts from Lua (each with its own rules and messages) into
 * ocr_form_part and own every pointer. */
#ifndef OCR_FORM_H
#define OCR_FORM_H

#include <stddef.h>
#include "compat.h"

#define OCR_FORM_MAX_BOUNDARY 70      /* RFC 2046 §5.1.1 */
#define OCR_FORM_BOUNDARY_LEN 39      /* the random boundaries: "----ocr" + 32 hex digits */
#define OCR_FORM_MAX_PARTS    10000
#define OCR_FORM_DEFAULT_TYPE "application/octet-stream"

typedef struct {
    const char *name;     size_t namel;
    const char *filename; size_t filenamel;   /* NULL: no filename= parameter */
    const char *ctype;    size_t ctypel;      /* NULL: no Content-Type line */
    const char *body;     size_t bodyl;       /* the content; empty for a file part */
    const char *file;     size_t filel;       /* a file part's path, else NULL */
    unsigned long long size;                  /* a file part's size, from ocr_form_probe */
} ocr_form_part;

/* ---- parts ---- */

/* Fills what a part leaves out, as browsers and libcurl do: a file part's filename is the last
 * component of its path; a part with a filename but no content type is
 * application/octet-stream (RFC 7578 §4.4). */
OCR_HIDDEN void ocr_form_defaults(ocr_form_part *p);

/* Why the part's texts cannot go into its header lines, or NULL: the name must not be empty,
 * the content type neither, and none holds a control character. CR and LF in a name or filename
 * are refused, or allowed when crlf_escaped (the encoder writes them as %0D and %0A, and '"' as
 * %22, as browsers do). The answer reads "'<field>' <problem>". Called before
 * ocr_form_defaults: only the caller's own texts are checked, not a filename taken from a path
 * (ocr_form_probe refuses a path holding a NUL; the rest of a name on disk is sent as it is). */
OCR_HIDDEN const char *ocr_form_check(const ocr_form_part *p, int crlf_escaped);

/* Opens a file part's file as the transport will read it, to learn that it is a readable regular
 * file and its size (into p->size): NULL, or why not. Never hangs on a FIFO. */
OCR_HIDDEN const char *ocr_form_probe(ocr_form_part *p);

/* ---- boundary ---- */

/* Draws a random boundary into out (OCR_FORM_BOUNDARY_LEN bytes) that no content held in memory
 * contains, drawing again while one does. Returns 0; the 1-based part whose content still held
 * it after five draws; or -1 when the system gave no random bytes. */
OCR_HIDDEN int ocr_form_boundary(const ocr_form_part *p, int n, char *out);

/* 1-based index of the first part whose content in memory holds the boundary, 0 when none
 * does (an empty boundary is held by every part). */
OCR_HIDDEN int ocr_form_collision(const ocr_form_part *p, int n, const char *boundary, size_t bl);

/* ---- size and bytes ---- */

/* The length of the encoded body without the files' contents (what ocr_form_encode writes),
 * saturating at (size_t)-1; *total gets the whole body's length, files included, saturating
 * at ULLONG_MAX. Only the boundary's length matters. */
OCR_HIDDEN size_t ocr_form_size(const ocr_form_part *p, int n, size_t bl,
                                unsigned long long *total);

/* Writes the body, each file part's content left out, into dst (at most cap bytes) and returns
 * its full length (as ocr_form_size; nothing but that is written when it exceeds cap). When
 * starts is not NULL, starts[i] gets the offset at which part i's content begins: a file's
 * content goes there. */
OCR_HIDDEN size_t ocr_form_encode(char *dst, size_t cap, const ocr_form_part *p, int n,
                                  const char *boundary, size_t bl, size_t *starts);

#endif
