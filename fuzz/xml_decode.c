/* ocr.core.xml_decode on any bytes (the bodies of COS/CI answers).
 * Input: u8 flags; flags & 1: an options table, with max_depth = 1 + u8 (flags & 2),
 * max_size = u16 (flags & 4), arrays = {[str] = true, Item = true} (flags & 8); the rest is the
 * document. checks.xml_decode: a table holding the root element, or nil, "line:col: message". */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_input in = { data, size };
    lua_State *L = fz_begin("xml_decode");
    unsigned flags = fz_u8(&in);
    if (flags & 1) {
        lua_newtable(L);
        if (flags & 2) {
            lua_pushinteger(L, 1 + (lua_Integer)fz_u8(&in));
            lua_setfield(L, -2, "max_depth");
        }
        if (flags & 4) {
            lua_pushinteger(L, (lua_Integer)fz_u16(&in));
            lua_setfield(L, -2, "max_size");
        }
        if (flags & 8) {
            lua_newtable(L);
            fz_push_str(L, &in);
            lua_pushboolean(L, 1);
            lua_rawset(L, -3);
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "Item");
            lua_setfield(L, -2, "arrays");
        }
    } else {
        lua_pushnil(L);
    }
    fz_push_rest(L, &in);
    lua_insert(L, -2);          /* xml_decode(doc, opts) */
    fz_check(L, 2, data, size);
    return 0;
}
