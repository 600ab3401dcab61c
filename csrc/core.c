/* ocr.core: pure functions (hashing, encodings, COS signing, multipart encoding, XML decoding,
 * splitting text into lines) and a sans-I/O HTTP response parser.
 * It never touches the network, so an embedder that brings its own HTTP loads only this. */
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <expat.h>
#include "ocr.h"

OCR_EXPORT int luaopen_ocr_core(lua_State *L);

int luaopen_ocr_core(lua_State *L) {
    const luaL_Reg *groups[] = { ocr_crypto_funcs, ocr_codec_funcs, ocr_cos_sign_funcs,
                                 ocr_multipart_funcs, ocr_xml_funcs, ocr_sys_funcs, ocr_text_funcs,
                                 ocr_http_funcs };
    size_t i;
    lua_newtable(L);
    for (i = 0; i < sizeof groups / sizeof groups[0]; i++) luaL_setfuncs(L, groups[i], 0);
    lua_pushliteral(L, OCR_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, XML_ExpatVersion());
    lua_setfield(L, -2, "_EXPAT_VERSION");
    lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
    lua_setfield(L, -2, "_OPENSSL_VERSION");
    return 1;
}
