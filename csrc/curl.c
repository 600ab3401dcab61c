/* ocr.curl: HTTP(S) transport over libcurl. This file holds what sessions (curl_session.c) and
 * multis (curl_multi.c) share: option parsing, request building, the libcurl callbacks, error
 * classification and response building, plus the module entry point.
 *
 * Policy in brief (the report and the specs hold the details):
 *  - only http:// and https://, for requests and redirects; redirects off by default;
 *  - TLS peer and host verification unless insecure = true; proxies from the environment
 *    unless proxy is given ("" disables them);
 *  - header names must be tokens and values free of control characters (so no CR/LF
 *    injection); Expect: 100-continue never sent; a raw body gets no Content-Type of
 *    libcurl's choosing;
 *  - in-memory bodies are bounded by max_response_size (default 64 MiB); save_to bodies by
 *    max_download_size when it was set, else by max_response_size when that was set (higher
 *    or lower), else by 1 GiB;
 *  - save_to writes a 2xx body to <path>.part-XXXXXX and renames it over <path> only after a
 *    complete transfer; any other outcome removes the temp file and leaves <path> untouched;
 *  - errors are {kind = timeout|network|tls|too_large|invalid_input, message, curl_code,
 *    sent}; wrong argument types and unknown fields raise.
 *
 * Request tables are read with raw access (no metamethods run while a request is built) and
 * every string handed to libcurl without a copy stays referenced on the Lua stack or in an
 * anchor table until the transfer ends. */
#define _GNU_SOURCE   /* dladdr, RTLD_NODELETE: see pin_module */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "curl_xfer.h"
#include "ocr.h"
#include "form.h"
#include "clock.h"

#define MIB (1024.0 * 1024.0)
#define HEAD_LIMIT (1024 * 1024)         /* all header lines of one response */
#define MAX_SECONDS 2147483.0            /* fits a 32-bit long in milliseconds */
#define MAX_BYTES 9007199254740992.0     /* 2^53: exact in a double */
#define MAX_PATH_LEN 4096

/* The keys each table may hold, each list written once: the name arrays and the index enums
 * below are generated from it, so an index always names its entry. A request holds its own
 * keys and every option key (per-request overrides of the session's or multi's options). */
#define OPTION_KEYS(X) X(OK_TIMEOUT, "timeout") X(OK_CONNECT_TIMEOUT, "connect_timeout") \
    X(OK_MAX_RESPONSE, "max_response_size") X(OK_MAX_DOWNLOAD, "max_download_size") \
    X(OK_CA_FILE, "ca_file") X(OK_INSECURE, "insecure") X(OK_PROXY, "proxy") \
    X(OK_USER_AGENT, "user_agent") X(OK_FOLLOW, "follow_redirects") \
    X(OK_MAX_REDIRECTS, "max_redirects")
#define REQUEST_KEYS(X) X(RK_METHOD, "method") X(RK_URL, "url") X(RK_HEADERS, "headers") \
    X(RK_BODY, "body") X(RK_FORM, "form") X(RK_UPLOAD_FILE, "upload_file") \
    X(RK_SAVE_TO, "save_to") X(RK_ON_PROGRESS, "on_progress") X(RK_FRESH_CONNECT, "fresh_connect")
#define PART_KEYS(X) X(PK_NAME, "name") X(PK_VALUE, "value") X(PK_DATA, "data") \
    X(PK_FILE, "file") X(PK_FILENAME, "filename") X(PK_CONTENT_TYPE, "content_type")

#define KEY_ENUM(id, name) id,
#define KEY_NAME(id, name) name,
enum { OPTION_KEYS(KEY_ENUM) OK_COUNT };
enum { REQUEST_KEYS(KEY_ENUM) RK_OPTIONS };   /* RK_OPTIONS: where the option keys start */
enum { PART_KEYS(KEY_ENUM) PK_COUNT };
static const char *const option_keys[] = { OPTION_KEYS(KEY_NAME) NULL };
static const char *const request_keys[] = { REQUEST_KEYS(KEY_NAME) OPTION_KEYS(KEY_NAME) NULL };
static const char *const part_keys[] = { PART_KEYS(KEY_NAME) NULL };
#define BIT(i) (1u << (i))

static char default_user_agent[128];

/* ---------------------------------------------------------------------------------------- */
/* small helpers                                                                            */

static void seed_boundaries(void);

void ocr_curl_global_init(lua_State *L) {
    static int done = 0;
    CURLcode rc;
    if (done) return;
    rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        luaL_error(L, "ocr.curl: curl_global_init failed: %s", curl_easy_strerror(rc));
    seed_boundaries();
    done = 1;
}

/* Pushes t[k] (raw) and returns its type; t must be an absolute index. */
static int rawfield(lua_State *L, int t, const char *k) {
    lua_pushstring(L, k);
    lua_rawget(L, t);
    return lua_type(L, -1);
}

/* Refuses any key not in allowed (at most 32 entries); returns which ones are present (bit i for
 * allowed[i]) so that absent fields are not looked up one by one afterwards. */
static unsigned check_keys(lua_State *L, int t, const char *const *allowed, const char *what) {
    unsigned present = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *const *k;
        const char *key;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "ocr.curl: %s: keys must be strings, got %s", what,
                       luaL_typename(L, -2));
        key = lua_tostring(L, -2);
        for (k = allowed; *k && ((*k)[0] != key[0] || strcmp(*k, key) != 0); k++) {}
        if (*k == NULL) luaL_error(L, "ocr.curl: %s: unknown field '%s'", what, key);
        present |= BIT(k - allowed);
        lua_pop(L, 1);
    }
    return present;
}

static int has_nul(const char *s, size_t n) {
    return memchr(s, '\0', n) != NULL;
}

static int ci_prefix(const char *s, const char *prefix) {
    for (; *prefix; s++, prefix++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != *prefix) return 0;
    }
    return 1;
}

static int ci_equal(const char *a, size_t n, const char *b) {
    return strlen(b) == n && ci_prefix(a, b);
}

/* RFC 9110 token characters (header names, methods). */
static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s, size_t n) {
    size_t i;
    if (n == 0) return 0;
    for (i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i])) return 0;
    return 1;
}

/* Header values: no control characters but HTAB (so no CR, LF or NUL: no injection). */
static int is_field_value(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return 0;
    }
    return 1;
}

/* Form names, filenames and content types end up inside part headers. */
static int is_part_text(const char *s, size_t n) {
    return is_field_value(s, n);
}

