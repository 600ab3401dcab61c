/* ocr.curl multi: non-blocking transfers for the concurrency layer, which drives them with
 * perform/poll and collects results with info_read. No Lua function is ever called from C
 * here: progress is polled with m:progress(id).
 *
 * The transfers run on libcurl's socket interface (curl_multi_socket_action): libcurl tells us
 * which sockets to watch and when its next timeout is, perform() polls those sockets once and
 * hands libcurl only the ones with activity. curl_multi_perform would instead visit every
 * transfer and poll its socket on each call, a cost that grows with the transfers in flight
 * and that a game's per-frame step cannot afford.
 *
 * The multi handle owns the connection cache shared by its transfers. Each transfer is a
 * malloc'd ocr_xfer on one of two lists (running, then done in completion order); its body
 * string is kept referenced in an anchor table (registry) until the transfer is freed.
 * Finished easy handles are reset and pooled for the next add. */
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include "clock.h"
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
    struct pollfd *fds;         /* the sockets libcurl asked us to watch (on_socket) */
    struct pollfd *scratch;     /* perform's copy of the ones with activity */
    int nfds, capfds;
    int oom;                    /* on_socket could not grow fds */
    double timer_due;           /* when libcurl's timeout (on_timer) is due; < 0: none */
} ocr_multi;

static ocr_multi *check_multi(lua_State *L, int idx) {
    ocr_multi *m = luaL_checkudata(L, idx, OCR_CURL_MULTI_MT);
    if (m->multi == NULL) luaL_error(L, "ocr.curl: attempt to use a closed multi");
    return m;
}

/* ---------------------------------------------------------------------------------------- */
/* libcurl's socket interface (C only)                                                      */

/* CURLMOPT_SOCKETFUNCTION: watch s for what libcurl wants (or stop watching it). */
static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    ocr_multi *m = userp;
    int i;
    (void)e;
    (void)socketp;
    for (i = 0; i < m->nfds && m->fds[i].fd != s; i++) {}
    if (what == CURL_POLL_REMOVE) {
        if (i < m->nfds) m->fds[i] = m->fds[--m->nfds];
        return 0;
    }
    if (i == m->nfds) {
        if (m->nfds == m->capfds) {
            int cap = m->capfds ? m->capfds * 2 : 16;
            struct pollfd *fds = realloc(m->fds, (size_t)cap * sizeof *fds);
            struct pollfd *scratch = fds ? realloc(m->scratch, (size_t)cap * sizeof *scratch) : NULL;
            if (fds) m->fds = fds;
            if (scratch) m->scratch = scratch;
            if (fds == NULL || scratch == NULL) {
                m->oom = 1;
                return -1;
            }
            m->capfds = cap;
        }
        m->fds[i].fd = s;
        m->nfds++;
    }
    m->fds[i].events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
                               ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    m->fds[i].revents = 0;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: when libcurl next wants socket_action(CURL_SOCKET_TIMEOUT). */
static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
    ocr_multi *m = userp;
    (void)multi;
    m->timer_due = timeout_ms < 0 ? -1 : ocr_monotime() + (double)timeout_ms / 1000.0;
    return 0;
}

/* Milliseconds until libcurl's timeout (0 when due), or -1 when it set none. */
static long timer_wait(const ocr_multi *m) {
    double left;
    if (m->timer_due < 0) return -1;
    left = m->timer_due - ocr_monotime();
    return left <= 0 ? 0 : (long)(left * 1000.0) + 1;
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
        ocr_xfer_destroy(x);          /* frees the body first, then the handle can be reset */
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
    free(m->fds);
    free(m->scratch);
    m->fds = m->scratch = NULL;
    m->nfds = m->capfds = 0;
    ocr_curl_opts_free(&m->opts);
    if (m->anchors != LUA_NOREF && m->anchors != LUA_REFNIL)
        luaL_unref(L, LUA_REGISTRYINDEX, m->anchors);
    m->anchors = LUA_NOREF;
}

/* ---------------------------------------------------------------------------------------- */
/* Lua API                                                                                  */

int ocr_curl_multi_new(lua_State *L) {
    ocr_multi *m = ocr_curl_new_object(L, sizeof *m);
    m->anchors = LUA_NOREF;
    luaL_setmetatable(L, OCR_CURL_MULTI_MT);
    ocr_curl_opts_arg(L, &m->opts);
    lua_newtable(L);
    m->anchors = luaL_ref(L, LUA_REGISTRYINDEX);
    m->timer_due = -1;
    m->multi = curl_multi_init();
    if (m->multi == NULL) return luaL_error(L, "ocr.curl: curl_multi_init failed");
    if (curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, (void *)m) != CURLM_OK ||
        curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, (void *)m) != CURLM_OK)
        return luaL_error(L, "ocr.curl: libcurl refused the socket interface callbacks");
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
        ocr_xfer_release(L, 3, 0);    /* frees what the handle pointed to; reset below */
        curl_easy_reset(e);
        m->pool[m->npool++] = e;      /* it came from the pool or the pool had room */
        return ocr_curl_push_error(L, "invalid_input", -1, 0, "%s", lua_tostring(L, 4));
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

