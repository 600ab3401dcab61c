/* ocr.core.cos_sign (the COS q-sign Authorization) with arbitrary fields, params and headers.
 * Input: u8 flags; secret_id, secret_key, method, path = str each; start = u16 * 65536 + u16;
 * expire = u16 (flags & 1: maybe before start) or start + u16; params, then headers: u8 % 17
 * pairs each, a key str and a value from a u8 selector v: num (v >> 1) when v & 1, else str (a
 * key that comes again keeps its first value); flags & 2: the field named by u8 % 8 (in the
 * order above, params and headers last) is removed.
 * checks.cos_sign: the header has its documented shape, and the same request with params and
 * headers iterated in another order signs the same (the keys are sorted, never hashed order). */
#include "harness.h"

#define MAX_PAIRS 17

static void pairs(lua_State *L, fz_input *in, const char *name) {
    unsigned n = fz_u8(in) % MAX_PAIRS, i;
    lua_newtable(L);
    for (i = 0; i < n; i++) {
        unsigned v;
        fz_push_str(L, in);
        v = fz_u8(in);
        if (v & 1) fz_push_number(L, v >> 1);
        else fz_push_str(L, in);
        lua_pushvalue(L, -2);
        lua_rawget(L, -4);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_rawset(L, -3);
        } else {
            lua_pop(L, 3);
        }
    }
    lua_setfield(L, -2, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const fields[] = { "secret_id", "secret_key", "method", "path", "start",
                                          "expire", "params", "headers" };
    fz_input in = { data, size };
    lua_State *L = fz_begin("cos_sign");
    unsigned flags = fz_u8(&in), i;
    lua_Integer start;
    lua_newtable(L);
    for (i = 0; i < 4; i++) {
        fz_push_str(L, &in);
        lua_setfield(L, -2, fields[i]);
    }
    start = (lua_Integer)fz_u16(&in) * 65536;
    start += fz_u16(&in);
    lua_pushinteger(L, start);
    lua_setfield(L, -2, "start");
    if (flags & 1) lua_pushinteger(L, (lua_Integer)fz_u16(&in));
    else lua_pushinteger(L, start + (lua_Integer)fz_u16(&in));
    lua_setfield(L, -2, "expire");
    pairs(L, &in, "params");
    pairs(L, &in, "headers");
    if (flags & 2) {
        lua_pushnil(L);
        lua_setfield(L, -2, fields[fz_u8(&in) % 8]);
    }
    fz_check(L, 1, data, size);
    return 0;
}