static void push_off(lua_State *L, curl_off_t v) {
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* ---------------------------------------------------------------------------------------- */
/* options                                                                                  */

void ocr_curl_opts_defaults(ocr_curl_opts *o) {
    memset(o, 0, sizeof *o);
    o->timeout = 60;
    o->connect_timeout = 10;
    o->max_response_size = 64 * MIB;
    o->max_download_size = 1024 * MIB;
    o->max_redirects = 5;
}

void ocr_curl_opts_free(ocr_curl_opts *o) {
    if (!o->owns_strings) return;
    free((void *)o->ca_file);
    free((void *)o->proxy);
    free((void *)o->user_agent);
    o->ca_file = o->proxy = o->user_agent = NULL;
}

/* Reads t[k] as a number in [lo, hi] (integral when integral = 1). Returns 1 if present. */
static int read_number(lua_State *L, int t, const char *k, double lo, double hi, int integral,
                       double *out) {
    double v;
    int type = rawfield(L, t, k);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return 0;
    }
    if (type != LUA_TNUMBER)
        luaL_error(L, "ocr.curl: option '%s' must be a number, got %s", k, lua_typename(L, type));
    v = lua_tonumber(L, -1);
    if (!(v >= lo && v <= hi) || (integral && floor(v) != v))
        luaL_error(L, "ocr.curl: option '%s' must be %s between %f and %f", k,
                   integral ? "an integer" : "a number", lo, hi);
    lua_pop(L, 1);
    *out = v;
    return 1;
}

static void read_bool(lua_State *L, int t, const char *k, int *out) {
    int type = rawfield(L, t, k);
    if (type == LUA_TBOOLEAN) *out = lua_toboolean(L, -1);
    else if (type != LUA_TNIL)
        luaL_error(L, "ocr.curl: option '%s' must be a boolean, got %s", k, lua_typename(L, type));
    lua_pop(L, 1);
}

/* A string option. Owned: copied. Borrowed: the string stays on the stack (anchored) until
 * the caller restores its stack top. */
static void read_string(lua_State *L, int t, const char *k, ocr_curl_opts *o, const char **out) {
    size_t n;
    const char *s;
    int type = rawfield(L, t, k);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (type != LUA_TSTRING)
        luaL_error(L, "ocr.curl: option '%s' must be a string, got %s", k, lua_typename(L, type));
    s = lua_tolstring(L, -1, &n);
    if (has_nul(s, n)) luaL_error(L, "ocr.curl: option '%s' contains a NUL byte", k);
    if (out == &o->user_agent && !is_field_value(s, n))   /* it becomes a request header */
        luaL_error(L, "ocr.curl: option '%s' contains CR, LF or control characters", k);
    if (o->owns_strings) {
        char *copy = malloc(n + 1);
        if (copy == NULL) luaL_error(L, "ocr.curl: out of memory");
        memcpy(copy, s, n + 1);
        free((void *)*out);
        *out = copy;
        lua_pop(L, 1);
    } else {
        *out = s;
    }
}

/* Reads the options whose bit (OK_*) is set in present. */
static void opts_read(lua_State *L, int t, ocr_curl_opts *o, unsigned present) {
    double v;
#define HAS(k) (present & BIT(k))
#define KEY(k) option_keys[k]
    if (HAS(OK_TIMEOUT)) read_number(L, t, KEY(OK_TIMEOUT), 0.001, MAX_SECONDS, 0, &o->timeout);
    if (HAS(OK_CONNECT_TIMEOUT))
        read_number(L, t, KEY(OK_CONNECT_TIMEOUT), 0.001, MAX_SECONDS, 0, &o->connect_timeout);
    if (HAS(OK_MAX_RESPONSE) &&
        read_number(L, t, KEY(OK_MAX_RESPONSE), 0, MAX_BYTES, 1, &o->max_response_size))
        o->max_response_set = 1;
    if (HAS(OK_MAX_DOWNLOAD) &&
        read_number(L, t, KEY(OK_MAX_DOWNLOAD), 0, MAX_BYTES, 1, &o->max_download_size))
        o->max_download_set = 1;
    if (HAS(OK_MAX_REDIRECTS) && read_number(L, t, KEY(OK_MAX_REDIRECTS), 0, 100, 1, &v))
        o->max_redirects = (long)v;
    if (HAS(OK_INSECURE)) read_bool(L, t, KEY(OK_INSECURE), &o->insecure);
    if (HAS(OK_FOLLOW)) read_bool(L, t, KEY(OK_FOLLOW), &o->follow_redirects);
    if (HAS(OK_CA_FILE)) read_string(L, t, KEY(OK_CA_FILE), o, &o->ca_file);
    if (HAS(OK_PROXY)) read_string(L, t, KEY(OK_PROXY), o, &o->proxy);
    if (HAS(OK_USER_AGENT)) read_string(L, t, KEY(OK_USER_AGENT), o, &o->user_agent);
#undef HAS
#undef KEY
}

void ocr_curl_opts_read(lua_State *L, int idx, ocr_curl_opts *o) {
    opts_read(L, lua_absindex(L, idx), o, ~0u);
}

void ocr_curl_opts_check(lua_State *L, int idx) {
    check_keys(L, lua_absindex(L, idx), option_keys, "options");
}

/* ---------------------------------------------------------------------------------------- */
/* transfer lifetime                                                                        */

static int holder_gc(lua_State *L) {
    ocr_xfer **h = luaL_checkudata(L, 1, OCR_CURL_HOLDER_MT);
    if (*h) ocr_xfer_destroy(*h);
    *h = NULL;
    return 0;
}

static ocr_xfer *xfer_alloc(void) {
    ocr_xfer *x = calloc(1, sizeof *x);
    if (x == NULL) return NULL;
    ocr_buffer_init(&x->head, HEAD_LIMIT);
    ocr_buffer_init(&x->body, 0);
    ocr_buffer_init(&x->form, 0);
    return x;
}

ocr_xfer *ocr_xfer_new(lua_State *L) {
    ocr_xfer **h = lua_newuserdata(L, sizeof *h);
    *h = NULL;
    luaL_setmetatable(L, OCR_CURL_HOLDER_MT);
    if ((*h = xfer_alloc()) == NULL) luaL_error(L, "ocr.curl: out of memory");
    return *h;
}

void ocr_xfer_release(lua_State *L, int idx, int keep) {
    ocr_xfer **h = luaL_checkudata(L, idx, OCR_CURL_HOLDER_MT);
    if (*h && !keep) ocr_xfer_destroy(*h);
    *h = NULL;
}

/* The parts of a transfer that libcurl may still read during the transfer. Freeing the mime
 * first also unbinds it from the easy handle (curl_mime_free detaches it from its parent). */
static void xfer_free_request(ocr_xfer *x) {
    if (x->mime) curl_mime_free(x->mime);
    x->mime = NULL;
    x->form.len = 0;
    if (x->upload_fp) fclose(x->upload_fp);
    x->upload_fp = NULL;
}

