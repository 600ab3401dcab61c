/* What every libFuzzer harness of fuzz/ shares (fuzz/harness.c).
 *
 * A harness turns the fuzzer's bytes into the arguments of one check of fuzz/checks.lua (same
 * name as the harness), which calls ocr.core and tests its invariants; the check runs in
 * lua_pcall on one lua_State made once per process (image_check alone calls plain C functions,
 * csrc/image_check.h, and uses only the byte readers). Outcomes:
 *   the check returns true                 fine
 *   it raises an error with a message      fine (a Lua error is an answer ocr.core may give)
 *   it returns false, why                  an invariant is broken: the harness prints why, aborts
 *   it raises without a message            the same
 * and a sanitizer report or a leak is a finding as well. spec/fuzz_spec.lua replays the inputs
 * kept in spec/fixtures/fuzz/<harness>/ through the same checks, with checks.decode.<harness>,
 * the Lua twin of the byte readers below (FUZZ_SELFCHECK=1 makes a harness compare the two).
 *
 * The bytes are read front to back, FuzzedDataProvider-like:
 *   u8    the next byte, 0 once the input is used up
 *   u16   two of them, big-endian
 *   str   a length byte, then that many bytes (fewer when the input ends first)
 *   rest  whatever is left
 *   num   fz_numbers[u8 % FZ_NUMBERS]: the numbers that break naive C (see harness.c) */
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const uint8_t *p;
    size_t n;
} fz_input;

#define FZ_NUMBERS 12

unsigned fz_u8(fz_input *in);
unsigned fz_u16(fz_input *in);
const char *fz_str(fz_input *in, size_t *len);
void fz_push_str(lua_State *L, fz_input *in);
void fz_push_rest(lua_State *L, fz_input *in);
void fz_push_number(lua_State *L, unsigned selector);   /* fz_numbers[selector % FZ_NUMBERS] */

/* The process's lua_State, made on the first call: the standard libraries, ocr.core (linked in,
 * under package.preload) and fuzz/checks.lua. Then pushes checks[name]: the harness pushes its
 * arguments above it and calls fz_check. */
lua_State *fz_begin(const char *name);

/* Calls the check with the nargs arguments above it, judges the outcome (see above), then empties
 * the stack and collects garbage. data/size: the input, for FUZZ_SELFCHECK. */
void fz_check(lua_State *L, int nargs, const uint8_t *data, size_t size);

#endif
