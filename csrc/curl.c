/* ocr.curl: HTTP(S) transport over libcurl. This file is the module entry: libcurl's global
 * state, the settings the module makes for the whole process, and the module table. What a
 * request does lives in the files curl_xfer.h lists. */
#define _GNU_SOURCE   /* dladdr, RTLD_NODELETE: see pin_module */
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include "curl_xfer.h"
#include "ocr.h"

char ocr_curl_user_agent[128];

void ocr_curl_global_init(lua_State *L) {
    static int done = 0;
    CURLcode rc;
    if (done) return;
    rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        luaL_error(L, "ocr.curl: curl_global_init failed: %s", curl_easy_strerror(rc));
    done = 1;
}

void *ocr_curl_new_object(lua_State *L, size_t size) {
    void *o;
    int type = lua_type(L, 1);
    if (type != LUA_TNONE && type != LUA_TNIL && type != LUA_TTABLE)
        luaL_argerror(L, 1, "options table expected");
    ocr_curl_global_init(L);
    o = lua_newuserdata(L, size);
    memset(o, 0, size);
    return o;
}

OCR_EXPORT int luaopen_ocr_curl(lua_State *L);

/* Lua unloads C modules when a state closes, which would unload libcurl with them: its global
 * state (never cleaned up: curl_global_cleanup is not safe while another user may exist) would
 * leak, and a threaded-resolver thread still finishing a lookup would run unmapped code. So the
 * module keeps itself, and libcurl, loaded for the life of the process. */
static void pin_module(void) {
    Dl_info info;
    if (dladdr((void *)(uintptr_t)&luaopen_ocr_curl, &info) && info.dli_fname)
        (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);   /* handle kept on purpose */
}

/* With CURLOPT_NOSIGNAL (required for timeouts in threaded hosts) libcurl no longer shields the
 * process from SIGPIPE when a TLS peer closes mid-write, and the default action kills a plain Lua
 * script. Like LuaSocket, ignore it, unless the host already chose a disposition. */
static void ignore_sigpipe(void) {
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

int luaopen_ocr_curl(lua_State *L) {
    static const luaL_Reg funcs[] = {
        { "session", ocr_curl_session_new },
        { "multi", ocr_curl_multi_new },
        { NULL, NULL }
    };
    static const luaL_Reg holder_meta[] = { { "__gc", ocr_xfer_holder_gc }, { NULL, NULL } };
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    pin_module();
    ignore_sigpipe();
    snprintf(ocr_curl_user_agent, sizeof ocr_curl_user_agent, "lua-ocr/%s libcurl/%s",
             OCR_VERSION, vi->version);
    ocr_push_class(L, OCR_CURL_HOLDER_MT, holder_meta);
    lua_pop(L, 1);
    ocr_curl_session_register(L);
    ocr_curl_multi_register(L);
    luaL_newlib(L, funcs);
    lua_pushliteral(L, OCR_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "_CURL_VERSION");
    lua_pushboolean(L, (vi->features & CURL_VERSION_ASYNCHDNS) != 0);
    lua_setfield(L, -2, "_ASYNCH_DNS");
    lua_pushstring(L, ocr_curl_user_agent);
    lua_setfield(L, -2, "_USER_AGENT");
    return 1;
}
