/* ocr.core hashing: sha1, md5, sha256, sha256_file, hmac_sha1, hex and random_bytes. Digests and random bytes come
 * from OpenSSL's libcrypto; this file only moves bytes between Lua and OpenSSL and never
 * implements a primitive itself. */
#define _GNU_SOURCE   /* O_CLOEXEC */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "ocr.h"
#include "bytes.h"
#include <stdlib.h>

/* Digests hash bytes, so only real strings are accepted: a number would hash its Lua-version
 * dependent textual form (1.0 is "1.0" on 5.4 but "1" on 5.1), which is never what a caller
 * signing a request means. */
static const char *check_bytes(lua_State *L, int arg, size_t *len) {
    if (lua_type(L, arg) != LUA_TSTRING) {
        const char *msg = lua_pushfstring(L, "string expected, got %s", luaL_typename(L, arg));
        luaL_argerror(L, arg, msg);
    }
    return lua_tolstring(L, arg, len);
}

static int push_digest(lua_State *L, const EVP_MD *md, const char *name) {
    size_t n;
    const char *s = check_bytes(L, 1, &n);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    if (!EVP_Digest(s, n, out, &outlen, md, NULL)) return luaL_error(L, "%s: OpenSSL failure", name);
    lua_pushlstring(L, (const char *)out, outlen);
    return 1;
}

int ocr_core_sha1(lua_State *L) { return push_digest(L, EVP_sha1(), "sha1"); }
int ocr_core_md5(lua_State *L)  { return push_digest(L, EVP_md5(), "md5"); }
int ocr_core_sha256(lua_State *L) { return push_digest(L, EVP_sha256(), "sha256"); }

/* sha256_file(path) -> the 32-byte SHA-256 of the file's bytes, or nil, "path: reason". The file
 * is streamed through a fixed buffer (a cache key for a 1 GB scan needs no 1 GB string), and
 * nothing can raise while the descriptor and the digest context are held: every Lua value is
 * pushed after both are released. */
#define OCR_HASH_CHUNK 65536
int ocr_core_sha256_file(lua_State *L) {
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    unsigned char *buf;
    EVP_MD_CTX *md;
    int fd, err = 0, openssl_failed = 0;
    if (strlen(path) != len) {
        lua_pushnil(L);
        lua_pushliteral(L, "path contains a NUL byte");
        return 2;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(err));
        return 2;
    }
    buf = (unsigned char *)malloc(OCR_HASH_CHUNK);
    md = EVP_MD_CTX_new();
    if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        openssl_failed = 1;
    } else {
        for (;;) {
            ssize_t n = read(fd, buf, OCR_HASH_CHUNK);
            if (n < 0) {
                if (errno == EINTR) continue;
                err = errno;
                break;
            }
            if (n == 0) break;
            if (!EVP_DigestUpdate(md, buf, (size_t)n)) { openssl_failed = 1; break; }
        }
        if (!err && !openssl_failed && !EVP_DigestFinal_ex(md, out, &outlen)) openssl_failed = 1;
    }
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    if (openssl_failed) return luaL_error(L, "sha256_file: OpenSSL failure or out of memory");
    if (err) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(err));
        return 2;
    }
    lua_pushlstring(L, (const char *)out, outlen);
    return 1;
}

/* HMAC() is the one-shot interface that OpenSSL 3 keeps undeprecated (only HMAC_CTX_* went),
 * and it also exists on 1.1, so one code path serves both. */
int ocr_core_hmac_sha1(lua_State *L) {
    size_t klen, n;
    const char *key = check_bytes(L, 1, &klen);
    const char *s = check_bytes(L, 2, &n);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    luaL_argcheck(L, klen <= INT_MAX, 1, "key too long");
    if (HMAC(EVP_sha1(), key, (int)klen, (const unsigned char *)s, n, out, &outlen) == NULL)
        return luaL_error(L, "hmac_sha1: OpenSSL failure");
    lua_pushlstring(L, (const char *)out, outlen);
    return 1;
}

/* Encodes through a small stack chunk so arbitrarily long input needs no C heap allocation;
 * luaL_Buffer owns the growing result and is reclaimed by Lua if anything raises. */
int ocr_core_hex(lua_State *L) {
    size_t n, i;
    const unsigned char *s = (const unsigned char *)check_bytes(L, 1, &n);
    char chunk[512];
    luaL_Buffer b;
    luaL_argcheck(L, n <= ((size_t)-1) / 2, 1, "string too long");
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i += sizeof chunk / 2) {
        size_t m = n - i < sizeof chunk / 2 ? n - i : sizeof chunk / 2;
        ocr_hex_encode(s + i, m, chunk);
        luaL_addlstring(&b, chunk, 2 * m);
    }
    luaL_pushresult(&b);
    return 1;
}

/* random_bytes(n): n bytes from OpenSSL's CSPRNG (unpredictable temporary names, nonces). */
int ocr_core_random_bytes(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    unsigned char buf[256];
    luaL_argcheck(L, n >= 0 && n <= (lua_Integer)sizeof buf, 1, "must be 0 to 256 bytes");
    if (n > 0 && RAND_bytes(buf, (int)n) != 1) return luaL_error(L, "random_bytes: RAND_bytes failed");
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return 1;
}
