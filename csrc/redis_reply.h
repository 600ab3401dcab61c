/* Redis replies for ocr.hiredis: a reader whose objects stay within a size bound, and the Lua
 * value of a reply (csrc/redis_reply.c). */
#ifndef OCR_REDIS_REPLY_H
#define OCR_REDIS_REPLY_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include "compat.h"

typedef struct {
    size_t max_reply;   /* the most bytes one reply may take on the wire */
} redis_limits;

/* A RESP reader whose arrays cannot claim more elements than max_reply bytes could hold;
 * `limits` must outlive it. NULL when out of memory. Free with redisReaderFree. */
redisReader *redis_reader_new(redis_limits *limits);

/* Pushes the Lua value of `r` and returns 1: strings and statuses as strings, integers,
 * arrays as tables, a nil as false, an error inside an array as {err = message}. A top-level
 * error reply pushes nil, its message, "reply" and returns 3. */
int redis_push_reply(lua_State *L, const redisReply *r);

#endif
