# The optional module ocr.tesseract (libtesseract's C API + leptonica, on worker threads).
# Included by the Makefile once OUT, OBJ, ALL_CFLAGS, LDFLAGS_SO and HEADERS are set; the Makefile
# adds $(TESSERACT_SO) to `all`. When pkg-config cannot find tesseract and lept, $(TESSERACT_SO)
# is a target that prints one line saying the module is skipped and why, and nothing fails:
# nothing else depends on this module.
#   make tesseract                       just this module
#   make TESSDATA_DIR=/opt/tessdata      look there first when no datapath/TESSDATA_PREFIX is given

# Rules below must not become the default goal, wherever the Makefile includes this file.
tess_saved_goal := $(.DEFAULT_GOAL)

TESS_PKGS        ?= tesseract lept
TESSERACT_FOUND  := $(shell $(PKG_CONFIG) --exists $(TESS_PKGS) 2>/dev/null && echo yes)
TESSDATA_DIR     ?=

TESS_SRC = csrc/tesseract.c csrc/tesseract_pool.c csrc/tesseract_page.c csrc/image_check.c
TESS_OBJ = $(patsubst csrc/%.c,$(OBJ)/%.o,$(TESS_SRC)) $(OBJ)/compat.o $(OBJ)/buffer.o

ifeq ($(TESSERACT_FOUND),yes)
TESS_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags $(TESS_PKGS)) \
               $(if $(TESSDATA_DIR),-DOCR_TESSDATA_DIR='"$(TESSDATA_DIR)"')
TESS_LIBS   ?= $(shell $(PKG_CONFIG) --libs $(TESS_PKGS))
TESSERACT_SO = $(OUT)/ocr/tesseract.so
else
TESSERACT_SO = tesseract-skipped
endif

.PHONY: tesseract tesseract-skipped
tesseract: $(TESSERACT_SO)

tesseract-skipped:
	@echo "ocr.tesseract skipped: pkg-config finds no $(TESS_PKGS) (apt-get install libtesseract-dev libleptonica-dev tesseract-ocr-eng to build it)"

$(patsubst csrc/%.c,$(OBJ)/%.o,$(TESS_SRC)): $(OBJ)/%.o: csrc/%.c $(HEADERS) | $(OBJ)
	$(CC) $(ALL_CFLAGS) -pthread $(TESS_CFLAGS) -c $< -o $@

$(OUT)/ocr/tesseract.so: $(TESS_OBJ) | $(OUT)/ocr
	$(CC) $(LDFLAGS_SO) -pthread -o $@ $^ $(TESS_LIBS)

.DEFAULT_GOAL := $(tess_saved_goal)
