-- The Redis store's protocol module for lua-ocr: ocr.hiredis (Redis's wire protocol through
-- hiredis), which ocr.store.redis needs. From a checkout: luarocks make rockspec/ocr-redis-scm-1.rockspec
rockspec_format = "3.0"
package = "ocr-redis"
version = "scm-1"
source = {
  url = "git+https://github.com/lua-ocr/lua-ocr.git",
}
description = {
  summary = "A fleet's shared store for lua-ocr: rate limits, budgets and the cache in Redis",
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "ocr",
}
external_dependencies = {
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
  type = "builtin",
  modules = {
    ["ocr.hiredis"] = {
      sources = { "csrc/hiredis.c", "csrc/redis_reply.c", "csrc/compat.c" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "hiredis" },
      incdirs = { "$(HIREDIS_INCDIR)" },
      libdirs = { "$(HIREDIS_LIBDIR)" },
    },
  },
}
