/* ocr.curl request bodies: a string (sent from the Lua string itself), a form, or upload_file.
 *
 * A form is built one way: its parts are checked, given their defaults, measured and encoded by
 * the form module (form.c), with the same boundary generator and the same bytes as
 * ocr.core.multipart_plan. Without file parts the encoded bytes are the whole body, handed to
 * libcurl as one buffer. With file parts they are the bytes around the files' contents, and the
 * reader below streams them with the files inserted where they go, so a file of any size costs
 * a fixed amount of memory. upload_file is the same reader over no bytes and one file.
 * curl_mime is not used: it would be a second encoder (and a second boundary generator) whose
 * bytes the form module's would have to match. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "curl_xfer.h"
#include "args.h"
#include "form.h"

#define PART_KEYS(X) X(PK_NAME, "name") X(PK_VALUE, "value") X(PK_DATA, "data") \
    X(PK_FILE, "file") X(PK_FILENAME, "filename") X(PK_CONTENT_TYPE, "content_type")
#define KEY_NAME(id, name) name,
enum { PART_KEYS(OCR_KEY_ENUM) PK_COUNT };
static const char *const part_keys[] = { PART_KEYS(KEY_NAME) NULL };

/* ---- the kind of body --------------------------------------------------------------------- */

void ocr_prep_body_kind(lua_State *L, ocr_prep *p) {
    int count = 0, type;
    type = lua_type(L, p->base + 1);
    if (type == LUA_TSTRING) {
        p->kind = OCR_BODY_STRING;
        count++;
    } else if (type != LUA_TNIL) {
        luaL_error(L, "ocr.curl: request.body must be a string, got %s", lua_typename(L, type));
    }
    type = OCR_PRESENT(p, RK_FORM) ? ocr_rawfield(L, p->req, "form") : (lua_pushnil(L), LUA_TNIL);
    if (type == LUA_TTABLE) {
        p->kind = OCR_BODY_FORM;
        p->form_idx = lua_gettop(L);   /* stays on the stack */
        count++;
    } else if (type != LUA_TNIL) {
        luaL_error(L, "ocr.curl: request.form must be a table, got %s", lua_typename(L, type));
    }
    type = OCR_PRESENT(p, RK_UPLOAD_FILE) ? ocr_rawfield(L, p->req, "upload_file") : LUA_TNIL;
    if (type != LUA_TNIL) lua_pop(L, 1);
    if (type == LUA_TSTRING) {
        p->kind = OCR_BODY_FILE;
        count++;
    } else if (type != LUA_TNIL) {
        luaL_error(L, "ocr.curl: request.upload_file must be a string, got %s",
                   lua_typename(L, type));
    }
    if (count > 1)
        luaL_error(L, "ocr.curl: request.body, request.form and request.upload_file are "
                      "mutually exclusive");
}

/* ---- streaming reader --------------------------------------------------------------------- */

/* Segment s of a streamed body: even s = 2k, the bytes of x->form before files[k] (or after the
 * last file); odd s = 2k+1, the content of files[k]. */
static curl_off_t seg_len(const ocr_xfer *x, int s) {
    int k = s / 2;
    size_t from, to;
    if (s % 2) return x->files[k].size;
    from = k > 0 ? x->files[k - 1].at : 0;
    to = k < x->nfiles ? x->files[k].at : x->form.len;
    return (curl_off_t)(to - from);
}

/* Stops the transfer: the file could not be opened (why), or it is not the size it had when
 * the body was measured (why NULL), so the body would not match its Content-Length. */
static size_t read_failed(ocr_xfer *x, const char *path, const char *why) {
    if (why) snprintf(x->fail_msg, sizeof x->fail_msg, "cannot read '%s': %s", path, why);
    else snprintf(x->fail_msg, sizeof x->fail_msg, "'%s' changed size while it was sent", path);
    x->fail = OCR_FAIL_INPUT;
    return CURL_READFUNC_ABORT;
}

