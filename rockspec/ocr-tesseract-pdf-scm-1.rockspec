-- PDF input for lua-ocr's local engine: ocr.tesseract_pdf (poppler's glib API and cairo), which
-- ocr.tesseract's workers render PDF pages with. Optional: without it the tesseract provider
-- refuses PDFs naming the Debian package. From a checkout:
-- luarocks make rockspec/ocr-tesseract-pdf-scm-1.rockspec
rockspec_format = "3.0"
package = "ocr-tesseract-pdf"
version = "scm-1"
source = {
  url = "git+https://github.com/lua-ocr/lua-ocr.git",
}
description = {
  summary = "PDF input for lua-ocr's tesseract provider (poppler)",
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "ocr-tesseract",
}
external_dependencies = {
  POPPLER_GLIB = { header = "poppler/glib/poppler.h", library = "poppler-glib" },
  GLIB = { header = "glib-2.0/glib.h", library = "glib-2.0" },
  CAIRO = { header = "cairo/cairo.h", library = "cairo" },
}
build = {
  type = "builtin",
  modules = {
    ["ocr.tesseract_pdf"] = {
      sources = { "csrc/tesseract_pdf.c", "csrc/compat.c" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "poppler-glib", "gio-2.0", "gobject-2.0", "glib-2.0", "cairo", "pthread", "dl" },
      incdirs = { "$(POPPLER_GLIB_INCDIR)/poppler/glib", "$(GLIB_INCDIR)/glib-2.0",
                  "$(GLIB_LIBDIR)/glib-2.0/include", "$(CAIRO_INCDIR)/cairo" },
      libdirs = { "$(POPPLER_GLIB_LIBDIR)", "$(GLIB_LIBDIR)", "$(CAIRO_LIBDIR)" },
    },
  },
}
