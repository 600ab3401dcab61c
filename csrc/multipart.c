/* ocr.core multipart: multipart/form-data bodies (RFC 7578) built in memory.
 * The body is produced in two passes over the same writer code, one measuring and one copying,
 * into a userdata of exactly the measured size: the size bound is checked before anything big
 * is allocated, the memory is Lua's (nothing leaks when a Lua error is raised), and the writes
 * cannot disagree with the measurement because they are the same code. */
#include <stdio.h>
#include <string.h>
#include <openssl/rand.h>
#include "ocr.h"
#include "form.h"

#define MP_MAX_BODY     ((size_t)1 << 30)   /* in-memory bodies only */
#define MP_MAX_PARTS    10000
#define MP_MAX_BOUNDARY OCR_FORM_MAX_BOUNDARY
#define MP_DEFAULT_TYPE "application/octet-stream"

typedef ocr_form_part mp_part;   /* a plain field has neither filename nor ctype */

/* ---- part validation ---------------------------------------------------------------------- */

/* Raw field access: the parts are plain data, and __index metamethods must not run (and be
 * able to mutate what we already hold pointers into) halfway through. */
static int raw_field(lua_State *L, int t, const char *name) {
    lua_pushstring(L, name);
    lua_rawget(L, t);
    return lua_type(L, -1);
}

/* Integral numbers print without a fraction on every Lua version; see cos_sign.c. */
static void push_number_string(lua_State *L, int idx, int part) {
    lua_Number d;
    char tmp[64];
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
        lua_pushstring(L, tmp);
        return;
    }
#endif
    d = lua_tonumber(L, idx);
    if (d - d != 0) luaL_error(L, "multipart: part #%d: 'value' must be a finite number", part);
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (lua_Number)(long long)d)
        snprintf(tmp, sizeof tmp, "%lld", (long long)d);
    else
        snprintf(tmp, sizeof tmp, "%.14g", (double)d);
    lua_pushstring(L, tmp);
}

static void check_known_fields(lua_State *L, int t, int part) {
    static const char *const known[] = { "name", "value", "filename", "content_type", "data" };
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        size_t i, kl, ok = 0;
        const char *k;
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "multipart: part #%d: unexpected %s key", part, luaL_typename(L, -2));
        k = lua_tolstring(L, -2, &kl);
        for (i = 0; i < sizeof known / sizeof known[0]; i++)
            if (kl == strlen(known[i]) && memcmp(k, known[i], kl) == 0) ok = 1;
        if (!ok)
            luaL_error(L, "multipart: part #%d: unknown field '%s'", part, k);
        lua_pop(L, 1);
    }
}

/* A content type goes verbatim into a header line: no control characters. */
static void check_ctype(lua_State *L, const char *s, size_t n, int part) {
    size_t i;
    if (n == 0) luaL_error(L, "multipart: part #%d: 'content_type' must not be empty", part);
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            luaL_error(L, "multipart: part #%d: 'content_type' contains a control character",
                       part);
}

/* Reads part #i (the table at t) into *p. Strings it creates are left on the stack above t
 * (the caller pops them after copying the part into an anchor). Returns how many it left. */
static int read_part(lua_State *L, int t, int i, mp_part *p) {
    int top = lua_gettop(L), tv, td, tf, tc;
    check_known_fields(L, t, i);
    if (raw_field(L, t, "name") != LUA_TSTRING)
        luaL_error(L, "multipart: part #%d: 'name' must be a string", i);
    p->name = lua_tolstring(L, -1, &p->namel);
    if (p->namel == 0) luaL_error(L, "multipart: part #%d: 'name' must not be empty", i);
    tv = raw_field(L, t, "value");
    td = raw_field(L, t, "data");
    tf = raw_field(L, t, "filename");
    tc = raw_field(L, t, "content_type");   /* stack: name value data filename ctype */
    if ((tv == LUA_TNIL) == (td == LUA_TNIL))
        luaL_error(L, "multipart: part #%d: exactly one of 'value' and 'data' is required", i);
    if (tv != LUA_TNIL) {
        if (tf != LUA_TNIL || tc != LUA_TNIL)
            luaL_error(L, "multipart: part #%d: 'filename' and 'content_type' need 'data'", i);
        if (tv == LUA_TNUMBER) {
            push_number_string(L, top + 2, i);
            lua_replace(L, top + 2);
        } else if (tv != LUA_TSTRING) {
            luaL_error(L, "multipart: part #%d: 'value' must be a string or number, got %s", i,
                       luaL_typename(L, top + 2));
        }
        p->body = lua_tolstring(L, top + 2, &p->bodyl);
        p->filename = p->ctype = NULL;
        p->filenamel = p->ctypel = 0;
        return lua_gettop(L) - top;
    }
    if (td != LUA_TSTRING)
        luaL_error(L, "multipart: part #%d: 'data' must be a string, got %s", i,
                   luaL_typename(L, top + 3));
    if (tf != LUA_TSTRING)
        luaL_error(L, "multipart: part #%d: 'data' needs a string 'filename'", i);
    p->body = lua_tolstring(L, top + 3, &p->bodyl);
    p->filename = lua_tolstring(L, top + 4, &p->filenamel);
    if (tc == LUA_TNIL) {
        p->ctype = MP_DEFAULT_TYPE;
        p->ctypel = sizeof MP_DEFAULT_TYPE - 1;
    } else if (tc != LUA_TSTRING) {
        luaL_error(L, "multipart: part #%d: 'content_type' must be a string", i);
    } else {
        p->ctype = lua_tolstring(L, top + 5, &p->ctypel);
        check_ctype(L, p->ctype, p->ctypel, i);
    }
    return lua_gettop(L) - top;
}

