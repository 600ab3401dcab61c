# The benchmarks (bench/): `make bench` builds the modules, the benchmark server and the libcurl
# baseline, then runs bench/run.lua, which starts its servers on 127.0.0.1, runs every benchmark,
# stops the servers and prints a markdown table (machine and date included).
# Included by the Makefile once OUT, LUA, CC, WARN, CURL_CFLAGS and CURL_LIBS are set.
#   make bench                 everything (about four minutes; benchmark 5, local OCR, needs
#                              ocr.tesseract and the tesseract command, else prints "skipped")
#   make bench BENCH_ARGS=--quick     fewer runs and jobs: a smoke test, not numbers to publish
#   make bench BENCH_ARGS="--only 4"  one benchmark (1-8; 6, OpenResty, starts nginx with the
#                              modules of build/lua5.1, built here too)

# Rules below must not become the default goal, wherever the Makefile includes this file.
bench_saved_goal := $(.DEFAULT_GOAL)

BENCH_OUT    = build/bench
BENCH_CFLAGS = -O2 -g $(WARN) -std=c99
BENCH_ARGS  ?=

.PHONY: bench bench-tools

bench-tools: $(BENCH_OUT)/fast_server $(BENCH_OUT)/curl_loop

$(BENCH_OUT)/fast_server: bench/fast_server.c | $(BENCH_OUT)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

$(BENCH_OUT)/curl_loop: bench/curl_loop.c | $(BENCH_OUT)
	$(CC) $(BENCH_CFLAGS) $(CURL_CFLAGS) -o $@ $< $(CURL_LIBS)

$(BENCH_OUT):
	mkdir -p $@

bench: deps
	@$(INSTALL_DEPS) .ci/packages-bench
	@$(BUILD_AFTER_DEPS) all bench-tools
	@$(BUILD_AFTER_DEPS) LUA_VERSION=5.1 all
	$(LUA) bench/run.lua --cpath $(OUT) --tools $(BENCH_OUT) $(BENCH_ARGS)

.DEFAULT_GOAL := $(bench_saved_goal)
