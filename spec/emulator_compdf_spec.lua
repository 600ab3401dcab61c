-- Proves that spec/emulators/compdf.py enforces the ComPDF contract (its public
-- API documentation), so the provider tested against it is tested against the contract.
-- Requests go through a raw LuaSocket client (not ocr.curl, which is itself under test), so every
-- byte on the wire is the spec's choice.
local socket = require "socket"
local cjson = require "cjson"
local emulator = require "helpers.emulator"
local rawhttp = require "helpers.rawhttp"

local KEY = "test-compdf-key"
local SYNC = "/server/v2/process/documentAI/ocr"
local ASYNC = "/server/v2/processAsync/documentAI/ocr"
local PRESIGN = "/server/v2/presignedUrl/documentAI/ocr"
local INFO = "/server/v2/task/taskInfo"
local START = "/server/v2/execute/start"
local PNG = "\137PNG\r\n\26\n\0\0\0\rIHDR"
local PDF = "%PDF-1.7\n"

describe("compdf emulator", function()
  local emu

  local function api(method, path, opts)
    return rawhttp.api(emu.port, "x-api-key", KEY, method, path, opts)
  end

  local function file_part(bytes, name)
    return { name = "file", filename = name or "scan.png", ctype = "image/png", value = bytes }
  end
  local field = rawhttp.field

  local function post(path, parts, opts)
    opts = opts or {}
    opts.parts = parts
    return api("POST", path, opts)
  end

  local function ok(res)
    assert.are.equal(200, res.status, res.body)
    assert.are.equal("200", res.json.code, res.body)
    assert.are.equal("success", res.json.msg)
    return res.json.data
  end

  local function expect_error(res, code, status)
    assert.are.equal(status, res.status, res.body)
    assert.are.equal(code, res.json.code, res.body)
    assert.are.equal("string", type(res.json.msg))
    assert.is_nil(res.json.data)
    return res.json.msg
  end

  local function info(id, opts)
    return api("GET", INFO .. "?taskId=" .. id .. "&language=1", opts)
  end

  --- GET of an absolute URL on the emulator, without any API key (a pre-signed URL).
  local function fetch(url, method, headers, body)
    return rawhttp.fetch(emu.port, url, method, headers, body)
  end

  local function walk(id)
    local seen = {}
    for _ = 1, 20 do
      local d = ok(info(id))
      seen[#seen + 1] = d.taskStatus
      if d.taskStatus == "TaskFinish" or d.taskStatus == "TaskOverdue" then return d, seen end
    end
    error("task never finished")
  end

  setup(function() emu = emulator.start("compdf") end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  describe("authentication", function()
    it("wants x-api-key on every API call, but not on pre-signed URLs", function()
      expect_error(post(SYNC, { file_part(PNG) }, { key = false }), "401", 401)
      expect_error(post(ASYNC, { file_part(PNG) }, { key = "nope" }), "401", 401)
      expect_error(post(PRESIGN, { field("fileName", "a.png") }, { key = "nope" }), "401", 401)
      local id = ok(post(ASYNC, { file_part(PNG) })).taskId
      expect_error(info(id, { key = false }), "401", 401)
      expect_error(api("GET", START .. "?taskId=" .. id, { key = "nope" }), "401", 401)
      local d = ok(post(SYNC, { file_part(PNG .. "TEXT:x") }))
      assert.are.equal(200, fetch(d.downloadUrl).status)
    end)
  end)

  describe("create fields", function()
    it("requires multipart/form-data", function()
      expect_error(api("POST", SYNC, { body = "enableOcr=1", ctype = "application/x-www-form-urlencoded" }),
                   "01006", 400)
      expect_error(api("POST", ASYNC, { body = '{"enableOcr":"1"}', ctype = "application/json" }),
                   "01006", 400)
    end)
    it("requires a file part (not a value), and refuses an empty one", function()
      expect_error(post(SYNC, { field("enableOcr", "1") }), "01006", 400)
      expect_error(post(SYNC, { field("file", PNG) }), "01006", 400)
      expect_error(post(SYNC, { file_part("") }), "01005", 400)
    end)
    it("refuses unknown, repeated and file-typed fields", function()
      expect_error(post(SYNC, { file_part(PNG), field("lang", "ENGLISH") }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), field("fileName", "a.png") }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), field("enableOcr", "1"), field("enableOcr", "0") }),
                   "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), file_part(PNG) }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), { name = "password", filename = "p", value = "x" } }),
                   "01006", 400)
    end)
    it("accepts every documented value", function()
      local parts = { file_part(PNG), field("password", "pw"), field("language", "2"),
                      field("pageRanges", "1-3,6"), field("enableOcr", "1"),
                      field("ocrRecognitionLang", "CHINESE"), field("ocrOption", "SCAN_PAGE"),
                      field("isOutputDocumentPerPage", "0"),
                      field("callbackUrl", "https://hooks.example/done?x=1") }
      local d = ok(post(SYNC, parts))
      assert.are.same({ pageRanges = "1-3,6", enableOcr = "1", ocrRecognitionLang = "CHINESE",
                        ocrOption = "SCAN_PAGE", isOutputDocumentPerPage = "0" },
                      cjson.decode(d.fileParameter))
      for _, lang in ipairs{ "AUTO", "CHINESE", "CHINESE_TRAD", "ENGLISH", "KOREAN", "JAPANESE",
                             "LATIN", "DEVANAGARI", "CYRILLIC", "ARABIC", "TAMIL", "TELUGU",
                             "KANNADA", "THAI", "GREEK", "ESLAV" } do
        ok(post(SYNC, { file_part(PNG), field("ocrRecognitionLang", lang) }))
      end
      for _, o in ipairs{ "ALL", "SCAN_PAGE", "INVALID_CHARACTER", "INVALID_CHARACTER_AND_SCAN_PAGE" } do
        ok(post(SYNC, { file_part(PNG), field("ocrOption", o) }))
      end
      ok(post(SYNC, { file_part(PNG), field("pageRanges", "") }))
      ok(post(SYNC, { file_part(PNG), field("pageRanges", "2") }))
    end)
    it("refuses bad values", function()
      local bad = {
        { "enableOcr", "2" }, { "enableOcr", "true" }, { "isOutputDocumentPerPage", "yes" },
        { "language", "3" }, { "language", "en" }, { "ocrRecognitionLang", "FRENCH" },
        { "ocrRecognitionLang", "english" }, { "ocrOption", "NONE" }, { "pageRanges", "3-1" },
        { "pageRanges", "0" }, { "pageRanges", "1-3," }, { "pageRanges", "1 - 3" },
        { "pageRanges", "a" }, { "callbackUrl", "ftp://x.example/" }, { "callbackUrl", "x" },
      }
      for _, b in ipairs(bad) do
        local res = post(SYNC, { file_part(PNG), field(b[1], b[2]) })
        assert.are.equal("01006", res.json.code, b[1] .. "=" .. b[2])
      end
    end)
    it("accepts the legacy parameter JSON, never together with top-level option fields", function()
      local d = ok(post(SYNC, { file_part(PNG), field("password", "pw"), field("language", "1"),
                                field("parameter", '{"enableOcr":1,"ocrOption":"ALL","pageRanges":"1"}') }))
      assert.are.same({ enableOcr = "1", ocrOption = "ALL", pageRanges = "1" },
                      cjson.decode(d.fileParameter))
      ok(post(SYNC, { file_part(PNG), field("parameter", "{}") }))
      local id = next(emu:state().tasks)
      assert.is_true(emu:state().tasks[id].legacy)
      expect_error(post(SYNC, { file_part(PNG), field("parameter", '{"enableOcr":"1"}'),
                                field("ocrOption", "ALL") }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), field("parameter", '{"colour":"1"}') }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), field("parameter", '{"enableOcr":"5"}') }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), field("parameter", '{"enableOcr":true}') }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), field("parameter", "[1]") }), "01006", 400)
      expect_error(post(SYNC, { file_part(PNG), field("parameter", "enableOcr=1") }), "01006", 400)
    end)
    it("answers in Chinese with language 2", function()
      local msg = expect_error(post(SYNC, { file_part(""), field("language", "2") }), "01005", 400)
      assert.truthy(msg:find("文件为空", 1, true))
    end)
  end)

  describe("file checks", function()
    it("refuses files over max_file_size with 02209 / 413", function()
      emu:config{ max_file_size = 64 }
      ok(post(SYNC, { file_part(PNG .. ("x"):rep(64 - #PNG)) }))
      expect_error(post(SYNC, { file_part(PNG .. ("x"):rep(65 - #PNG)) }), "02209", 413)
      expect_error(post(ASYNC, { file_part(PNG .. ("x"):rep(65 - #PNG)) }), "02209", 413)
    end)
    it("refuses formats other than PDF and images with 02002", function()
      expect_error(post(SYNC, { file_part("plain text TEXT:x", "a.txt") }), "02002", 400)
      for _, magic in ipairs{ "%PDF-1.7", "\255\216\255\224", "GIF89a", "BM", "II*\0" } do
        ok(post(SYNC, { file_part(magic .. "TEXT:x") }))
      end
    end)
    it("needs the right password for an encrypted PDF (sync: 02201 at once)", function()
      local enc = PDF .. "/Encrypt 5 0 R\nTEXT:机密文本"
      expect_error(post(SYNC, { file_part(enc, "s.pdf") }), "02201", 400)
      expect_error(post(SYNC, { file_part(enc, "s.pdf"), field("password", "nope") }), "02201", 400)
      local d = ok(post(SYNC, { file_part(enc, "s.pdf"), field("password", "secret") }))
      assert.are.equal("机密文本", fetch(d.downloadUrl).body)
      emu:config{ pdf_password = "其他" }
      ok(post(SYNC, { file_part(enc, "s.pdf"), field("password", "其他") }))
    end)
    it("charges credits and answers 06001 / 402 when they run out", function()
      emu:config{ credits = 2 }
      ok(post(SYNC, { file_part(PNG) }))
      ok(post(ASYNC, { file_part(PNG) }))
      expect_error(post(SYNC, { file_part(PNG) }), "06001", 402)
      -- refused requests cost nothing
      emu:config{ credits = 3 }
      expect_error(post(SYNC, { file_part("") }), "01005", 400)
      ok(post(SYNC, { file_part(PNG) }))
      assert.are.equal(0, emu:state().credits)
    end)
  end)

  describe("sync", function()
    it("answers one file object and serves the text at downloadUrl for 24 hours", function()
      local d = ok(post(SYNC, { file_part(PNG .. "TEXT:第一行 Hello\n第二行", "扫描.png") }))
      assert.are.same({ "success", "txt", "png", "扫描.txt", "扫描.png", "", "" },
                      { d.status, d.targetType, d.sourceType, d.downFileName, d.fileName,
                        d.failureCode, d.failureReason })
      for _, k in ipairs{ "fileKey", "taskId", "fileUrl", "downloadUrl", "fileParameter" } do
        assert.are.equal("string", type(d[k]), k)
      end
      for _, k in ipairs{ "fileSize", "convertSize", "convertTime" } do
        assert.are.equal("number", type(d[k]), k)
      end
      local expires = tonumber(d.downloadUrl:match("expires=(%d+)$"))
      assert.truthy(math.abs(expires - (os.time() + 86400)) <= 2)
      local got = fetch(d.downloadUrl)
      assert.are.equal(200, got.status)
      assert.are.equal("第一行 Hello\n第二行", got.body)
      -- the sync task is finished for taskInfo too
      assert.are.equal("TaskFinish", ok(info(d.taskId)).taskStatus)
    end)
    it("keeps the pages listed in pageRanges", function()
      local d = ok(post(SYNC, { file_part(PDF .. "TEXT:p1\fp2\fp3\fp4", "d.pdf"),
                                field("pageRanges", "2,4-9") }))
      assert.are.equal("p2\np4", fetch(d.downloadUrl).body)
    end)
    it("answers one zip of per-page files with isOutputDocumentPerPage", function()
      local d = ok(post(SYNC, { file_part(PDF .. "TEXT:p1\fp2", "d.pdf"),
                                field("isOutputDocumentPerPage", "1") }))
      assert.are.same({ "zip", "d.zip" }, { d.targetType, d.downFileName })
      assert.are.equal("PK\3\4", fetch(d.downloadUrl).body:sub(1, 4))
    end)
    it("renders the target_type setting", function()
      for target, check in pairs{
        json = function(b) return cjson.decode(b).pages[1].text == "你好" end,
        html = function(b) return b == "<html><body><p>你好</p></body></html>" end,
        md = function(b) return b == "你好" end,
        docx = function(b) return b:sub(1, 4) == "PK\3\4" end,
        pdf = function(b) return b:sub(1, 4) == "%PDF" end,
      } do
        emu:config{ target_type = target }
        local d = ok(post(SYNC, { file_part(PNG .. "TEXT:你好", "a.png") }))
        assert.are.same({ target, "a." .. target }, { d.targetType, d.downFileName })
        assert.is_true(check(fetch(d.downloadUrl).body), target)
      end
    end)
    it("sends a hostile down_file_name verbatim", function()
      for _, name in ipairs{ "../../etc/passwd", "a\0b.txt", "evil\r\nX-Injected: 1.txt" } do
        emu:config{ down_file_name = name }
        assert.are.equal(name, ok(post(SYNC, { file_part(PNG) })).downFileName)
      end
    end)
    it("fails a file with fail_file, code still 200", function()
      emu:config{ fail_file = { failureCode = "02002", failureReason = "bad page" } }
      local d = ok(post(SYNC, { file_part(PNG) }))
      assert.are.same({ "failed", "02002", "bad page", "" },
                      { d.status, d.failureCode, d.failureReason, d.downloadUrl })
    end)
    it("can answer unfinished (sync_status), the task finishing through taskInfo", function()
      emu:config{ sync_status = "processing" }
      local d = ok(post(SYNC, { file_part(PNG .. "TEXT:later") }))
      assert.are.same({ "processing", "" }, { d.status, d.downloadUrl })
      local t = walk(d.taskId)
      assert.are.equal("later", fetch(t.fileInfoDTOList[1].downloadUrl).body)
    end)
  end)

  describe("async", function()
    it("walks TaskStart -> TaskWaiting -> TaskProcessing -> TaskFinish, one step per poll", function()
      local id = ok(post(ASYNC, { file_part(PNG .. "TEXT:异步 text", "a.png"),
                                  field("callbackUrl", "https://hooks.example/x") })).taskId
      local r1 = ok(info(id))
      assert.are.same({ id, "TaskStart", 0 }, { r1.taskId, r1.taskStatus, #r1.fileInfoDTOList })
      local r2 = ok(info(id))
      assert.are.same({ "TaskWaiting", "waiting", "" },
                      { r2.taskStatus, r2.fileInfoDTOList[1].status, r2.fileInfoDTOList[1].downloadUrl })
      local r3 = ok(info(id))
      assert.are.same({ "TaskProcessing", "processing" }, { r3.taskStatus, r3.fileInfoDTOList[1].status })
      local r4 = ok(info(id))
      assert.are.same({ "TaskFinish", 1, 1, 0, "https://hooks.example/x" },
                      { r4.taskStatus, r4.taskFileNum, r4.taskSuccessNum, r4.taskFailNum, r4.callbackUrl })
      local f = r4.fileInfoDTOList[1]
      assert.are.same({ "success", "a.txt", id }, { f.status, f.downFileName, f.taskId })
      assert.are.equal("异步 text", fetch(f.downloadUrl).body)
      assert.are.equal("TaskFinish", ok(info(id)).taskStatus)  -- the last step repeats
    end)
    it("lists one file per page with isOutputDocumentPerPage", function()
      local id = ok(post(ASYNC, { file_part(PDF .. "TEXT:一\f二\f三", "b.pdf"),
                                  field("isOutputDocumentPerPage", "1"), field("pageRanges", "1,3") })).taskId
      local d = walk(id)
      assert.are.equal(2, #d.fileInfoDTOList)
      assert.are.same({ "b_1.txt", "b_3.txt" },
                      { d.fileInfoDTOList[1].downFileName, d.fileInfoDTOList[2].downFileName })
      assert.are.equal("三", fetch(d.fileInfoDTOList[2].downloadUrl).body)
    end)
    it("fails an encrypted file in taskInfo with failureCode 02201", function()
      local id = ok(post(ASYNC, { file_part(PDF .. "/Encrypt TEXT:x", "e.pdf") })).taskId
      local d = walk(id)
      local f = d.fileInfoDTOList[1]
      assert.are.same({ "failed", "02201", "", 1 }, { f.status, f.failureCode, f.downloadUrl, d.taskFailNum })
    end)
    it("follows the script, including TaskOverdue", function()
      emu:config{ script = { "TaskProcessing", "TaskOverdue" } }
      local d, seen = walk(ok(post(ASYNC, { file_part(PNG) })).taskId)
      assert.are.same({ "TaskProcessing", "TaskOverdue" }, seen)
      assert.are.equal(0, #d.fileInfoDTOList)
    end)
    it("answers 05001 for an unknown task, 05004 for an expired one, 01006 for bad queries", function()
      expect_error(info("nosuchtask"), "05001", 404)
      local id = ok(post(ASYNC, { file_part(PNG) })).taskId
      expect_error(api("GET", INFO), "01006", 400)
      expect_error(api("GET", INFO .. "?taskId=" .. id .. "&colour=1"), "01006", 400)
      expect_error(api("GET", INFO .. "?taskId=" .. id .. "&language=9"), "01006", 400)
      emu:config{ task_ttl = -1 }
      expect_error(info(id), "05004", 410)
    end)
  end)

  describe("presigned", function()
    local function presign(parts)
      return ok(post(PRESIGN, parts or { field("fileName", "大文件.png"), field("enableOcr", "1") }))
    end
    local function put(url, body, ctype)
      local headers = {}
      if ctype then headers[1] = { "Content-Type", ctype } end
      return fetch(url, "PUT", headers, body)
    end

    it("creates an upload URL, takes one PUT, starts and finishes", function()
      local d = presign()
      assert.truthy(d.presignedUrl:match("^" .. emu.url:gsub("%p", "%%%0") .. "/storage/upload/"))
      assert.are.equal("TaskStart", ok(info(d.taskId)).taskStatus)
      assert.are.equal("TaskStart", ok(info(d.taskId)).taskStatus)  -- not started: no progress
      expect_error(api("GET", START .. "?taskId=" .. d.taskId .. "&language=1"), "01005", 400)
      assert.are.equal(400, put(d.presignedUrl, PNG .. "TEXT:大", nil).status)
      local r = put(d.presignedUrl, PNG .. "TEXT:大", "image/png")
      assert.are.equal(200, r.status, r.body)
      assert.truthy(r.headers.etag)
      local again = put(d.presignedUrl, PNG .. "TEXT:again", "image/png")
      assert.are.equal(403, again.status)
      assert.are.equal("AccessDenied", again.body:match("<Code>(.-)</Code>"))
      assert.are.equal(d.taskId, ok(api("GET", START .. "?taskId=" .. d.taskId .. "&language=1")).taskId)
      expect_error(api("GET", START .. "?taskId=" .. d.taskId), "01006", 400)
      local t = walk(d.taskId)
      assert.are.equal("大文件.txt", t.fileInfoDTOList[1].downFileName)
      assert.are.equal("大", fetch(t.fileInfoDTOList[1].downloadUrl).body)
      local up = emu:state().tasks[d.taskId].upload
      assert.are.same({ true, "image/png" }, { up.used, up.content_type })
    end)
    it("wants fileName and no file part", function()
      expect_error(post(PRESIGN, { field("enableOcr", "1") }), "01006", 400)
      expect_error(post(PRESIGN, { field("fileName", "") }), "01006", 400)
      expect_error(post(PRESIGN, { field("fileName", "a.png"), file_part(PNG) }), "01006", 400)
      expect_error(post(PRESIGN, { field("fileName", "a.png"), field("ocrOption", "X") }), "01006", 400)
    end)
    it("refuses an expired, tampered or unknown upload URL, and a PUT without a length", function()
      local d = presign()
      assert.are.equal(403, put(d.presignedUrl:gsub("Signature=%x", "Signature=z"), PNG, "image/png").status)
      assert.are.equal(404, put(d.presignedUrl:gsub("/upload/%x", "/upload/z"), PNG, "image/png").status)
      local r = rawhttp.request(emu.port, "PUT", rawhttp.target_of(d.presignedUrl),
                                { { "Content-Type", "image/png" } }, "", { length = false })
      assert.are.equal(411, r.status)
      emu:config{ presign_ttl = -1 }
      local late = presign()
      local res = put(late.presignedUrl, PNG, "image/png")
      assert.are.equal(403, res.status)
      assert.are.equal("Request has expired.", res.body:match("<Message>(.-)</Message>"))
    end)
    it("checks size, format and credits when started", function()
      emu:config{ max_file_size = 32, credits = 1 }
      local d = presign()
      put(d.presignedUrl, PNG .. ("x"):rep(40), "image/png")
      expect_error(api("GET", START .. "?taskId=" .. d.taskId), "02209", 413)
      d = presign()
      put(d.presignedUrl, "not an image", "image/png")
      expect_error(api("GET", START .. "?taskId=" .. d.taskId), "02002", 400)
      d = presign()
      put(d.presignedUrl, PNG, "image/png")
      ok(api("GET", START .. "?taskId=" .. d.taskId))
      d = presign()
      put(d.presignedUrl, PNG, "image/png")
      expect_error(api("GET", START .. "?taskId=" .. d.taskId), "06001", 402)
    end)
  end)

  describe("downloads", function()
    it("expire, refuse a tampered or missing expires, 404 an unknown key", function()
      local d = ok(post(SYNC, { file_part(PNG) }))
      local later = d.downloadUrl:gsub("expires=(%d+)", function(e) return "expires=" .. (e + 60) end)
      assert.are.equal(403, fetch(later).status)
      assert.are.equal(403, fetch((d.downloadUrl:gsub("%?.*$", ""))).status)
      local unknown = fetch((d.downloadUrl:gsub("/download/%x", "/download/z")))
      assert.are.same({ 404, "NoSuchKey" }, { unknown.status, unknown.body:match("<Code>(.-)</Code>") })
      assert.are.equal(200, fetch(d.downloadUrl).status)
      emu:config{ file_ttl = -1 }
      local gone = fetch(ok(post(SYNC, { file_part(PNG) })).downloadUrl)
      assert.are.same({ 403, "Request has expired." }, { gone.status, gone.body:match("<Message>(.-)</Message>") })
    end)
    it("honour result_base", function()
      emu:config{ result_base = "https://cdn.example" }
      assert.truthy(ok(post(SYNC, { file_part(PNG) })).downloadUrl:match("^https://cdn%.example/download/"))
    end)
  end)

  describe("error_style = body", function()
    it("sends errors with HTTP 200 and the code in the body", function()
      emu:config{ error_style = "body" }
      local r = post(SYNC, { file_part(PNG) }, { key = "nope" })
      assert.are.same({ 200, "401" }, { r.status, r.json.code })
      r = info("nosuchtask")
      assert.are.same({ 200, "05001" }, { r.status, r.json.code })
      ok(post(SYNC, { file_part(PNG) }))
    end)
  end)

  it("answers 404 JSON for other paths and logs API requests", function()
    local r = api("GET", "/server/v2/nothing")
    assert.are.same({ 404, "404" }, { r.status, r.json.code })
    socket.sleep(0)
    assert.are.equal(1, #emu:requests("/server/v2/nothing"))
  end)
end)
