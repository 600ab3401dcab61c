# libFuzzer harnesses (fuzz/): `make fuzz` builds one fuzzer per C entry point that reads foreign
# bytes into build/fuzz/, with clang-14 under AddressSanitizer + UBSan, then runs each in turn
# (nice -n 19, one process at a time) and prints a markdown table, also written to
# build/fuzz/results.md. Exits non-zero when a harness crashed; the input that crashed it is
# copied to spec/fixtures/fuzz/<harness>/, which spec/fuzz_spec.lua replays.
# Included by the Makefile once WARN, LUA_CFLAGS, CORE_CFLAGS, CORE_LIBS and CORE_SRC are set.
#   make fuzz                    each harness for FUZZ_TIME seconds (60)
#   make fuzz FUZZ_TIME=20       (what CI runs)
#   make fuzz FUZZ_RUNS=10000    each harness for that many executions instead
#   make fuzz FUZZ_ONLY="codec cos_sign"   some harnesses only
#   make fuzz-build              the fuzzers only; `build/fuzz/<harness> <file>` replays one input
# The corpus each run grows lives in build/fuzz/work/<harness>/corpus; fuzz/corpus/<harness>/ holds
# the committed seeds, fuzz/dict/ the dictionaries.

# Rules below must not become the default goal, wherever the Makefile includes this file.
fuzz_saved_goal := $(.DEFAULT_GOAL)

FUZZ_CC    ?= clang-14
FUZZ_LUA   ?= lua5.4
FUZZ_TIME  ?= 60
FUZZ_RUNS  ?=
FUZZ_OUT    = build/fuzz
FUZZ_SAN    = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L \
              $(shell $(PKG_CONFIG) --cflags $(FUZZ_LUA) 2>/dev/null) $(CORE_CFLAGS)
FUZZ_LIBS   = $(shell $(PKG_CONFIG) --libs $(FUZZ_LUA) 2>/dev/null || echo -l$(FUZZ_LUA)) $(CORE_LIBS) -lm

# harness:max_len (the largest input libFuzzer makes for it)
FUZZ_HARNESSES = xml_decode:4096 multipart:2048 codec:4096 cos_sign:2048 image_check:8192 \
                 http_response:4096 redis_reply:4096
FUZZ_NAMES     = $(foreach h,$(FUZZ_HARNESSES),$(firstword $(subst :, ,$(h))))
FUZZ_ONLY     ?= $(FUZZ_NAMES)

# Every harness links ocr.core whole (luaopen_ocr_core needs all of it) and the image probe.
FUZZ_CORE_OBJ = $(patsubst csrc/%.c,$(FUZZ_OUT)/obj/%.o,$(CORE_SRC) $(COMMON_SRC) csrc/image_check.c)
FUZZ_BINS     = $(addprefix $(FUZZ_OUT)/,$(FUZZ_NAMES))

.PHONY: fuzz fuzz-build

fuzz-build: $(FUZZ_BINS)

$(FUZZ_OUT)/obj/%.o: csrc/%.c $(HEADERS) | $(FUZZ_OUT)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_OUT)/obj/fuzz_%.o: fuzz/%.c fuzz/harness.h $(HEADERS) | $(FUZZ_OUT)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_CHECKS='"$(CURDIR)/fuzz/checks.lua"' -c $< -o $@

$(FUZZ_BINS): $(FUZZ_OUT)/%: $(FUZZ_OUT)/obj/fuzz_%.o $(FUZZ_OUT)/obj/fuzz_harness.o $(FUZZ_CORE_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -o $@ $^ $(FUZZ_LIBS)

# redis_reply links ocr.hiredis (preloaded by harness.c) and libhiredis as well.
$(FUZZ_OUT)/redis_reply: $(FUZZ_OUT)/obj/hiredis.o $(FUZZ_OUT)/obj/redis_reply.o
$(FUZZ_OUT)/redis_reply: FUZZ_LIBS += $(shell $(PKG_CONFIG) --libs hiredis 2>/dev/null)

$(FUZZ_OUT)/obj:
	mkdir -p $@

fuzz: deps
	@$(BUILD_AFTER_DEPS) fuzz-build
	FUZZ_CC=$(FUZZ_CC) FUZZ_TIME=$(FUZZ_TIME) FUZZ_RUNS=$(FUZZ_RUNS) fuzz/run.sh $(FUZZ_OUT) \
	  $(filter $(addsuffix :%,$(FUZZ_ONLY)),$(FUZZ_HARNESSES))

.DEFAULT_GOAL := $(fuzz_saved_goal)
