/* ocr.core cos_sign: the Tencent COS "q-sign" Authorization value (COS's request signing
 * reference: a SHA1 HMAC over the method, path, sorted parameters and headers). Everything built here lives in Lua-managed memory (strings anchored in
 * a table, the sort array in a userdata, luaL_Buffer for concatenation), so any Lua error
 * raised while validating the caller's tables unwinds without leaking. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "ocr.h"
#include "bytes.h"
#include "args.h"

#define COS_MAX_ENTRIES 1000            /* per table (params, headers) */
#define COS_MAX_TOTAL   (1024 * 1024)   /* raw bytes of every key, value, path and secret */
#define SHA1_HEX_LEN    40

typedef struct {
    const char *k;   /* encoded, lowercased key (anchored in the anchor table) */
    size_t kl;
    const char *v;   /* encoded value (anchored likewise) */
    size_t vl;
} kv_entry;

typedef struct {
    int anchor;      /* absolute index of the table that keeps built strings alive */
    int anchored;    /* entries stored in it so far */
    size_t total;    /* raw input bytes counted against COS_MAX_TOTAL */
} sign_ctx;

static void add_total(lua_State *L, sign_ctx *c, size_t n) {
    if (n > COS_MAX_TOTAL || c->total + n > COS_MAX_TOTAL)
        luaL_error(L, "cos_sign: input larger than %d bytes", COS_MAX_TOTAL);
    c->total += n;
}

/* Stores the string on top of the stack in the anchor table (popping it) and returns a
 * pointer that stays valid for as long as the anchor table is alive. */
static const char *anchor_top(lua_State *L, sign_ctx *c, size_t *len) {
    const char *s = lua_tolstring(L, -1, len);
    lua_rawseti(L, c->anchor, ++c->anchored);
    return s;
}

static const char *check_field_string(lua_State *L, const char *name, size_t *len) {
    const char *s;
    lua_getfield(L, 1, name);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "cos_sign: '%s' must be a non-empty string, got %s", name,
                   luaL_typename(L, -1));
    s = lua_tolstring(L, -1, len);
    if (*len == 0) luaL_error(L, "cos_sign: '%s' must be a non-empty string", name);
    return s;   /* left on the stack, which keeps it alive */
}

static long long check_field_time(lua_State *L, const char *name) {
    long long v = -1;
    lua_getfield(L, 1, name);
    if (lua_type(L, -1) == LUA_TNUMBER) {
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, -1)) v = (long long)lua_tointeger(L, -1);
        else
#endif
        {
            lua_Number d = lua_tonumber(L, -1);
            if (d >= 0 && d <= 9007199254740992.0 && d == (lua_Number)(long long)d)
                v = (long long)d;
        }
    }
    if (v < 0) luaL_error(L, "cos_sign: '%s' must be a non-negative integer", name);
    lua_pop(L, 1);
    return v;
}

/* Percent-encodes the string at idx (RFC 3986, shared encoder), lowercasing the result when
 * asked; keys are lowercased *after* encoding, so "%E4" signs as "%e4". Anchors the result. */
static const char *encode_anchor(lua_State *L, sign_ctx *c, int idx, int lower, size_t *len) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    ocr_url_encode_buf(&b, s, n);
    luaL_pushresult(&b);
    if (lower) {
        const char *e = lua_tolstring(L, -1, &n);
        ocr_push_lower(L, e, n);
        lua_remove(L, -2);
    }
    return anchor_top(L, c, len);
}

static int count_entries(lua_State *L, int t, const char *what) {
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        lua_pop(L, 1);
        if (++n > COS_MAX_ENTRIES)
            luaL_error(L, "cos_sign: more than %d entries in '%s'", COS_MAX_ENTRIES, what);
    }
    return n;
}

/* Turns params/headers (field `what` of the argument) into an array of encoded pairs held in
 * a userdata pushed on the stack; *count receives its length. */
