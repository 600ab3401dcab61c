/* ocr.curl requests: a request table turned into libcurl options before anything is sent.
 *
 * Policy in brief (the specs hold the details):
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
 *  - what the caller got wrong in a value is an invalid_input error (nothing is sent); wrong
 *    argument types and unknown fields raise.
 *
 * Request tables are read with raw access (no metamethods run while a request is built) and
 * every string handed to libcurl without a copy stays referenced on the Lua stack or in an
 * anchor table until the transfer ends. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "curl_xfer.h"
#include "args.h"
#include "bytes.h"

#define MAX_PATH_LEN 4096

/* ---- helpers shared with curl_body.c ------------------------------------------------------ */

int ocr_curl_setopt_failed(lua_State *L, const char *name, CURLcode rc) {
    return luaL_error(L, "ocr.curl: curl_easy_setopt(%s) failed: %s", name,
                      curl_easy_strerror(rc));
}

int ocr_prep_invalid(lua_State *L, const ocr_prep *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_replace(L, p->base + 1);
    lua_settop(L, p->base + 1);
    return 0;
}

const char *ocr_prep_string(lua_State *L, const ocr_prep *p, const char *k, size_t *n,
                            int required) {
    int type = ocr_rawfield(L, p->req, k);
    if (type == LUA_TSTRING) return lua_tolstring(L, -1, n);
    if (type == LUA_TNIL && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    luaL_error(L, "ocr.curl: request.%s must be a string, got %s", k, lua_typename(L, type));
    return NULL;
}

void ocr_prep_header(lua_State *L, ocr_xfer *x, const char *line) {
    struct curl_slist *l = curl_slist_append(x->headers, line);
    if (l == NULL) luaL_error(L, "ocr.curl: out of memory");
    x->headers = l;
}

/* Pushes request[k] (nil when absent) and returns its type. */
static int field(lua_State *L, const ocr_prep *p, int k) {
    if (OCR_PRESENT(p, k)) return ocr_rawfield(L, p->req, ocr_curl_request_keys[k]);
    lua_pushnil(L);
    return LUA_TNIL;
}

static int ci_prefix(const char *s, size_t n, const char *prefix) {
    size_t pl = strlen(prefix);
    char low[16];
    if (n < pl || pl > sizeof low) return 0;
    ocr_lower(low, s, pl);
    return memcmp(low, prefix, pl) == 0;
}

static int ci_equal(const char *s, size_t n, const char *b) {
    return strlen(b) == n && ci_prefix(s, n, b);
}

/* ---- url, method, headers ----------------------------------------------------------------- */

static int prep_url(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    size_t n, i;
    const char *url = ocr_prep_string(L, p, "url", &n, 1);
    if (!ci_prefix(url, n, "http://") && !ci_prefix(url, n, "https://"))
        return ocr_prep_invalid(L, p, "url: only http:// and https:// URLs are allowed");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return ocr_prep_invalid(L, p, "url: contains a space or a control character");
    }
    if (curl_easy_setopt(x->easy, CURLOPT_URL, url) != CURLE_OK)
        return ocr_prep_invalid(L, p, "url: rejected by libcurl (too long?)");
    lua_pop(L, 1);
    return 1;
}

