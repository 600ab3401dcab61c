/* Reading Lua values the same way in every module: raw field access (no metamethod runs while C
 * holds pointers into a caller's table), the check that a table holds only known keys, integer
 * options, numbers turned into the strings that are signed or sent, and lowercased copies.
 * Each caller words its own error messages; the loops live here once. */
#ifndef OCR_ARGS_H
#define OCR_ARGS_H

#include "compat.h"

/* Pushes t[k] (raw; t an absolute index) and returns its type. */
OCR_HIDDEN int ocr_rawfield(lua_State *L, int t, const char *k);

/* Whether the table at t (absolute) holds only keys named in allowed (NULL-terminated, at most
 * 32 names). Returns 1 and sets bit i of *present for each allowed[i] present, so absent fields
 * need not be looked up one by one; or returns 0 with the first other key pushed (a string or
 * not), for the caller's message. */
OCR_HIDDEN int ocr_table_keys(lua_State *L, int t, const char *const *allowed,
                              unsigned *present);

/* opts[field] (opts 0: no table) as an integer in [lo, hi], def when nil; raises "bad option
 * '<field>' to '<fname>' (...)" on a wrong type or value, a caller's bug. */
OCR_HIDDEN lua_Integer ocr_opt_int(lua_State *L, int opts, const char *field, lua_Integer def,
                                   lua_Integer lo, lua_Integer hi, const char *fname);

/* Pushes the string form of the number at idx and returns 1; returns 0 (nothing pushed) for NaN
 * or an infinity. Integral values print without a fraction on every Lua version (5.4 gives
 * "3.0" for a float 3.0, 5.1 gives "3"), so what is signed or sent does not depend on which Lua
 * computed it. */
OCR_HIDDEN int ocr_push_number_string(lua_State *L, int idx);

/* Adds (to a buffer) or pushes s lowercased (ASCII). */
OCR_HIDDEN void ocr_add_lower(luaL_Buffer *b, const char *s, size_t n);
OCR_HIDDEN void ocr_push_lower(lua_State *L, const char *s, size_t n);

#endif
