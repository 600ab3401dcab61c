/* ocr.hiredis's reader on any bytes (what a Redis server, or something posing as one, answers).
 * Input: u8 flags; flags & 1: max_reply = 16 + u16; then u8 % 16 cut points (u16 each, modulo the
 * wire's length); the rest is the wire, fed in the pieces the cuts make.
 * checks.redis_reply: every answer is a value, "more bytes needed" or an error with a message;
 * the replies read fed whole and fed in pieces are the same. */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_input in = { data, size };
    lua_State *L = fz_begin("redis_reply");
    unsigned flags = fz_u8(&in), ncuts, i;
    if (flags & 1) lua_pushinteger(L, 16 + (lua_Integer)fz_u16(&in));
    else lua_pushnil(L);
    ncuts = fz_u8(&in) % 16;
    lua_createtable(L, (int)ncuts, 0);
    for (i = 0; i < ncuts; i++) {
        lua_pushinteger(L, (lua_Integer)fz_u16(&in));
        lua_rawseti(L, -2, (int)i + 1);
    }
    fz_push_rest(L, &in);
    fz_check(L, 3, data, size);
    return 0;
}