/* Opens the current file segment's file at the current offset. */
static int open_seg(ocr_xfer *x) {
    const ocr_body_file *f = &x->files[x->seg / 2];
    if ((x->read_fp = fopen(f->path, "rb")) == NULL) return 0;
    if (x->seg_off > 0 && fseeko(x->read_fp, (off_t)x->seg_off, SEEK_SET) != 0) return 0;
    return 1;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud) {
    ocr_xfer *x = ud;
    size_t room = size * nitems, got = 0;
    while (got < room && x->seg <= 2 * x->nfiles) {
        curl_off_t left = seg_len(x, x->seg) - x->seg_off;
        size_t want = (curl_off_t)(room - got) < left ? room - got : (size_t)left;
        if (want == 0) {
            /* an empty segment: upload_file's bytes around its file, or a file of 0 bytes */
        } else if (x->seg % 2 == 0) {
            size_t from = x->seg > 0 ? x->files[x->seg / 2 - 1].at : 0;
            memcpy(buf + got, x->form.data + from + x->seg_off, want);
        } else {
            const char *path = x->files[x->seg / 2].path;
            size_t r;
            if (x->read_fp == NULL && !open_seg(x))
                return read_failed(x, path, strerror(errno));
            r = fread(buf + got, 1, want, x->read_fp);
            if (r == 0)
                return read_failed(x, path, NULL);
            want = r;
        }
        got += want;
        x->seg_off += (curl_off_t)want;
        if (x->seg_off == seg_len(x, x->seg)) {
            if (x->read_fp != NULL) {
                int more = fgetc(x->read_fp) != EOF;   /* what was measured is what is sent */
                fclose(x->read_fp);
                x->read_fp = NULL;
                if (more)
                    return read_failed(x, x->files[x->seg / 2].path, NULL);
            }
            x->seg++;
            x->seg_off = 0;
        }
    }
    return got;
}

/* libcurl rewinds the body to send it again: on a redirect that keeps the method, or on a
 * reused connection that died before the answer. */
static int on_seek(void *ud, curl_off_t offset, int origin) {
    ocr_xfer *x = ud;
    int s;
    if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
    if (x->read_fp) fclose(x->read_fp);
    x->read_fp = NULL;
    for (s = 0; s < 2 * x->nfiles && offset >= seg_len(x, s); s++) offset -= seg_len(x, s);
    if (offset > seg_len(x, s)) return CURL_SEEKFUNC_FAIL;
    x->seg = s;
    x->seg_off = offset;
    return CURL_SEEKFUNC_OK;
}

/* Copies the file parts' paths and places into x->files (one allocation). */
static void keep_files(lua_State *L, ocr_xfer *x, const ocr_form_part *parts, const size_t *at,
                       int n, int nfiles) {
    size_t bytes = (size_t)nfiles * sizeof *x->files;
    char *s;
    int i, k = 0;
    for (i = 0; i < n; i++)
        if (parts[i].file) bytes += parts[i].filel + 1;
    if ((x->files = malloc(bytes)) == NULL) luaL_error(L, "ocr.curl: out of memory");
    s = (char *)(x->files + nfiles);
    for (i = 0; i < n; i++) {
        if (parts[i].file == NULL) continue;
        x->files[k].at = at[i];
        x->files[k].size = (curl_off_t)parts[i].size;
        x->files[k].path = s;
        memcpy(s, parts[i].file, parts[i].filel);
        s[parts[i].filel] = '\0';
        s += parts[i].filel + 1;
        k++;
    }
    x->nfiles = nfiles;
}

