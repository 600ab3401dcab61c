/* ocr.core.multipart and multipart_plan on arbitrary parts held in memory (never `file`).
 * Input: u8 flags; flags & 1: a boundary = str; then u8 % 9 parts, each from a u8 mask k:
 *   k & 0x80        the part is a string (str), not a table
 *   k & 1  name = str          k & 2  value = num (when k & 0x40; the selector: u8) or str
 *   k & 4  data = str          k & 8  filename = str
 *   k & 16 content_type = str  k & 32 x = str (a field neither knows)
 * checks.multipart: both raise or neither; the plan of parts held in memory is one string, the
 * bytes multipart makes (exactly, given the same boundary), ending in the closing delimiter. */
#include "harness.h"

#define MAX_PARTS 9

static void field(lua_State *L, fz_input *in, unsigned k, unsigned bit, const char *name) {
    if (!(k & bit)) return;
    fz_push_str(L, in);
    lua_setfield(L, -2, name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_input in = { data, size };
    lua_State *L = fz_begin("multipart");
    unsigned flags = fz_u8(&in), n, i;
    int parts;
    lua_newtable(L);
    parts = lua_gettop(L);
    if (flags & 1) fz_push_str(L, &in);
    else lua_pushnil(L);
    n = fz_u8(&in) % MAX_PARTS;
    for (i = 1; i <= n; i++) {
        unsigned k = fz_u8(&in);
        if (k & 0x80) {
            fz_push_str(L, &in);
        } else {
            lua_newtable(L);
            field(L, &in, k, 1, "name");
            if (k & 2) {
                if (k & 0x40) fz_push_number(L, fz_u8(&in));
                else fz_push_str(L, &in);
                lua_setfield(L, -2, "value");
            }
            field(L, &in, k, 4, "data");
            field(L, &in, k, 8, "filename");
            field(L, &in, k, 16, "content_type");
            field(L, &in, k, 32, "x");
        }
        lua_rawseti(L, parts, (lua_Integer)i);
    }
    fz_check(L, 2, data, size);   /* multipart(parts, boundary) */
    return 0;
}
