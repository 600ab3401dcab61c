# The optional module ocr.hiredis (Redis's protocol through hiredis), which ocr.store.redis needs.
# Included by the Makefile once OUT, OBJ, ALL_CFLAGS, LDFLAGS_SO and HEADERS are set; the Makefile
# adds $(HIREDIS_SO) to `all`. Without hiredis (pkg-config), one line says the module is skipped
# and nothing fails: only the Redis store needs it, and it says so when used.

hiredis_saved_goal := $(.DEFAULT_GOAL)

HIREDIS_FOUND := $(shell $(PKG_CONFIG) --exists hiredis 2>/dev/null && echo yes)
HIREDIS_SRC    = csrc/hiredis.c csrc/redis_reply.c
HIREDIS_OBJ    = $(patsubst csrc/%.c,$(OBJ)/%.o,$(HIREDIS_SRC)) $(OBJ)/compat.o

ifeq ($(HIREDIS_FOUND),yes)
HIREDIS_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags hiredis)
HIREDIS_LIBS   ?= $(shell $(PKG_CONFIG) --libs hiredis)
HIREDIS_SO      = $(OUT)/ocr/hiredis.so
else
HIREDIS_SO      = hiredis-skipped
endif

.PHONY: hiredis hiredis-skipped
hiredis: $(HIREDIS_SO)

hiredis-skipped:
	@echo "ocr.hiredis skipped: pkg-config finds no hiredis (apt-get install libhiredis-dev to use ocr.store.redis)"

$(patsubst csrc/%.c,$(OBJ)/%.o,$(HIREDIS_SRC)): $(OBJ)/%.o: csrc/%.c $(HEADERS) | $(OBJ)
	$(CC) $(ALL_CFLAGS) $(HIREDIS_CFLAGS) -c $< -o $@

$(OUT)/ocr/hiredis.so: $(HIREDIS_OBJ) | $(OUT)/ocr
	$(CC) $(LDFLAGS_SO) -o $@ $^ $(HIREDIS_LIBS)

.DEFAULT_GOAL := $(hiredis_saved_goal)
