-- The core helpers a provider's workflow is written with (README: Write a provider), each on its
-- own: ctx:take_task_id, ctx:http_error, ctx:json_field, ctx:upload, ctx:fetch_files, and
-- ocr.files.part/extension/is_text, ocr.strings.nonempty/strip_json_comments/is_page_ranges,
-- ocr.result.box_of. A recording transport stands in for the network.
local ocr = require "ocr"
local cjson = require "cjson"
local context = require "ocr.context"
local core = require "ocr.core"
local F = require "helpers.files"

-- A context whose transport answers from `routes` (url -> {status=, body=, headers=}) and
-- records every request it is given.
local function rig(routes)
  local sent = {}
  local transport = { request = function(_, req)
    sent[#sent + 1] = req
    local r = routes[req.url] or { status = 404, body = "" }
    local res = { status = r.status or 200, headers = r.headers or {}, body = r.body or "" }
    if req.save_to then
      local f = assert(io.open(req.save_to, "wb"))
      f:write(res.body)
      f:close()
      res.body = nil
    end
    return res
  end }
  ocr.register("kit_spec", { credentials = {}, sources = { "file", "data" },
                             recognize = function() return nil end })
  local client = ocr.new("kit_spec", { endpoint = "http://api.test", transport = transport, retries = 0 })
  return context.new(client, {}), sent
end

describe("the provider kit", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() F.rmdir(dir) end)

  it("is reachable from require 'ocr'", function()
    assert.equal(require "ocr.files", ocr.files)
    assert.equal(require "ocr.strings", ocr.strings)
    assert.equal(require "ocr.url", ocr.url)
    assert.equal(require "ocr.result", ocr.result)
    assert.equal(require "ocr.errors", ocr.errors)
  end)

  describe("ctx:take_task_id", function()
    it("keeps a checked id as the call's task id", function()
      local ctx = rig{}
      assert.equal("t-1", ctx:take_task_id("t-1", "data.id"))
      assert.equal("t-1", ctx.task_id)
      assert.equal("t-1", ctx:error{ kind = "server" }.task_id)
    end)

    it("refuses what answer_id refuses, keeping the previous id", function()
      local ctx = rig{}
      ctx.task_id = "old"
      for _, bad in ipairs{ "", "..", "a\nb", ("x"):rep(513), 5, {} } do
        local id, err = ctx:take_task_id(bad, "data.id")
        assert.is_nil(id)
        assert.equal("protocol", err.kind)
        assert.truthy(err.message:find("data.id", 1, true))
      end
      assert.equal("old", ctx.task_id)
    end)
  end)

  describe("ctx:http_error", function()
    local ctx = rig{}
    it("is nil for 2xx", function()
      assert.is_nil(ctx:http_error{ status = 200, body = "x" })
      assert.is_nil(ctx.http_error(ctx, { status = 204 }))
    end)

    it("maps the status and keeps a short plain-text reason, not an HTML page", function()
      local e = ctx:http_error{ status = 403, body = "  token expired \n" }
      assert.same({ "auth", 403, "HTTP 403: token expired" }, { e.kind, e.status, e.message })
      assert.equal("HTTP 502", ctx:http_error{ status = 502, body = "<html><h1>Bad Gateway</h1></html>" }.message)
      assert.equal("HTTP 500", ctx:http_error{ status = 500, body = ("x"):rep(201) }.message)
      assert.equal("HTTP 500", ctx:http_error{ status = 500 }.message)
      assert.equal("server", ctx:http_error{ status = 500, body = "" }.kind)
    end)

    it("takes the caller's message, and serves as a request's check", function()
      assert.equal("quota gone", ctx:http_error({ status = 429 }, "quota gone").message)
      local c, sent = rig{ ["http://api.test/x"] = { status = 404, body = "no such job" } }
      local res, err = c:request{ path = "/x", check = c.http_error }
      assert.is_nil(res)
      assert.same({ "not_found", "HTTP 404: no such job", 1 }, { err.kind, err.message, #sent })
    end)
  end)

  describe("ctx:json_field", function()
    it("decodes a JSON document carried in a string", function()
      local ctx = rig{}
      assert.same({ { a = 1 } }, ctx:json_field('[{"a":1}]', "cells"))
      assert.same({ b = "c" }, ctx:json_field('{"b":"c"}', "cells"))
    end)

    it("is nil for what is not one, logging only a failed decode", function()
      local events = {}
      local ctx = rig{}
      ctx.client.options.log = function(e) events[#events + 1] = e end
      for _, v in ipairs{ "", 5, "{", "3", '"s"' } do assert.is_nil(ctx:json_field(v, "cells")) end
      assert.is_nil(ctx:json_field(nil, "cells"))
      assert.equal(3, #events)
      assert.same({ "decode_failed", "cells" }, { events[1].event, events[1].field })
    end)
  end)

  describe("ctx:upload", function()
    local URL = "http://bucket.test/up?X-Sig=abc"

    it("PUTs a file streamed, or data, with the content type and no credential", function()
      local ctx, sent = rig{ [URL] = { status = 200 } }
      local path = F.write(dir .. "/a.png", "PNG")
      assert.truthy(ctx:upload(URL, { file = path }, { content_type = "image/png" }))
      assert.truthy(ctx:upload(URL, { data = "bytes" }))
      assert.same({ "PUT", URL, path, "image/png" },
                  { sent[1].method, sent[1].url, sent[1].upload_file, sent[1].headers["Content-Type"] })
      assert.is_nil(sent[1].body)
      assert.same({ "bytes" }, { sent[2].body, sent[2].upload_file })
    end)

    it("explains a refusal with the storage's code and words", function()
      local ctx = rig{ [URL] = { status = 403, body =
        "<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>" } }
      local res, err = ctx:upload(URL, { data = "x" })
      assert.is_nil(res)
      assert.same({ "auth", "AccessDenied" }, { err.kind, err.code })
      assert.equal("the pre-signed upload URL was refused (expired, already used or altered): HTTP 403 Request has expired.",
                   err.message)
    end)

    it("refuses an unusable URL from the answer as a protocol error, sending nothing", function()
      local ctx, sent = rig{}
      for _, u in ipairs{ "ftp://x/y", "", 5 } do
        local res, err = ctx:upload(u, { data = "x" })
        assert.is_nil(res)
        assert.equal("protocol", err.kind)
      end
      assert.equal(0, #sent)
    end)
  end)

  describe("ctx:fetch_files", function()
    local T1, T2, DOC, J = "http://s.test/a.txt", "http://s.test/b.txt", "http://s.test/r.docx", "http://s.test/r.json"
    local routes = { [T1] = { body = "\239\187\191one\ntwo" }, [T2] = { body = "three" },
                     [DOC] = { body = "PK\3\4" }, [J] = { body = '{"pages":[1]}' },
                     ["http://s.test/"] = { body = "%PDF" } }

    it("reads one text file into the text and its lines", function()
      local ctx = rig(routes)
      local f = assert(ctx:fetch_files({ { url = T1, format = "txt" } }, {}))
      assert.equal("one\ntwo", f.text)
      assert.same({ "one", "two" }, { f.lines[1].text, f.lines[2].text })
      assert.is_nil(f.lines[1].page)
      assert.is_nil(f.pages)
    end)

    it("joins several by form feeds, numbering their lines' pages, and saves them into output", function()
      local ctx = rig(routes)
      ctx.task_id = "T"
      local out = F.mkdir(dir .. "/several")
      local list = { { url = T1, format = "txt" }, { url = T2, format = "txt", name = "../b.txt" } }
      local f = assert(ctx:fetch_files(list, { output = out }))
      assert.equal("one\ntwo\fthree", f.text)
      assert.same({ 1, 1, 2 }, { f.lines[1].page, f.lines[2].page, f.lines[3].page })
      assert.equal(2, f.pages)
      assert.same({ out .. "/a.txt", out .. "/b.txt" }, { list[1].path, list[2].path })
      assert.equal("\239\187\191one\ntwo", F.read(list[1].path))   -- (the file as it came)
    end)

    it("decodes a JSON file, guessing no lines", function()
      local ctx = rig(routes)
      local f = assert(ctx:fetch_files({ { url = J, format = "json" } }, {}))
      assert.same({ pages = { 1 } }, f.json)
      assert.same({}, f.lines)
    end)

    it("refuses a document without output before downloading anything, keeping the list", function()
      local ctx, sent = rig(routes)
      local list = { { url = T1, format = "txt" }, { url = DOC, format = "docx" } }
      local f, err = ctx:fetch_files(list, {}, { hint = "fetch it later" })
      assert.is_nil(f)
      assert.same({ "unsupported", false, list }, { err.kind, err.retryable, err.files })
      assert.truthy(err.message:find("'docx' file, not text: pass output = dir to save it; fetch it later", 1, true))
      assert.equal(0, #sent)
    end)

    it("saves a document into output, and fetches nothing with download = false", function()
      local ctx, sent = rig(routes)
      local out = F.mkdir(dir .. "/doc")
      local list = { { url = DOC, format = "docx" } }
      assert.truthy(ctx:fetch_files(list, { output = out }))
      assert.equal("PK\3\4", F.read(list[1].path))
      local f = assert(ctx:fetch_files({ { url = DOC, format = "docx" } }, { download = false }))
      assert.equal("", f.text)
      assert.equal(1, #sent)
    end)

    it("with read_text = false only saves, and only when output is given", function()
      local ctx, sent = rig(routes)
      ctx.task_id = "T"
      assert.truthy(ctx:fetch_files({ { url = T1, format = "txt" } }, {}, { read_text = false }))
      assert.equal(0, #sent)
      local out = F.mkdir(dir .. "/extras")
      local list = { { url = T1, format = "txt" }, { url = "http://s.test/", format = "pdf" } }
      local f = assert(ctx:fetch_files(list, { output = out }, { read_text = false }))
      assert.equal("", f.text)
      assert.same({ out .. "/a.txt", out .. "/T-2.pdf" }, { list[1].path, list[2].path })
    end)
  end)

  describe("ocr.files", function()
    it("part: the input's file or data as a named multipart part", function()
      local png = "\137PNG\r\n\26\n...."
      assert.same({ name = "file", file = "/x/scan.PNG", filename = "scan.PNG", content_type = "image/png" },
                  ocr.files.part("file", { file = "/x/scan.PNG" }, "image"))
      assert.same({ name = "img", data = png, filename = "image.png", content_type = "image/png" },
                  ocr.files.part("img", { data = png }, "image"))
      assert.same({ name = "f", data = "??", filename = "doc", content_type = "application/octet-stream" },
                  ocr.files.part("f", { data = "??" }, "doc"))
      assert.equal("p.pdf", ocr.files.part("f", { data = png, filename = "p.pdf" }).filename)
    end)

    it("extension: of a name or a URL's path, lower-case", function()
      assert.equal("txt", ocr.files.extension("a.b.TXT"))
      assert.equal("docx", ocr.files.extension("/d.x/r.docx"))
      for _, v in ipairs{ "/d.x/r", "noext", "a.", "a.t-x", "", 12, false } do
        assert.is_nil(ocr.files.extension(v), tostring(v))
      end
    end)

    it("is_text: text formats", function()
      for _, f in ipairs{ "txt", "md", "json", "html", "csv" } do assert.is_true(ocr.files.is_text(f)) end
      for _, f in ipairs{ "pdf", "docx", "bin" } do assert.is_false(ocr.files.is_text(f)) end
      assert.is_false(ocr.files.is_text(nil))
    end)
  end)

  describe("ocr.strings", function()
    local S = ocr.strings
    it("nonempty", function()
      assert.equal("a", S.nonempty("a"))
      for _, v in ipairs{ "", 1, false, {} } do assert.is_nil(S.nonempty(v)) end
    end)

    it("strip_json_comments: line comments outside strings", function()
      local s = '{ // the account\n "a": "x//y", // c\n "b": "q\\"//", "c": 1 / 2 }// end'
      assert.equal('{ \n "a": "x//y", \n "b": "q\\"//", "c": 1 / 2 }', S.strip_json_comments(s))
      assert.same({ Account = "a", TodayCount = 3 },
                  cjson.decode(S.strip_json_comments('{"Account":"a", // who\n"TodayCount":3}')))
      assert.equal('"open', S.strip_json_comments('"open'))
      assert.equal("", S.strip_json_comments(""))
    end)

    it("strip_json_comments runs in linear time", function()
      local n = 2 * 1024 * 1024
      for _, s in ipairs{ ("/"):rep(n), ('"'):rep(n), ('"\\'):rep(n / 2), ("/ "):rep(n / 2), ("//\n"):rep(math.floor(n / 3)) } do
        local t0 = core.monotime()
        S.strip_json_comments(s)
        assert.truthy(core.monotime() - t0 < 2)
      end
    end)

    it("is_page_ranges", function()
      for _, s in ipairs{ "1", "1-3,6", "2-2", "10-12,1" } do assert.is_true(S.is_page_ranges(s), s) end
      for _, s in ipairs{ "", "0", "3-1", "1,", ",1", "1 - 3", "a", "1-", 5 } do
        assert.is_false(S.is_page_ranges(s), tostring(s))
      end
    end)
  end)

  it("ocr.result.box_of: a left/top/width/height box", function()
    assert.same({ x = 1, y = 2, w = 3, h = 4 }, ocr.result.box_of{ left = 1, top = "2", width = 3, height = 4 })
    assert.is_nil(ocr.result.box_of{ left = 1, top = 2, width = 3 })
    assert.is_nil(ocr.result.box_of{ left = "x", top = 2, width = 3, height = 4 })
    assert.is_nil(ocr.result.box_of("1,2,3,4"))
  end)
end)
