/* ocr.core's base64 and percent-encoding codecs. Input: the whole of it is one string s.
 * checks.codec: decode(encode(s)) == s for both codecs; the strict decoders take s itself and
 * either refuse it with a message or give bytes that encode back to s (base64: but for the bits
 * under the padding; percent-encoding: but for the escapes it did not need). */
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_input in = { data, size };
    lua_State *L = fz_begin("codec");
    fz_push_rest(L, &in);
    fz_check(L, 1, data, size);
    return 0;
}
