/* Lua 5.1 (and LuaJIT/OpenResty) to 5.4 compatibility, in LuaSocket's manner: the rest of
 * csrc/ is written against the 5.2+ API, and on 5.1 the few missing functions are replaced by
 * prefixed, hidden shims so they never clash with a host that exports its own. */
#ifndef OCR_COMPAT_H
#define OCR_COMPAT_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#define OCR_HIDDEN __attribute__((visibility("hidden")))
#define OCR_EXPORT __attribute__((visibility("default")))

#if LUA_VERSION_NUM == 501
#define luaL_setfuncs      ocr_compat_setfuncs
#define luaL_testudata     ocr_compat_testudata
#define luaL_setmetatable  ocr_compat_setmetatable
#define lua_absindex       ocr_compat_absindex
#define lua_rawlen(L, i)   lua_objlen((L), (i))
#define luaL_newlibtable(L, l) lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l)  (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))

OCR_HIDDEN void  luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
OCR_HIDDEN void *luaL_testudata(lua_State *L, int idx, const char *tname);
OCR_HIDDEN void  luaL_setmetatable(lua_State *L, const char *tname);
OCR_HIDDEN int   lua_absindex(lua_State *L, int idx);
#endif

/* lua_newuserdata exists on every version (a macro over lua_newuserdatauv on 5.4): use only it. */

/* Pushes the metatable registered as name, creating it first when absent from one list of
 * functions: those named "__..." (__gc, __tostring) go into the metatable, the others into its
 * __index table (made only when there are some); __name is set too. It is registered only once
 * complete, so an allocation failure halfway never leaves a metatable without its __gc behind
 * for later calls. Every class of every module is made here. */
OCR_HIDDEN void ocr_push_class(lua_State *L, const char *name, const luaL_Reg *funcs);

#endif
