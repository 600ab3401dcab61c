/* ocr.core text helpers: splitting a vendor's plain text into the result model's lines.
 * In C because every text-only answer goes through it, once per request: building the line
 * tables through the C API costs about a third of the same loop in Lua (string.find, sub and
 * byte calls, a table constructor per line). */
#include <string.h>
#include "ocr.h"

/* split_lines(text [, page]) -> { {text = line [, page = page]}, ... }
 * Lines end at "\n"; one "\r" before it is dropped (CRLF text), a trailing empty line is not a
 * line ("a\n" is one line, "" none), empty lines inside are kept. */
int ocr_core_split_lines(lua_State *L) {
    size_t n, count = 0, i;
    const char *s, *end, *p;
    int has_page, t;
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_argerror(L, 1, lua_pushfstring(L, "string expected, got %s", luaL_typename(L, 1)));
    s = lua_tolstring(L, 1, &n);
    has_page = !lua_isnoneornil(L, 2);
    end = s + n;
    /* one line per "\n", plus a last one without it (which may turn out empty and be dropped) */
    for (p = s; p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) count++;
    lua_createtable(L, count + 1 > (size_t)0x7fffffff ? 0x7fffffff : (int)(count + 1), 0);
    t = lua_gettop(L);
    for (i = 0, p = s; p <= end; i++) {
        const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        const char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - p);
        if (len > 0 && p[len - 1] == '\r') len--;
        if (nl == NULL && len == 0) break;   /* the empty remainder after the last "\n" */
        lua_createtable(L, 0, has_page ? 2 : 1);
        lua_pushlstring(L, p, len);
        lua_setfield(L, -2, "text");
        if (has_page) {
            lua_pushvalue(L, 2);
            lua_setfield(L, -2, "page");
        }
        lua_rawseti(L, t, (lua_Integer)i + 1);
        if (nl == NULL) break;
        p = nl + 1;
    }
    return 1;
}
