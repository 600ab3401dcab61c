# lua-ocr build. `make` builds the C modules into build/lua$(LUA_VERSION)/ocr/, laid out like an
# installed tree, so the checkout runs with LUA_CPATH='build/lua5.4/?.so;;'.
LUA_VERSION ?= 5.4
LUA        ?= lua$(LUA_VERSION)
PREFIX     ?= /usr/local
DESTDIR    ?=
LUA_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
LUA_SHARE  ?= $(PREFIX)/share/lua/$(LUA_VERSION)
BINDIR     ?= $(PREFIX)/bin
PKG_CONFIG ?= pkg-config

LUA_CFLAGS  ?= $(shell $(PKG_CONFIG) --cflags lua$(LUA_VERSION) 2>/dev/null || echo -I/usr/include/lua$(LUA_VERSION))
CURL_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags libcurl)
CURL_LIBS   ?= $(shell $(PKG_CONFIG) --libs libcurl) -ldl
CORE_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags expat libcrypto)
CORE_LIBS   ?= $(shell $(PKG_CONFIG) --libs expat libcrypto) -lhttp_parser

# SANITIZE=1 builds the modules with AddressSanitizer + UBSan (see `make test-asan`).
ifeq ($(SANITIZE),1)
  SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  BUILD_TAG = -asan
endif

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ALL_CFLAGS = $(CFLAGS) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
             $(SAN_FLAGS) $(LUA_CFLAGS)
# Modules are loaded into a Lua that already exports the API: never link liblua into them.
LDFLAGS_SO = -shared $(SAN_FLAGS)

OUT  = build/lua$(LUA_VERSION)$(BUILD_TAG)
OBJ  = build/obj$(LUA_VERSION)$(BUILD_TAG)

COMMON_SRC = csrc/compat.c csrc/buffer.c csrc/bytes.c csrc/args.c csrc/form.c
CORE_SRC   = csrc/core.c csrc/crypto.c csrc/codec.c csrc/cos_sign.c csrc/multipart.c csrc/xml.c csrc/sys.c \
             csrc/text.c csrc/http_parse.c
CURL_SRC   = csrc/curl.c csrc/curl_opts.c csrc/curl_xfer.c csrc/curl_request.c csrc/curl_body.c \
             csrc/curl_response.c csrc/curl_session.c csrc/curl_multi.c

