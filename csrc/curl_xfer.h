/* Internal interface of ocr.curl, one file per job:
 *   curl.c           the module entry: libcurl's global state, process-wide settings
 *   curl_opts.c      the keys a table may hold; options (timeouts, limits, TLS, proxy) read
 *   curl_xfer.c      one transfer's lifetime: allocation, recycling, finishing save_to
 *   curl_request.c   a request table turned into libcurl options: url, method, headers, save_to
 *   curl_body.c      request bodies: a string, a form (through form.c), upload_file; the reader
 *                    that streams files
 *   curl_response.c  receiving: the header, write and progress callbacks; results and errors
 *                    pushed to Lua
 *   curl_session.c   blocking requests on a kept-alive easy handle
 *   curl_multi.c     non-blocking transfers for the concurrency layer
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

/* ---- options (curl_opts.c) ----------------------------------------------------------------- */

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

/* The keys each table may hold, each list written once: the name arrays and the index enums are
 * generated from it, so an index always names its entry. A request holds its own keys and every
 * option key (per-request overrides of the session's or multi's options). */
#define OCR_OPTION_KEYS(X) X(OK_TIMEOUT, "timeout") X(OK_CONNECT_TIMEOUT, "connect_timeout") \
    X(OK_MAX_RESPONSE, "max_response_size") X(OK_MAX_DOWNLOAD, "max_download_size") \
    X(OK_CA_FILE, "ca_file") X(OK_INSECURE, "insecure") X(OK_PROXY, "proxy") \
    X(OK_USER_AGENT, "user_agent") X(OK_FOLLOW, "follow_redirects") \
    X(OK_MAX_REDIRECTS, "max_redirects")
#define OCR_REQUEST_KEYS(X) X(RK_METHOD, "method") X(RK_URL, "url") X(RK_HEADERS, "headers") \
    X(RK_BODY, "body") X(RK_FORM, "form") X(RK_UPLOAD_FILE, "upload_file") \
    X(RK_SAVE_TO, "save_to") X(RK_ON_PROGRESS, "on_progress") X(RK_FRESH_CONNECT, "fresh_connect")

#define OCR_KEY_ENUM(id, name) id,
enum { OCR_OPTION_KEYS(OCR_KEY_ENUM) OK_COUNT };
enum { OCR_REQUEST_KEYS(OCR_KEY_ENUM) RK_OPTIONS };   /* RK_OPTIONS: where option keys start */
OCR_HIDDEN extern const char *const ocr_curl_request_keys[];
#define OCR_BIT(i) (1u << (i))

/* Refuses (raises) any key of the table at t (absolute) not in allowed; returns which ones are
 * present (bit i for allowed[i]). what names the table in the message. */
OCR_HIDDEN unsigned ocr_curl_check_keys(lua_State *L, int t, const char *const *allowed,
                                        const char *what);

/* Defaults; reading the options whose bit (OK_*) is set in present from the table at t
 * (absolute; strings copied when o->owns_strings, else left on the stack to anchor them);
 * freeing. Raise on a wrong type or an out-of-range value. */
OCR_HIDDEN void ocr_curl_opts_defaults(ocr_curl_opts *o);
OCR_HIDDEN void ocr_curl_opts_read(lua_State *L, int t, ocr_curl_opts *o, unsigned present);
OCR_HIDDEN void ocr_curl_opts_free(ocr_curl_opts *o);
/* The options of a session or multi: argument 1 (nil or a table of option keys only) into o,
 * which then owns its strings. Call once the object's __gc can free them. */
OCR_HIDDEN void ocr_curl_opts_arg(lua_State *L, ocr_curl_opts *o);
/* A boolean field (nil leaves *out alone); raises on another type. */
OCR_HIDDEN void ocr_curl_read_bool(lua_State *L, int t, const char *k, int *out);

/* ---- one transfer (curl_xfer.c) ------------------------------------------------------------- */

/* Why a callback stopped a transfer (libcurl only reports a generic code for these). */
enum {
    OCR_FAIL_NONE = 0,
    OCR_FAIL_TOO_LARGE,   /* body or headers over their bound */
    OCR_FAIL_NOMEM,       /* could not grow a buffer */
    OCR_FAIL_IO,          /* save_to: writing, truncating, syncing or renaming failed */
    OCR_FAIL_INPUT        /* on_progress raised, or a file being sent could not be read whole:
                             fail_msg says which */
};

/* Where the body of the current response goes: decided at its first byte. */
enum { OCR_SINK_NONE = 0, OCR_SINK_MEMORY, OCR_SINK_FILE };

/* A file whose content a streamed request body holds: at offset `at` of the in-memory bytes. */
typedef struct {
    size_t      at;
    curl_off_t  size;
    char       *path;
} ocr_body_file;

typedef struct ocr_xfer ocr_xfer;
struct ocr_xfer {
    CURL *easy;
    int   owns_easy;                /* multi: the handle is cleaned up with the transfer */
    struct curl_slist *headers;

