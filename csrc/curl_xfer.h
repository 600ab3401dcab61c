/* Internal interface of ocr.curl, shared by curl.c (request and response building, module
 * entry), curl_session.c (blocking requests on a kept-alive easy handle) and curl_multi.c
 * (non-blocking transfers for the concurrency layer).
 *
 * One transfer's C state is an ocr_xfer: malloc'd, owned first by a "holder" userdata on the Lua
 * stack (whose __gc frees it if a Lua error escapes while the request is being built), then by
 * the session call or the multi object, which free it explicitly on every path. */
#ifndef OCR_CURL_XFER_H
#define OCR_CURL_XFER_H

#include <stdio.h>
#include <curl/curl.h>
#include "compat.h"
#include "buffer.h"

#define OCR_CURL_SESSION_MT "ocr.curl.session"
#define OCR_CURL_MULTI_MT   "ocr.curl.multi"
#define OCR_CURL_HOLDER_MT  "ocr.curl.xfer"

/* Settings shared by sessions, multis and requests. A session or multi owns its strings
 * (owns_strings = 1, malloc'd copies); a request's effective settings borrow them. */
typedef struct {
    double timeout;             /* s, whole transfer */
    double connect_timeout;     /* s */
    double max_response_size;   /* bytes kept in memory */
    int    max_response_set;    /* set explicitly: then it also bounds saved downloads */
    int    max_download_set;    /* set explicitly: it alone bounds saved downloads */
    double max_download_size;   /* bytes written by save_to */
    const char *ca_file;        /* NULL: libcurl's default bundle */
    const char *proxy;          /* NULL: libcurl's default (environment); "" disables proxies */
    const char *user_agent;     /* NULL: "lua-ocr/<ver> libcurl/<ver>" */
    int    insecure;
    int    follow_redirects;
    long   max_redirects;
    int    owns_strings;
} ocr_curl_opts;

/* Why a callback stopped a transfer (libcurl only reports a generic code for these). */
enum {
    OCR_FAIL_NONE = 0,
    OCR_FAIL_TOO_LARGE,   /* body or headers over their bound */
    OCR_FAIL_NOMEM,       /* could not grow a buffer */
    OCR_FAIL_IO,          /* save_to: writing, truncating, syncing or renaming failed */
    OCR_FAIL_PROGRESS     /* on_progress raised an error */
};

/* Where the body of the current response goes: decided at its first byte. */
enum { OCR_SINK_NONE = 0, OCR_SINK_MEMORY, OCR_SINK_FILE };

typedef struct ocr_xfer ocr_xfer;
struct ocr_xfer {
    CURL *easy;
    int   owns_easy;                /* multi: the handle is cleaned up with the transfer */
    struct curl_slist *headers;
    curl_mime *mime;
    ocr_buffer form;                /* an in-memory form, encoded (see prep_form) */
    FILE *upload_fp;

    /* response being received (reset at every status line: redirects, 1xx) */
    long       status;
    ocr_buffer head;                /* raw header lines of the current response */
    ocr_buffer body;
    curl_off_t body_count;
    int        sink;
    size_t     mem_limit;
    curl_off_t file_limit;

    /* save_to */
    char *save_path;
    char *tmp_path;
    FILE *save_fp;
    int   saved;                    /* renamed into place */
    int   io_errno;

    int  fail;                      /* OCR_FAIL_* */
    char fail_msg[512];
    char errbuf[CURL_ERROR_SIZE];

    curl_off_t dltotal, dlnow, ultotal, ulnow;

    /* session only: Lua progress callback, called through lua_pcall on this thread */
    lua_State *L;
    int progress_idx;               /* absolute stack index of the user function */
    int tramp_idx;                  /* absolute stack index of ocr_xfer_progress_trampoline */

    /* finished */
    int      finalized;
    CURLcode code;

    /* multi bookkeeping */
    lua_Integer id;
    int         done;
    ocr_xfer   *next;
};

/* libcurl's global state, initialised once on first use (raises on failure). */
OCR_HIDDEN void ocr_curl_global_init(lua_State *L);

/* Defaults; reading an options table (strings copied when o->owns_strings); freeing. Raise
 * on a wrong type, an out-of-range value or an unknown key. */
OCR_HIDDEN void ocr_curl_opts_defaults(ocr_curl_opts *o);
OCR_HIDDEN void ocr_curl_opts_read(lua_State *L, int idx, ocr_curl_opts *o);
OCR_HIDDEN void ocr_curl_opts_free(ocr_curl_opts *o);
/* An options table (session or multi constructor) may hold only option keys. */
OCR_HIDDEN void ocr_curl_opts_check(lua_State *L, int idx);

/* Pushes a holder userdata owning a fresh zeroed transfer and returns the transfer. */
OCR_HIDDEN ocr_xfer *ocr_xfer_new(lua_State *L);
/* Frees the transfer held by the holder at idx now (or just forgets it when keep = 1,
 * because someone else took ownership). */
OCR_HIDDEN void ocr_xfer_release(lua_State *L, int idx, int keep);
/* Frees everything a transfer owns and the transfer itself. */
OCR_HIDDEN void ocr_xfer_destroy(ocr_xfer *x);
/* A session's one transfer, made ready for the next request: what the last request left (even
 * one that a raised error cut short: headers, form, temp file) is freed, the response buffers
 * are kept unless large. Allocates one when x is NULL; returns NULL when out of memory. */
OCR_HIDDEN ocr_xfer *ocr_xfer_recycle(ocr_xfer *x);

/* Sets up x->easy (already reset) from the request table at req. Raises on wrong types.
 * Returns 1 and pushes the body string (or nil) that must stay referenced until the transfer
 * ends; or returns 0 and pushes the message of an invalid_input error (nothing was sent). */
OCR_HIDDEN int ocr_xfer_prepare(lua_State *L, ocr_xfer *x, const ocr_curl_opts *defaults,
                                int req);

/* After the transfer ended (C only, never raises): closes files, renames or removes the
 * save_to temp file. Idempotent. */
OCR_HIDDEN void ocr_xfer_finalize(ocr_xfer *x, CURLcode code);

/* Pushes `res` (returns 1) or `nil, err` (returns 2) for a finalized transfer. */
OCR_HIDDEN int ocr_xfer_push_result(lua_State *L, ocr_xfer *x);

/* Pushes exactly nil and an error table whose message is fmt formatted (lua_pushfstring's
 * conversions), and returns 2: nothing else is left on the stack, so a caller that pushed an id
 * below may return 3. code < 0: no curl_code field. */
OCR_HIDDEN int ocr_curl_push_error(lua_State *L, const char *kind, long code, int sent,
                                   const char *fmt, ...);

/* lua_CFunction run under lua_pcall from the progress callback: (fn, xfer) -> fn(ev). */
OCR_HIDDEN int ocr_xfer_progress_trampoline(lua_State *L);

/* Per-file registration and constructors. */
OCR_HIDDEN void ocr_curl_session_register(lua_State *L);
OCR_HIDDEN int  ocr_curl_session_new(lua_State *L);
OCR_HIDDEN void ocr_curl_multi_register(lua_State *L);
OCR_HIDDEN int  ocr_curl_multi_new(lua_State *L);

#endif
