/* ocr.curl multi: non-blocking transfers for the concurrency layer, which drives them with
 * perform/poll and collects results with info_read. No Lua function is ever called from C
 * here: progress is polled with m:progress(id).
 *
 * The multi handle owns the connection cache shared by its transfers. Each transfer is a
 * malloc'd ocr_xfer on one of two lists (running, then done in completion order); its body
 * string is kept referenced in an anchor table (registry) until the transfer is freed.
 * Finished easy handles are reset and pooled for the next add. */
#include <limits.h>
#include <string.h>
#include "curl_xfer.h"

#define POOL_MAX 16

typedef struct {
    CURLM *multi;
    ocr_curl_opts opts;
    ocr_xfer *running;          /* in the multi handle */
    ocr_xfer *done_head;        /* finished, result not yet read: FIFO */
    ocr_xfer *done_tail;
    int count;
    lua_Integer next_id;
    CURL *pool[POOL_MAX];
    int npool;
    int anchors;                /* registry ref: id -> body string */
} ocr_multi;

static ocr_multi *check_multi(lua_State *L, int idx) {
    ocr_multi *m = luaL_checkudata(L, idx, OCR_CURL_MULTI_MT);
    if (m->multi == NULL) luaL_error(L, "ocr.curl: attempt to use a closed multi");
    return m;
}

/* ---------------------------------------------------------------------------------------- */
/* bookkeeping (C only)                                                                     */

static void unlink_running(ocr_multi *m, ocr_xfer *x) {
    ocr_xfer **pp;
    for (pp = &m->running; *pp; pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            x->next = NULL;
            return;
        }
    }
}

static void unlink_done(ocr_multi *m, ocr_xfer *x) {
    ocr_xfer **pp, *prev = NULL;
    for (pp = &m->done_head; *pp; prev = *pp, pp = &(*pp)->next) {
        if (*pp == x) {
            *pp = x->next;
            if (m->done_tail == x) m->done_tail = prev;
            x->next = NULL;
            return;
        }
    }
}

static ocr_xfer *find(ocr_multi *m, lua_Integer id) {
    ocr_xfer *x;
    for (x = m->running; x; x = x->next)
        if (x->id == id) return x;
    for (x = m->done_head; x; x = x->next)
        if (x->id == id) return x;
    return NULL;
}

/* Frees a transfer that is on no list and no longer in the multi handle; its easy handle goes
 * back to the pool when there is room. */
static void recycle(ocr_multi *m, ocr_xfer *x) {
    ocr_xfer_finalize(x, x->finalized ? x->code : CURLE_ABORTED_BY_CALLBACK);
    if (x->easy && m->npool < POOL_MAX) {
        CURL *e = x->easy;
        x->easy = NULL;
        ocr_xfer_destroy(x);          /* frees the mime first, then the handle can be reset */
        curl_easy_reset(e);
        m->pool[m->npool++] = e;
    } else {
        ocr_xfer_destroy(x);
    }
    m->count--;
}

/* Moves finished transfers from libcurl's message queue to the done list. */
static void drain(ocr_multi *m) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        CURL *e = msg->easy_handle;
        CURLcode code = msg->data.result;
        ocr_xfer *x = NULL;
        if (msg->msg != CURLMSG_DONE) continue;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(m->multi, e);   /* msg is invalid from here */
        if (x == NULL) continue;
        unlink_running(m, x);
        ocr_xfer_finalize(x, code);
        x->done = 1;
        if (m->done_tail) m->done_tail->next = x;
        else m->done_head = x;
        m->done_tail = x;
    }
}

/* Forgets the body anchored for id (rawset of nil never allocates). */
static void unanchor(lua_State *L, ocr_multi *m, lua_Integer id) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, m->anchors);
    lua_pushinteger(L, id);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

static void multi_free(lua_State *L, ocr_multi *m) {
    ocr_xfer *x, *next;
    int i;
    if (m->multi == NULL) return;
    for (x = m->running; x; x = next) {
        next = x->next;
        curl_multi_remove_handle(m->multi, x->easy);
        ocr_xfer_finalize(x, CURLE_ABORTED_BY_CALLBACK);
        ocr_xfer_destroy(x);
    }
    for (x = m->done_head; x; x = next) {
        next = x->next;
        ocr_xfer_destroy(x);
    }
    m->running = m->done_head = m->done_tail = NULL;
    m->count = 0;
    for (i = 0; i < m->npool; i++) curl_easy_cleanup(m->pool[i]);
    m->npool = 0;
    curl_multi_cleanup(m->multi);
    m->multi = NULL;
    ocr_curl_opts_free(&m->opts);
    if (m->anchors != LUA_NOREF && m->anchors != LUA_REFNIL)
        luaL_unref(L, LUA_REGISTRYINDEX, m->anchors);
    m->anchors = LUA_NOREF;
}