    /* request body (curl_body.c): an encoded form, or a streamed body = form's bytes with the
     * files' contents inserted where they go */
    ocr_buffer     form;
    ocr_body_file *files;           /* malloc'd with their paths; NULL: nothing streamed */
    int            nfiles;
    FILE          *read_fp;         /* the file being read */
    int            seg;             /* reader: 2k the bytes before files[k], 2k+1 files[k] */
    curl_off_t     seg_off;         /* reader: offset in that segment */

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

/* Pushes a holder userdata owning a fresh zeroed transfer and returns the transfer. */
OCR_HIDDEN ocr_xfer *ocr_xfer_new(lua_State *L);
/* Frees the transfer held by the holder at idx now (or just forgets it when keep = 1,
 * because someone else took ownership). */
OCR_HIDDEN void ocr_xfer_release(lua_State *L, int idx, int keep);
/* The holder's __gc. */
OCR_HIDDEN int ocr_xfer_holder_gc(lua_State *L);
/* Frees everything a transfer owns and the transfer itself. */
OCR_HIDDEN void ocr_xfer_destroy(ocr_xfer *x);
/* A session's one transfer, made ready for the next request: what the last request left (even
 * one that a raised error cut short: headers, form, temp file) is freed, the response buffers
 * are kept unless large. Allocates one when x is NULL; returns NULL when out of memory. */
OCR_HIDDEN ocr_xfer *ocr_xfer_recycle(ocr_xfer *x);
/* After the transfer ended (C only, never raises): closes files, renames or removes the
 * save_to temp file. Idempotent. */
OCR_HIDDEN void ocr_xfer_finalize(ocr_xfer *x, CURLcode code);

/* ---- building a request (curl_request.c, curl_body.c) -------------------------------------- */

/* Sets up x->easy (already reset) from the request table at req. Raises on wrong types.
 * Returns 1 and pushes the body string (or nil) that must stay referenced until the transfer
 * ends; or returns 0 and pushes the message of an invalid_input error (nothing was sent). */
OCR_HIDDEN int ocr_xfer_prepare(lua_State *L, ocr_xfer *x, const ocr_curl_opts *defaults,
                                int req);

enum { OCR_BODY_NONE, OCR_BODY_STRING, OCR_BODY_FORM, OCR_BODY_FILE };

/* A request being built. */
typedef struct {
    int base;           /* stack top when prepare started; base+1 holds the body */
    int req;
    int kind;           /* OCR_BODY_* */
    int form_idx;       /* stack index of the form table */
    unsigned present;   /* which request keys the request holds (OCR_BIT(RK_*)) */
    int has_expect;
    const char *ctype;  /* the caller's Content-Type header value, or NULL */
    size_t ctypel;
} ocr_prep;

/* Whether the request holds key k (an RK_*). */
#define OCR_PRESENT(p, k) ((p)->present & OCR_BIT(k))

/* curl_easy_setopt, raising when libcurl refuses. */
#define OCR_XSET(L, x, opt, val) do {                                       \
        CURLcode rc_ = curl_easy_setopt((x)->easy, opt, val);               \
        if (rc_ != CURLE_OK) ocr_curl_setopt_failed((L), #opt, rc_);        \
    } while (0)
OCR_HIDDEN int ocr_curl_setopt_failed(lua_State *L, const char *name, CURLcode rc);

/* Replaces everything above p->base with an invalid_input message (fmt formatted as by
 * lua_pushfstring); returns 0, for `return ocr_prep_invalid(...)`. */
OCR_HIDDEN int ocr_prep_invalid(lua_State *L, const ocr_prep *p, const char *fmt, ...);
/* request[k] as a string (pushed) or NULL (nil, nothing pushed; raises when required). */
OCR_HIDDEN const char *ocr_prep_string(lua_State *L, const ocr_prep *p, const char *k, size_t *n,
                                       int required);
/* Appends a header line to x->headers (raises when out of memory). */
OCR_HIDDEN void ocr_prep_header(lua_State *L, ocr_xfer *x, const char *line);

/* curl_body.c: decides p->kind (at most one of body, form, upload_file; raises otherwise), then
 * hands the body to libcurl. */
OCR_HIDDEN void ocr_prep_body_kind(lua_State *L, ocr_prep *p);
OCR_HIDDEN int  ocr_prep_body(lua_State *L, ocr_xfer *x, ocr_prep *p);

/* ---- receiving (curl_response.c) ----------------------------------------------------------- */

/* Sets the callbacks that receive the response and report progress. */
OCR_HIDDEN void ocr_xfer_set_receivers(lua_State *L, ocr_xfer *x);

/* Pushes `res` (returns 1) or `nil, err` (returns 2) for a finalized transfer. */
OCR_HIDDEN int ocr_xfer_push_result(lua_State *L, ocr_xfer *x);

/* Pushes {dltotal, dlnow, ultotal, ulnow}: what on_progress gets and m:progress(id) answers. */
OCR_HIDDEN void ocr_xfer_push_progress(lua_State *L, const ocr_xfer *x);

/* Pushes exactly nil and an error table whose message is fmt formatted (lua_pushfstring's
 * conversions), and returns 2: nothing else is left on the stack, so a caller that pushed an id
 * below may return 3. code < 0: no curl_code field. */
OCR_HIDDEN int ocr_curl_push_error(lua_State *L, const char *kind, long code, int sent,
                                   const char *fmt, ...);

/* lua_CFunction run under lua_pcall from the progress callback: (fn, xfer) -> fn(ev). */
OCR_HIDDEN int ocr_xfer_progress_trampoline(lua_State *L);

/* ---- module (curl.c), sessions and multis -------------------------------------------------- */

/* libcurl's global state, initialised once on first use (raises on failure). */
OCR_HIDDEN void ocr_curl_global_init(lua_State *L);
/* The start of session() and multi(): argument 1 checked (nil or an options table), libcurl
 * initialised, a zeroed userdata of size bytes pushed and returned (no metatable yet). */
OCR_HIDDEN void *ocr_curl_new_object(lua_State *L, size_t size);
/* "lua-ocr/<ver> libcurl/<ver>", set when the module is opened. */
OCR_HIDDEN extern char ocr_curl_user_agent[128];

OCR_HIDDEN void ocr_curl_session_register(lua_State *L);
OCR_HIDDEN int  ocr_curl_session_new(lua_State *L);
OCR_HIDDEN void ocr_curl_multi_register(lua_State *L);
OCR_HIDDEN int  ocr_curl_multi_new(lua_State *L);

#endif
