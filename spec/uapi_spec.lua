-- The uapi provider end to end through the public API, against the strict UAPI emulator
-- (spec/emulators/uapi.py). What was sent is checked in the emulator's request log and state.
local ocr = require "ocr"
local cjson = require "cjson"
local core = require "ocr.core"
local F = require "helpers.files"
local rig = require "helpers.rig"
local expect = require "helpers.expect"

local KEY = "test-uapi-key"
local OCR = "/api/v1/image/ocr"
local LIMIT = 10 * 1024 * 1024
local TEXT = "收件人：张三\n联系电话 13800000000"

describe("uapi provider", function()
  local emu, dir, img

  local function client(opts)
    return rig.client("uapi", { endpoint = emu.url, backoff = { base = 0.01, cap = 0.05 } }, opts)
  end

  local function posts() return emu:requests(OCR, "POST") end
  local function calls() return emu:state().calls end
  local function form() return posts()[1].form end

  setup(function() emu, dir, img = rig.start("uapi", { { "扫描 1.png", TEXT } }) end)
  teardown(function() rig.stop(emu, dir) end)
  before_each(function()
    emu:reset()
    emu:config{ visitor_credits = 100000 }
  end)

  describe("success", function()
    it("recognizes a streamed file anonymously: text, lines, boxes, polygons, confidences", function()
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal("uapi", res.provider)
      assert.equal(TEXT, res.text)
      assert.equal(2, #res.lines)
      local l1 = res.lines[1]
      assert.equal("收件人：张三", l1.text)
      -- ocrtext geometry: (20, 20), 32 px high, CJK characters 32 px wide, others 16.
      assert.same({ x = 20, y = 20, w = 6 * 32, h = 32 }, l1.box)
      assert.same({ { x = 20, y = 20 }, { x = 212, y = 20 }, { x = 212, y = 52 }, { x = 20, y = 52 } },
                  l1.polygon)
      assert.same({ x = 20, y = 60, w = 4 * 32 + 12 * 16, h = 32 }, res.lines[2].box)
      assert.is_true(l1.confidence >= 0.8 and l1.confidence < 1)
      assert.is_nil(res.markdown)
      local call = calls()[1]
      assert.equal(call.request_id, res.request_id)
      assert.equal("visitor", call.caller)
      local p = posts()[1]
      assert.is_nil(p.headers.authorization)
      assert.equal("application/json", p.headers.accept)
      assert.equal("扫描 1.png", p.form.file[1].filename)
      assert.equal("image/png", p.form.file[1].content_type)
      assert.equal("扫描 1.png", p.form.image_name[1].value)
      for _, k in ipairs{ "need_location", "return_markdown", "enable_cls", "url", "image_base64" } do
        assert.is_nil(p.form[k], k .. " sent although not asked for")
      end
    end)

    it("sends in-memory data as a file part named by filename", function()
      local res, err = client():recognize{ data = F.image("内存里的图片"), filename = "页.jpg" }
      assert.is_nil(err)
      assert.equal("内存里的图片", res.text)
      assert.equal("页.jpg", form().file[1].filename)
      assert.equal("image/jpeg", form().file[1].content_type)
      assert.equal("页.jpg", form().image_name[1].value)
    end)

    it("names data without a filename from its magic number and sends no image_name", function()
      local res, err = client():recognize{ data = F.image("无名") }
      assert.is_nil(err)
      assert.equal("无名", res.text)
      assert.equal("image.png", form().file[1].filename)
      assert.is_nil(form().image_name)
    end)

    it("sends data as image_base64 with data_as = \"base64\"", function()
      local bytes = F.image("Base64 图片")
      local res, err = client{ data_as = "base64" }:recognize{ data = bytes }
      assert.is_nil(err)
      assert.equal("Base64 图片", res.text)
      local f = form()
      assert.is_nil(f.file)
      -- The emulator decoded it with Python's strict base64 (validate=True): same bytes back.
      local call = calls()[1]
      assert.equal("image_base64", call.source)
      assert.equal(#bytes, call.size)
      assert.is_false(call.data_uri)
      assert.equal("image.png", f.image_name[1].value)
    end)

    it("sends a URL as url, with image_name when given", function()
      emu:config{ url_text = "链接里的文字" }
      local res, err = client():recognize{ url = "https://img.example.cn/a.png?x=1", image_name = "票据.png" }
      assert.is_nil(err)
      assert.equal("链接里的文字", res.text)
      assert.equal("https://img.example.cn/a.png?x=1", form().url[1].value)
      assert.equal("票据.png", form().image_name[1].value)
      assert.is_nil(form().file)
    end)

    it("puts each boolean option on the wire as the strings true/false", function()
      for _, v in ipairs{ true, false } do
        emu:reset()
        local res, err = client():recognize{ file = img, need_location = v, markdown = v, enable_cls = v }
        assert.is_nil(err)
        assert.truthy(res)
        local f = form()
        local s = tostring(v)
        assert.equal(s, f.need_location[1].value)
        assert.equal(s, f.return_markdown[1].value)
        assert.equal(s, f.enable_cls[1].value)
        local call = calls()[1]
        assert.equal(v, call.enable_cls)
        assert.is_true(call.enable_cls_sent)
      end
    end)

    it("returns the markdown in res.markdown", function()
      local res, err = client():recognize{ file = img, markdown = true }
      assert.is_nil(err)
      assert.equal("# 收件人：张三\n\n联系电话 13800000000", res.markdown)
      assert.equal(TEXT, res.text)
    end)

    it("gives lines without geometry with need_location = false", function()
      local res, err = client():recognize{ file = img, need_location = false }
      assert.is_nil(err)
      assert.equal(2, #res.lines)
      for _, l in ipairs(res.lines) do
        assert.is_nil(l.box)
        assert.is_nil(l.polygon)
        assert.truthy(l.confidence)
      end
    end)

    it("drops geometry the answer carries anyway when need_location = false was asked", function()
      emu:fault{ action = "status", status = 200, path = OCR, headers = { ["X-Request-Id"] = "r-geo" },
                 body = cjson.encode{ text = "a", need_location = true, words_result = {
                   { words = "a", score = 0.5, location = { left = 1, top = 2, width = 3, height = 4 },
                     vertexes_location = { { x = 1, y = 2 } } } } } }
      local res, err = client():recognize{ file = img, need_location = false }
      assert.is_nil(err)
      assert.is_nil(res.lines[1].box)
      assert.is_nil(res.lines[1].polygon)
      assert.equal(0.5, res.lines[1].confidence)
      assert.equal("r-geo", res.request_id)
    end)

    it("clamps scores into 0..1 and honours score_scale", function()
      local body = cjson.encode{ text = "a\nb\nc", words_result = {
        { words = "a", score = 1.7 }, { words = "b", score = -0.2 }, { words = "c", score = 87 } } }
      emu:fault{ action = "status", status = 200, path = OCR, body = body }
      local res = assert(client():recognize{ file = img })
      assert.equal(1, res.lines[1].confidence)
      assert.equal(0, res.lines[2].confidence)
      emu:fault{ action = "status", status = 200, path = OCR, body = body }
      res = assert(client{ score_scale = 100 }:recognize{ file = img })
      assert.equal(0.87, res.lines[3].confidence)
    end)

    it("falls back on plain_text, then on the lines, for the text", function()
      emu:config{ omit_fields = { "text" } }
      assert.equal(TEXT, assert(client():recognize{ file = img }).text)
      emu:config{ omit_fields = { "text", "plain_text" } }
      assert.equal(TEXT, assert(client():recognize{ file = img }).text)
      emu:config{ omit_fields = { "words_result" } }
      local res = assert(client():recognize{ file = img })
      assert.equal(TEXT, res.text)
      assert.equal(2, #res.lines)
      assert.is_nil(res.lines[1].box)
    end)

    it("answers an image without text with empty text and no lines, nulls included", function()
      emu:config{ default_text = "" }
      local res, err = client():recognize{ data = F.PNG_MAGIC .. "no marker here" }
      assert.is_nil(err)
      assert.equal("", res.text)
      assert.equal(0, #res.lines)
      emu:fault{ action = "status", status = 200, path = OCR,
                 body = '{"text": null, "plain_text": "", "words_result": null, "markdown": null}' }
      res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal("", res.text)
      assert.equal(0, #res.lines)
      assert.is_nil(res.markdown)
    end)

    it("sends Authorization: Bearer with api_key and charges the key, not the visitor", function()
      local res, err = client{ api_key = KEY }:recognize{ file = img }
      assert.is_nil(err)
      assert.truthy(res.text)
      assert.equal("Bearer " .. KEY, posts()[1].headers.authorization)
      local st = emu:state()
      assert.equal(KEY, st.calls[1].caller)
      assert.equal(4, st.credits_used[KEY])
      assert.equal(0, st.visitor_used)
    end)

    it("accepts an endpoint ending in /api/v1 (as the SDK does)", function()
      local res, err = client{ endpoint = emu.url .. "/api/v1/" }:recognize{ file = img }
      assert.is_nil(err)
      assert.truthy(res.text)
      assert.equal(1, #posts())
    end)

    it("accepts a file of exactly 10 MB", function()
      -- padding before the "TEXT:" marker, so the recognised text stays one character
      local tail = "TEXT:大"
      local big = F.write(dir .. "/big.png", F.PNG_MAGIC .. string.rep("\0", LIMIT - #F.PNG_MAGIC - #tail) .. tail)
      local res, err = client{ timeout = 30 }:recognize{ file = big }
      os.remove(big)
      assert.is_nil(err)
      assert.equal("大", res.text)
      assert.equal(LIMIT, calls()[1].size)
    end)
  end)

  describe("invalid input sends nothing", function()
    local over = string.rep("x", LIMIT + 1)
    local cases = {
      { "two sources", { file = "x.png", url = "https://a.example/x.png" }, "exactly one source" },
      { "no source", { markdown = true }, "one source is required" },
      { "a key source", { key = "a/b.png" }, "does not accept" },
      { "a missing file", { file = "/nonexistent/扫描.png" }, "cannot read" },
      { "empty data", { data = "" }, "empty" },
      { "a relative url", { url = "img.example.cn/a.png" }, "absolute" },
      { "a string need_location", { data = "x", need_location = "true" }, "need_location" },
      { "a number markdown", { data = "x", markdown = 1 }, "markdown" },
      { "a string enable_cls", { data = "x", enable_cls = "yes" }, "enable_cls" },
      { "a number image_name", { data = "x", image_name = 5 }, "image_name" },
      { "an empty image_name", { data = "x", image_name = "" }, "image_name" },
      { "an image_name with a newline", { data = "x", image_name = "a\r\nb.png" }, "control" },
      { "a filename with a NUL", { data = "x", filename = "a\0.png" }, "control" },
      { "an unknown option", { data = "x", return_markdown = true }, "unknown option 'return_markdown'" },
    }
    for _, c in ipairs(cases) do
      it("refuses " .. c[1], function()
        expect.invalid_input_sends_nothing(client(), c[2], emu, c[3])
      end)
    end

    it("refuses data over 10 MB as too_large", function()
      local res, err = client():recognize{ data = over }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      assert.truthy(err.message:find("10485760", 1, true), err.message)
      assert.equal(0, #emu:log())
    end)

    it("refuses a file over 10 MB as too_large, by its size on disk", function()
      local big = F.write(dir .. "/over.png", F.image("x") .. over)
      local res, err = client():recognize{ file = big }
      os.remove(big)
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      assert.equal(0, #emu:log())
    end)

    it("raises on programmer mistakes in ocr.new, and needs no key", function()
      assert.has_error(function() client{ data_as = "hex" } end)
      assert.has_error(function() client{ retry_unavailable = "yes" } end)
      assert.has_error(function() client{ score_scale = 0 } end)
      assert.has_error(function() client{ api_key = "" } end)
      assert.has_error(function() client{ colour = true } end)
      assert.truthy(client())
    end)
  end)

  describe("documented statuses", function()
    local cases = {
      { 400, "invalid_input", "INVALID_PARAMETER", "file、url、image_base64 三个来源里至少要传一个" },
      { 401, "auth", "UNAUTHORIZED", "请求未授权" },
      { 402, "quota", "INSUFFICIENT_CREDITS", "账户积分不足" },
      { 413, "too_large", "FILE_TOO_LARGE", "图片大小不能超过 10485760 字节" },
      { 415, "unsupported", "UNSUPPORTED_MEDIA_TYPE", "当前只接受常见图片格式" },
      { 429, "rate_limited", "SERVICE_BUSY", "请求过于频繁" },
      { 502, "server", "REQUEST_FAILED", "文字识别失败，请稍后再试" },
      { 503, "server", "SERVICE_TEMPORARILY_UNAVAILABLE", "文字识别服务暂时不可用，请稍后再试" },
    }
    for _, c in ipairs(cases) do
      local status, kind, code, message = c[1], c[2], c[3], c[4]
      it(("maps %d to %s keeping code, message, Retry-After and X-Request-Id"):format(status, kind), function()
        emu:fault{ action = "status", path = OCR, method = "POST", status = status, times = 5,
                   headers = { ["X-Request-Id"] = "req-" .. status, ["Retry-After"] = "7" },
                   body = cjson.encode{ code = code, message = message } }
        local res, err = client{ retries = 0 }:recognize{ file = img }
        assert.is_nil(res)
        assert.equal(kind, err.kind)
        assert.equal(status, err.status)
        assert.equal(code, err.code)
        assert.equal(message, err.message)
        assert.equal("req-" .. status, err.request_id)
        assert.equal(7, err.retry_after)
        assert.equal(ocr.KINDS[kind], err.retryable)
        assert.equal(1, #posts())
        assert.truthy(tostring(err):find("code=" .. code, 1, true))
      end)
    end

    it("maps a wrong key to auth, from the emulator", function()
      local res, err = client{ api_key = "wrong-key-1234" }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("auth", err.kind)
      assert.equal("UNAUTHORIZED", err.code)
      assert.equal(calls()[1].request_id, err.request_id)
      assert.equal(1, #posts())
    end)

    it("maps an exhausted account to quota (402)", function()
      emu:config{ credits = 4 }
      assert(client{ api_key = KEY }:recognize{ file = img })
      local res, err = client{ api_key = KEY }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("quota", err.kind)
      assert.equal(402, err.status)
      assert.equal("INSUFFICIENT_CREDITS", err.code)
    end)

    it("maps the exhausted visitor quota (429 VISITOR_MONTHLY_QUOTA_EXHAUSTED) to quota, not re-sent", function()
      emu:config{ visitor_credits = 4 }
      assert(client():recognize{ file = img })
      local res, err = client{ retries = 3 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("quota", err.kind)
      assert.equal(429, err.status)
      assert.equal("VISITOR_MONTHLY_QUOTA_EXHAUSTED", err.code)
      assert.is_false(err.retryable)
      assert.equal(2, #posts())
    end)

    it("maps the server's own 413 and 415", function()
      emu:config{ max_file_size = 16 }
      local _, err = client():recognize{ file = img }
      assert.equal("too_large", err.kind)
      assert.equal("FILE_TOO_LARGE", err.code)
      emu:config{ max_file_size = LIMIT }
      _, err = client():recognize{ data = "%PDF-1.4 not an image", filename = "a.pdf" }
      assert.equal("unsupported", err.kind)
      assert.equal(415, err.status)
      assert.equal("UNSUPPORTED_MEDIA_TYPE", err.code)
    end)

    it("maps a 502 gateway page that is not JSON to server with the HTTP status", function()
      emu:fault{ action = "status", path = OCR, status = 502, content_type = "text/html",
                 body = "<html>Bad Gateway</html>" }
      local _, err = client():recognize{ file = img }
      assert.equal("server", err.kind)
      assert.equal(502, err.status)
      assert.is_nil(err.code)
      assert.equal("HTTP 502", err.message)
    end)
  end)

  describe("the billed POST and its retries", function()
    it("re-sends a 429 SERVICE_BUSY after Retry-After", function()
      emu:config{ rate_limit = 1, retry_after = 1 }
      local c = client()
      assert(c:recognize{ file = img })
      local t0 = core.monotime()
      local res, err = c:recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.is_true(core.monotime() - t0 >= 0.95)
      local outcomes = {}
      for i, call in ipairs(calls()) do outcomes[i] = call.outcome end
      assert.same({ 200, 429, 200 }, outcomes)
      -- the success's own request id, not the 429's
      assert.equal(calls()[3].request_id, res.request_id)
    end)

    it("re-sends a 503 (vendor_busy: nothing was recognised, nothing billed)", function()
      emu:config{ engine_errors = { 503, 503 } }
      local res, err = client{ retries = 3 }:recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(3, #posts())
      assert.equal(4, emu:state().charged)
    end)

    it("gives up on 503 after the retries, marking the error vendor_busy", function()
      emu:config{ engine_errors = { 503, 503, 503 } }
      local res, err = client{ retries = 2 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("server", err.kind)
      assert.is_true(err.vendor_busy)
      assert.equal(3, err.attempts)
      assert.equal(3, #posts())
    end)

    it("does not re-send a 503 with retry_unavailable = false", function()
      emu:config{ engine_errors = { 503 } }
      local res, err = client{ retry_unavailable = false }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("server", err.kind)
      assert.is_nil(err.vendor_busy)
      assert.is_true(err.retryable)
      assert.equal(1, #posts())
    end)

    it("does not re-send a 502 (recognition ran and failed: billed)", function()
      emu:config{ engine_errors = { 502 } }
      local res, err = client{ retries = 3 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("server", err.kind)
      assert.equal("REQUEST_FAILED", err.code)
      assert.is_true(err.retryable)
      assert.equal(1, #posts())
      assert.equal(4, emu:state().charged)
    end)

    it("does not re-send a POST whose connection dropped", function()
      emu:fault{ action = "drop", path = OCR, method = "POST" }
      local res, err = client{ retries = 3 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.is_true(err.sent)
      assert.is_true(err.retryable)
      assert.equal(1, #posts())
    end)

    it("does not re-send a POST whose answer was truncated", function()
      emu:fault{ action = "truncate", path = OCR, method = "POST" }
      local res, err = client{ retries = 3 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.is_true(err.sent)
      assert.equal(1, #posts())
    end)

    it("does not re-send a POST that timed out waiting for the answer", function()
      emu:fault{ action = "slow", delay = 1, path = OCR, method = "POST" }
      local res, err = client{ timeout = 0.3, retries = 3 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.equal(1, #posts())
    end)

    it("re-sends a POST that never left this machine (connection refused)", function()
      expect.refused_and_retried(client, { file = img })
    end)
  end)

  describe("answers that break the contract", function()
    local bodies = {
      { "malformed JSON", nil, "not JSON" },
      { "a JSON array", "[1, 2]", "neither text" },
      { "an empty object", "{}", "neither text" },
      { "words_result that is not an array", '{"text": "a", "words_result": "a"}', "words_result" },
      { "a words_result entry that is not an object", '{"text": "a", "words_result": [1]}', "words_result[1]" },
    }
    for _, b in ipairs(bodies) do
      it("turns " .. b[1] .. " into a protocol error, not re-sent", function()
        if b[2] then
          emu:fault{ action = "status", status = 200, path = OCR, body = b[2] }
        else
          emu:fault{ action = "malformed", path = OCR, body = '{"text": "收件人' }
        end
        local res, err = client():recognize{ file = img }
        assert.is_nil(res)
        assert.equal("protocol", err.kind)
        assert.truthy(err.message:find(b[3], 1, true), err.message)
        assert.equal(1, #posts())
      end)
    end
  end)

  describe("secrets", function()
    it("never puts the API key in errors or log events", function()
      local secret = "uapi-secret-key-0123456789"
      emu:config{ api_key = secret }
      local events = {}
      local c = client{ api_key = secret, log = function(ev) events[#events + 1] = ev end }
      emu:fault{ action = "status", path = OCR, method = "POST", status = 401,
                 body = cjson.encode{ code = "UNAUTHORIZED", message = "bad key Bearer " .. secret } }
      local _, err = c:recognize{ file = img }
      assert.equal("auth", err.kind)
      expect.no_field_contains({ err }, secret, "secret in error field ")
      assert.truthy(tostring(err):find("***", 1, true))
      emu:config{ engine_errors = { 503 } }
      local res = assert(c:recognize{ file = img })
      assert.truthy(res.text)
      assert.is_true(#events >= 5)
      expect.no_field_contains(events, secret, "secret in log field ")
      assert.equal("Bearer " .. secret, posts()[2].headers.authorization)
    end)
  end)
end)