static kv_entry *collect(lua_State *L, sign_ctx *c, const char *what, int *count) {
    int t, n, i = 0;
    kv_entry *e;
    lua_getfield(L, 1, what);
    t = lua_gettop(L);
    if (lua_isnil(L, t)) n = 0;
    else if (lua_type(L, t) != LUA_TTABLE) {
        luaL_error(L, "cos_sign: '%s' must be a table, got %s", what, luaL_typename(L, t));
        n = 0;
    } else n = count_entries(L, t, what);
    e = (kv_entry *)lua_newuserdata(L, (size_t)(n > 0 ? n : 1) * sizeof *e);
    if (n > 0) {
        lua_pushnil(L);
        while (lua_next(L, t) != 0) {
            size_t kl, vl;
            const char *key;
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "cos_sign: %s keys must be strings, got %s", what,
                           luaL_typename(L, -2));
            key = lua_tolstring(L, -2, &kl);
            if (kl == 0) luaL_error(L, "cos_sign: %s key must not be empty", what);
            if (lua_type(L, -1) == LUA_TNUMBER) {
                if (!ocr_push_number_string(L, -1))
                    luaL_error(L, "cos_sign: %s['%s'] must be a finite number", what, key);
                lua_replace(L, -2);
            } else if (lua_type(L, -1) != LUA_TSTRING) {
                luaL_error(L, "cos_sign: %s['%s'] must be a string or number, got %s", what,
                           key, luaL_typename(L, -1));
            }
            lua_tolstring(L, -1, &vl);
            add_total(L, c, kl);
            add_total(L, c, vl);
            if (i >= n) luaL_error(L, "cos_sign: '%s' changed while being read", what);
            e[i].k = encode_anchor(L, c, -2, 1, &e[i].kl);
            e[i].v = encode_anchor(L, c, -1, 0, &e[i].vl);
            i++;
            lua_pop(L, 1);
        }
    }
    lua_remove(L, t);   /* the userdata stays on the stack, now where the table was */
    *count = i;
    return e;
}

static int entry_cmp(const void *a, const void *b) {
    const kv_entry *x = (const kv_entry *)a, *y = (const kv_entry *)b;
    size_t m = x->kl < y->kl ? x->kl : y->kl;
    int r = memcmp(x->k, y->k, m);
    if (r != 0) return r;
    return x->kl < y->kl ? -1 : (x->kl > y->kl ? 1 : 0);
}

/* Byte-wise sort (never strcoll: the order must not depend on the locale); keys that collide
 * once encoded and lowercased ("Host" and "host") would make the order, and so the signature,
 * ambiguous, so they are refused. */
static void sort_entries(lua_State *L, kv_entry *e, int n, const char *what) {
    int i;
    if (n > 1) qsort(e, (size_t)n, sizeof *e, entry_cmp);
    for (i = 1; i < n; i++)
        if (entry_cmp(&e[i - 1], &e[i]) == 0)
            luaL_error(L, "cos_sign: duplicate %s key '%s' after encoding and lowercasing", what,
                       e[i].k);
}

static void add_pairs(luaL_Buffer *b, const kv_entry *e, int n) {
    int i;
    for (i = 0; i < n; i++) {
        if (i > 0) luaL_addchar(b, '&');
        luaL_addlstring(b, e[i].k, e[i].kl);
        luaL_addchar(b, '=');
        luaL_addlstring(b, e[i].v, e[i].vl);
    }
}

static void push_key_list(lua_State *L, const kv_entry *e, int n) {
    luaL_Buffer b;
    int i;
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        if (i > 0) luaL_addchar(&b, ';');
        luaL_addlstring(&b, e[i].k, e[i].kl);
    }
    luaL_pushresult(&b);
}