/* Everything one request used, but the handle and the response buffers. */
static void xfer_free_parts(ocr_xfer *x) {
    xfer_free_request(x);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    if (x->save_fp) fclose(x->save_fp);
    x->save_fp = NULL;
    if (x->tmp_path && !x->saved) unlink(x->tmp_path);
    free(x->tmp_path);
    free(x->save_path);
    x->tmp_path = x->save_path = NULL;
}

void ocr_xfer_destroy(ocr_xfer *x) {
    if (x == NULL) return;
    xfer_free_parts(x);
    if (x->owns_easy && x->easy) curl_easy_cleanup(x->easy);
    x->easy = NULL;
    ocr_buffer_free(&x->head);
    ocr_buffer_free(&x->body);
    ocr_buffer_free(&x->form);
    free(x);
}

/* Response buffers up to this size are kept for the session's next request. */
#define KEEP_BUFFER (256 * 1024)

static void keep_buffer(ocr_buffer *b) {
    if (b->cap > KEEP_BUFFER) ocr_buffer_free(b);
    b->len = 0;
}

ocr_xfer *ocr_xfer_recycle(ocr_xfer *x) {
    ocr_buffer head, body, form;
    if (x == NULL) return xfer_alloc();
    xfer_free_parts(x);
    head = x->head;
    body = x->body;
    form = x->form;
    keep_buffer(&head);
    keep_buffer(&body);
    keep_buffer(&form);
    memset(x, 0, sizeof *x);
    x->head = head;
    x->body = body;
    x->form = form;
    return x;
}

/* ---------------------------------------------------------------------------------------- */
/* libcurl callbacks (C only: they never call into Lua, except the progress trampoline,     */
/* which runs under lua_pcall)                                                              */

/* Starts over for a new response (a redirect or a 1xx before the final one). */
static int reset_response(ocr_xfer *x) {
    x->head.len = 0;
    x->body.len = 0;
    x->body_count = 0;
    x->sink = OCR_SINK_NONE;
    if (x->save_fp) {
        if (fflush(x->save_fp) != 0 || ftruncate(fileno(x->save_fp), 0) != 0) {
            x->io_errno = errno;
            return 0;
        }
        rewind(x->save_fp);
    }
    return 1;
}

static long parse_status(const char *p, size_t n) {
    size_t i = 0;
    long code = 0;
    while (i < n && p[i] != ' ') i++;
    while (i < n && p[i] == ' ') i++;
    if (i + 3 > n) return 0;
    for (n = i + 3; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        code = code * 10 + (p[i] - '0');
    }
    return code;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
    ocr_xfer *x = ud;
    size_t n = size * nmemb;
    int rc;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        if (!reset_response(x)) {
            x->fail = OCR_FAIL_IO;
            return 0;
        }
        x->status = parse_status(p, n);
        return n;
    }
    rc = ocr_buffer_append(&x->head, p, n);
    if (rc != OCR_BUF_OK) {
        x->fail = rc == OCR_BUF_LIMIT ? OCR_FAIL_TOO_LARGE : OCR_FAIL_NOMEM;
        return 0;
    }
    return n;
}

/* The first byte of a response body decides where it goes: a 2xx body of a save_to request
 * streams to the temp file, anything else stays in memory. A declared length over the bound
 * fails before the body is read. */
static int choose_sink(ocr_xfer *x) {
    curl_off_t cl = -1;
    long status = x->status;
    if (status == 0) curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    x->sink = (x->save_fp && status >= 200 && status < 300) ? OCR_SINK_FILE : OCR_SINK_MEMORY;
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    if (cl > 0) {
        if (x->sink == OCR_SINK_FILE ? cl > x->file_limit : (uintmax_t)cl > x->mem_limit)
            return 0;
    }
    return 1;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud) {
    ocr_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->sink == OCR_SINK_NONE && !choose_sink(x)) {
        x->fail = OCR_FAIL_TOO_LARGE;
        return 0;
    }
    if (x->sink == OCR_SINK_FILE) {
        if ((curl_off_t)n > x->file_limit - x->body_count) {
            x->fail = OCR_FAIL_TOO_LARGE;
            return 0;
        }
        if (fwrite(p, 1, n, x->save_fp) != n) {
            x->io_errno = errno;
            x->fail = OCR_FAIL_IO;
            return 0;
        }
    } else {
        int rc;
        if (n > x->mem_limit - x->body.len) {
            x->fail = OCR_FAIL_TOO_LARGE;
            return 0;
        }
        rc = ocr_buffer_append(&x->body, p, n);
        if (rc != OCR_BUF_OK) {
            x->fail = rc == OCR_BUF_LIMIT ? OCR_FAIL_TOO_LARGE : OCR_FAIL_NOMEM;
            return 0;
        }
    }
    x->body_count += (curl_off_t)n;
    return n;
}

int ocr_xfer_progress_trampoline(lua_State *L) {
    ocr_xfer *x;
    luaL_checktype(L, 2, LUA_TLIGHTUSERDATA);
    x = lua_touserdata(L, 2);
    lua_settop(L, 2);
    lua_pushvalue(L, 1);
    lua_createtable(L, 0, 4);
    push_off(L, x->dltotal);
    lua_setfield(L, -2, "dltotal");
    push_off(L, x->dlnow);
    lua_setfield(L, -2, "dlnow");
    push_off(L, x->ultotal);
    lua_setfield(L, -2, "ultotal");
    push_off(L, x->ulnow);
    lua_setfield(L, -2, "ulnow");
    lua_call(L, 1, 0);
    return 0;
}

/* Calls the session's on_progress under lua_pcall: the trampoline and the function were pushed
 * by the request call before curl_easy_perform, and pushing copies of stack values cannot
 * fail (the stack was grown beforehand), so no Lua error can cross libcurl. */
static int call_lua_progress(ocr_xfer *x) {
    lua_State *L = x->L;
    lua_pushvalue(L, x->tramp_idx);
    lua_pushvalue(L, x->progress_idx);
    lua_pushlightuserdata(L, x);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        /* lua_tostring would convert a number, which allocates: outside any pcall here */
        if (lua_type(L, -1) == LUA_TSTRING)
            snprintf(x->fail_msg, sizeof x->fail_msg, "on_progress: %s", lua_tostring(L, -1));
        else
            snprintf(x->fail_msg, sizeof x->fail_msg, "on_progress: (error object is a %s value)",
                     luaL_typename(L, -1));
        lua_pop(L, 1);
        x->fail = OCR_FAIL_PROGRESS;
        return 1;
    }
    return 0;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    ocr_xfer *x = ud;
    x->dltotal = dltotal;
    x->dlnow = dlnow;
    x->ultotal = ultotal;
    x->ulnow = ulnow;
    if (x->L) return call_lua_progress(x);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* request building                                                                         */

