/* ocr.core: pure functions (hashing, encodings, COS signing, multipart encoding, XML decoding,
 * splitting text into lines) and a sans-I/O HTTP response parser.
 * It never touches the network, so an embedder that brings its own HTTP loads only this. */
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <expat.h>
#include "ocr.h"

OCR_EXPORT int luaopen_ocr_core(lua_State *L);

int luaopen_ocr_core(lua_State *L) {
#define OCR_CORE_ENTRY(name) { #name, ocr_core_##name },
    static const luaL_Reg funcs[] = { OCR_CORE_FUNCS(OCR_CORE_ENTRY) { NULL, NULL } };
#undef OCR_CORE_ENTRY
    luaL_newlib(L, funcs);
    lua_pushliteral(L, OCR_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, XML_ExpatVersion());
    lua_setfield(L, -2, "_EXPAT_VERSION");
    lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
    lua_setfield(L, -2, "_OPENSSL_VERSION");
    return 1;
}
