/* Reading Lua values the same way in every module (see args.h). */
#include <stdio.h>
#include <string.h>
#include "args.h"
#include "bytes.h"

int ocr_rawfield(lua_State *L, int t, const char *k) {
    lua_pushstring(L, k);
    lua_rawget(L, t);
    return lua_type(L, -1);
}

int ocr_table_keys(lua_State *L, int t, const char *const *allowed, unsigned *present) {
    *present = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *const *k = allowed;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t n;
            const char *key = lua_tolstring(L, -1, &n);
            for (; *k && ((*k)[0] != key[0] || strlen(*k) != n || memcmp(*k, key, n) != 0); k++) {}
        } else {
            while (*k) k++;
        }
        if (*k == NULL) return 0;   /* the key stays pushed */
        *present |= 1u << (k - allowed);
    }
    return 1;
}

lua_Integer ocr_opt_int(lua_State *L, int opts, const char *field, lua_Integer def,
                        lua_Integer lo, lua_Integer hi, const char *fname) {
    lua_Number n;
    lua_Integer v;
    if (opts == 0) return def;
    lua_getfield(L, opts, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "bad option '%s' to '%s' (integer expected, got %s)", field, fname,
                   luaL_typename(L, -1));
    n = lua_tonumber(L, -1);
    /* Range first, so the conversion below is defined; then reject fractions. */
    v = (n >= (lua_Number)lo && n <= (lua_Number)hi) ? (lua_Integer)n : lo - 1;
    if (v < lo || (lua_Number)v != n)
        luaL_error(L, "bad option '%s' to '%s' (integer between %d and %d expected)", field,
                   fname, (int)lo, (int)hi);
    lua_pop(L, 1);
    return v;
}

int ocr_push_number_string(lua_State *L, int idx) {
    lua_Number d;
    char tmp[64];
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(L, idx));
        lua_pushstring(L, tmp);
        return 1;
    }
#endif
    d = lua_tonumber(L, idx);
    if (d - d != 0) return 0;   /* NaN or an infinity */
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (lua_Number)(long long)d)
        snprintf(tmp, sizeof tmp, "%lld", (long long)d);
    else
        snprintf(tmp, sizeof tmp, "%.14g", (double)d);
    lua_pushstring(L, tmp);
    return 1;
}

void ocr_add_lower(luaL_Buffer *b, const char *s, size_t n) {
    while (n > 0) {
        size_t m = n < LUAL_BUFFERSIZE ? n : LUAL_BUFFERSIZE;
        ocr_lower(luaL_prepbuffer(b), s, m);
        luaL_addsize(b, m);
        s += m;
        n -= m;
    }
}

void ocr_push_lower(lua_State *L, const char *s, size_t n) {
    char small[64];
    luaL_Buffer b;
    if (n <= sizeof small) {   /* header names, keys: no buffer machinery */
        ocr_lower(small, s, n);
        lua_pushlstring(L, small, n);
        return;
    }
    luaL_buffinit(L, &b);
    ocr_add_lower(&b, s, n);
    luaL_pushresult(&b);
}
