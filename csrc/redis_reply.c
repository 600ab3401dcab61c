/* Redis replies: hiredis's RESP reader with bounded reply objects, and their Lua values.
 *
 * hiredis's default reader allocates an array's element vector as soon as it reads the array's
 * header: "*2000000000\r\n" would ask for 16 GB before a single element arrived. Our object
 * functions (the reader's documented extension point) refuse a header that claims more
 * elements than the bytes the reply may span could hold, so memory stays within max_reply. */
#include <stdlib.h>
#include <string.h>
#include "redis_reply.h"

static redis_limits *limits_of(const redisReadTask *task) {
    return (redis_limits *)task->privdata;
}

/* Puts `r` at its index in the parent array (the reader created the parent first). */
static void *attach(const redisReadTask *task, redisReply *r) {
    if (task->parent) {
        redisReply *parent = (redisReply *)task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *create_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->type = task->type;
    r->str = malloc(len + 1);
    if (!r->str) {
        free(r);
        return NULL;
    }
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return attach(task, r);
}

static void *create_array(const redisReadTask *task, int elements) {
    redisReply *r;
    /* Every element takes at least 3 bytes on the wire (":1\r\n" is 4, "*0\r\n" is 4). */
    if (elements < 0 || (size_t)elements > limits_of(task)->max_reply / 3) return NULL;
    r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->type = REDIS_REPLY_ARRAY;
    if (elements > 0) {
        r->element = calloc((size_t)elements, sizeof *r->element);
        if (!r->element) {
            free(r);
            return NULL;
        }
    }
    r->elements = (size_t)elements;
    return attach(task, r);
}

static void *create_integer(const redisReadTask *task, long long value) {
    redisReply *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->type = REDIS_REPLY_INTEGER;
    r->integer = value;
    return attach(task, r);
}

static void *create_nil(const redisReadTask *task) {
    redisReply *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->type = REDIS_REPLY_NIL;
    return attach(task, r);
}

static redisReplyObjectFunctions bounded_functions = {
    create_string, create_array, create_integer, create_nil, freeReplyObject
};

redisReader *redis_reader_new(redis_limits *limits) {
    redisReader *r = redisReaderCreateWithFunctions(&bounded_functions);
    if (r) r->privdata = limits;
    return r;
}

/* One value; nested errors become {err = message}. hiredis nests at most 7 levels deep. */
static void push_value(lua_State *L, const redisReply *r) {
    size_t i;
    luaL_checkstack(L, 4, "redis reply too deeply nested");
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, r->elements > 1000000 ? 0 : (int)r->elements, 0);
        for (i = 0; i < r->elements; i++) {
            if (r->element[i]) push_value(L, r->element[i]);
            else lua_pushboolean(L, 0);
            lua_rawseti(L, -2, (int)(i + 1));
        }
        break;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, "err");
        break;
    default:   /* REDIS_REPLY_NIL */
        lua_pushboolean(L, 0);
        break;
    }
}

int redis_push_reply(lua_State *L, const redisReply *r) {
    if (r->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, r->str, r->len);
        lua_pushliteral(L, "reply");
        return 3;
    }
    push_value(L, r);
    return 1;
}
