/* ocr.core.http_response: any bytes as a response, fed whole and fed in pieces.
 * Input: u8 flags; flags & 1: an options table, with head = true (flags & 2),
 * max_header_size = 1 + u16 (flags & 4), max_headers = u8 % 8 (flags & 8); then u8 % 16 cut
 * points, u16 each; the rest is the response, cut at each point modulo its length + 1 (sorted;
 * pieces may be empty). checks.http_response feeds the pieces then finish()es, and the same
 * with the response in one piece: every answer is body + state or nil + message (a refusal
 * sticks), and the two runs end alike (state or message, body, head, extra, content_length). */
#include <stdlib.h>
#include "harness.h"

#define MAX_CUTS 16

static int by_value(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_input in = { data, size };
    lua_State *L = fz_begin("http_response");
    unsigned flags = fz_u8(&in), ncuts, i;
    size_t cuts[MAX_CUTS], at = 0;
    const char *wire;
    if (flags & 1) {
        lua_newtable(L);
        if (flags & 2) {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "head");
        }
        if (flags & 4) {
            lua_pushinteger(L, 1 + (lua_Integer)fz_u16(&in));
            lua_setfield(L, -2, "max_header_size");
        }
        if (flags & 8) {
            lua_pushinteger(L, (lua_Integer)(fz_u8(&in) % 8));
            lua_setfield(L, -2, "max_headers");
        }
    } else {
        lua_pushnil(L);
    }
    ncuts = fz_u8(&in) % MAX_CUTS;
    for (i = 0; i < ncuts; i++) cuts[i] = fz_u16(&in);
    wire = (const char *)in.p;
    for (i = 0; i < ncuts; i++) cuts[i] %= in.n + 1;
    qsort(cuts, ncuts, sizeof cuts[0], by_value);
    lua_createtable(L, (int)ncuts + 1, 0);
    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : in.n;
        lua_pushlstring(L, wire + at, end - at);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        at = end;
    }
    fz_push_rest(L, &in);
    lua_insert(L, -2);
    fz_check(L, 3, data, size);   /* http_response(opts, wire, pieces) */
    return 0;
}
