-- The compdf provider end to end through the public API, against the strict ComPDF emulator
-- (spec/emulators/compdf.py; its own strictness is proven by spec/emulator_compdf_spec.lua).
local ocr = require "ocr"
local cjson = require "cjson"
local F = require "helpers.files"
local rig = require "helpers.rig"
local expect = require "helpers.expect"

local KEY = "test-compdf-key"
local SYNC = "/server/v2/process/documentAI/ocr"
local ASYNC = "/server/v2/processAsync/documentAI/ocr"
local PRESIGN = "/server/v2/presignedUrl/documentAI/ocr"
local INFO = "/server/v2/task/taskInfo"
local START = "/server/v2/execute/start"
local TEXT = "第一行 Hello\n第二行 世界"

describe("compdf provider", function()
  local emu, dir, img

  local function client(opts)
    return rig.client("compdf", { api_key = KEY, endpoint = emu.url .. "/server/",
      poll_interval = 0.01, min_poll_interval = 0, poll_timeout = 5, backoff = { base = 0.01, cap = 0.05 } }, opts)
  end

  local function value(entry, name)
    local f = entry.form and entry.form[name]
    return f and f[1].value
  end

  local function outdir()
    local d = dir .. "/out" .. tostring(math.random(1, 1e9))
    return F.mkdir(d)
  end

  setup(function() emu, dir, img = rig.start("compdf", { { "扫描件.png", TEXT } }) end)
  teardown(function() rig.stop(emu, dir) end)
  before_each(function() emu:reset() end)

  describe("three modes", function()
    it("sync: one POST, the txt result downloaded at once", function()
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(2, #res.lines)
      assert.equal("第二行 世界", res.lines[2].text)
      assert.equal("compdf", res.provider)
      assert.truthy(res.task_id and #res.task_id > 0)
      assert.same({ "txt", "扫描件.txt" }, { res.files[1].format, res.files[1].name })
      assert.truthy(res.files[1].url:match("/download/"))
      assert.equal("success", res.raw.status)
      local creates = emu:requests(SYNC, "POST")
      assert.equal(1, #creates)
      local form = creates[1].form
      assert.same({ "扫描件.png", "image/png" }, { form.file[1].filename, form.file[1].content_type })
      assert.equal("1", value(creates[1], "language"))
      assert.equal(KEY, creates[1].headers["x-api-key"])
      assert.equal(0, #emu:requests(INFO))
      local dl = emu:requests("/download/")
      assert.equal(1, #dl)
      assert.is_nil(dl[1].headers["x-api-key"])
    end)

    it("async: create, poll TaskStart -> TaskWaiting -> TaskProcessing -> TaskFinish, download", function()
      local events = {}
      local res, err = client{ on_progress = function(ev)
        events[#events + 1] = ev.stage .. (ev.state and (":" .. ev.state) or "")
      end }:recognize{ file = img, mode = "async" }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(1, #emu:requests(ASYNC, "POST"))
      local polls = emu:requests(INFO, "GET")
      assert.equal(4, #polls)
      assert.same({ taskId = res.task_id, language = "1" }, polls[1].query)
      assert.equal(KEY, polls[1].headers["x-api-key"])
      assert.equal("TaskFinish", res.raw.taskStatus)
      local want = { "upload", "queued:TaskStart", "queued:TaskWaiting", "processing:TaskProcessing",
                     "download", "done" }
      local i = 1
      for _, ev in ipairs(events) do if ev == want[i] then i = i + 1 end end
      assert.equal(#want + 1, i, table.concat(events, " "))
    end)

    it("presigned: fileName, PUT of the streamed bytes without the API key, start, poll", function()
      local res, err = client():recognize{ file = img, mode = "presigned", ocr = true }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      local create = emu:requests(PRESIGN, "POST")
      assert.equal(1, #create)
      assert.equal("扫描件.png", value(create[1], "fileName"))
      assert.equal("1", value(create[1], "enableOcr"))
      assert.is_nil(create[1].form.file)
      local puts = emu:requests("/storage/upload/", "PUT")
      assert.equal(1, #puts)
      assert.equal("image/png", puts[1].headers["content-type"])
      assert.equal(#F.image(TEXT), puts[1].body_size)
      assert.is_nil(puts[1].headers["x-api-key"])
      local starts = emu:requests(START, "GET")
      assert.equal(1, #starts)
      assert.same({ taskId = res.task_id, language = "1" }, starts[1].query)
      assert.equal(4, #emu:requests(INFO))
      assert.is_true(emu:state().tasks[res.task_id].upload.used)
    end)

    it("presigned with in-memory data", function()
      local res, err = client():recognize{ data = F.image("内存 data"), mode = "presigned",
                                           filename = "page.jpg" }
      assert.is_nil(err)
      assert.equal("内存 data", res.text)
      assert.equal("page.jpg", value(emu:requests(PRESIGN)[1], "fileName"))
      assert.equal("image/jpeg", emu:requests("/storage/upload/")[1].headers["content-type"])
    end)

    it("fetches a url itself (the API takes none) and uploads it as a file named after it", function()
      local http = require("helpers.emulator").start("httptest")
      finally(function() http:stop() end)
      local res = assert(client():recognize{ url = http.url .. "/files/examples/sample.png" })
      assert.equal("lua-ocr emulator\n模拟器", res.text, "the emulator's text for an unmarked image")
      local creates = emu:requests(SYNC, "POST")
      assert.equal(1, #creates)
      local part = creates[1].form.file[1]
      assert.same({ "sample.png", "image/png", #F.read("examples/sample.png") },
                  { part.filename, part.content_type, part.size })
      assert.is_nil(creates[1].form.url, "no url field: the API has none")
    end)

    it("sends data as a file part, named by its magic number unless filename is given", function()
      local res, err = client():recognize{ data = F.image("来自内存") }
      assert.is_nil(err)
      assert.equal("来自内存", res.text)
      local part = emu:requests(SYNC)[1].form.file[1]
      assert.same({ "document.png", "image/png" }, { part.filename, part.content_type })
      assert.truthy(client():recognize{ data = "%PDF-1.7\nTEXT:pdf", filename = "合同.pdf" })
      part = emu:requests(SYNC)[2].form.file[1]
      assert.same({ "合同.pdf", "application/pdf" }, { part.filename, part.content_type })
    end)

    it("takes mode from the client options", function()
      local res = assert(client{ mode = "async" }:recognize{ file = img })
      assert.equal(TEXT, res.text)
      assert.equal(1, #emu:requests(ASYNC))
      assert.equal(0, #emu:requests(SYNC))
    end)

    it("finishes an unfinished sync answer by polling taskInfo", function()
      emu:config{ sync_status = "processing" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(1, #emu:requests(SYNC))
      assert.equal(4, #emu:requests(INFO))
    end)
  end)

  describe("options", function()
    local all = { password = "pw", pages = "1-3,6", ocr = true, language = "zh-CN",
                  strategy = "INVALID_CHARACTER_AND_SCAN_PAGE", per_page = false,
                  message_language = "zh", callback_url = "https://hooks.example/compdf?id=1" }
    local mapped = { pageRanges = "1-3,6", enableOcr = "1", ocrRecognitionLang = "CHINESE",
                     ocrOption = "INVALID_CHARACTER_AND_SCAN_PAGE", isOutputDocumentPerPage = "0" }

    local function with(extra)
      local t = { file = img }
      for k, v in pairs(all) do t[k] = v end
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end

    for _, mode in ipairs{ "sync", "async", "presigned" } do
      it("maps every option onto top-level fields in " .. mode .. " mode", function()
        local res, err = client():recognize(with{ mode = mode })
        assert.is_nil(err)
        assert.truthy(res.text)
        local path = ({ sync = SYNC, async = ASYNC, presigned = PRESIGN })[mode]
        local e = emu:requests(path, "POST")[1]
        for k, v in pairs(mapped) do assert.equal(v, value(e, k), k) end
        assert.same({ "pw", "2", "https://hooks.example/compdf?id=1" },
                    { value(e, "password"), value(e, "language"), value(e, "callbackUrl") })
        assert.is_nil(e.form.parameter)
        -- the message language follows into every later API call
        for _, p in ipairs(emu:requests(INFO)) do assert.equal("2", p.query.language) end
        for _, p in ipairs(emu:requests(START)) do assert.equal("2", p.query.language) end
      end)
    end

    it("sends the legacy parameter JSON with legacy_parameter = true", function()
      local res, err = client{ legacy_parameter = true }:recognize(with{ per_page = true, mode = "async" })
      assert.is_nil(err)
      assert.truthy(res.text)
      local e = emu:requests(ASYNC)[1]
      local m = {}
      for k, v in pairs(mapped) do m[k] = v end
      m.isOutputDocumentPerPage = "1"
      assert.same(m, cjson.decode(value(e, "parameter")))
      for k in pairs(mapped) do assert.is_nil(e.form[k], k) end
      assert.same({ "pw", "2" }, { value(e, "password"), value(e, "language") })
      assert.is_true(emu:state().tasks[res.task_id].legacy)
    end)

    it("sends an empty legacy parameter object when no option is set", function()
      assert.truthy(client{ legacy_parameter = true }:recognize{ file = img })
      assert.equal("{}", value(emu:requests(SYNC)[1], "parameter"))
    end)

    it("maps ocr = false, per_page = false and the message languages", function()
      for _, c in ipairs{ { "en", "1" }, { 1, "1" }, { 2, "2" }, { "zh", "2" } } do
        emu:reset()
        assert.truthy(client():recognize{ file = img, ocr = false, message_language = c[1] })
        local e = emu:requests(SYNC)[1]
        assert.same({ "0", c[2] }, { value(e, "enableOcr"), value(e, "language") })
      end
    end)

    it("sends no option field that was not asked for", function()
      assert.truthy(client():recognize{ file = img })
      local names = {}
      for k in pairs(emu:requests(SYNC)[1].form) do names[#names + 1] = k end
      table.sort(names)
      assert.same({ "file", "language" }, names)
    end)
  end)

  describe("invalid input sends nothing", function()
    local cases = {
      { "two sources", { file = "x.png", data = "x" }, "exactly one source" },
      { "no source", { pages = "1" }, "one source is required" },
      { "a missing file", { file = "/nonexistent/扫描.png" }, "cannot read" },
      { "a directory", { file = "/tmp" }, "not a file" },
      { "empty data", { data = "" }, "empty" },
      { "bad pages syntax", { data = "x", pages = "1-3," }, "pages" },
      { "a page range going down", { data = "x", pages = "3-1" }, "pages" },
      { "page 0", { data = "x", pages = "0" }, "pages" },
      { "spaces in pages", { data = "x", pages = "1, 2" }, "pages" },
      { "empty pages", { data = "x", pages = "" }, "pages" },
      { "a language it cannot read", { data = "x", language = "FRENCH" }, 'language "FRENCH" is not one compdf reads' },
      { "a lowercase native language", { data = "x", language = "chinese" }, "closest:" },
      { "two languages at once", { data = "x", language = "en,ja" }, "one language at a time" },
      { "the old option", { data = "x", ocr_language = "CHINESE" }, "unknown option 'ocr_language'" },
      { "a bad strategy", { data = "x", strategy = "NONE" }, "strategy" },
      { "a bad mode", { data = "x", mode = "batch" }, "mode" },
      { "a bad message_language", { data = "x", message_language = "fr" }, "message_language" },
      { "ocr as a number", { data = "x", ocr = 1 }, "ocr" },
      { "an unknown option", { data = "x", ocrLanguage = "CHINESE" }, "unknown option 'ocrLanguage'" },
      -- The vendor takes no target type (the result's type is its own): `target` is no option.
      { "a target", { data = "x", target = "docx" }, "unknown option 'target'" },
      { "a bad callback_url", { data = "x", callback_url = "ftp://a.example/" }, "callback_url" },
      { "an output that is not a directory", { data = "x", output = "/nonexistent" }, "output" },
    }
    for _, c in ipairs(cases) do
      it("refuses " .. c[1], function()
        expect.invalid_input_sends_nothing(client(), c[2], emu, c[3])
      end)
    end

    it("has no client target either: the vendor takes none", function()
      local ok, msg = pcall(client, { target = "docx" })
      assert.is_false(ok)
      assert.truthy(msg:find("target", 1, true), msg)
    end)

    it("raises on programmer mistakes in ocr.new", function()
      assert.has_error(function() ocr.new("compdf", { api_key = KEY, mode = "batch" }) end)
      assert.has_error(function() ocr.new("compdf", { api_key = KEY, legacy_parameter = "yes" }) end)
      assert.has_error(function() ocr.new("compdf", { api_key = KEY, colour = true }) end)
      local ok, msg = pcall(ocr.new, "compdf", { endpoint = emu.url })
      assert.is_false(ok)
      assert.truthy(msg:find("OCR_COMPDF_API_KEY", 1, true))
    end)

    it("defaults to the documented endpoint", function()
      assert.equal("https://api-server.compdf.com/server/", ocr.new("compdf", { api_key = KEY }).endpoint)
    end)
  end)

  describe("results", function()
    it("keeps the selected pages and joins per-page text files with form feeds", function()
      local pdf = F.write(dir .. "/doc.pdf", "%PDF-1.7\nTEXT:一页\fPage two\n第二页\f三")
      local res, err = client():recognize{ file = pdf, mode = "async", per_page = true, pages = "1-2" }
      assert.is_nil(err)
      assert.equal("一页\fPage two\n第二页", res.text)
      assert.equal(2, res.pages)
      assert.equal(2, #res.files)
      assert.same({ "doc_1.txt", "doc_2.txt" }, { res.files[1].name, res.files[2].name })
      assert.same({ { "一页", 1 }, { "Page two", 2 }, { "第二页", 2 } },
                  { { res.lines[1].text, res.lines[1].page }, { res.lines[2].text, res.lines[2].page },
                    { res.lines[3].text, res.lines[3].page } })
    end)

    it("decodes a JSON target into res.json and guesses no lines", function()
      emu:config{ target_type = "json" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal("json", res.files[1].format)
      assert.equal(TEXT, res.json.pages[1].text)
      assert.equal(res.json, res.files[1].json)
      assert.same(cjson.decode(res.text), res.json)
      assert.equal(0, #res.lines)
    end)

    it("fills res.text from html and md targets", function()
      emu:config{ target_type = "md" }
      assert.equal(TEXT, assert(client():recognize{ file = img }).text)
      emu:config{ target_type = "html" }
      local res = assert(client():recognize{ file = img })
      assert.truthy(res.text:find("<p>第一行 Hello</p>", 1, true))
    end)

    it("saves a file target into output under the sanitised downFileName", function()
      emu:config{ target_type = "docx" }
      local out = outdir()
      local res, err = client():recognize{ file = img, output = out }
      assert.is_nil(err)
      assert.equal("", res.text)
      assert.same({ "docx", out .. "/扫描件.docx" }, { res.files[1].format, res.files[1].path })
      assert.equal("PK\3\4", F.read(res.files[1].path):sub(1, 4))
    end)

    it("also saves text results when output is given", function()
      local out = outdir()
      local res = assert(client():recognize{ file = img, output = out })
      assert.equal(TEXT, res.text)
      assert.equal(out .. "/扫描件.txt", res.files[1].path)
      assert.equal(TEXT, F.read(res.files[1].path))
    end)

    it("saves the sync per-page archive into output", function()
      local out = outdir()
      local res = assert(client():recognize{ file = img, per_page = true, output = out })
      assert.same({ "zip", out .. "/扫描件.zip" }, { res.files[1].format, res.files[1].path })
    end)

    it("returns only the URL with download = false", function()
      emu:config{ target_type = "pdf" }
      local res = assert(client():recognize{ file = img, download = false })
      assert.is_nil(res.files[1].path)
      assert.equal("pdf", res.files[1].format)
      assert.equal(0, #emu:requests("/download/"))
    end)

    it("refuses an unexpected file result without losing it: client:result fetches it later", function()
      emu:config{ target_type = "docx", credits = 1 }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("unsupported", err.kind)
      assert.truthy(err.task_id)
      assert.truthy(err.files[1].url:match("/download/"))
      assert.equal(0, #emu:requests("/download/"))
      local out = outdir()
      local res2, err2 = client():result(err.task_id, { output = out })
      assert.is_nil(err2)
      assert.equal(out .. "/扫描件.docx", res2.files[1].path)
      assert.equal(1, #emu:requests(SYNC))
      assert.equal(0, emu:state().credits)
    end)

    describe("hostile downFileName", function()
      local names = {
        { "../../etc/passwd", "passwd" },
        { "/abs/path/../../x.docx", "x.docx" },
        { "a\0b.docx", "ab.docx" },
        { "evil\r\nX-Injected: 1.docx", "evilX-Injected: 1.docx" },
        { "..", "result" },
        { "..\\..\\win.docx", "win.docx" },
      }
      for _, n in ipairs(names) do
        it(("keeps %q inside output and never overwrites"):format(n[1]), function()
          emu:config{ target_type = "docx", down_file_name = n[1] }
          local out = outdir()
          local want
          if n[2] ~= "result" then want = n[2] end
          if want then F.write(out .. "/" .. want, "precious") end
          local res, err = client():recognize{ file = img, output = out }
          assert.is_nil(err)
          local path = res.files[1].path
          assert.equal(out .. "/", path:sub(1, #out + 1))
          assert.is_nil(path:sub(#out + 2):find("[/\\%z\r\n]"))
          assert.is_nil(path:find("..", 1, true))
          if want then
            assert.equal("precious", F.read(out .. "/" .. want))
            local stem, ext = want:match("^(.-)(%.[^.]*)$")
            assert.equal(out .. "/" .. (stem or want) .. "-1" .. (ext or ""), path)
          end
          assert.equal("PK\3\4", F.read(path):sub(1, 4))
          assert.is_nil(F.read(dir .. "/etc/passwd"))
          -- the text copy of a text target is sanitised the same way
        end)
      end

      it("sanitises the name of a saved text copy too", function()
        emu:config{ down_file_name = "../../escape.txt" }
        local out = outdir()
        F.write(out .. "/escape.txt", "precious")
        local res = assert(client():recognize{ file = img, output = out })
        assert.equal(out .. "/escape-1.txt", res.files[1].path)
        assert.equal("precious", F.read(out .. "/escape.txt"))
        assert.is_nil(F.read(dir .. "/escape.txt"))
      end)
    end)
  end)

  describe("error codes", function()
    local codes = {
      { "06001", 402, "quota", false }, { "02209", 413, "too_large", false },
      { "02201", 400, "invalid_input", false }, { "05001", 404, "not_found", false },
      { "05004", 410, "timeout", false }, { "01001", 500, "server", true },
      { "01002", 500, "server", true }, { "01003", 500, "server", true },
      { "01004", 500, "server", true }, { "01005", 400, "invalid_input", false },
      { "01006", 400, "invalid_input", false }, { "02002", 400, "unsupported", false },
      { "07777", 503, "server", true }, { "07778", 403, "auth", false },
      { "07779", 200, "protocol", false },
    }
    for _, c in ipairs(codes) do
      it(("maps %s (HTTP %d) on create to %s, keeping the code"):format(c[1], c[2], c[3]), function()
        emu:fault{ action = "status", path = SYNC, method = "POST", status = c[2], times = 10,
                   body = ('{"code":"%s","msg":"injected %s"}'):format(c[1], c[1]) }
        local res, err = client():recognize{ file = img }
        assert.is_nil(res)
        assert.same({ c[3], c[1], c[2], c[4] }, { err.kind, err.code, err.status, err.retryable })
        assert.truthy(err.message:find("injected " .. c[1], 1, true), err.message)
        assert.equal(1, #emu:requests(SYNC)) -- a billed create is never re-sent after a 5xx
      end)
    end

    it("maps the same codes in an HTTP 200 body (error_style = body)", function()
      emu:config{ error_style = "body", credits = 0 }
      local _, err = client():recognize{ file = img }
      assert.same({ "quota", "06001", 200 }, { err.kind, err.code, err.status })
      local _, err2 = client{ api_key = "wrong-key" }:recognize{ file = img }
      assert.same({ "auth", "401" }, { err2.kind, err2.code })
    end)

    it("asks for the password of an encrypted PDF, and says when it is wrong", function()
      local pdf = F.write(dir .. "/locked.pdf", "%PDF-1.7\n/Encrypt 3 0 R\nTEXT:保密")
      local _, err = client():recognize{ file = pdf }
      assert.same({ "invalid_input", "02201" }, { err.kind, err.code })
      assert.truthy(err.message:find("pass its password with the 'password' option", 1, true), err.message)
      local _, err2 = client():recognize{ file = pdf, password = "guess-wrong" }
      assert.truthy(err2.message:find("password given is wrong", 1, true), err2.message)
      assert.equal("保密", assert(client():recognize{ file = pdf, password = "secret" }).text)
    end)

    it("maps the emulator's real refusals", function()
      emu:config{ max_file_size = 16 }
      local _, e1 = client():recognize{ file = img }
      assert.same({ "too_large", "02209", 413 }, { e1.kind, e1.code, e1.status })
      emu:reset()
      local _, e2 = client():recognize{ data = "plain text, no image", filename = "a.png" }
      assert.same({ "unsupported", "02002" }, { e2.kind, e2.code })
      emu:config{ credits = 0 }
      local _, e3 = client():recognize{ file = img, mode = "async" }
      assert.same({ "quota", "06001", 402 }, { e3.kind, e3.code, e3.status })
      local _, e4 = client{ api_key = "wrong-key" }:recognize{ file = img }
      assert.same({ "auth", 401 }, { e4.kind, e4.status })
      assert.equal(2, #emu:requests(SYNC, "POST"))
    end)

    it("maps unknown and expired tasks", function()
      local _, err = client():result("nosuchtask")
      assert.same({ "not_found", "05001", "nosuchtask" }, { err.kind, err.code, err.task_id })
      local _, terr = client{ poll_timeout = 0.02, poll_interval = 0.05 }:recognize{ file = img, mode = "async" }
      assert.equal("timeout", terr.kind)
      local polls = #emu:requests(INFO)
      emu:config{ task_ttl = -1 }
      local _, e2 = client():result(terr.task_id)
      assert.same({ "timeout", "05004", false, terr.task_id }, { e2.kind, e2.code, e2.retryable, e2.task_id })
      assert.truthy(e2.message:find("submit the file again", 1, true))
      assert.equal(polls + 1, #emu:requests(INFO)) -- an expired task is not polled again
    end)

    it("maps an error code on a poll, keeping the task id", function()
      emu:fault{ action = "status", path = INFO, status = 402, times = 5,
                 body = '{"code":"06001","msg":"no credits left"}' }
      local _, err = client():recognize{ file = img, mode = "async" }
      assert.same({ "quota", "06001" }, { err.kind, err.code })
      assert.truthy(err.task_id)
      assert.equal(1, #emu:requests(INFO))
    end)

    it("turns a failed file into task_failed, keeping failureCode", function()
      emu:config{ fail_file = { failureCode = "E1234", failureReason = "page 3 is unreadable" } }
      for _, mode in ipairs{ "sync", "async", "presigned" } do
        local _, err = client():recognize{ file = img, mode = mode }
        assert.same({ "task_failed", "E1234", false }, { err.kind, err.code, err.retryable }, mode)
        assert.truthy(err.message:find("page 3 is unreadable", 1, true))
        assert.truthy(err.task_id)
      end
    end)

    it("maps a failed file's documented failureCode onto its kind", function()
      emu:config{ fail_file = { failureCode = "02002", failureReason = "not a document" } }
      local _, err = client():recognize{ file = img }
      assert.same({ "unsupported", "02002" }, { err.kind, err.code })
      emu:reset()
      local pdf = F.write(dir .. "/locked2.pdf", "%PDF-1.7\n/Encrypt 3 0 R\nTEXT:x")
      local _, err2 = client():recognize{ file = pdf, mode = "async" }
      assert.same({ "invalid_input", "02201" }, { err2.kind, err2.code })
      assert.truthy(err2.message:find("password", 1, true))
    end)

    it("maps TaskOverdue to a timeout that keeps the task id", function()
      emu:config{ script = { "TaskWaiting", "TaskOverdue" } }
      local _, err = client():recognize{ file = img, mode = "async" }
      assert.same({ "timeout", "TaskOverdue", false }, { err.kind, err.code, err.retryable })
      assert.truthy(err.task_id)
    end)
  end)

  describe("polling", function()
    it("times out with the task id, and client:result finishes it", function()
      local steps = {}
      for i = 1, 30 do steps[i] = "TaskProcessing" end
      steps[31] = "TaskFinish"
      emu:config{ script = steps }
      local res, err = client{ poll_timeout = 0.05, poll_interval = 0.02 }:recognize{ file = img, mode = "async" }
      assert.is_nil(res)
      assert.same({ "timeout", true }, { err.kind, err.retryable })
      assert.truthy(err.task_id)
      local res2, err2 = client{ poll_interval = 0.001 }:result(err.task_id)
      assert.is_nil(err2)
      assert.equal(TEXT, res2.text)
      assert.equal(err.task_id, res2.task_id)
      assert.equal(1, #emu:requests(ASYNC))
    end)

    it("never polls faster than every 3 s, whatever the endpoint, and defaults to 3 s", function()
      emu:config{ script = { "TaskProcessing", "TaskFinish" } }
      -- the emulator is on loopback: no special case for it any more
      local c = ocr.new("compdf", { api_key = KEY, endpoint = emu.url .. "/server/", poll_interval = 0.01 })
      assert.equal(3, c.options.min_poll_interval)
      local res, err = c:recognize{ file = img, mode = "async" }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      local polls = emu:requests(INFO)
      assert.equal(2, #polls)
      assert.is_true(polls[2].t - polls[1].t >= 2.9, "polled after " .. (polls[2].t - polls[1].t) .. " s")
      assert.equal(3, ocr.new("compdf", { api_key = KEY }).options.poll_interval)
    end)

    it("polls faster only when the caller lowers min_poll_interval", function()
      emu:config{ script = { "TaskProcessing", "TaskProcessing", "TaskFinish" } }
      local c = ocr.new("compdf", { api_key = KEY, endpoint = emu.url .. "/server/", poll_interval = 0.01,
                                    min_poll_interval = 0 })
      local t0 = require("ocr.core").monotime()
      assert(c:recognize{ file = img, mode = "async" })
      assert.equal(3, #emu:requests(INFO))
      assert.is_true(require("ocr.core").monotime() - t0 < 2)
      assert.has_error(function() ocr.new("compdf", { api_key = KEY, min_poll_interval = -1 }) end)
      assert.has_error(function() ocr.new("compdf", { api_key = KEY, min_poll_interval = "0" }) end)
    end)
  end)

  describe("faults and retries", function()
    for _, c in ipairs{ { SYNC, "sync" }, { ASYNC, "async" } } do
      it("does not re-send a billed " .. c[2] .. " create after a 5xx", function()
        emu:fault{ action = "status", path = c[1], method = "POST", status = 502, body = "bad gateway" }
        local res, err = client():recognize{ file = img, mode = c[2] }
        assert.is_nil(res)
        assert.same({ "server", 502, true }, { err.kind, err.status, err.retryable })
        assert.equal(1, #emu:requests(c[1]))
      end)

      it("does not re-send a billed " .. c[2] .. " create whose answer was lost", function()
        emu:fault{ action = "drop", path = c[1], method = "POST" }
        local res, err = client():recognize{ file = img, mode = c[2] }
        assert.is_nil(res)
        assert.same({ "network", true }, { err.kind, err.sent })
        assert.equal(1, #emu:requests(c[1]))
      end)

      it("re-sends a " .. c[2] .. " create refused with 429", function()
        emu:fault{ action = "status", path = c[1], method = "POST", status = 429,
                   headers = { ["Retry-After"] = "0" }, body = '{"code":"429","msg":"slow down"}' }
        local res, err = client():recognize{ file = img, mode = c[2] }
        assert.is_nil(err)
        assert.equal(TEXT, res.text)
        assert.equal(2, #emu:requests(c[1]))
      end)
    end

    it("does not re-send a billed execute/start after a 5xx, but does after a 429", function()
      emu:fault{ action = "status", path = START, status = 500, body = '{"code":"01001","msg":"x"}' }
      local _, err = client():recognize{ file = img, mode = "presigned" }
      assert.same({ "server", "01001" }, { err.kind, err.code })
      assert.equal(1, #emu:requests(START))
      emu:reset()
      emu:fault{ action = "status", path = START, status = 429, body = '{"code":"429","msg":"busy"}' }
      assert.equal(TEXT, assert(client():recognize{ file = img, mode = "presigned" }).text)
      assert.equal(2, #emu:requests(START))
    end)

    it("retries the unbilled presigned create and the upload", function()
      emu:fault{ action = "status", path = PRESIGN, status = 503, body = "{}" }
      emu:fault{ action = "drop", path = "/storage/upload/" }
      local res, err = client():recognize{ file = img, mode = "presigned" }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(2, #emu:requests(PRESIGN))
      assert.equal(2, #emu:requests("/storage/upload/"))
    end)

    it("retries polls through 5xx, error codes, drops and truncated answers", function()
      emu:fault{ action = "status", path = INFO, status = 503, body = "{}" }
      emu:fault{ action = "status", path = INFO, status = 500, skip = 1,
                 body = '{"code":"01002","msg":"busy"}' }
      emu:fault{ action = "drop", path = INFO, skip = 2 }
      emu:fault{ action = "truncate", path = INFO, skip = 3 }
      local res, err = client{ retries = 3 }:recognize{ file = img, mode = "async" }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      local faulted = 0
      for _, e in ipairs(emu:requests(INFO)) do
        if type(e.fault) == "string" then faulted = faulted + 1 end -- a JSON null is no fault
      end
      assert.equal(4, faulted)
      assert.equal(8, #emu:requests(INFO))
    end)

    it("retries failed downloads", function()
      emu:fault{ action = "status", path = "/download/", status = 500, body = "oops" }
      emu:fault{ action = "drop", path = "/download/" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(3, #emu:requests("/download/"))
      assert.equal(1, #emu:requests(SYNC))
    end)

    it("reports an expired result URL as not_found", function()
      emu:config{ file_ttl = -1 }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.same({ "not_found", 403, "AccessDenied" }, { err.kind, err.status, err.code })
      assert.truthy(err.message:find("24 hours", 1, true))
      assert.truthy(err.task_id)
    end)

    it("reports an expired pre-signed upload URL with the storage's own code and words", function()
      emu:config{ presign_ttl = -1 }
      local res, err = client():recognize{ file = img, mode = "presigned" }
      assert.is_nil(res)
      assert.same({ "auth", 403, "AccessDenied" }, { err.kind, err.status, err.code })
      assert.truthy(err.message:find("the pre-signed upload URL was refused (expired, already used or altered): HTTP 403 Request has expired.", 1, true), err.message)
      assert.equal(1, #emu:requests("/storage/upload/"))   -- a refusal is not retried
      assert.equal(0, #emu:requests(START))                -- nothing was started (or billed)
    end)

    it("accepts an error code sent as a JSON number (1001 -> \"01001\")", function()
      emu:fault{ action = "status", path = SYNC, method = "POST", status = 500, times = 10,
                 body = '{"code":1001,"msg":"numeric"}' }
      local _, err = client():recognize{ file = img }
      assert.same({ "server", "01001" }, { err.kind, err.code })
    end)

    it("turns malformed answers into protocol errors", function()
      emu:fault{ action = "malformed", path = SYNC, method = "POST", body = '{"code":"200","data":{' }
      local _, e1 = client():recognize{ file = img }
      assert.equal("protocol", e1.kind)
      emu:fault{ action = "status", status = 200, path = SYNC, method = "POST", body = '{"code":"200","msg":"ok"}' }
      local _, e2 = client():recognize{ file = img }
      assert.equal("protocol", e2.kind)
      assert.truthy(e2.message:find("data", 1, true))
      emu:fault{ action = "status", status = 200, path = ASYNC, method = "POST",
                 body = '{"code":"200","msg":"ok","data":{}}' }
      local _, e3 = client():recognize{ file = img, mode = "async" }
      assert.truthy(e3.message:find("taskId", 1, true))
      emu:fault{ action = "status", status = 200, path = SYNC, method = "POST",
                 body = '{"code":"200","msg":"ok","data":{"status":"exploded"}}' }
      local _, e4 = client():recognize{ file = img }
      assert.truthy(e4.message:find("exploded", 1, true))
      emu:fault{ action = "status", status = 200, path = INFO,
                 body = '{"code":"200","msg":"ok","data":{"taskStatus":"TaskFinish","fileInfoDTOList":[{"status":"processing"}]}}' }
      local _, e5 = client():recognize{ file = img, mode = "async" }
      assert.equal("protocol", e5.kind)
      assert.truthy(e5.message:find("processing", 1, true))
    end)
  end)

  describe("secrets", function()
    it("never puts the API key in errors or log events, nor sends it off the API", function()
      local secret = "cpdf-super-secret-key-123456"
      emu:config{ api_key = secret }
      local events = {}
      local c = client{ api_key = secret, log = function(ev) events[#events + 1] = ev end }
      emu:fault{ action = "status", path = SYNC, method = "POST", status = 401,
                 body = '{"code":"401","msg":"bad key ' .. secret .. '"}' }
      local _, err = c:recognize{ file = img }
      assert.equal("auth", err.kind)
      assert.is_nil(tostring(err):find(secret, 1, true))
      assert.truthy(tostring(err):find("***", 1, true))
      assert.truthy(c:recognize{ file = img, mode = "presigned" })
      assert.is_true(#events > 5)
      expect.no_field_contains(events, secret, "secret in log field ")
      for _, e in ipairs(emu:log()) do
        if not e.path:match("^/server/") then assert.is_nil(e.headers["x-api-key"], e.path) end
      end
    end)

    it("never echoes the document password in an error", function()
      emu:fault{ action = "status", path = SYNC, method = "POST", status = 400,
                 body = '{"code":"02201","msg":"password hunter2-long is wrong"}' }
      local _, err = client():recognize{ file = img, password = "hunter2-long" }
      assert.equal("02201", err.code)
      assert.is_nil(tostring(err):find("hunter2-long", 1, true))
    end)
  end)
end)
