/* ocr.curl sessions: blocking requests that keep connections alive between calls.
 *
 * A session is one easy handle reused with curl_easy_reset before every request: the reset
 * clears all options but keeps the handle's live connections, DNS cache and TLS session cache,
 * so consecutive requests to the same host reuse one connection. A session serves one request
 * at a time (calling it again from inside on_progress raises an error). */
#include <string.h>
#include "curl_xfer.h"

typedef struct {
    CURL *easy;
    ocr_curl_opts opts;
    int busy;
    ocr_xfer *x;   /* reused by every request: no allocation per request */
} ocr_session;

static ocr_session *check_session(lua_State *L, int idx) {
    ocr_session *s = luaL_checkudata(L, idx, OCR_CURL_SESSION_MT);
    if (s->easy == NULL) luaL_error(L, "ocr.curl: attempt to use a closed session");
    return s;
}

/* curl_easy_reset first: it drops every pointer the handle may still hold into a freed
 * transfer (error buffer, callbacks' data) before the handle closes its connections. */
static void session_free(ocr_session *s) {
    if (s->easy) {
        curl_easy_reset(s->easy);
        ocr_xfer_destroy(s->x);   /* never owns the handle */
        s->x = NULL;
        curl_easy_cleanup(s->easy);
        s->easy = NULL;
    }
    ocr_curl_opts_free(&s->opts);
}

int ocr_curl_session_new(lua_State *L) {
    ocr_session *s = ocr_curl_new_object(L, sizeof *s);
    luaL_setmetatable(L, OCR_CURL_SESSION_MT);   /* from here __gc frees what is copied */
    ocr_curl_opts_arg(L, &s->opts);
    s->easy = curl_easy_init();
    if (s->easy == NULL) return luaL_error(L, "ocr.curl: curl_easy_init failed");
    return 1;
}

/* session:request(req) -> res | nil, err */
static int session_request(lua_State *L) {
    ocr_session *s = check_session(L, 1);
    ocr_xfer *x;
    CURLcode code;
    int n, has_progress, type;
    luaL_checktype(L, 2, LUA_TTABLE);
    if (s->busy) return luaL_error(L, "ocr.curl: session is busy with another request");
    lua_settop(L, 2);
    lua_pushliteral(L, "on_progress");                    /* 3: progress function or nil */
    lua_rawget(L, 2);
    type = lua_type(L, 3);
    if (type != LUA_TNIL && type != LUA_TFUNCTION)
        return luaL_error(L, "ocr.curl: request.on_progress must be a function, got %s",
                          lua_typename(L, type));
    has_progress = type == LUA_TFUNCTION;
    lua_pushcfunction(L, ocr_xfer_progress_trampoline);  /* 4 */
    curl_easy_reset(s->easy);
    if ((x = s->x = ocr_xfer_recycle(s->x)) == NULL) return luaL_error(L, "ocr.curl: out of memory");
    x->easy = s->easy;
    if (!ocr_xfer_prepare(L, x, &s->opts, 2)) {           /* 5: message */
        ocr_xfer_recycle(x);
        return ocr_curl_push_error(L, "invalid_input", -1, 0, "%s", lua_tostring(L, 5));
    }                                                      /* 5: body anchor */
    if (has_progress) {
        x->L = L;
        x->progress_idx = 3;
        x->tramp_idx = 4;
    }
    luaL_checkstack(L, LUA_MINSTACK, "ocr.curl: no stack for on_progress");
    s->busy = 1;
    code = curl_easy_perform(s->easy);
    s->busy = 0;
    x->L = NULL;
    ocr_xfer_finalize(x, code);
    n = ocr_xfer_push_result(L, x);
    ocr_xfer_recycle(x);   /* frees the request's form and headers now, not at the next one */
    return n;
}

static int session_close(lua_State *L) {
    ocr_session *s = luaL_checkudata(L, 1, OCR_CURL_SESSION_MT);
    if (s->busy) return luaL_error(L, "ocr.curl: cannot close a session during its request");
    session_free(s);
    return 0;
}

static int session_gc(lua_State *L) {
    ocr_session *s = luaL_checkudata(L, 1, OCR_CURL_SESSION_MT);
    session_free(s);
    return 0;
}

static int session_tostring(lua_State *L) {
    ocr_session *s = luaL_checkudata(L, 1, OCR_CURL_SESSION_MT);
    lua_pushfstring(L, "ocr.curl.session (%s)", s->easy ? "open" : "closed");
    return 1;
}

void ocr_curl_session_register(lua_State *L) {
    static const luaL_Reg funcs[] = {
        { "request", session_request }, { "close", session_close },
        { "__gc", session_gc }, { "__tostring", session_tostring }, { NULL, NULL }
    };
    ocr_push_class(L, OCR_CURL_SESSION_MT, funcs);
    lua_pop(L, 1);
}