static int prep_method(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    static const char *const defaults[] = { "GET", "POST", "POST", "PUT" };
    const char *plain = defaults[p->kind];   /* what libcurl sends without CUSTOMREQUEST */
    size_t n;
    const char *m = OCR_PRESENT(p, RK_METHOD) ? ocr_prep_string(L, p, "method", &n, 0) : NULL;
    int pushed = m != NULL;
    if (m == NULL) m = plain;
    else if (n > 64 || !ocr_is_token(m, n))
        return ocr_prep_invalid(L, p, "method: must be an HTTP token of at most 64 characters");
    if (strcmp(m, "HEAD") == 0) {
        if (p->kind != OCR_BODY_NONE)
            return ocr_prep_invalid(L, p, "method: HEAD cannot send a body");
        OCR_XSET(L, x, CURLOPT_NOBODY, 1L);
        plain = "HEAD";
    } else if (p->kind == OCR_BODY_NONE) {
        /* Methods that normally carry a body say so with Content-Length: 0. */
        if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
            OCR_XSET(L, x, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            OCR_XSET(L, x, CURLOPT_POSTFIELDS, "");
            plain = "POST";
        } else {
            OCR_XSET(L, x, CURLOPT_HTTPGET, 1L);
        }
    }
    if (strcmp(m, plain) != 0) OCR_XSET(L, x, CURLOPT_CUSTOMREQUEST, m);
    if (pushed) lua_pop(L, 1);
    return 1;
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

/* The caller's headers. A form's Content-Type is kept aside: the form adds its boundary to it. */
static int prep_headers(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    int t, type = field(L, p, RK_HEADERS);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
    } else if (type != LUA_TTABLE) {
        luaL_error(L, "ocr.curl: request.headers must be a table, got %s", lua_typename(L, type));
    } else {
        t = lua_gettop(L);   /* stays on the stack: it anchors the form's Content-Type value */
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
            if (!ocr_is_token(name, nl))
                return ocr_prep_invalid(L, p, "headers: invalid header name (a token without "
                                              "spaces, ':' or control characters is required)");
            if (!ocr_is_field_value(value, vl))
                return ocr_prep_invalid(L, p, "headers: value of '%s' contains CR, LF or another "
                                              "control character", name);
            if (ci_equal(name, nl, "expect")) p->has_expect = 1;
            if (ci_equal(name, nl, "content-type")) {
                p->ctype = value;
                p->ctypel = vl;
                if (p->kind == OCR_BODY_FORM) {
                    lua_pop(L, 1);
                    continue;
                }
            }
            add_header(L, x, name, nl, value, vl);
            lua_pop(L, 1);
        }
    }
    /* Never wait for 100-continue; never let libcurl label a raw body as a form. */
    if (!p->has_expect) ocr_prep_header(L, x, "Expect:");
    if (p->kind == OCR_BODY_STRING && p->ctype == NULL) ocr_prep_header(L, x, "Content-Type:");
    OCR_XSET(L, x, CURLOPT_HTTPHEADER, x->headers);
    return 1;
}

/* ---- save_to ------------------------------------------------------------------------------ */

/* The temp file is created now, next to the target, so an unwritable directory is an
 * invalid_input before anything is sent. */
static int prep_save_to(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    static const char suffix[] = ".part-XXXXXX";
    size_t n;
    int fd;
    const char *path = OCR_PRESENT(p, RK_SAVE_TO) ? ocr_prep_string(L, p, "save_to", &n, 0) : NULL;
    if (path == NULL) return 1;
    if (n == 0 || n > MAX_PATH_LEN || memchr(path, '\0', n) != NULL)
        return ocr_prep_invalid(L, p, "save_to: must be a non-empty path without NUL bytes");
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
        return ocr_prep_invalid(L, p, "save_to: cannot create a file next to '%s': %s", path,
                                strerror(e));
    }
    if ((x->save_fp = fdopen(fd, "w+b")) == NULL) {
        close(fd);
        return ocr_prep_invalid(L, p, "save_to: %s", strerror(errno));
    }
    lua_pop(L, 1);
    return 1;
}

/* ---- options ------------------------------------------------------------------------------ */

static long to_ms(double s) {
    long ms = (long)(s * 1000.0 + 0.5);
    return ms < 1 ? 1 : ms;
}