/* Hands libcurl the body: x->form's bytes, and the files streamed by the reader if any. */
static void send_body(lua_State *L, ocr_xfer *x, curl_off_t total, int upload) {
    if (x->nfiles == 0) {
        OCR_XSET(L, x, CURLOPT_POSTFIELDSIZE_LARGE, total);
        OCR_XSET(L, x, CURLOPT_POSTFIELDS, x->form.data ? x->form.data : "");
        return;
    }
    x->seg = 0;
    x->seg_off = 0;
    OCR_XSET(L, x, CURLOPT_READFUNCTION, on_read);
    OCR_XSET(L, x, CURLOPT_READDATA, (void *)x);
    OCR_XSET(L, x, CURLOPT_SEEKFUNCTION, on_seek);
    OCR_XSET(L, x, CURLOPT_SEEKDATA, (void *)x);
    if (upload) {
        OCR_XSET(L, x, CURLOPT_UPLOAD, 1L);
        OCR_XSET(L, x, CURLOPT_INFILESIZE_LARGE, total);
    } else {
        OCR_XSET(L, x, CURLOPT_POST, 1L);
        OCR_XSET(L, x, CURLOPT_POSTFIELDSIZE_LARGE, total);
    }
}

/* ---- forms -------------------------------------------------------------------------------- */

static const char *part_string(lua_State *L, int t, int i, const char *k, size_t *n) {
    int type = ocr_rawfield(L, t, k);
    if (type == LUA_TSTRING) return lua_tolstring(L, -1, n);
    if (type != LUA_TNIL)
        luaL_error(L, "ocr.curl: request.form[%d].%s must be a string, got %s", i, k,
                   lua_typename(L, type));
    return NULL;  /* the nil stays pushed, like a string would: callers pop a fixed count */
}

/* Reads and checks request.form[i] (the table on top of the stack) into *part. The strings stay
 * referenced by the part table, itself anchored by the request, so only pointers are kept. */
static int read_part(lua_State *L, ocr_prep *p, int i, ocr_form_part *part) {
    const char *why, *value, *data;
    size_t vn = 0, dn = 0;
    int t = lua_gettop(L);
    unsigned present;
    luaL_checkstack(L, 12, "ocr.curl: form part");
    if (lua_type(L, t) != LUA_TTABLE)
        luaL_error(L, "ocr.curl: request.form[%d] must be a table, got %s", i, luaL_typename(L, t));
    present = ocr_curl_check_keys(L, t, part_keys, "request.form part");
    memset(part, 0, sizeof *part);
#define PART_STRING(k, len) \
    ((present & OCR_BIT(k)) ? part_string(L, t, i, part_keys[k], len) : NULL)
    part->name = PART_STRING(PK_NAME, &part->namel);
    value = PART_STRING(PK_VALUE, &vn);
    data = PART_STRING(PK_DATA, &dn);
    part->file = PART_STRING(PK_FILE, &part->filel);
    part->filename = PART_STRING(PK_FILENAME, &part->filenamel);
    part->ctype = PART_STRING(PK_CONTENT_TYPE, &part->ctypel);
#undef PART_STRING
    part->body = value ? value : data;
    part->bodyl = value ? vn : dn;
    if (part->name == NULL) luaL_error(L, "ocr.curl: request.form[%d].name is required", i);
    if ((value != NULL) + (data != NULL) + (part->file != NULL) != 1)
        luaL_error(L, "ocr.curl: request.form[%d] needs exactly one of value, data or file", i);
    if ((why = ocr_form_check(part, 0)) != NULL)
        return ocr_prep_invalid(L, p, "form[%d]: %s", i, why);
    ocr_form_defaults(part);
    if (part->file && (why = ocr_form_probe(part)) != NULL)
        return ocr_prep_invalid(L, p, "form[%d]: cannot read file '%s': %s", i, part->file, why);
    lua_settop(L, t);
    return 1;
}

/* The Content-Type header: the caller's type (multipart/form-data unless given), then the
 * boundary, as libcurl does for its own forms. The caller's value was checked as a header value
 * (no NUL) and is a Lua string (NUL-terminated), anchored with the headers table. */