static int setopt_failed(lua_State *L, const char *name, CURLcode rc) {
    return luaL_error(L, "ocr.curl: curl_easy_setopt(%s) failed: %s", name,
                      curl_easy_strerror(rc));
}

#define XSET(L, x, opt, val) do {                                   \
        CURLcode rc_ = curl_easy_setopt((x)->easy, opt, val);       \
        if (rc_ != CURLE_OK) setopt_failed((L), #opt, rc_);         \
    } while (0)

/* Replaces everything above base with an invalid_input message; returns 0. */
static int invalid(lua_State *L, int base, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 0;
}

enum { BODY_NONE, BODY_STRING, BODY_FORM, BODY_FILE };

typedef struct {
    int base;           /* stack top when prepare started; base+1 holds the body */
    int req;
    int kind;           /* BODY_* */
    int form_idx;       /* stack index of the form table */
    unsigned present;   /* which request_keys the request holds (BIT(RK_*)) */
    int has_expect, has_ctype;
} prep;

/* Whether the request holds key k (an RK_*); pushes request[k] (nil when absent), its type. */
#define PRESENT(p, k) ((p)->present & BIT(k))
#define FIELD(p, k) (PRESENT(p, k) ? rawfield(L, (p)->req, request_keys[k]) \
                                   : (lua_pushnil(L), LUA_TNIL))

static const char *string_field(lua_State *L, prep *p, const char *k, size_t *n, int required) {
    int type = rawfield(L, p->req, k);
    if (type == LUA_TSTRING) return lua_tolstring(L, -1, n);
    if (type == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    luaL_error(L, "ocr.curl: request.%s must be a string, got %s", k, lua_typename(L, type));
    return NULL;
}

static int prep_url(lua_State *L, ocr_xfer *x, prep *p) {
    size_t n, i;
    const char *url = string_field(L, p, "url", &n, 1);
    if (!ci_prefix(url, "http://") && !ci_prefix(url, "https://"))
        return invalid(L, p->base, "url: only http:// and https:// URLs are allowed");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return invalid(L, p->base, "url: contains a space or a control character");
    }
    if (curl_easy_setopt(x->easy, CURLOPT_URL, url) != CURLE_OK)
        return invalid(L, p->base, "url: rejected by libcurl (too long?)");
    lua_pop(L, 1);
    return 1;
}

/* Decides the body kind: at most one of body, form, upload_file. */
static void prep_body_kind(lua_State *L, prep *p) {
    int count = 0, type;
    type = lua_type(L, p->base + 1);
    if (type == LUA_TSTRING) {
        p->kind = BODY_STRING;
        count++;
    } else if (type != LUA_TNIL) {
        luaL_error(L, "ocr.curl: request.body must be a string, got %s", lua_typename(L, type));
    }
    type = FIELD(p, RK_FORM);
    if (type == LUA_TTABLE) {
        p->kind = BODY_FORM;
        p->form_idx = lua_gettop(L);
        count++;
    } else if (type != LUA_TNIL) {
        luaL_error(L, "ocr.curl: request.form must be a table, got %s", lua_typename(L, type));
    }
    type = FIELD(p, RK_UPLOAD_FILE);
    lua_pop(L, 1);
    if (type == LUA_TSTRING) {
        p->kind = BODY_FILE;
        count++;
    } else if (type != LUA_TNIL) {
        luaL_error(L, "ocr.curl: request.upload_file must be a string, got %s",
                   lua_typename(L, type));
    }
    if (count > 1)
        luaL_error(L, "ocr.curl: request.body, request.form and request.upload_file are "
                      "mutually exclusive");
}

static int prep_method(lua_State *L, ocr_xfer *x, prep *p) {
    static const char *const defaults[] = { "GET", "POST", "POST", "PUT" };
    const char *plain = defaults[p->kind];   /* what libcurl sends without CUSTOMREQUEST */
    size_t n;
    const char *m = PRESENT(p, RK_METHOD) ? string_field(L, p, "method", &n, 0) : NULL;
    int pushed = m != NULL;
    if (m == NULL) m = plain;
    else if (n > 64 || !is_token(m, n))
        return invalid(L, p->base, "method: must be an HTTP token of at most 64 characters");
    if (strcmp(m, "HEAD") == 0) {
        if (p->kind != BODY_NONE) return invalid(L, p->base, "method: HEAD cannot send a body");
        XSET(L, x, CURLOPT_NOBODY, 1L);
        plain = "HEAD";
    } else if (p->kind == BODY_NONE) {
        /* Methods that normally carry a body say so with Content-Length: 0. */
        if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
            XSET(L, x, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            XSET(L, x, CURLOPT_POSTFIELDS, "");
            plain = "POST";
        } else {
            XSET(L, x, CURLOPT_HTTPGET, 1L);
        }
    }
    if (strcmp(m, plain) != 0) XSET(L, x, CURLOPT_CUSTOMREQUEST, m);
    if (pushed) lua_pop(L, 1);
    return 1;
}

static void slist_add(lua_State *L, ocr_xfer *x, const char *line) {
    struct curl_slist *l = curl_slist_append(x->headers, line);
    if (l == NULL) luaL_error(L, "ocr.curl: out of memory");
    x->headers = l;
}

/* Appends "name: value" (or "name;" for an empty value, libcurl's way to send one). */
static void add_header(lua_State *L, ocr_xfer *x, const char *name, size_t nl, const char *value,
                       size_t vl) {
    char *line = malloc(nl + vl + 3);
    struct curl_slist *l;
    if (line == NULL) luaL_error(L, "ocr.curl: out of memory");
    memcpy(line, name, nl);
    if (vl == 0) {
        line[nl] = ';';
        line[nl + 1] = '\0';
    } else {
        line[nl] = ':';
        line[nl + 1] = ' ';
        memcpy(line + nl + 2, value, vl);
        line[nl + 2 + vl] = '\0';
    }
    l = curl_slist_append(x->headers, line);
    free(line);
    if (l == NULL) luaL_error(L, "ocr.curl: out of memory");
    x->headers = l;
}