static void prep_options(lua_State *L, ocr_xfer *x, const ocr_curl_opts *defaults, ocr_prep *p) {
    ocr_curl_opts o = *defaults;
    int top = lua_gettop(L);
    o.owns_strings = 0;
    /* borrowed strings stay on the stack until libcurl has copied them */
    ocr_curl_opts_read(L, p->req, &o, p->present >> RK_OPTIONS);
    OCR_XSET(L, x, CURLOPT_TIMEOUT_MS, to_ms(o.timeout));
    OCR_XSET(L, x, CURLOPT_CONNECTTIMEOUT_MS, to_ms(o.connect_timeout));
    OCR_XSET(L, x, CURLOPT_SSL_VERIFYPEER, o.insecure ? 0L : 1L);
    OCR_XSET(L, x, CURLOPT_SSL_VERIFYHOST, o.insecure ? 0L : 2L);
    if (o.ca_file) OCR_XSET(L, x, CURLOPT_CAINFO, o.ca_file);
    if (o.proxy) OCR_XSET(L, x, CURLOPT_PROXY, o.proxy);
    OCR_XSET(L, x, CURLOPT_USERAGENT, o.user_agent ? o.user_agent : ocr_curl_user_agent);
    OCR_XSET(L, x, CURLOPT_FOLLOWLOCATION, o.follow_redirects ? 1L : 0L);
    OCR_XSET(L, x, CURLOPT_MAXREDIRS, o.max_redirects);
    x->mem_limit = o.max_response_size > (double)SIZE_MAX ? SIZE_MAX : (size_t)o.max_response_size;
    x->file_limit = (curl_off_t)o.max_download_size;
    if (!o.max_download_set && o.max_response_set)
        x->file_limit = (curl_off_t)o.max_response_size;
    lua_settop(L, top);
}

/* libcurl rejects a declared Content-Length over the larger bound up front (the status, hence
 * the bound that applies, is not known yet); the write callback applies the exact one. */
static void prep_size_cap(lua_State *L, ocr_xfer *x) {
    curl_off_t cap = (curl_off_t)x->mem_limit;   /* at most 2^53 (see curl_opts.c) */
    if (x->save_fp && x->file_limit > cap) cap = x->file_limit;
    if (cap > 0) OCR_XSET(L, x, CURLOPT_MAXFILESIZE_LARGE, cap);   /* 0 means "no limit" */
}

/* libcurl silently sends a request again when a reused connection dies before any answer. For a
 * request that must not be repeated (a billed create), the caller asks for a new connection:
 * libcurl never re-sends on one, so a lost answer surfaces as an error with sent = true. */
static void prep_fresh_connect(lua_State *L, ocr_xfer *x, ocr_prep *p) {
    int fresh = 0;
    if (OCR_PRESENT(p, RK_FRESH_CONNECT)) ocr_curl_read_bool(L, p->req, "fresh_connect", &fresh);
    OCR_XSET(L, x, CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
}

static void prep_fixed(lua_State *L, ocr_xfer *x) {
    OCR_XSET(L, x, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
    OCR_XSET(L, x, CURLOPT_PROTOCOLS_STR, "http,https");
    OCR_XSET(L, x, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    OCR_XSET(L, x, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    OCR_XSET(L, x, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    OCR_XSET(L, x, CURLOPT_ACCEPT_ENCODING, "");
    OCR_XSET(L, x, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    OCR_XSET(L, x, CURLOPT_PRIVATE, (void *)x);
    ocr_xfer_set_receivers(L, x);
}

int ocr_xfer_prepare(lua_State *L, ocr_xfer *x, const ocr_curl_opts *defaults, int req) {
    ocr_prep p;
    memset(&p, 0, sizeof p);
    p.req = lua_absindex(L, req);
    luaL_checkstack(L, 24, "ocr.curl: request too deep");
    p.present = ocr_curl_check_keys(L, p.req, ocr_curl_request_keys, "request");
    p.base = lua_gettop(L);
    field(L, &p, RK_BODY);   /* base+1: read once, so what is checked is what is sent */
    ocr_prep_body_kind(L, &p);
    prep_fixed(L, x);
    prep_options(L, x, defaults, &p);
    prep_fresh_connect(L, x, &p);
    if (!prep_url(L, x, &p) || !prep_method(L, x, &p) || !prep_headers(L, x, &p) ||
        !ocr_prep_body(L, x, &p) || !prep_save_to(L, x, &p))
        return 0;
    prep_size_cap(L, x);
    lua_settop(L, p.base + 1);
    return 1;
}
