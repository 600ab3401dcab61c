# The optional module ocr.tesseract (libtesseract's C API + leptonica, on worker threads).
# Included by the Makefile once OUT, OBJ, ALL_CFLAGS, LDFLAGS_SO and HEADERS are set; the Makefile
# adds $(TESSERACT_SO) to `all`. When pkg-config cannot find tesseract and lept, $(TESSERACT_SO)
# is a target that prints one line saying the module is skipped and why, and nothing fails:
# nothing else depends on this module.
#   make tesseract                       just this module
#   make TESSDATA_DIR=/opt/tessdata      look there first when no datapath/TESSDATA_PREFIX is given
# PDF input comes from a second module, ocr.tesseract_pdf (csrc/tesseract_pdf.c: poppler's glib
# API and cairo), built beside it when pkg-config also finds poppler-glib and cairo; without them
# make prints one line saying so, and the provider refuses PDFs naming libpoppler-glib-dev. It is
# a module of its own so that poppler, glib and cairo are loaded only when a PDF comes in.

# Rules below must not become the default goal, wherever the Makefile includes this file.
tess_saved_goal := $(.DEFAULT_GOAL)

TESS_PKGS        ?= tesseract lept
TESSERACT_FOUND  := $(shell $(PKG_CONFIG) --exists $(TESS_PKGS) 2>/dev/null && echo yes)
TESSDATA_DIR     ?=

TESS_SRC = csrc/tesseract.c csrc/tesseract_pool.c csrc/tesseract_page.c csrc/tesseract_pdfdoc.c \
           csrc/tesseract_output.c csrc/image_check.c
TESS_OBJ = $(patsubst csrc/%.c,$(OBJ)/%.o,$(TESS_SRC)) $(OBJ)/compat.o $(OBJ)/buffer.o

PDF_PKGS   ?= poppler-glib cairo gio-2.0
PDF_FOUND  := $(shell $(PKG_CONFIG) --exists $(PDF_PKGS) 2>/dev/null && echo yes)

ifeq ($(TESSERACT_FOUND),yes)
TESS_CFLAGS ?= $(shell $(PKG_CONFIG) --cflags $(TESS_PKGS)) \
               $(if $(TESSDATA_DIR),-DOCR_TESSDATA_DIR='"$(TESSDATA_DIR)"')
TESS_LIBS   ?= $(shell $(PKG_CONFIG) --libs $(TESS_PKGS))
TESSERACT_SO = $(OUT)/ocr/tesseract.so
ifeq ($(PDF_FOUND),yes)
PDF_CFLAGS  ?= $(shell $(PKG_CONFIG) --cflags $(PDF_PKGS))
PDF_LIBS    ?= $(shell $(PKG_CONFIG) --libs $(PDF_PKGS)) -ldl
TESSERACT_SO += $(OUT)/ocr/tesseract_pdf.so
else
TESSERACT_SO += tesseract-pdf-skipped
endif
else
TESSERACT_SO = tesseract-skipped
endif

.PHONY: tesseract tesseract-skipped tesseract-pdf-skipped
tesseract: $(TESSERACT_SO)

tesseract-skipped:
	@echo "ocr.tesseract skipped: pkg-config finds no $(TESS_PKGS) (apt-get install libtesseract-dev libleptonica-dev tesseract-ocr-eng to build it)"

tesseract-pdf-skipped:
	@echo "ocr.tesseract_pdf skipped: pkg-config finds no $(PDF_PKGS); PDF input needs it (apt-get install libpoppler-glib-dev)"

$(OBJ)/tesseract_pdf.o: csrc/tesseract_pdf.c $(HEADERS) | $(OBJ)
	$(CC) $(ALL_CFLAGS) -pthread $(PDF_CFLAGS) -c $< -o $@

$(OUT)/ocr/tesseract_pdf.so: $(OBJ)/tesseract_pdf.o $(OBJ)/compat.o | $(OUT)/ocr
	$(CC) $(LDFLAGS_SO) -pthread -o $@ $^ $(PDF_LIBS)

$(patsubst csrc/%.c,$(OBJ)/%.o,$(TESS_SRC)): $(OBJ)/%.o: csrc/%.c $(HEADERS) | $(OBJ)
	$(CC) $(ALL_CFLAGS) -pthread $(TESS_CFLAGS) -c $< -o $@

$(OUT)/ocr/tesseract.so: $(TESS_OBJ) | $(OUT)/ocr
	$(CC) $(LDFLAGS_SO) -pthread -o $@ $^ $(TESS_LIBS)

.DEFAULT_GOAL := $(tess_saved_goal)