static int prep_headers(lua_State *L, ocr_xfer *x, prep *p) {
    int t, type = FIELD(p, RK_HEADERS);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
    } else if (type != LUA_TTABLE) {
        luaL_error(L, "ocr.curl: request.headers must be a table, got %s", lua_typename(L, type));
    } else {
        t = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, t)) {
            size_t nl, vl;
            const char *name, *value;
            int vt = lua_type(L, -1);
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "ocr.curl: request.headers: names must be strings, got %s",
                           luaL_typename(L, -2));
            if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
                luaL_error(L, "ocr.curl: request.headers: values must be strings or numbers, "
                              "got %s", lua_typename(L, vt));
            name = lua_tolstring(L, -2, &nl);
            value = lua_tolstring(L, -1, &vl);  /* converts a number value in place: fine */
            if (!is_token(name, nl))
                return invalid(L, p->base, "headers: invalid header name (a token without "
                                           "spaces, ':' or control characters is required)");
            if (!is_field_value(value, vl))
                return invalid(L, p->base, "headers: value of '%s' contains CR, LF or another "
                                           "control character", name);
            if (ci_equal(name, nl, "expect")) p->has_expect = 1;
            if (ci_equal(name, nl, "content-type")) p->has_ctype = 1;
            add_header(L, x, name, nl, value, vl);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    /* Never wait for 100-continue; never let libcurl label a raw body as a form. */
    if (!p->has_expect) slist_add(L, x, "Expect:");
    if (p->kind == BODY_STRING && !p->has_ctype) slist_add(L, x, "Content-Type:");
    XSET(L, x, CURLOPT_HTTPHEADER, x->headers);
    return 1;
}

/* Opens path for reading and checks it is a regular file; returns NULL and sets *why. */
static FILE *open_regular(const char *path, const char **why) {
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *why = strerror(errno);
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        *why = "not a regular file";
        return NULL;
    }
    return f;
}

static const char *part_string(lua_State *L, int t, int i, const char *k, size_t *n) {
    int type = rawfield(L, t, k);
    if (type == LUA_TSTRING) return lua_tolstring(L, -1, n);
    if (type != LUA_TNIL)
        luaL_error(L, "ocr.curl: request.form[%d].%s must be a string, got %s", i, k,
                   lua_typename(L, type));
    return NULL;  /* the nil stays pushed, like a string would: callers pop a fixed count */
}

/* Reads and checks request.form[i] (the table on top of the stack) into *part and *file_out
 * (the file to stream, or NULL). The strings stay referenced by the part table, itself anchored
 * by the request, so only pointers are kept. */
static int read_part(lua_State *L, prep *p, int i, ocr_form_part *part, const char **file_out) {
    size_t nn = 0, vn = 0, dn = 0, fn = 0, filen = 0, ctn = 0;
    const char *name, *value, *data, *file, *filename, *ctype, *why;
    int t = lua_gettop(L), sources;
    unsigned present;
    FILE *f;
    luaL_checkstack(L, 12, "ocr.curl: form part");
    if (lua_type(L, t) != LUA_TTABLE)
        luaL_error(L, "ocr.curl: request.form[%d] must be a table, got %s", i, luaL_typename(L, t));
    present = check_keys(L, t, part_keys, "request.form part");
#define PART_STRING(k, len) ((present & BIT(k)) ? part_string(L, t, i, part_keys[k], len) : NULL)
    name = PART_STRING(PK_NAME, &nn);
    value = PART_STRING(PK_VALUE, &vn);
    data = PART_STRING(PK_DATA, &dn);
    file = PART_STRING(PK_FILE, &fn);
    filename = PART_STRING(PK_FILENAME, &filen);
    ctype = PART_STRING(PK_CONTENT_TYPE, &ctn);
#undef PART_STRING
    if (name == NULL) luaL_error(L, "ocr.curl: request.form[%d].name is required", i);
    sources = (value != NULL) + (data != NULL) + (file != NULL);
    if (sources != 1)
        luaL_error(L, "ocr.curl: request.form[%d] needs exactly one of value, data or file", i);
    if (!is_part_text(name, nn) || (filename && !is_part_text(filename, filen)) ||
        (ctype && !is_part_text(ctype, ctn)))
        return invalid(L, p->base, "form[%d]: name, filename and content_type must not "
                                   "contain CR, LF or control characters", i);
    if (file) {
        if (has_nul(file, fn)) return invalid(L, p->base, "form[%d]: file contains NUL", i);
        if ((f = open_regular(file, &why)) == NULL)
            return invalid(L, p->base, "form[%d]: cannot read file '%s': %s", i, file, why);
        fclose(f);
    }
    part->name = name;          part->namel = nn;
    part->filename = filename;  part->filenamel = filen;
    part->ctype = ctype;        part->ctypel = ctn;
    part->body = value ? value : data;
    part->bodyl = value ? vn : dn;
    *file_out = file;
    lua_settop(L, t);
    return 1;
}

static void mime_check(lua_State *L, CURLcode rc, int i) {
    if (rc != CURLE_OK)
        luaL_error(L, "ocr.curl: building form part %d failed: %s", i, curl_easy_strerror(rc));
}

/* A form with files goes through curl_mime, which streams them from disk. */
static void form_mime(lua_State *L, ocr_xfer *x, const ocr_form_part *parts,
                      const char *const *files, int n) {
    int i;
    if ((x->mime = curl_mime_init(x->easy)) == NULL) luaL_error(L, "ocr.curl: out of memory");
    for (i = 0; i < n; i++) {
        const ocr_form_part *f = &parts[i];
        curl_mimepart *part = curl_mime_addpart(x->mime);
        if (part == NULL) luaL_error(L, "ocr.curl: out of memory");
        mime_check(L, curl_mime_name(part, f->name), i + 1);
        if (files[i]) mime_check(L, curl_mime_filedata(part, files[i]), i + 1);
        else mime_check(L, curl_mime_data(part, f->body, f->bodyl), i + 1);
        if (f->filename) mime_check(L, curl_mime_filename(part, f->filename), i + 1);
        if (f->ctype) mime_check(L, curl_mime_type(part, f->ctype), i + 1);
    }
    XSET(L, x, CURLOPT_MIMEPOST, x->mime);
}

/* Boundaries: 24 dashes and 16 hex digits, libcurl's shape. They need not be secret, only
 * absent from the parts (checked before use), so they come from a seed read once and mixed
 * with the transfer's address and the clock: no CSPRNG call and no shared state per request.
 * (ocr.core.multipart, a pure function with its own documented boundary shape, keeps drawing
 * from OpenSSL: called from Lua, its cost does not recur per transfer.) */
static uint64_t boundary_seed;

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void seed_boundaries(void) {
    FILE *f = fopen("/dev/urandom", "rb");
    uint64_t s = 0;
    if (f == NULL || fread(&s, sizeof s, 1, f) != 1)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&s;
    if (f) fclose(f);
    boundary_seed = s;
}

#define FORM_BOUNDARY_LEN 40

static void make_boundary(char *out, const ocr_xfer *x, unsigned attempt) {
    static const char hex[] = "0123456789abcdef";
    uint64_t r;
    int i;
    r = splitmix64(boundary_seed ^ (uint64_t)(uintptr_t)x ^ (uint64_t)(ocr_monotime() * 1e9) ^
                   ((uint64_t)attempt << 56));
    memset(out, '-', 24);
    for (i = 0; i < 16; i++) out[24 + i] = hex[(r >> (4 * i)) & 15];
}