/* ---------------------------------------------------------------------------------------- */
/* Lua API                                                                                  */

int ocr_curl_multi_new(lua_State *L) {
    ocr_multi *m;
    int type = lua_type(L, 1);
    if (type != LUA_TNONE && type != LUA_TNIL && type != LUA_TTABLE)
        return luaL_argerror(L, 1, "options table expected");
    ocr_curl_global_init(L);
    m = lua_newuserdata(L, sizeof *m);
    memset(m, 0, sizeof *m);
    m->anchors = LUA_NOREF;
    ocr_curl_opts_defaults(&m->opts);
    m->opts.owns_strings = 1;
    luaL_setmetatable(L, OCR_CURL_MULTI_MT);
    if (type == LUA_TTABLE) {
        ocr_curl_opts_check(L, 1);
        ocr_curl_opts_read(L, 1, &m->opts);
    }
    lua_newtable(L);
    m->anchors = luaL_ref(L, LUA_REGISTRYINDEX);
    m->multi = curl_multi_init();
    if (m->multi == NULL) return luaL_error(L, "ocr.curl: curl_multi_init failed");
    return 1;
}

/* m:add(req) -> id | nil, err (invalid_input found before anything was started) */
static int multi_add(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    ocr_xfer *x;
    CURLMcode mc;
    lua_Integer id;
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_pushliteral(L, "on_progress");
    lua_rawget(L, 2);
    if (!lua_isnil(L, -1))
        return luaL_error(L, "ocr.curl: on_progress is not supported by multi transfers "
                             "(poll m:progress(id) instead)");
    lua_pop(L, 1);
    x = ocr_xfer_new(L);                                   /* 3: holder */
    if (m->npool > 0) x->easy = m->pool[--m->npool];
    else x->easy = curl_easy_init();
    x->owns_easy = 1;
    if (x->easy == NULL) return luaL_error(L, "ocr.curl: curl_easy_init failed");
    if (!ocr_xfer_prepare(L, x, &m->opts, 2)) {           /* 4: message */
        CURL *e = x->easy;
        x->easy = NULL;
        ocr_xfer_release(L, 3, 0);    /* frees the mime, which unbinds it from the handle */
        curl_easy_reset(e);
        m->pool[m->npool++] = e;      /* it came from the pool or the pool had room */
        return ocr_curl_push_error(L, "invalid_input", lua_tostring(L, 4), -1, 0);
    }                                                      /* 4: body anchor */
    id = ++m->next_id;
    if (!lua_isnil(L, 4)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, m->anchors);
        lua_pushinteger(L, id);
        lua_pushvalue(L, 4);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    mc = curl_multi_add_handle(m->multi, x->easy);
    if (mc != CURLM_OK) {
        unanchor(L, m, id);
        return luaL_error(L, "ocr.curl: curl_multi_add_handle failed: %s",
                          curl_multi_strerror(mc));
    }
    /* From here nothing raises: the multi owns the transfer. */
    x->id = id;
    x->next = m->running;
    m->running = x;
    m->count++;
    ocr_xfer_release(L, 3, 1);
    lua_pushinteger(L, id);
    return 1;
}

/* m:perform() -> number of transfers still running; never blocks */
static int multi_perform(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    int running = 0;
    CURLMcode mc = curl_multi_perform(m->multi, &running);
    if (mc != CURLM_OK)
        return luaL_error(L, "ocr.curl: curl_multi_perform failed: %s", curl_multi_strerror(mc));
    drain(m);
    lua_pushinteger(L, running);
    return 1;
}

/* m:poll(ms) -> number of sockets with activity; waits at most ms (0: never blocks) */
/* m:poll(ms[, fds]) -> number of fds with activity. `fds` (an array of up to 16 file
 * descriptors) are waited on too, so a scheduler can sleep on the network and on other event
 * sources (e.g. the OCR worker pool's eventfd) at once. */