static void hmac_sha1_hex(lua_State *L, const char *key, size_t kl, const char *msg, size_t ml,
                          char *hex) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    if (kl > INT_MAX || HMAC(EVP_sha1(), key, (int)kl, (const unsigned char *)msg, ml, out,
                             &outlen) == NULL || outlen != 20)
        luaL_error(L, "cos_sign: OpenSSL HMAC failure");
    ocr_hex_encode(out, 20, hex);
}

/* The secret id is copied verbatim into a header value: refuse anything that could end the
 * header or break the &-separated field list. */
static void check_secret_id(lua_State *L, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '&')
            luaL_error(L, "cos_sign: 'secret_id' contains a forbidden character at offset %d",
                       (int)i);
    }
}

/* Hex SHA-1 of HttpString = lower(method)\npath\nparams\nheaders\n. */
static void http_string_sha1(lua_State *L, const char *method, size_t ml, const char *path,
                             size_t pl, const kv_entry *p, int np, const kv_entry *h, int nh,
                             char *hex) {
    luaL_Buffer b;
    size_t hl;
    const char *hs;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    luaL_buffinit(L, &b);
    ocr_add_lower(&b, method, ml);
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, path, pl);
    luaL_addchar(&b, '\n');
    add_pairs(&b, p, np);
    luaL_addchar(&b, '\n');
    add_pairs(&b, h, nh);
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    hs = lua_tolstring(L, -1, &hl);
    if (!EVP_Digest(hs, hl, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
        luaL_error(L, "cos_sign: OpenSSL SHA-1 failure");
    ocr_hex_encode(md, 20, hex);
    lua_pop(L, 1);
}

int ocr_core_cos_sign(lua_State *L) {
    sign_ctx c;
    size_t idl, kl, ml, pl;
    const char *id, *key, *method, *path;
    long long start, expire;
    kv_entry *params, *headers;
    int np = 0, nh = 0;
    char keytime[64], signkey[SHA1_HEX_LEN], hashed[SHA1_HEX_LEN], sig[SHA1_HEX_LEN + 1];
    char sts[160];
    int ktl, stsl;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    id = check_field_string(L, "secret_id", &idl);
    key = check_field_string(L, "secret_key", &kl);
    method = check_field_string(L, "method", &ml);
    path = check_field_string(L, "path", &pl);
    check_secret_id(L, id, idl);
    start = check_field_time(L, "start");
    expire = check_field_time(L, "expire");
    if (start > expire) luaL_error(L, "cos_sign: 'start' must not be after 'expire'");

    lua_newtable(L);
    c.anchor = lua_gettop(L);
    c.anchored = 0;
    c.total = 0;
    add_total(L, &c, idl);
    add_total(L, &c, kl);
    add_total(L, &c, ml);
    add_total(L, &c, pl);
    params = collect(L, &c, "params", &np);
    headers = collect(L, &c, "headers", &nh);
    sort_entries(L, params, np, "params");
    sort_entries(L, headers, nh, "headers");

    ktl = snprintf(keytime, sizeof keytime, "%lld;%lld", start, expire);
    hmac_sha1_hex(L, key, kl, keytime, (size_t)ktl, signkey);
    http_string_sha1(L, method, ml, path, pl, params, np, headers, nh, hashed);
    stsl = snprintf(sts, sizeof sts, "sha1\n%s\n%.*s\n", keytime, SHA1_HEX_LEN, hashed);
    hmac_sha1_hex(L, signkey, SHA1_HEX_LEN, sts, (size_t)stsl, sig);

    /* Every piece is a C string: id holds no NUL (check_secret_id), the key lists are
     * percent-encoded, the rest is ours. */
    sig[SHA1_HEX_LEN] = '\0';
    push_key_list(L, headers, nh);
    push_key_list(L, params, np);
    lua_pushfstring(L, "q-sign-algorithm=sha1&q-ak=%s&q-sign-time=%s&q-key-time=%s"
                       "&q-header-list=%s&q-url-param-list=%s&q-signature=%s",
                    id, keytime, keytime, lua_tostring(L, -2), lua_tostring(L, -1), sig);
    return 1;
}