/* An in-memory form is encoded into one buffer and sent like a raw body: the bytes are those
 * curl_mime would send (boundary aside), without its per-request cost. Returns 0 when the form
 * should go through curl_mime after all (a boundary kept colliding: adversarial data). */
static int form_in_memory(lua_State *L, ocr_xfer *x, const ocr_form_part *parts, int n) {
    static const char prefix[] = "Content-Type: multipart/form-data; boundary=";
    char bnd[FORM_BOUNDARY_LEN], line[sizeof prefix + FORM_BOUNDARY_LEN];
    size_t len;
    unsigned attempt = 0;
    do {
        if (attempt == 8) return 0;
        make_boundary(bnd, x, attempt++);
    } while (ocr_form_collision(parts, n, bnd, sizeof bnd));
    len = ocr_form_encode(NULL, 0, parts, n, bnd, sizeof bnd);
    x->form.len = 0;
    if (len == (size_t)-1 || ocr_buffer_reserve(&x->form, len) != OCR_BUF_OK)
        luaL_error(L, "ocr.curl: out of memory for a %d-part form", n);
    if (ocr_form_encode(x->form.data, len, parts, n, bnd, sizeof bnd) != len)
        luaL_error(L, "ocr.curl: internal error: form size changed while encoding");
    x->form.len = len;
    XSET(L, x, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    XSET(L, x, CURLOPT_POSTFIELDS, x->form.data ? x->form.data : "");
    memcpy(line, prefix, sizeof prefix - 1);
    memcpy(line + sizeof prefix - 1, bnd, sizeof bnd);
    line[sizeof line - 1] = '\0';
    slist_add(L, x, line);
    XSET(L, x, CURLOPT_HTTPHEADER, x->headers);
    return 1;
}

#define FORM_MAX_PARTS 10000

/* Parts with a file, or a filename without a content type (libcurl guesses one from the
 * extension), or a caller's own Content-Type header keep libcurl's mime path; everything else
 * is encoded here. */
static int prep_form(lua_State *L, ocr_xfer *x, prep *p) {
    size_t len = lua_rawlen(L, p->form_idx);
    int i, n, use_mime = p->has_ctype;
    ocr_form_part small_parts[8], *parts = small_parts;
    const char *small_files[8], **files = small_files;
    if (len > FORM_MAX_PARTS) return invalid(L, p->base, "form: more than %d parts", FORM_MAX_PARTS);
    n = (int)len;
    use_mime |= n == 0;
    if (n > 8) {   /* a userdata: freed by the GC even when a part raises an error */
        parts = lua_newuserdata(L, (size_t)n * (sizeof *parts + sizeof *files));
        files = (const char **)(parts + n);
    } else {
        lua_pushnil(L);   /* the same stack shape either way */
    }
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, p->form_idx, i + 1);
        if (!read_part(L, p, i + 1, &parts[i], &files[i])) return 0;
        lua_pop(L, 1);
        use_mime |= files[i] != NULL || (parts[i].filename != NULL && parts[i].ctype == NULL);
    }
    if (use_mime || !form_in_memory(L, x, parts, n)) form_mime(L, x, parts, files, n);
    lua_pop(L, 1);
    return 1;
}