/* ---- boundary ----------------------------------------------------------------------------- */

/* RFC 2046 bchars: DIGIT ALPHA ' ( ) + _ , - . / : = ? and space (never last). */
static int is_bchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c != '\0' && strchr("'()+_,-./:=? ", c) != NULL);
}

static void check_boundary(lua_State *L, const char *b, size_t n) {
    size_t i;
    luaL_argcheck(L, n >= 1 && n <= MP_MAX_BOUNDARY, 2, "boundary must be 1 to 70 characters");
    for (i = 0; i < n; i++)
        luaL_argcheck(L, is_bchar((unsigned char)b[i]), 2,
                      "boundary contains a character not allowed by RFC 2046");
    luaL_argcheck(L, b[n - 1] != ' ', 2, "boundary must not end with a space");
}

/* "----ocr" + 32 hex digits from OpenSSL's CSPRNG: 39 characters, all bcharsnospace. */
static int random_boundary(char *out, size_t *len) {
    unsigned char rnd[16];
    if (RAND_bytes(rnd, (int)sizeof rnd) != 1) return 0;
    memcpy(out, "----ocr", 7);
    ocr_hex_encode(rnd, sizeof rnd, out + 7);
    *len = 7 + 2 * sizeof rnd;
    return 1;
}

/* RFC 2045 token characters need no quoting in the boundary parameter; anything else does. */
static int needs_quotes(const char *b, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (strchr("()<>@,;:\\\"/[]?= ", b[i]) != NULL) return 1;
    return 0;
}

static int push_error(lua_State *L, const char *msg) {
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* ---- entry point --------------------------------------------------------------------------- */

static mp_part *read_parts(lua_State *L, int *count) {
    int n, i, anchor;
    mp_part *parts;
    luaL_checktype(L, 1, LUA_TTABLE);
    n = (int)(lua_rawlen(L, 1) > MP_MAX_PARTS ? MP_MAX_PARTS + 1 : lua_rawlen(L, 1));
    luaL_argcheck(L, n >= 1, 1, "at least one part is required");
    luaL_argcheck(L, n <= MP_MAX_PARTS, 1, "too many parts");
    lua_newtable(L);                 /* keeps converted strings alive */
    anchor = lua_gettop(L);
    parts = (mp_part *)lua_newuserdata(L, (size_t)n * sizeof *parts);
    for (i = 1; i <= n; i++) {
        int t, left;
        lua_rawgeti(L, 1, i);
        t = lua_gettop(L);
        if (!lua_istable(L, t))
            luaL_error(L, "multipart: part #%d must be a table, got %s", i, luaL_typename(L, t));
        left = read_part(L, t, i, &parts[i - 1]);
        /* the body may be a string created from a number: anchor it before popping */
        lua_pushvalue(L, t + 2 + (parts[i - 1].filename ? 1 : 0));
        lua_rawseti(L, anchor, i);
        lua_pop(L, left + 1);
    }
    *count = n;
    return parts;
}

static int l_multipart(lua_State *L) {
    int n, hit, tries, quote;
    mp_part *parts;
    char genb[MP_MAX_BOUNDARY];
    const char *bnd;
    size_t bl = 0, len;
    char *body;

    if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TSTRING)
        luaL_argerror(L, 2, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 2)));
    lua_settop(L, 2);
    parts = read_parts(L, &n);

    if (lua_isstring(L, 2)) {
        bnd = lua_tolstring(L, 2, &bl);
        check_boundary(L, bnd, bl);
    } else {
        bnd = genb;
        if (!random_boundary(genb, &bl)) return push_error(L, "multipart: RAND_bytes failed");
    }

    /* Measure first: the size does not depend on which random boundary is finally used (they
     * all have the same length), and refusing early avoids scanning a huge body for nothing. */
    len = ocr_form_encode(NULL, 0, parts, n, bnd, bl);
    if (len > MP_MAX_BODY) return push_error(L, "multipart: body would be larger than 1 GiB");

    hit = ocr_form_collision(parts, n, bnd, bl);
    for (tries = 0; hit && bnd == genb && tries < 4; tries++) {
        if (!random_boundary(genb, &bl)) return push_error(L, "multipart: RAND_bytes failed");
        hit = ocr_form_collision(parts, n, bnd, bl);
    }
    if (hit) {
        lua_pushnil(L);
        lua_pushfstring(L, "multipart: boundary occurs in the content of part #%d", hit);
        return 2;
    }

    body = (char *)lua_newuserdata(L, len);
    if (ocr_form_encode(body, len, parts, n, bnd, bl) != len)
        return luaL_error(L, "multipart: internal size mismatch");
    lua_pushlstring(L, body, len);

    quote = needs_quotes(bnd, bl);
    lua_pushstring(L, quote ? "multipart/form-data; boundary=\"" : "multipart/form-data; boundary=");
    lua_pushlstring(L, bnd, bl);
    lua_pushstring(L, quote ? "\"" : "");
    lua_concat(L, 3);
    return 2;
}

const luaL_Reg ocr_multipart_funcs[] = {
    { "multipart", l_multipart },
    { NULL, NULL }
};
