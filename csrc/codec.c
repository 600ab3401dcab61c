/* ocr.core encodings: base64 (RFC 4648 §4) and percent-encoding (RFC 3986 §2.1).
 * Encoders take any bytes; decoders are strict and answer nil, message for bad input rather
 * than guessing, because silently "repaired" data would surface much later as a wrong upload
 * or a signature mismatch. */
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>
#include "ocr.h"

/* Only real strings: see check_bytes in crypto.c for why numbers are not coerced. */
static const char *check_bytes(lua_State *L, int arg, size_t *len) {
    if (lua_type(L, arg) != LUA_TSTRING) {
        const char *msg = lua_pushfstring(L, "string expected, got %s", luaL_typename(L, arg));
        luaL_argerror(L, arg, msg);
    }
    return lua_tolstring(L, arg, len);
}

/* lua_pushfstring has no size_t conversion on every Lua version, hence snprintf. */
static int push_fail(lua_State *L, const char *fmt, size_t n) {
    char msg[128];
    snprintf(msg, sizeof msg, fmt, n);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* ---- base64 ---------------------------------------------------------------------------- */

/* Input is fed to EVP_EncodeBlock in chunks (a multiple of 3 bytes, so no padding appears
 * mid-stream) because it takes an int length and we want no C heap allocation at all. */
#define B64_IN_CHUNK 768   /* bytes in  -> 1024 chars out */

int ocr_core_base64_encode(lua_State *L) {
    size_t n, i;
    const unsigned char *s = (const unsigned char *)check_bytes(L, 1, &n);
    unsigned char out[B64_IN_CHUNK / 3 * 4 + 1];   /* EVP_EncodeBlock writes a NUL */
    luaL_Buffer b;
    luaL_argcheck(L, n / 3 < ((size_t)-1) / 4 - 1, 1, "string too long");
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i += B64_IN_CHUNK) {
        size_t m = n - i < B64_IN_CHUNK ? n - i : B64_IN_CHUNK;
        int k = EVP_EncodeBlock(out, s + i, (int)m);
        luaL_addlstring(&b, (const char *)out, (size_t)k);
    }
    luaL_pushresult(&b);
    return 1;
}

static int is_b64_char(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Checks what EVP_DecodeBlock does not: the alphabet (it skips whitespace), the length and
 * where '=' may appear. Returns NULL and the number of padding characters on success.
 * Non-zero bits under the padding are accepted, like Python's b64decode(validate=True):
 * RFC 4648 §3.5 allows either choice and rejecting them buys nothing here. */
static const char *b64_validate(const unsigned char *s, size_t n, size_t *pad, size_t *at) {
    size_t i, first_pad = n;
    for (i = 0; i < n; i++) {
        if (s[i] == '=') {
            if (first_pad == n) first_pad = i;
        } else if (!is_b64_char(s[i])) {
            *at = i;
            return "base64_decode: invalid character at offset %zu";
        } else if (first_pad != n) {
            *at = first_pad;
            return "base64_decode: bad padding at offset %zu";
        }
    }
    if (n % 4 != 0) {
        *at = n;
        return "base64_decode: bad length %zu (not a multiple of 4)";
    }
    if (n - first_pad > 2) {
        *at = first_pad;
        return "base64_decode: bad padding at offset %zu";
    }
    *pad = n - first_pad;
    return NULL;
}

#define B64_OUT_CHUNK 1024  /* chars in (multiple of 4) -> 768 bytes out */

int ocr_core_base64_decode(lua_State *L) {
    size_t n, i, pad = 0, at = 0;
    const unsigned char *s = (const unsigned char *)check_bytes(L, 1, &n);
    const char *err = b64_validate(s, n, &pad, &at);
    unsigned char out[B64_OUT_CHUNK / 4 * 3];
    luaL_Buffer b;
    if (err != NULL) return push_fail(L, err, at);
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i += B64_OUT_CHUNK) {
        size_t m = n - i < B64_OUT_CHUNK ? n - i : B64_OUT_CHUNK;
        int k = EVP_DecodeBlock(out, s + i, (int)m);
        if (k < 0) return luaL_error(L, "base64_decode: OpenSSL rejected validated input");
        /* EVP_DecodeBlock decodes '=' as zero bits and returns them as bytes: drop them. */
        if (i + m == n) k -= (int)pad;
        luaL_addlstring(&b, (const char *)out, (size_t)k);
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- percent-encoding ------------------------------------------------------------------ */

static int is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

void ocr_url_encode_buf(luaL_Buffer *b, const char *s, size_t n) {
    static const char digits[] = "0123456789ABCDEF";
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && is_unreserved((unsigned char)s[run])) run++;
        if (run > i) luaL_addlstring(b, s + i, run - i);
        if (run < n) {
            unsigned char c = (unsigned char)s[run];
            char esc[3] = { '%', digits[c >> 4], digits[c & 0x0f] };
            luaL_addlstring(b, esc, 3);
            run++;
        }
        i = run;
    }
}

int ocr_core_url_encode(lua_State *L) {
    size_t n;
    const char *s = check_bytes(L, 1, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    ocr_url_encode_buf(&b, s, n);
    luaL_pushresult(&b);
    return 1;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* RFC 3986 percent-decoding, not application/x-www-form-urlencoded: '+' stays '+', since in a
 * URI path or a signed query value it is a literal plus, and turning it into a space would
 * corrupt exactly the strings this module exists to handle. Every '%' must start a complete
 * escape; anything else is refused. */
int ocr_core_url_decode(lua_State *L) {
    size_t n, i;
    const char *s = check_bytes(L, 1, &n);
    luaL_Buffer b;
    for (i = 0; i < n; i++) {
        if (s[i] != '%') continue;
        if (n - i < 3 || hex_value((unsigned char)s[i + 1]) < 0 ||
            hex_value((unsigned char)s[i + 2]) < 0)
            return push_fail(L, "url_decode: malformed escape at offset %zu", i);
        i += 2;
    }
    luaL_buffinit(L, &b);
    i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] != '%') run++;
        if (run > i) luaL_addlstring(&b, s + i, run - i);
        if (run < n) {
            int c = hex_value((unsigned char)s[run + 1]) * 16 + hex_value((unsigned char)s[run + 2]);
            luaL_addchar(&b, (char)c);
            run += 3;
        }
        i = run;
    }
    luaL_pushresult(&b);
    return 1;
}
