/* ocr.hiredis: Redis's wire protocol through hiredis, for the Redis store (lua/ocr/store/redis.lua).
 *
 *   hiredis.connect{host=, port=, path=, timeout=, max_reply=} -> conn | nil, err
 *   conn:call(arg, ...)   -> value | nil, err, kind   (kind: "reply", "io", "timeout", "protocol")
 *   conn:close()
 *   hiredis.encode(arg, ...) -> the command's bytes         (for another socket: nginx's cosockets)
 *   hiredis.reader([max_reply]) -> r; r:feed(bytes) -> true | nil, err; r:get() -> value | nil
 *                                  (more bytes needed) | nil, err, kind
 *
 * hiredis connects (with its timeout) and frames; the reads and writes are ours, so that one
 * deadline bounds a whole call (not each syscall), a peer that closed never raises SIGPIPE
 * (send with MSG_NOSIGNAL), and a reply cannot grow past max_reply. After an "io", "timeout" or
 * "protocol" error the connection is closed: the caller connects again. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include "clock.h"
#include "redis_reply.h"

#define CONN_MT "ocr.hiredis.conn"
#define READER_MT "ocr.hiredis.reader"
#define DEFAULT_MAX_REPLY (64u * 1024 * 1024)
#define MAX_ARGS 1024

typedef struct {
    redisContext *ctx;
    redisReader *reader;
    redis_limits limits;
    double timeout;
} conn_t;

typedef struct {
    redisReader *reader;
    redis_limits limits;
    size_t fed;        /* bytes fed since the last complete reply */
} reader_t;

static double opt_number(lua_State *L, int t, const char *name, double def, double lo, double hi) {
    double v;
    lua_getfield(L, t, name);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "ocr.hiredis: option '%s' must be a number", name);
    v = lua_tonumber(L, -1);
    lua_pop(L, 1);
    if (!(v >= lo && v <= hi)) luaL_error(L, "ocr.hiredis: option '%s' out of range", name);
    return v;
}

/* The command's RESP bytes from the arguments from `first` on (strings or numbers). */
static int format_command(lua_State *L, int first, char **cmd) {
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int i, argc = lua_gettop(L) - first + 1, n;
    if (argc < 1) return luaL_error(L, "ocr.hiredis: a command needs at least one argument");
    if (argc > MAX_ARGS) return luaL_error(L, "ocr.hiredis: at most %d arguments", MAX_ARGS);
    for (i = 0; i < argc; i++) {
        int t = lua_type(L, first + i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            return luaL_argerror(L, first + i, "string or number expected");
        argv[i] = lua_tolstring(L, first + i, &lens[i]);
    }
    n = redisFormatCommandArgv(cmd, argc, argv, lens);
    if (n < 0) return luaL_error(L, "ocr.hiredis: out of memory");
    return n;
}

static int l_encode(lua_State *L) {
    char *cmd = NULL;
    int n = format_command(L, 1, &cmd);
    lua_pushlstring(L, cmd, (size_t)n);
    redisFreeCommand(cmd);
    return 1;
}

/* -- connections ------------------------------------------------------------------------- */

static void conn_drop(conn_t *c) {
    if (c->reader) redisReaderFree(c->reader);
    if (c->ctx) redisFree(c->ctx);
    c->reader = NULL;
    c->ctx = NULL;
}

/* nil, msg, kind; then closes `c` (after: `msg` may be the reader's, which closing frees). */
static int fail(lua_State *L, conn_t *c, const char *kind, const char *msg) {
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, kind);
    if (c) conn_drop(c);
    return 3;
}

static int l_connect(lua_State *L) {
    const char *host, *path;
    double timeout, max_reply;
    int port;
    struct timeval tv;
    conn_t *c;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    host = lua_tostring(L, -1);
    lua_getfield(L, 1, "path");
    path = lua_tostring(L, -1);
    port = (int)opt_number(L, 1, "port", 6379, 1, 65535);
    timeout = opt_number(L, 1, "timeout", 1, 0.001, 3600);
    max_reply = opt_number(L, 1, "max_reply", DEFAULT_MAX_REPLY, 16, 1u << 30);
    if (!host && !path) return luaL_error(L, "ocr.hiredis.connect: host or path expected");
    c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CONN_MT);
    c->timeout = timeout;
    c->limits.max_reply = (size_t)max_reply;
    tv.tv_sec = (time_t)timeout;
    tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
    c->ctx = path ? redisConnectUnixWithTimeout(path, tv) : redisConnectWithTimeout(host, port, tv);
    if (!c->ctx) return fail(L, c, "io", "out of memory");
    if (c->ctx->err) {
        char msg[160];
        snprintf(msg, sizeof msg, "connect: %s", c->ctx->errstr);
        return fail(L, c, strstr(c->ctx->errstr, "timed out") ? "timeout" : "io", msg);
    }
    c->reader = redis_reader_new(&c->limits);
    if (!c->reader) return fail(L, c, "io", "out of memory");
    return 1;
}

static conn_t *check_conn(lua_State *L) {
    return (conn_t *)luaL_checkudata(L, 1, CONN_MT);
}

/* Waits for `events` on the connection until `deadline`: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, double deadline) {
    for (;;) {
        struct pollfd p = { fd, events, 0 };
        double left = deadline - ocr_monotime();
        int ms, rc;
        if (left <= 0) return 0;
        ms = (int)(left * 1000) + 1;
        rc = poll(&p, 1, ms);
        if (rc > 0) return 1;
        if (rc == 0) continue;   /* (re-checks the deadline) */
        if (errno != EINTR) return -1;
    }
}

