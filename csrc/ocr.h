/* Internal interface between the files of ocr.core: each concern lives in its own file and
 * contributes its functions to the module table through the one list below. */
#ifndef OCR_OCR_H
#define OCR_OCR_H

#include "compat.h"

#define OCR_VERSION "0.1.0"

/* Every function of the ocr.core table, by the file that defines it as ocr_core_<name>:
 * core.c registers them all from this one list. */
#define OCR_CORE_FUNCS(X) \
    X(sha1) X(md5) X(hmac_sha1) X(hex) X(random_bytes)                    /* crypto.c */     \
    X(sha256) X(sha256_file)                                              /* crypto.c */     \
    X(base64_encode) X(base64_decode) X(url_encode) X(url_decode)         /* codec.c */      \
    X(cos_sign)                                                           /* cos_sign.c */   \
    X(multipart) X(multipart_plan)                                        /* multipart.c */  \
    X(xml_decode)                                                         /* xml.c */        \
    X(monotime) X(sleep) X(stat) X(create_new) X(isatty) X(cpu_count)     /* sys.c */        \
    X(lstat) X(mkdir) X(list_dir)                                         /* sys.c */        \
    X(write_new) X(link) X(fsync)                                         /* sys.c */        \
    X(split_lines)                                                        /* text.c */       \
    X(http_response)                                                      /* http_parse.c */

#define OCR_CORE_DECLARE(name) OCR_HIDDEN int ocr_core_##name(lua_State *L);
OCR_CORE_FUNCS(OCR_CORE_DECLARE)
#undef OCR_CORE_DECLARE

/* RFC 3986 percent-encoding (unreserved A-Za-z0-9-_.~ left bare, uppercase hex) appended to a
 * luaL_Buffer. Shared by codec.c (url_encode) and cos_sign.c. */
OCR_HIDDEN void ocr_url_encode_buf(luaL_Buffer *b, const char *s, size_t n);

/* Pushes a byte count or size: an integer on Lua 5.3+ (a float would print as "123.0" in a
 * Content-Length), a number on 5.1, exact up to 2^53 there. */
static inline void ocr_push_uint(lua_State *L, unsigned long long v) {
#if LUA_VERSION_NUM >= 503
    if (v <= (unsigned long long)LUA_MAXINTEGER) {
        lua_pushinteger(L, (lua_Integer)v);
        return;
    }
#endif
    lua_pushnumber(L, (lua_Number)v);
}

#endif
