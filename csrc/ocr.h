/* Internal interface between the files of ocr.core: each concern lives in its own file and
 * contributes its functions to the module table through one of these arrays. */
#ifndef OCR_OCR_H
#define OCR_OCR_H

#include "compat.h"

#define OCR_VERSION "0.1.0"

OCR_HIDDEN extern const luaL_Reg ocr_crypto_funcs[];     /* crypto.c:    sha1 hmac_sha1 md5 hex random_bytes */
OCR_HIDDEN extern const luaL_Reg ocr_codec_funcs[];      /* codec.c:     base64_* url_*         */
OCR_HIDDEN extern const luaL_Reg ocr_cos_sign_funcs[];   /* cos_sign.c:  cos_sign               */
OCR_HIDDEN extern const luaL_Reg ocr_multipart_funcs[];  /* multipart.c: multipart multipart_plan */
OCR_HIDDEN extern const luaL_Reg ocr_xml_funcs[];        /* xml.c:       xml_decode             */
OCR_HIDDEN extern const luaL_Reg ocr_sys_funcs[];        /* sys.c:       monotime sleep stat isatty cpu_count */
OCR_HIDDEN extern const luaL_Reg ocr_text_funcs[];       /* text.c:      split_lines            */
OCR_HIDDEN extern const luaL_Reg ocr_http_funcs[];       /* http_parse.c: http_response         */

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