static int l_call(lua_State *L) {
    conn_t *c = check_conn(L);
    char *cmd = NULL, buf[16384];
    size_t sent = 0, fed = 0;
    double deadline = ocr_monotime() + c->timeout;
    int len, fd;
    void *reply = NULL;
    if (!c->ctx) return fail(L, NULL, "io", "connection closed");
    fd = c->ctx->fd;
    len = format_command(L, 2, &cmd);
    while (sent < (size_t)len) {
        ssize_t n = send(fd, cmd + sent, (size_t)len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd(fd, POLLOUT, deadline);
            if (w > 0) continue;
            redisFreeCommand(cmd);
            return fail(L, c, w == 0 ? "timeout" : "io", w == 0 ? "timed out sending" : strerror(errno));
        }
        redisFreeCommand(cmd);
        return fail(L, c, "io", n < 0 ? strerror(errno) : "connection closed");
    }
    redisFreeCommand(cmd);
    for (;;) {
        ssize_t n;
        int w;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK)
            return fail(L, c, "protocol", fed > c->limits.max_reply / 2
                        ? "reply larger than max_reply" : c->reader->errstr);
        if (reply) break;
        w = wait_fd(fd, POLLIN, deadline);
        if (w <= 0) return fail(L, c, w == 0 ? "timeout" : "io", w == 0 ? "timed out" : strerror(errno));
        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return fail(L, c, "io", "connection closed by the server");
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            return fail(L, c, "io", strerror(errno));
        }
        fed += (size_t)n;
        if (fed > c->limits.max_reply) return fail(L, c, "protocol", "reply larger than max_reply");
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK)
            return fail(L, c, "protocol", "out of memory");
    }
    /* One command, one reply: bytes beyond it would be taken for the next command's answer. */
    if (c->reader->pos < c->reader->len) {
        freeReplyObject(reply);
        return fail(L, c, "protocol", "unexpected bytes after the reply");
    }
    {
        int nret = redis_push_reply(L, (redisReply *)reply);
        freeReplyObject(reply);
        return nret;
    }
}

static int l_close(lua_State *L) {
    conn_drop(check_conn(L));
    return 0;
}

static int l_conn_tostring(lua_State *L) {
    conn_t *c = check_conn(L);
    lua_pushfstring(L, "ocr.hiredis.conn (%s)", c->ctx ? "open" : "closed");
    return 1;
}

/* -- readers (for bytes from another socket) ---------------------------------------------- */

static reader_t *check_reader(lua_State *L) {
    return (reader_t *)luaL_checkudata(L, 1, READER_MT);
}

static int l_reader(lua_State *L) {
    double max_reply = luaL_optnumber(L, 1, DEFAULT_MAX_REPLY);
    reader_t *r;
    luaL_argcheck(L, max_reply >= 16 && max_reply <= (double)(1u << 30), 1, "max_reply out of range");
    r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, READER_MT);
    r->limits.max_reply = (size_t)max_reply;
    r->reader = redis_reader_new(&r->limits);
    if (!r->reader) return luaL_error(L, "ocr.hiredis.reader: out of memory");
    return 1;
}

static int l_reader_feed(lua_State *L) {
    reader_t *r = check_reader(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    if (!r->reader) return fail(L, NULL, "protocol", "reader failed earlier");
    if (len > r->limits.max_reply - r->fed || r->fed + len > r->limits.max_reply)
        return fail(L, NULL, "protocol", "reply larger than max_reply");
    if (redisReaderFeed(r->reader, s, len) != REDIS_OK) return fail(L, NULL, "protocol", "out of memory");
    r->fed += len;
    lua_pushboolean(L, 1);
    return 1;
}

static int l_reader_get(lua_State *L) {
    reader_t *r = check_reader(L);
    void *reply = NULL;
    int nret;
    if (!r->reader) return fail(L, NULL, "protocol", "reader failed earlier");
    if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
        lua_pushnil(L);
        lua_pushstring(L, r->reader->errstr);
        lua_pushliteral(L, "protocol");
        redisReaderFree(r->reader);
        r->reader = NULL;
        return 3;
    }
    if (!reply) return 0;
    r->fed = 0;   /* (bytes of the next reply may already be in; they count from here) */
    nret = redis_push_reply(L, (redisReply *)reply);
    freeReplyObject(reply);
    return nret;
}

static int l_reader_gc(lua_State *L) {
    reader_t *r = check_reader(L);
    if (r->reader) redisReaderFree(r->reader);
    r->reader = NULL;
    return 0;
}

OCR_EXPORT int luaopen_ocr_hiredis(lua_State *L);

int luaopen_ocr_hiredis(lua_State *L) {
    static const luaL_Reg conn_funcs[] = {
        { "call", l_call }, { "close", l_close },
        { "__gc", l_close }, { "__tostring", l_conn_tostring }, { NULL, NULL }
    };
    static const luaL_Reg reader_funcs[] = {
        { "feed", l_reader_feed }, { "get", l_reader_get }, { "__gc", l_reader_gc }, { NULL, NULL }
    };
    static const luaL_Reg funcs[] = {
        { "connect", l_connect }, { "encode", l_encode }, { "reader", l_reader }, { NULL, NULL }
    };
    ocr_push_class(L, CONN_MT, conn_funcs);
    ocr_push_class(L, READER_MT, reader_funcs);
    lua_pop(L, 2);
    luaL_newlib(L, funcs);
    lua_pushfstring(L, "hiredis %d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    lua_setfield(L, -2, "_HIREDIS_VERSION");
    return 1;
}
