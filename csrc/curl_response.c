/* ocr.curl responses: the libcurl callbacks that receive a response (header lines, the body
 * into memory or into save_to's temp file, progress), and what a finished transfer gives Lua:
 * the response table, or an error table whose kind is read from libcurl's code and from why a
 * callback stopped the transfer.
 * The callbacks never call into Lua, except the progress trampoline, which runs under
 * lua_pcall. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include "curl_xfer.h"
#include "args.h"
#include "ocr.h"

/* ---- callbacks ---------------------------------------------------------------------------- */

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

/* Records why a buffer could not take more. */
static size_t buffer_failed(ocr_xfer *x, int rc) {
    x->fail = rc == OCR_BUF_LIMIT ? OCR_FAIL_TOO_LARGE : OCR_FAIL_NOMEM;
    return 0;
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
    return rc == OCR_BUF_OK ? n : buffer_failed(x, rc);
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
        if ((rc = ocr_buffer_append(&x->body, p, n)) != OCR_BUF_OK) return buffer_failed(x, rc);
    }
    x->body_count += (curl_off_t)n;
    return n;
}

void ocr_xfer_push_progress(lua_State *L, const ocr_xfer *x) {
    lua_createtable(L, 0, 4);
    ocr_push_uint(L, (unsigned long long)x->dltotal);
    lua_setfield(L, -2, "dltotal");
    ocr_push_uint(L, (unsigned long long)x->dlnow);
    lua_setfield(L, -2, "dlnow");
    ocr_push_uint(L, (unsigned long long)x->ultotal);
    lua_setfield(L, -2, "ultotal");
    ocr_push_uint(L, (unsigned long long)x->ulnow);
    lua_setfield(L, -2, "ulnow");
}

int ocr_xfer_progress_trampoline(lua_State *L) {
    luaL_checktype(L, 2, LUA_TLIGHTUSERDATA);
    lua_settop(L, 2);
    lua_pushvalue(L, 1);
    ocr_xfer_push_progress(L, lua_touserdata(L, 2));
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
        x->fail = OCR_FAIL_INPUT;
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

void ocr_xfer_set_receivers(lua_State *L, ocr_xfer *x) {
    OCR_XSET(L, x, CURLOPT_ERRORBUFFER, x->errbuf);
    OCR_XSET(L, x, CURLOPT_WRITEFUNCTION, on_write);
    OCR_XSET(L, x, CURLOPT_WRITEDATA, (void *)x);
    OCR_XSET(L, x, CURLOPT_HEADERFUNCTION, on_header);
    OCR_XSET(L, x, CURLOPT_HEADERDATA, (void *)x);
    OCR_XSET(L, x, CURLOPT_XFERINFOFUNCTION, on_progress);
    OCR_XSET(L, x, CURLOPT_XFERINFODATA, (void *)x);
    OCR_XSET(L, x, CURLOPT_NOPROGRESS, 0L);
}

/* ---- errors ------------------------------------------------------------------------------- */

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
    case OCR_FAIL_INPUT:
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

/* ---- responses ---------------------------------------------------------------------------- */

/* t[lowercase name] = value, a repeated name's values joined by ", ". */
static void push_header(lua_State *L, int t, const char *name, size_t nl, const char *value,
                        size_t vl) {
    ocr_push_lower(L, name, nl);
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
    ocr_push_uint(L, (unsigned long long)up);
    lua_setfield(L, -2, "bytes_sent");
    ocr_push_uint(L, (unsigned long long)down);
    lua_setfield(L, -2, "bytes_received");
    lua_pushnumber(L, (lua_Number)total);
    lua_setfield(L, -2, "time");
    return 1;
}

int ocr_xfer_push_result(lua_State *L, ocr_xfer *x) {
    if (x->code != CURLE_OK || x->fail != OCR_FAIL_NONE) return push_failure(L, x);
    return push_response(L, x);
}
