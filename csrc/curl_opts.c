/* ocr.curl options: which keys a table may hold, and the options (timeouts, size limits, TLS,
 * proxy, user agent, redirects) read from a session's, a multi's or a request's table.
 * Tables are read with raw access: no metamethod runs while C holds pointers into them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "curl_xfer.h"
#include "args.h"
#include "bytes.h"

#define MIB (1024.0 * 1024.0)
#define MAX_SECONDS 2147483.0            /* fits a 32-bit long in milliseconds */
#define MAX_BYTES 9007199254740992.0     /* 2^53: exact in a double */

#define KEY_NAME(id, name) name,
static const char *const option_keys[] = { OCR_OPTION_KEYS(KEY_NAME) NULL };
const char *const ocr_curl_request_keys[] = {
    OCR_REQUEST_KEYS(KEY_NAME) OCR_OPTION_KEYS(KEY_NAME) NULL
};

unsigned ocr_curl_check_keys(lua_State *L, int t, const char *const *allowed, const char *what) {
    unsigned present;
    if (!ocr_table_keys(L, t, allowed, &present)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "ocr.curl: %s: keys must be strings, got %s", what, luaL_typename(L, -1));
        luaL_error(L, "ocr.curl: %s: unknown field '%s'", what, lua_tostring(L, -1));
    }
    return present;
}

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
    int type = ocr_rawfield(L, t, k);
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

void ocr_curl_read_bool(lua_State *L, int t, const char *k, int *out) {
    int type = ocr_rawfield(L, t, k);
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
    int type = ocr_rawfield(L, t, k);
    if (type == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (type != LUA_TSTRING)
        luaL_error(L, "ocr.curl: option '%s' must be a string, got %s", k, lua_typename(L, type));
    s = lua_tolstring(L, -1, &n);
    if (memchr(s, '\0', n) != NULL) luaL_error(L, "ocr.curl: option '%s' contains a NUL byte", k);
    if (out == &o->user_agent && !ocr_is_field_value(s, n))   /* it becomes a request header */
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

void ocr_curl_opts_read(lua_State *L, int t, ocr_curl_opts *o, unsigned present) {
    double v;
#define HAS(k) (present & OCR_BIT(k))
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
    if (HAS(OK_INSECURE)) ocr_curl_read_bool(L, t, KEY(OK_INSECURE), &o->insecure);
    if (HAS(OK_FOLLOW)) ocr_curl_read_bool(L, t, KEY(OK_FOLLOW), &o->follow_redirects);
    if (HAS(OK_CA_FILE)) read_string(L, t, KEY(OK_CA_FILE), o, &o->ca_file);
    if (HAS(OK_PROXY)) read_string(L, t, KEY(OK_PROXY), o, &o->proxy);
    if (HAS(OK_USER_AGENT)) read_string(L, t, KEY(OK_USER_AGENT), o, &o->user_agent);
#undef HAS
#undef KEY
}

void ocr_curl_opts_arg(lua_State *L, ocr_curl_opts *o) {
    ocr_curl_opts_defaults(o);
    o->owns_strings = 1;
    if (lua_type(L, 1) == LUA_TTABLE)
        ocr_curl_opts_read(L, 1, o, ocr_curl_check_keys(L, 1, option_keys, "options"));
}
