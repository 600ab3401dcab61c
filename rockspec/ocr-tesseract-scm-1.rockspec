-- The optional local OCR engine of lua-ocr: ocr.tesseract (libtesseract's C API + leptonica, on
-- worker threads). From a checkout: luarocks make rockspec/ocr-tesseract-scm-1.rockspec
rockspec_format = "3.0"
package = "ocr-tesseract"
version = "scm-1"
source = {
  url = "git+https://github.com/lua-ocr/lua-ocr.git",
}
description = {
  summary = "Offline OCR for lua-ocr: the tesseract provider's engine",
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "ocr",
}
external_dependencies = {
  TESSERACT = { library = "tesseract" },
  LEPTONICA = { library = "leptonica" },
}
build = {
  type = "builtin",
  modules = {
    ["ocr.tesseract"] = {
      sources = { "csrc/tesseract.c", "csrc/tesseract_pool.c", "csrc/tesseract_page.c",
                  "csrc/tesseract_pdfdoc.c", "csrc/tesseract_output.c",
                  "csrc/image_check.c", "csrc/compat.c", "csrc/buffer.c" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "tesseract", "leptonica", "pthread" },
      incdirs = { "$(TESSERACT_INCDIR)", "$(LEPTONICA_INCDIR)" },
      libdirs = { "$(TESSERACT_LIBDIR)", "$(LEPTONICA_LIBDIR)" },
    },
  },
}