static void form_content_type(lua_State *L, ocr_xfer *x, const ocr_prep *p, const char *bnd) {
    lua_pushfstring(L, "Content-Type: %s; boundary=%s",
                    p->ctype ? p->ctype : "multipart/form-data", bnd);
    ocr_prep_header(L, x, lua_tostring(L, -1));
    lua_pop(L, 1);
    OCR_XSET(L, x, CURLOPT_HTTPHEADER, x->headers);
}

static int prep_form(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    size_t len = lua_rawlen(L, p->form_idx), mem, *at;
    int i, n, hit, nfiles = 0;
    ocr_form_part *parts;
    unsigned long long total;
    char bnd[OCR_FORM_BOUNDARY_LEN + 1];
    if (len > OCR_FORM_MAX_PARTS)
        return ocr_prep_invalid(L, p, "form: more than %d parts", OCR_FORM_MAX_PARTS);
    n = (int)len;
    /* a userdata: freed by the GC even when a part raises an error */
    parts = lua_newuserdata(L, (size_t)(n > 0 ? n : 1) * (sizeof *parts + sizeof *at));
    at = (size_t *)(parts + (n > 0 ? n : 1));
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, p->form_idx, i + 1);
        if (!read_part(L, p, i + 1, &parts[i])) return 0;
        lua_pop(L, 1);
        nfiles += parts[i].file != NULL;
    }
    if ((hit = ocr_form_boundary(parts, n, bnd)) != 0)
        return hit < 0 ? ocr_prep_invalid(L, p, "form: no random bytes for a boundary")
                       : ocr_prep_invalid(L, p, "form[%d]: the content holds every boundary "
                                                "drawn", hit);
    bnd[OCR_FORM_BOUNDARY_LEN] = '\0';
    mem = ocr_form_size(parts, n, OCR_FORM_BOUNDARY_LEN, &total);
    x->form.len = 0;
    if (mem == (size_t)-1 || total > (unsigned long long)INT64_MAX ||
        ocr_buffer_reserve(&x->form, mem) != OCR_BUF_OK)
        luaL_error(L, "ocr.curl: out of memory for a %d-part form", n);
    if (ocr_form_encode(x->form.data, mem, parts, n, bnd, OCR_FORM_BOUNDARY_LEN, at) != mem)
        luaL_error(L, "ocr.curl: internal error: form size changed while encoding");
    x->form.len = mem;
    if (nfiles > 0) keep_files(L, x, parts, at, n, nfiles);
    form_content_type(L, x, p, bnd);
    send_body(L, x, (curl_off_t)total, 0);
    lua_pop(L, 1);
    return 1;
}

/* ---- upload_file -------------------------------------------------------------------------- */

static int prep_upload(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    ocr_form_part file;   /* a file probed and kept as a form's file part is */
    size_t at = 0;
    const char *why;
    memset(&file, 0, sizeof file);
    file.file = ocr_prep_string(L, p, "upload_file", &file.filel, 1);
    if (memchr(file.file, '\0', file.filel) != NULL)
        return ocr_prep_invalid(L, p, "upload_file: contains a NUL byte");
    if ((why = ocr_form_probe(&file)) != NULL)
        return ocr_prep_invalid(L, p, "upload_file: cannot read '%s': %s", file.file, why);
    x->form.len = 0;
    keep_files(L, x, &file, &at, 1, 1);
    send_body(L, x, (curl_off_t)file.size, 1);
    lua_pop(L, 1);
    return 1;
}

int ocr_prep_body(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    size_t n;
    const char *s;
    switch (p->kind) {
    case OCR_BODY_STRING:
        s = lua_tolstring(L, p->base + 1, &n);   /* anchored at base+1 for the transfer */
        OCR_XSET(L, x, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        OCR_XSET(L, x, CURLOPT_POSTFIELDS, s);
        return 1;
    case OCR_BODY_FORM:
        return prep_form(L, x, p);
    case OCR_BODY_FILE:
        return prep_upload(L, x, p);
    default:
        return 1;
    }
}