CORE_OBJ = $(patsubst csrc/%.c,$(OBJ)/%.o,$(CORE_SRC) $(COMMON_SRC))
CURL_OBJ = $(patsubst csrc/%.c,$(OBJ)/%.o,$(CURL_SRC) $(COMMON_SRC))
HEADERS  = $(wildcard csrc/*.h)

BUSTED ?= /usr/bin/busted

# The optional ocr.tesseract module (built when pkg-config finds tesseract and leptonica).
-include mk/tesseract.mk

# The optional ocr.hiredis module, for the Redis store (pkg-config hiredis).
-include mk/hiredis.mk

# The benchmarks: `make bench` (bench/, mk/bench.mk).
-include mk/bench.mk

# libFuzzer harnesses: `make fuzz` (fuzz/, mk/fuzz.mk).
-include mk/fuzz.mk

.PHONY: all deps demo test test-asan coverage install clean

all: $(OUT)/ocr/core.so $(OUT)/ocr/curl.so $(TESSERACT_SO) $(HIREDIS_SO)

$(OBJ)/%.o: csrc/%.c $(HEADERS) | $(OBJ)
	$(CC) $(ALL_CFLAGS) $(CORE_CFLAGS) $(CURL_CFLAGS) -c $< -o $@

$(OUT)/ocr/core.so: $(CORE_OBJ) | $(OUT)/ocr
	$(CC) $(LDFLAGS_SO) -o $@ $^ $(CORE_LIBS)

$(OUT)/ocr/curl.so: $(CURL_OBJ) | $(OUT)/ocr
	$(CC) $(LDFLAGS_SO) -o $@ $^ $(CURL_LIBS)

$(OBJ) $(OUT)/ocr:
	mkdir -p $@


# Installs missing Debian packages (as root) or prints the apt-get line that would.
INSTALL_DEPS ?= .ci/install-deps
deps:
	@$(INSTALL_DEPS)

# Targets that install packages build through a second make: this one looked for tesseract
# with pkg-config when it read this file, before `deps` installed it, so on a fresh machine it
# would skip ocr.tesseract. The sub-make reads the Makefile again and finds it.
BUILD_AFTER_DEPS = $(MAKE) --no-print-directory

# The main job, offline: installs what is missing, builds, and reads the sample page with the
# local Tesseract provider through the `ocr` command.
demo: deps
	@$(BUILD_AFTER_DEPS) all
	$(LUA) bin/ocr examples/sample.png

# The specs, on Lua $(LUA_VERSION), against the modules built above. The OpenResty specs load
# the 5.1-ABI modules into a real nginx, so those are built too.
test: deps
	@$(BUILD_AFTER_DEPS) all
	@$(BUILD_AFTER_DEPS) LUA_VERSION=5.1 all
	$(LUA) $(BUSTED) $(BUSTED_ARGS)

# The same specs with the C modules under AddressSanitizer + UBSan; any report fails the run.
test-asan: deps
	@$(BUILD_AFTER_DEPS) SANITIZE=1 all
	@$(BUILD_AFTER_DEPS) LUA_VERSION=5.1 all
	OCR_CPATH_DIR=$(OUT)-asan ./spec/run-sanitized $(LUA) $(BUSTED) $(BUSTED_ARGS)

# Which lines the specs reach: lua/ by a line hook, csrc/ by gcov on a --coverage build
# (build/cov). Prints a table; missed lines go to build/coverage/{lua,c}.txt. Lua 5.4 only.
coverage: deps
	@$(BUILD_AFTER_DEPS) OUT=build/cov OBJ=build/objcov SAN_FLAGS=--coverage CFLAGS="-O0 -g" all
	rm -f build/objcov/*.gcda
	mkdir -p build/coverage
	OCR_CPATH_DIR=build/cov $(LUA) spec/tools/coverage.lua lua build/coverage $(BUSTED) $(BUSTED_ARGS); \
	  status=$$?; $(LUA) spec/tools/coverage.lua c build/coverage build/objcov; exit $$status

install: all
	install -d $(DESTDIR)$(LUA_LIBDIR)/ocr $(DESTDIR)$(LUA_SHARE)/ocr/providers $(DESTDIR)$(LUA_SHARE)/ocr/hosts
	install -m 0755 $(OUT)/ocr/core.so $(OUT)/ocr/curl.so $(DESTDIR)$(LUA_LIBDIR)/ocr/
	install -m 0644 lua/ocr.lua $(DESTDIR)$(LUA_SHARE)/
	install -m 0644 $(wildcard lua/ocr/*.lua) $(DESTDIR)$(LUA_SHARE)/ocr/
	install -m 0644 $(wildcard lua/ocr/providers/*.lua) $(DESTDIR)$(LUA_SHARE)/ocr/providers/
	install -m 0644 $(wildcard lua/ocr/hosts/*.lua) $(DESTDIR)$(LUA_SHARE)/ocr/hosts/
	if [ -f $(OUT)/ocr/tesseract.so ]; then install -m 0755 $(OUT)/ocr/tesseract.so $(DESTDIR)$(LUA_LIBDIR)/ocr/; fi
	if [ -f $(OUT)/ocr/hiredis.so ]; then install -m 0755 $(OUT)/ocr/hiredis.so $(DESTDIR)$(LUA_LIBDIR)/ocr/; fi
	if [ -f $(OUT)/ocr/tesseract_pdf.so ]; then install -m 0755 $(OUT)/ocr/tesseract_pdf.so $(DESTDIR)$(LUA_LIBDIR)/ocr/; fi
	install -d $(DESTDIR)$(BINDIR)
	sed '1s|.*|#!/usr/bin/env $(LUA)|' bin/ocr > $(DESTDIR)$(BINDIR)/ocr
	chmod 0755 $(DESTDIR)$(BINDIR)/ocr

clean:
	rm -rf build
