/* The shared part of fuzz/'s harnesses: byte readers, the lua_State, judging a check's outcome.
 * See harness.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>
#include "harness.h"

#ifndef FUZZ_CHECKS
#define FUZZ_CHECKS "fuzz/checks.lua"   /* the Makefile passes the checkout's absolute path */
#endif

/* A full collection after every this many inputs keeps the Lua heap bounded. After every one:
 * the heap is then back to its size after each input, so libFuzzer's count of mallocs and
 * frees sees C memory an input leaked at that input (and LeakSanitizer names it), and it is
 * faster than collecting every 64 inputs (garbage left over makes libFuzzer run its costly
 * leak check on many inputs). */
#define FZ_GC_EVERY 1

int luaopen_ocr_core(lua_State *L);
/* Linked into the harnesses of ocr.hiredis only (fuzz/redis_reply.c): preloaded when present. */
int luaopen_ocr_hiredis(lua_State *L) __attribute__((weak));

/* ---- bytes ------------------------------------------------------------------------------ */

unsigned fz_u8(fz_input *in) {
    if (in->n == 0) return 0;
    in->n--;
    return *in->p++;
}

unsigned fz_u16(fz_input *in) {
    unsigned hi = fz_u8(in);
    return hi << 8 | fz_u8(in);
}

const char *fz_str(fz_input *in, size_t *len) {
    size_t n = fz_u8(in);
    const char *s = (const char *)in->p;
    if (n > in->n) n = in->n;
    in->p += n;
    in->n -= n;
    *len = n;
    return s;
}

void fz_push_str(lua_State *L, fz_input *in) {
    size_t n;
    const char *s = fz_str(in, &n);
    lua_pushlstring(L, s, n);
}

void fz_push_rest(lua_State *L, fz_input *in) {
    lua_pushlstring(L, (const char *)in->p, in->n);
    in->p += in->n;
    in->n = 0;
}

/* Integers and floats kept apart (Lua 5.4 prints 3 and 3.0 differently); the same list, in the
 * same order, is checks.lua's NUMBERS. */
void fz_push_number(lua_State *L, unsigned selector) {
    switch (selector % FZ_NUMBERS) {
    case 0: lua_pushinteger(L, 0); break;
    case 1: lua_pushinteger(L, -1); break;
    case 2: lua_pushinteger(L, 1); break;
    case 3: lua_pushinteger(L, (lua_Integer)1 << 53); break;
    case 4: lua_pushinteger(L, LUA_MININTEGER); break;
    case 5: lua_pushnumber(L, 0.5); break;
    case 6: lua_pushnumber(L, HUGE_VAL); break;
    case 7: lua_pushnumber(L, -HUGE_VAL); break;
    case 8: lua_pushnumber(L, NAN); break;
    case 9: lua_pushnumber(L, 9007199254740992.0); break;
    case 10: lua_pushnumber(L, 1e308); break;
    default: lua_pushnumber(L, 3.0); break;
    }
}

/* ---- the lua_State ---------------------------------------------------------------------- */

static lua_State *state;
static int checks_ref = LUA_NOREF;
static const char *check_name;
static unsigned long inputs;
static int selfcheck;

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void setup(const char *name) {
    lua_State *L = luaL_newstate();
    if (L == NULL) die("cannot create a lua_State", NULL);
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_ocr_core);
    lua_setfield(L, -2, "ocr.core");
    if (luaopen_ocr_hiredis) {
        lua_pushcfunction(L, luaopen_ocr_hiredis);
        lua_setfield(L, -2, "ocr.hiredis");
    }
    lua_pop(L, 2);
    if (luaL_dofile(L, FUZZ_CHECKS) != 0) die("cannot load " FUZZ_CHECKS, lua_tostring(L, -1));
    if (!lua_istable(L, -1)) die(FUZZ_CHECKS " did not return a table", NULL);
    lua_getfield(L, -1, name);
    if (!lua_isfunction(L, -1)) die("checks.lua has no check named", name);
    lua_pop(L, 1);
    checks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    state = L;
    check_name = name;
    selfcheck = getenv("FUZZ_SELFCHECK") != NULL;
}

lua_State *fz_begin(const char *name) {
    if (state == NULL) setup(name);
    lua_settop(state, 0);
    lua_rawgeti(state, LUA_REGISTRYINDEX, checks_ref);
    lua_getfield(state, 1, name);
    lua_remove(state, 1);
    return state;
}

/* FUZZ_SELFCHECK: the arguments built here must be what checks.decode.<name> makes of the same
 * bytes, or a reproducer would replay a different call in spec/fuzz_spec.lua. */
static void compare_with_decode(lua_State *L, int nargs, const uint8_t *data, size_t size) {
    int i, base = lua_gettop(L) - nargs;
    lua_rawgeti(L, LUA_REGISTRYINDEX, checks_ref);
    lua_getfield(L, -1, "same_args");
    lua_createtable(L, nargs, 1);                 /* the arguments built in C */
    for (i = 1; i <= nargs; i++) {
        lua_pushvalue(L, base + i);
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, nargs);
    lua_setfield(L, -2, "n");
    lua_getfield(L, -3, "decode");
    lua_getfield(L, -1, check_name);
    lua_remove(L, -2);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 1, 0) != 0) die("checks.decode raised", lua_tostring(L, -1));
    if (lua_pcall(L, 2, 2, 0) != 0) die("checks.same_args raised", lua_tostring(L, -1));
    if (!lua_toboolean(L, -2)) die("checks.decode disagrees with the C reader", lua_tostring(L, -1));
    lua_pop(L, 3);
}

void fz_check(lua_State *L, int nargs, const uint8_t *data, size_t size) {
    if (selfcheck) compare_with_decode(L, nargs, data, size);
    if (lua_pcall(L, nargs, 2, 0) != 0) {
        size_t n = 0;
        if (lua_type(L, -1) != LUA_TSTRING || (lua_tolstring(L, -1, &n), n == 0))
            die("a Lua error without a message, of type", luaL_typename(L, -1));
    } else if (lua_type(L, -2) != LUA_TBOOLEAN || !lua_toboolean(L, -2)) {
        die("invariant broken",
            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(the check gave no reason)");
    }
    lua_settop(L, 0);
    if (++inputs % FZ_GC_EVERY == 0) lua_gc(L, LUA_GCCOLLECT, 0);
}