static void socket_action(lua_State *L, ocr_multi *m, curl_socket_t s, int mask) {
    int running;   /* counted from our own list instead: this covers one call's view only */
    CURLMcode mc = curl_multi_socket_action(m->multi, s, mask, &running);
    if (m->oom) {
        m->oom = 0;
        luaL_error(L, "ocr.curl: out of memory watching sockets");
    }
    if (mc != CURLM_OK)
        luaL_error(L, "ocr.curl: curl_multi_socket_action failed: %s", curl_multi_strerror(mc));
}

/* m:perform([seconds]) -> number of transfers still running; never blocks. One poll() over the
 * watched sockets, then libcurl acts on those with activity and on its timeout if due. With
 * `seconds`, it stops acting on sockets once that much time has passed (after at least one):
 * the others stay readable and are taken up by the next call, so a burst of answers is spread
 * over several calls instead of making one long. */
static int multi_perform(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    int i, nready = 0, running = 0;
    double limit = -1, until = 0;   /* -1: no limit */
    ocr_xfer *x;
    if (!lua_isnoneornil(L, 2)) {
        limit = luaL_checknumber(L, 2);
        luaL_argcheck(L, limit >= 0, 2, "seconds must be >= 0");
    }
    if (limit >= 0) until = ocr_monotime() + limit;
    if (m->nfds > 0 && poll(m->fds, (nfds_t)m->nfds, 0) > 0) {
        /* A copy: libcurl changes the watched set while it acts. */
        for (i = 0; i < m->nfds; i++)
            if (m->fds[i].revents) m->scratch[nready++] = m->fds[i];
    }
    for (i = 0; i < nready; i++) {
        short re = m->scratch[i].revents;
        int mask = ((re & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0) |
                   ((re & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                   ((re & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
        socket_action(L, m, m->scratch[i].fd, mask);
        if (limit >= 0 && i + 1 < nready && ocr_monotime() > until) break;
    }
    if (timer_wait(m) == 0) {
        m->timer_due = -1;   /* libcurl may set a new one from inside */
        socket_action(L, m, CURL_SOCKET_TIMEOUT, 0);
    }
    drain(m);
    for (x = m->running; x; x = x->next) running++;
    lua_pushinteger(L, running);
    return 1;
}

/* m:poll(ms[, fds]) -> number of fds with activity; waits at most ms (0: never blocks), less
 * when libcurl's own timeout comes first. `fds` (an array of up to 16 file descriptors) are
 * waited on too, so a scheduler can sleep on the network and on other event sources (e.g. the
 * OCR worker pool's eventfd) at once. */
#define OCR_MAX_EXTRA_FDS 16
static int multi_poll(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    lua_Integer ms = luaL_checkinteger(L, 2);
    struct pollfd *all;
    size_t i, nextra = 0;
    long wait;
    int n;
    luaL_argcheck(L, ms >= 0 && ms <= INT_MAX, 2, "milliseconds out of range");
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        nextra = lua_rawlen(L, 3);
        luaL_argcheck(L, nextra <= OCR_MAX_EXTRA_FDS, 3, "at most 16 extra file descriptors");
    }
    /* A userdata, so nothing leaks if a check below raises. */
    all = lua_newuserdata(L, ((size_t)m->nfds + nextra + 1) * sizeof *all);
    for (i = 0; i < nextra; i++) {
        lua_Integer fd;
        lua_rawgeti(L, 3, (int)i + 1);
        if (!lua_isnumber(L, -1)) return luaL_argerror(L, 3, "file descriptors must be integers");
        fd = lua_tointeger(L, -1);
        lua_pop(L, 1);
        luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, 3, "file descriptor out of range");
        all[i].fd = (int)fd;
        all[i].events = POLLIN;
        all[i].revents = 0;
    }
    if (m->nfds > 0) memcpy(all + nextra, m->fds, (size_t)m->nfds * sizeof *all);
    wait = timer_wait(m);
    if (wait < 0 || wait > (long)ms) wait = (long)ms;
    n = poll(all, (nfds_t)(nextra + (size_t)m->nfds), (int)wait);
    lua_pushinteger(L, n > 0 ? n : 0);
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

/* m:progress(id) -> {dltotal, dlnow, ultotal, ulnow} | nil for an unknown id */
static int multi_progress(lua_State *L) {
    ocr_multi *m = check_multi(L, 1);
    ocr_xfer *x = find(m, luaL_checkinteger(L, 2));
    if (x == NULL) {
        lua_pushnil(L);
        return 1;
    }
    ocr_xfer_push_progress(L, x);
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
    static const luaL_Reg funcs[] = {
        { "add", multi_add }, { "perform", multi_perform }, { "poll", multi_poll },
        { "info_read", multi_info_read }, { "progress", multi_progress },
        { "remove", multi_remove }, { "count", multi_count }, { "close", multi_close },
        { "__gc", multi_close }, { "__tostring", multi_tostring }, { NULL, NULL }
    };
    ocr_push_class(L, OCR_CURL_MULTI_MT, funcs);
    lua_pop(L, 1);
}
