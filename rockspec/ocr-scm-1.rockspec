-- LuaRocks build of lua-ocr. From a checkout: luarocks make rockspec/ocr-scm-1.rockspec
rockspec_format = "3.0"
package = "ocr"
version = "scm-1"
source = {
  url = "git+https://github.com/lua-ocr/lua-ocr.git",
}
description = {
  summary = "One clean API over cloud OCR vendors, with a libcurl transport",
  detailed = [[
    require "ocr" gives Lua one client, result model and error model over cloud OCR vendors
    (PicWish, Tencent Cloud Infinite, ComPDF, ...). A small C core does hashing, signing,
    multipart, XML (expat), HTTP (libcurl) and sans-I/O HTTP response parsing (http_parser);
    providers are thin Lua scripts, and ocr.register adds your own.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson",
}
external_dependencies = {
  -- Debian keeps curl.h in a multiarch include directory that LuaRocks does not search (the
  -- compiler does): look for the library instead.
  CURL = { library = "curl" },
  EXPAT = { header = "expat.h" },
  OPENSSL = { header = "openssl/evp.h" },
  HTTP_PARSER = { header = "http_parser.h" },
}
build = {
  type = "builtin",
  modules = {
    ["ocr"] = "lua/ocr.lua",
    ["ocr.budget"] = "lua/ocr/budget.lua",
    ["ocr.cache"] = "lua/ocr/cache.lua",
    ["ocr.cli"] = "lua/ocr/cli.lua",
    ["ocr.client"] = "lua/ocr/client.lua",
    ["ocr.context"] = "lua/ocr/context.lua",
    ["ocr.cost"] = "lua/ocr/cost.lua",
    ["ocr.cosocket"] = "lua/ocr/cosocket.lua",
    ["ocr.host"] = "lua/ocr/host.lua",
    ["ocr.hosts.blocking"] = "lua/ocr/hosts/blocking.lua",
    ["ocr.hosts.jobs"] = "lua/ocr/hosts/jobs.lua",
    ["ocr.hosts.nginx"] = "lua/ocr/hosts/nginx.lua",
    ["ocr.errors"] = "lua/ocr/errors.lua",
    ["ocr.files"] = "lua/ocr/files.lua",
    ["ocr.language"] = "lua/ocr/language.lua",
    ["ocr.pipeline"] = "lua/ocr/pipeline.lua",
    ["ocr.registry"] = "lua/ocr/registry.lua",
    ["ocr.result"] = "lua/ocr/result.lua",
    ["ocr.retry"] = "lua/ocr/retry.lua",
    ["ocr.runtime"] = "lua/ocr/runtime.lua",
    ["ocr.schema"] = "lua/ocr/schema.lua",
    ["ocr.store"] = "lua/ocr/store.lua",
    ["ocr.strings"] = "lua/ocr/strings.lua",
    ["ocr.transport"] = "lua/ocr/transport.lua",
    ["ocr.url"] = "lua/ocr/url.lua",
    ["ocr.providers.picwish"] = "lua/ocr/providers/picwish.lua",
    ["ocr.providers.tencent"] = "lua/ocr/providers/tencent.lua",
    ["ocr.providers.tesseract"] = "lua/ocr/providers/tesseract.lua",
    ["ocr.providers.compdf"] = "lua/ocr/providers/compdf.lua",
    ["ocr.providers.oldfish"] = "lua/ocr/providers/oldfish.lua",
    ["ocr.providers.uapi"] = "lua/ocr/providers/uapi.lua",
    ["ocr.ratelimit"] = "lua/ocr/ratelimit.lua",
    ["ocr.redis"] = "lua/ocr/redis.lua",
    ["ocr.redis_store"] = "lua/ocr/redis_store.lua",
    ["ocr.scheduler"] = "lua/ocr/scheduler.lua",
    ["ocr.core"] = {
      sources = { "csrc/core.c", "csrc/crypto.c", "csrc/codec.c", "csrc/cos_sign.c",
                  "csrc/multipart.c", "csrc/xml.c", "csrc/sys.c", "csrc/text.c", "csrc/http_parse.c",
                  "csrc/compat.c", "csrc/buffer.c", "csrc/bytes.c", "csrc/args.c", "csrc/form.c" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "expat", "crypto", "http_parser" },
      incdirs = { "$(EXPAT_INCDIR)", "$(OPENSSL_INCDIR)", "$(HTTP_PARSER_INCDIR)" },
      libdirs = { "$(EXPAT_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(HTTP_PARSER_LIBDIR)" },
    },
    ["ocr.curl"] = {
      sources = { "csrc/curl.c", "csrc/curl_opts.c", "csrc/curl_xfer.c", "csrc/curl_request.c",
                  "csrc/curl_body.c", "csrc/curl_response.c", "csrc/curl_session.c",
                  "csrc/curl_multi.c", "csrc/compat.c", "csrc/buffer.c", "csrc/bytes.c",
                  "csrc/args.c", "csrc/form.c" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "dl" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
  },
  -- The local engine ocr.tesseract is optional: rockspec/ocr-tesseract-scm-1.rockspec builds it.
  install = { bin = { ocr = "bin/ocr" } },
}
test = {
  type = "busted",
}