#define OCR_MAX_EXTRA_FDS 16
static int multi_poll(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    lua_Integer ms = luaL_checkinteger(L, 2);
    struct curl_waitfd extra[OCR_MAX_EXTRA_FDS];
    unsigned int nextra = 0;
    int numfds = 0;
    CURLMcode mc;
    luaL_argcheck(L, ms >= 0 && ms <= INT_MAX, 2, "milliseconds out of range");
    if (!lua_isnoneornil(L, 3)) {
        size_t i, n;
        luaL_checktype(L, 3, LUA_TTABLE);
        n = lua_rawlen(L, 3);
        luaL_argcheck(L, n <= OCR_MAX_EXTRA_FDS, 3, "at most 16 extra file descriptors");
        for (i = 1; i <= n; i++) {
            lua_Integer fd;
            lua_rawgeti(L, 3, (int)i);
            if (!lua_isnumber(L, -1)) return luaL_argerror(L, 3, "file descriptors must be integers");
            fd = lua_tointeger(L, -1);
            lua_pop(L, 1);
            luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 3, "file descriptor out of range");
            extra[nextra].fd = (curl_socket_t)fd;
            extra[nextra].events = CURL_WAIT_POLLIN;
            extra[nextra].revents = 0;
            nextra++;
        }
    }
    mc = curl_multi_poll(m->multi, nextra ? extra : NULL, nextra, (int)ms, &numfds);
    if (mc != CURLM_OK)
        return luaL_error(L, "ocr.curl: curl_multi_poll failed: %s", curl_multi_strerror(mc));
    lua_pushinteger(L, numfds);
    return 1;
}

/* m:info_read() -> id, res | id, nil, err | nil. A Lua error while building the result leaves
 * the transfer on the done list, so the next call returns it again. */
static int multi_info_read(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    ocr_xfer *x;
    int n;
    drain(m);
    x = m->done_head;
    if (x == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, x->id);
    n = ocr_xfer_push_result(L, x);
    unanchor(L, m, x->id);
    unlink_done(m, x);
    recycle(m, x);
    return n + 1;
}

static void set_off(lua_State *L, const char *k, curl_off_t v) {
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
    lua_setfield(L, -2, k);
}

/* m:progress(id) -> {dltotal, dlnow, ultotal, ulnow} | nil for an unknown id */
static int multi_progress(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    ocr_xfer *x = find(m, luaL_checkinteger(L, 2));
    if (x == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 4);
    set_off(L, "dltotal", x->dltotal);
    set_off(L, "dlnow", x->dlnow);
    set_off(L, "ultotal", x->ultotal);
    set_off(L, "ulnow", x->ulnow);
    return 1;
}

/* m:remove(id) -> true if the transfer existed (cancelled and freed), false otherwise */
static int multi_remove(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    ocr_xfer *x = find(m, luaL_checkinteger(L, 2));
    if (x == NULL) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (x->done) {
        unlink_done(m, x);
    } else {
        unlink_running(m, x);
        curl_multi_remove_handle(m->multi, x->easy);
    }
    unanchor(L, m, x->id);
    recycle(m, x);
    lua_pushboolean(L, 1);
    return 1;
}

static int multi_count(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    lua_pushinteger(L, m->count);
    return 1;
}

static int multi_close(lua_State *L) {
    multi_free(L, luaL_checkudata(L, 1, OCR_CURL_MULTI_MT));
    return 0;
}

static int multi_tostring(lua_State *L) {
    ocr_multi *m = luaL_checkudata(L, 1, OCR_CURL_MULTI_MT);
    if (m->multi) lua_pushfstring(L, "ocr.curl.multi (%d transfers)", m->count);
    else lua_pushliteral(L, "ocr.curl.multi (closed)");
    return 1;
}

void ocr_curl_multi_register(lua_State *L) {
    static const luaL_Reg methods[] = {
        { "add", multi_add },
        { "perform", multi_perform },
        { "poll", multi_poll },
        { "info_read", multi_info_read },
        { "progress", multi_progress },
        { "remove", multi_remove },
        { "count", multi_count },
        { "close", multi_close },
        { NULL, NULL }
    };
    if (luaL_newmetatable(L, OCR_CURL_MULTI_MT)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, multi_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, multi_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}