static int prep_upload(lua_State *L, ocr_xfer *x, prep *p) {
    struct stat st;
    size_t n;
    const char *why, *path = string_field(L, p, "upload_file", &n, 1);
    if (has_nul(path, n)) return invalid(L, p->base, "upload_file: contains a NUL byte");
    if ((x->upload_fp = open_regular(path, &why)) == NULL)
        return invalid(L, p->base, "upload_file: cannot read '%s': %s", path, why);
    if (fstat(fileno(x->upload_fp), &st) != 0)
        return invalid(L, p->base, "upload_file: cannot stat '%s': %s", path, strerror(errno));
    XSET(L, x, CURLOPT_UPLOAD, 1L);
    XSET(L, x, CURLOPT_READDATA, x->upload_fp);   /* libcurl's default reader is fread */
    XSET(L, x, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
    lua_pop(L, 1);
    return 1;
}

static int prep_body(lua_State *L, ocr_xfer *x, prep *p) {
    size_t n;
    const char *s;
    switch (p->kind) {
    case BODY_STRING:
        s = lua_tolstring(L, p->base + 1, &n);   /* anchored at base+1 for the transfer */
        XSET(L, x, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
        XSET(L, x, CURLOPT_POSTFIELDS, s);
        return 1;
    case BODY_FORM:
        return prep_form(L, x, p);
    case BODY_FILE:
        return prep_upload(L, x, p);
    default:
        return 1;
    }
}

/* save_to: the temp file is created now, next to the target, so an unwritable directory is
 * an invalid_input before anything is sent. */
static int prep_save_to(lua_State *L, ocr_xfer *x, prep *p) {
    static const char suffix[] = ".part-XXXXXX";
    size_t n;
    int fd;
    const char *path = PRESENT(p, RK_SAVE_TO) ? string_field(L, p, "save_to", &n, 0) : NULL;
    if (path == NULL) return 1;
    if (n == 0 || n > MAX_PATH_LEN || has_nul(path, n))
        return invalid(L, p->base, "save_to: must be a non-empty path without NUL bytes");
    if ((x->save_path = malloc(n + 1)) == NULL || (x->tmp_path = malloc(n + sizeof suffix)) == NULL)
        luaL_error(L, "ocr.curl: out of memory");
    memcpy(x->save_path, path, n + 1);
    memcpy(x->tmp_path, path, n);
    memcpy(x->tmp_path + n, suffix, sizeof suffix);
    fd = mkstemp(x->tmp_path);
    if (fd < 0) {
        int e = errno;
        free(x->tmp_path);
        x->tmp_path = NULL;   /* nothing created: nothing to remove */
        return invalid(L, p->base, "save_to: cannot create a file next to '%s': %s", path,
                       strerror(e));
    }
    if ((x->save_fp = fdopen(fd, "w+b")) == NULL) {
        close(fd);
        return invalid(L, p->base, "save_to: %s", strerror(errno));
    }
    lua_pop(L, 1);
    return 1;
}

static long to_ms(double s) {
    long ms = (long)(s * 1000.0 + 0.5);
    return ms < 1 ? 1 : ms;
}

static void prep_options(lua_State *L, ocr_xfer *x, const ocr_curl_opts *defaults, prep *p) {
    ocr_curl_opts o = *defaults;
    int top = lua_gettop(L);
    o.owns_strings = 0;
    opts_read(L, p->req, &o, p->present >> RK_OPTIONS);   /* borrowed strings stay on the stack */
    XSET(L, x, CURLOPT_TIMEOUT_MS, to_ms(o.timeout));
    XSET(L, x, CURLOPT_CONNECTTIMEOUT_MS, to_ms(o.connect_timeout));
    XSET(L, x, CURLOPT_SSL_VERIFYPEER, o.insecure ? 0L : 1L);
    XSET(L, x, CURLOPT_SSL_VERIFYHOST, o.insecure ? 0L : 2L);
    if (o.ca_file) XSET(L, x, CURLOPT_CAINFO, o.ca_file);
    if (o.proxy) XSET(L, x, CURLOPT_PROXY, o.proxy);
    XSET(L, x, CURLOPT_USERAGENT, o.user_agent ? o.user_agent : default_user_agent);
    XSET(L, x, CURLOPT_FOLLOWLOCATION, o.follow_redirects ? 1L : 0L);
    XSET(L, x, CURLOPT_MAXREDIRS, o.max_redirects);
    x->mem_limit = o.max_response_size > (double)SIZE_MAX ? SIZE_MAX : (size_t)o.max_response_size;
    x->file_limit = (curl_off_t)o.max_download_size;
    if (!o.max_download_set && o.max_response_set)
        x->file_limit = (curl_off_t)o.max_response_size;
    lua_settop(L, top);
}

/* libcurl rejects a declared Content-Length over the larger bound up front (the status, hence
 * the bound that applies, is not known yet); the write callback applies the exact one. */
static void prep_size_cap(lua_State *L, ocr_xfer *x) {
    curl_off_t cap = (curl_off_t)x->mem_limit;   /* at most 2^53 (see read_number) */
    if (x->save_fp && x->file_limit > cap) cap = x->file_limit;
    if (cap > 0) XSET(L, x, CURLOPT_MAXFILESIZE_LARGE, cap);   /* 0 means "no limit" */
}

/* libcurl silently sends a request again when a reused connection dies before any answer. For a
 * request that must not be repeated (a billed create), the caller asks for a new connection:
 * libcurl never re-sends on one, so a lost answer surfaces as an error with sent = true. */
static void prep_fresh_connect(lua_State *L, ocr_xfer *x, prep *p) {
    int fresh = 0;
    if (PRESENT(p, RK_FRESH_CONNECT)) read_bool(L, p->req, "fresh_connect", &fresh);
    XSET(L, x, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
}

static void prep_fixed(lua_State *L, ocr_xfer *x) {
    XSET(L, x, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    XSET(L, x, CURLOPT_PROTOCOLS_STR, "http,https");
    XSET(L, x, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    XSET(L, x, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    XSET(L, x, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    XSET(L, x, CURLOPT_ACCEPT_ENCODING, "");
    XSET(L, x, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    XSET(L, x, CURLOPT_ERRORBUFFER, x->errbuf);
    XSET(L, x, CURLOPT_PRIVATE, (void *)x);
    XSET(L, x, CURLOPT_WRITEFUNCTION, on_write);
    XSET(L, x, CURLOPT_WRITEDATA, (void *)x);
    XSET(L, x, CURLOPT_HEADERFUNCTION, on_header);
    XSET(L, x, CURLOPT_HEADERDATA, (void *)x);
    XSET(L, x, CURLOPT_XFERINFOFUNCTION, on_progress);
    XSET(L, x, CURLOPT_XFERINFODATA, (void *)x);
    XSET(L, x, CURLOPT_NOPROGRESS, 0L);
}

int ocr_xfer_prepare(lua_State *L, ocr_xfer *x, const ocr_curl_opts *defaults, int req) {
    prep p;
    memset(&p, 0, sizeof p);
    p.req = lua_absindex(L, req);
    luaL_checkstack(L, 24, "ocr.curl: request too deep");
    p.present = check_keys(L, p.req, request_keys, "request");
    p.base = lua_gettop(L);
    FIELD(&p, RK_BODY);   /* base+1: read once, so what is checked is what is sent */
    prep_body_kind(L, &p);
    prep_fixed(L, x);
    prep_options(L, x, defaults, &p);
    prep_fresh_connect(L, x, &p);
    if (!prep_url(L, x, &p) || !prep_method(L, x, &p) || !prep_headers(L, x, &p) ||
        !prep_body(L, x, &p) || !prep_save_to(L, x, &p))
        return 0;
    prep_size_cap(L, x);
    lua_settop(L, p.base + 1);
    return 1;
}

/* ---------------------------------------------------------------------------------------- */
/* results                                                                                  */

void ocr_xfer_finalize(ocr_xfer *x, CURLcode code) {
    long status = 0;
    if (x->finalized) return;
    x->finalized = 1;
    x->code = code;
    xfer_free_request(x);
    if (x->save_fp == NULL) return;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK && x->fail == OCR_FAIL_NONE && status >= 200 && status < 300) {
        /* Complete: make the bytes durable, then move them into place in one step. */
        if (fflush(x->save_fp) != 0 || fsync(fileno(x->save_fp)) != 0) x->io_errno = errno;
        if (fclose(x->save_fp) != 0 && x->io_errno == 0) x->io_errno = errno;
        x->save_fp = NULL;
        if (x->io_errno == 0 && rename(x->tmp_path, x->save_path) != 0) x->io_errno = errno;
        if (x->io_errno == 0) x->saved = 1;
        else x->fail = OCR_FAIL_IO;
    } else {
        fclose(x->save_fp);
        x->save_fp = NULL;
    }
    if (!x->saved) unlink(x->tmp_path);
    free(x->tmp_path);
    x->tmp_path = NULL;
}

int ocr_curl_push_error(lua_State *L, const char *kind, long code, int sent,
                        const char *fmt, ...) {
    va_list ap;
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_setfield(L, -2, "message");
    if (code >= 0) {
        lua_pushinteger(L, (lua_Integer)code);
        lua_setfield(L, -2, "curl_code");
    }
    lua_pushboolean(L, sent);
    lua_setfield(L, -2, "sent");
    return 2;
}

/* Did any byte of the request leave? libcurl counts request header bytes it sent. */
static int xfer_sent(ocr_xfer *x) {
    long req = 0, hdr = 0;
    curl_off_t up = 0;
    curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &req);
    curl_easy_getinfo(x->easy, CURLINFO_HEADER_SIZE, &hdr);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    return req > 0 || hdr > 0 || up > 0;
}

static const char *error_kind(CURLcode code) {
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND: case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED: case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
#if LIBCURL_VERSION_NUM >= 0x074d00
    case CURLE_SSL_CLIENTCERT:
#endif
        return "tls";
    case CURLE_FILESIZE_EXCEEDED:
        return "too_large";
    case CURLE_UNSUPPORTED_PROTOCOL: case CURLE_URL_MALFORMAT:
        return "invalid_input";
    default:
        return "network";
    }
}

static int push_failure(lua_State *L, ocr_xfer *x) {
    int sent = xfer_sent(x);
    long code = (long)x->code;
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->code);
    switch (x->fail) {
    case OCR_FAIL_TOO_LARGE:
        return ocr_curl_push_error(L, "too_large", code, sent, "response exceeds the size limit");
    case OCR_FAIL_NOMEM:
        return ocr_curl_push_error(L, "too_large", code, sent,
                                   "out of memory buffering the response");
    case OCR_FAIL_PROGRESS:
        return ocr_curl_push_error(L, "invalid_input", code, sent, "%s", x->fail_msg);
    case OCR_FAIL_IO:
        return ocr_curl_push_error(L, "invalid_input", code, sent,
                                   "save_to: cannot write '%s': %s",
                                   x->save_path ? x->save_path : "?",
                                   strerror(x->io_errno ? x->io_errno : EIO));
    default:
        break;
    }
    if (x->code == CURLE_FILESIZE_EXCEEDED)
        return ocr_curl_push_error(L, "too_large", code, sent,
                                   "response exceeds the size limit (declared Content-Length)");
    if (x->code == CURLE_UNSUPPORTED_PROTOCOL && sent) {
        /* After the request left, libcurl says "unsupported protocol" for two things: a redirect
         * to a scheme we do not follow (the last response was a 3xx), and a status line it cannot
         * parse (HTTP/0.9, an unknown version or code), which is the server's fault. */
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 300 && status < 400)
            return ocr_curl_push_error(L, "invalid_input", code, sent,
                "redirect refused: only http and https URLs are followed (%s)", detail);
        return ocr_curl_push_error(L, "network", code, sent,
                                   "malformed response from the server (%s)", detail);
    }
    return ocr_curl_push_error(L, error_kind(x->code), code, sent, "%s", detail);
}

static void push_header(lua_State *L, int t, const char *name, size_t nl, const char *value,
                        size_t vl) {
    luaL_Buffer b;
    char small[64];
    size_t i;
    if (nl <= sizeof small) {   /* the usual case: no buffer machinery */
        for (i = 0; i < nl; i++)
            small[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
        lua_pushlstring(L, small, nl);
    } else {
        luaL_buffinit(L, &b);
        for (i = 0; i < nl; i++) {
            char c = name[i];
            luaL_addchar(&b, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
        }
        luaL_pushresult(&b);
    }
    lua_pushvalue(L, -1);
    lua_rawget(L, t);
    if (lua_isstring(L, -1)) {
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, value, vl);
        lua_concat(L, 3);
    } else {
        lua_pop(L, 1);
        lua_pushlstring(L, value, vl);
    }
    lua_rawset(L, t);
}

static int is_ows(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Header lines of the final response -> {lowercase name = value, repeats joined by ", "}. */
static void push_headers(lua_State *L, const ocr_xfer *x) {
    const char *p = x->head.data, *end = p + x->head.len, *q;
    int t, lines = 0;
    for (q = p; q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++) lines++;
    lua_createtable(L, 0, lines > 1 ? lines - 1 : 0);   /* sized once: no rehash per header */
    t = lua_gettop(L);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *colon, *v, *ve;
        if (eol == NULL) eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && colon > p && !is_ows(*p)) {
            v = colon + 1;
            ve = eol;
            while (v < ve && is_ows(*v)) v++;
            while (ve > v && is_ows(ve[-1])) ve--;
            push_header(L, t, p, (size_t)(colon - p), v, (size_t)(ve - v));
        }
        p = eol + 1;
    }
}

static int push_response(lua_State *L, ocr_xfer *x) {
    long status = 0;
    char *url = NULL;
    double total = 0;
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME, &total);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
    luaL_checkstack(L, 12, "ocr.curl: building a response");
    lua_createtable(L, 0, 8);
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    push_headers(L, x);
    lua_setfield(L, -2, "headers");
    if (x->saved) {
        lua_pushstring(L, x->save_path);
        lua_setfield(L, -2, "saved");
    } else {
        lua_pushlstring(L, x->body.data ? x->body.data : "", x->body.len);
        lua_setfield(L, -2, "body");
    }
    if (url) {
        lua_pushstring(L, url);
        lua_setfield(L, -2, "url");
    }
    push_off(L, up);
    lua_setfield(L, -2, "bytes_sent");
    push_off(L, down);
    lua_setfield(L, -2, "bytes_received");
    lua_pushnumber(L, (lua_Number)total);
    lua_setfield(L, -2, "time");
    return 1;
}

int ocr_xfer_push_result(lua_State *L, ocr_xfer *x) {
    if (x->code != CURLE_OK || x->fail != OCR_FAIL_NONE) return push_failure(L, x);
    return push_response(L, x);
}

/* ---------------------------------------------------------------------------------------- */
/* module                                                                                   */

OCR_EXPORT int luaopen_ocr_curl(lua_State *L);

/* Lua unloads C modules when a state closes, which would unload libcurl with them: its global
 * state (never cleaned up: curl_global_cleanup is not safe while another user may exist) would
 * leak, and a threaded-resolver thread still finishing a lookup would run unmapped code. So the
 * module keeps itself, and libcurl, loaded for the life of the process. */
static void pin_module(void) {
    Dl_info info;
    if (dladdr((void *)(uintptr_t)&luaopen_ocr_curl, &info) && info.dli_fname)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);   /* handle kept on purpose */
}

/* With CURLOPT_NOSIGNAL (required for timeouts in threaded hosts) libcurl no longer shields the
 * process from SIGPIPE when a TLS peer closes mid-write, and the default action kills a plain Lua
 * script. Like LuaSocket, ignore it, unless the host already chose a disposition. */
static void ignore_sigpipe(void) {
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

int luaopen_ocr_curl(lua_State *L) {
    static const luaL_Reg funcs[] = {
        { "session", ocr_curl_session_new },
        { "multi", ocr_curl_multi_new },
        { NULL, NULL }
    };
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    pin_module();
    ignore_sigpipe();
    snprintf(default_user_agent, sizeof default_user_agent, "lua-ocr/%s libcurl/%s",
             OCR_VERSION, vi->version);
    if (luaL_newmetatable(L, OCR_CURL_HOLDER_MT)) {
        lua_pushcfunction(L, holder_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    ocr_curl_session_register(L);
    ocr_curl_multi_register(L);
    luaL_newlib(L, funcs);
    lua_pushliteral(L, OCR_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "_CURL_VERSION");
    lua_pushboolean(L, (vi->features & CURL_VERSION_ASYNCHDNS) != 0);
    lua_setfield(L, -2, "_ASYNCH_DNS");
    lua_pushstring(L, default_user_agent);
    lua_setfield(L, -2, "_USER_AGENT");
    return 1;
}
