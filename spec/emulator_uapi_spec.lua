-- Proves that spec/emulators/uapi.py enforces the UAPI OCR contract (its public
-- API documentation), so the provider tested against it is tested against the contract.
-- Requests go through a raw LuaSocket client (not ocr.curl, which is itself under test), so every
-- byte on the wire is the spec's choice.
local emulator = require "helpers.emulator"
local rawhttp = require "helpers.rawhttp"

local KEY = "test-uapi-key"
local OCR = "/api/v1/image/ocr"
local PNG = "\137PNG\r\n\26\n\0\0\0\rIHDR"

-- Base64 of PNG .. "TEXT:你好\nHi", computed once with
-- python3 -c 'import base64; print(base64.b64encode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRTEXT:" + "你好\nHi".encode()).decode())'
local PNG_B64 = "iVBORw0KGgoAAAANSUhEUlRFWFQ65L2g5aW9Ckhp"

describe("uapi emulator", function()
  local emu

  local function post(parts, opts)
    opts = opts or {}
    local headers = {}
    if opts.auth then headers[#headers + 1] = { "Authorization", opts.auth } end
    local body, ctype
    if parts then
      body, ctype = rawhttp.multipart(parts, "----lua-ocr-uapi-")
    else
      body, ctype = opts.body, opts.ctype
    end
    if ctype then headers[#headers + 1] = { "Content-Type", ctype } end
    return rawhttp.decode_json(rawhttp.request(emu.port, opts.method or "POST", opts.path or OCR,
                                               headers, body))
  end

  local function file(bytes, name) return { name = "file", filename = name or "a.png", ctype = "image/png", value = bytes } end
  local field = rawhttp.field

  local function expect(res, status, code, message)
    assert.equal(status, res.status, res.body)
    assert.truthy(res.headers["x-request-id"] and #res.headers["x-request-id"] > 0)
    assert.equal(code, res.json.code)
    if message then assert.truthy(res.json.message:find(message, 1, true), res.json.message) end
  end

  setup(function() emu = emulator.start("uapi") end)
  teardown(function() emu:stop() end)
  before_each(function()
    emu:reset()
    emu:config{ visitor_credits = 100000 }
  end)

  describe("success", function()
    it("recognizes a file with geometry by default", function()
      local res = post{ file(PNG .. "TEXT:你好\nHi") }
      assert.equal(200, res.status, res.body)
      assert.truthy(res.headers["x-request-id"])
      local b = res.json
      assert.equal("你好\nHi", b.text)
      assert.equal("你好\nHi", b.plain_text)
      assert.is_true(b.need_location)
      assert.equal(2, b.words_result_num)
      assert.is_nil(b.markdown)
      local w = b.words_result[1]
      assert.equal("你好", w.words)
      assert.same({ left = 20, top = 20, width = 64, height = 32 }, w.location)
      assert.same({ { x = 20, y = 20 }, { x = 84, y = 20 }, { x = 84, y = 52 }, { x = 20, y = 52 } },
                  w.vertexes_location)
      assert.is_true(w.score > 0 and w.score < 1)
    end)

    it("omits geometry with need_location=false and returns markdown only when asked", function()
      local b = post{ file(PNG .. "TEXT:标题\n正文"), field("need_location", "false"),
                      field("return_markdown", "true"), field("enable_cls", "true") }.json
      assert.is_false(b.need_location)
      assert.is_nil(b.words_result[1].location)
      assert.is_nil(b.words_result[1].vertexes_location)
      assert.truthy(b.words_result[1].score)
      assert.equal("# 标题\n\n正文", b.markdown)
      local call = emu:state().calls[1]
      assert.is_true(call.enable_cls)
      assert.is_false(call.need_location)
    end)

    it("accepts bare base64, a data URI, and wrapped base64", function()
      for _, v in ipairs{ PNG_B64, "data:image/png;base64," .. PNG_B64,
                          PNG_B64:sub(1, 20) .. "\r\n" .. PNG_B64:sub(21) } do
        local res = post{ field("image_base64", v), field("image_name", "扫描.png") }
        assert.equal(200, res.status, res.body)
        assert.equal("你好\nHi", res.json.text)
      end
      local calls = emu:state().calls
      assert.is_false(calls[1].data_uri)
      assert.is_true(calls[2].data_uri)
      assert.equal("扫描.png", calls[1].image_name)
    end)

    it("recognizes a url as url_text", function()
      emu:config{ url_text = "远程图片" }
      local res = post{ field("url", "https://img.example.cn/a.png") }
      assert.equal(200, res.status, res.body)
      assert.equal("远程图片", res.json.text)
    end)
  end)

  describe("400 INVALID_PARAMETER", function()
    it("Format 1: no source (an empty one counts as none)", function()
      expect(post{ field("need_location", "true") }, 400, "INVALID_PARAMETER", "至少要传一个")
      expect(post{ file("") }, 400, "INVALID_PARAMETER", "至少要传一个")
    end)
    it("Format 2: conflicting sources", function()
      expect(post{ file(PNG), field("url", "https://a.example/x.png") }, 400, "INVALID_PARAMETER", "请勿同时提交")
      expect(post{ field("image_base64", PNG_B64), field("url", "https://a.example/x.png") },
             400, "INVALID_PARAMETER", "请勿同时提交")
    end)
    it("Format 3: bad base64", function()
      for _, v in ipairs{ "!!!notbase64", PNG_B64:sub(1, -2), "data:image/png;base64,%%%" } do
        expect(post{ field("image_base64", v) }, 400, "INVALID_PARAMETER", "Base64")
      end
    end)
    it("booleans other than exactly true/false", function()
      for _, name in ipairs{ "need_location", "return_markdown", "enable_cls" } do
        for _, v in ipairs{ "True", "1", "yes", "" } do
          expect(post{ file(PNG), field(name, v) }, 400, "INVALID_PARAMETER", name)
        end
      end
    end)
    it("unknown and repeated fields, a file sent as text, a non-multipart body, a bad url", function()
      expect(post{ file(PNG), field("language", "zh") }, 400, "INVALID_PARAMETER", "language")
      expect(post{ file(PNG), field("enable_cls", "true"), field("enable_cls", "true") },
             400, "INVALID_PARAMETER", "enable_cls")
      expect(post{ field("file", PNG) }, 400, "INVALID_PARAMETER", "file")
      expect(post(nil, { body = '{"url":"https://a.example/x.png"}', ctype = "application/json" }),
             400, "INVALID_PARAMETER", "multipart")
      expect(post{ field("url", "ftp://a.example/x.png") }, 400, "INVALID_PARAMETER", "url")
    end)
  end)

  describe("size and format", function()
    it("413 over max_file_size, for a file and for decoded base64", function()
      emu:config{ max_file_size = 16 }
      expect(post{ file(PNG .. "TEXT:x") }, 413, "FILE_TOO_LARGE", "16")
      expect(post{ field("image_base64", PNG_B64) }, 413, "FILE_TOO_LARGE")
      assert.equal(200, post{ file(PNG:sub(1, 16)) }.status)
    end)
    it("415 for bytes that are no image", function()
      expect(post{ file("%PDF-1.4 ...", "a.pdf") }, 415, "UNSUPPORTED_MEDIA_TYPE")
      expect(post{ file("plain text") }, 415, "UNSUPPORTED_MEDIA_TYPE")
    end)
  end)

  describe("auth, quota and rate limit", function()
    it("401 for a wrong key or another scheme; a valid Bearer is charged to the key", function()
      expect(post({ file(PNG) }, { auth = "Bearer wrong" }), 401, "UNAUTHORIZED")
      expect(post({ file(PNG) }, { auth = KEY }), 401, "UNAUTHORIZED")
      expect(post({ file(PNG) }, { auth = "Basic " .. KEY }), 401, "UNAUTHORIZED")
      assert.equal(200, post({ file(PNG) }, { auth = "Bearer " .. KEY }).status)
      local st = emu:state()
      assert.equal(4, st.credits_used[KEY])
      assert.equal(0, st.visitor_used)
    end)
    it("401 for anonymous calls when anonymous is off", function()
      emu:config{ anonymous = false }
      expect(post{ file(PNG) }, 401, "UNAUTHORIZED")
    end)
    it("429 VISITOR_MONTHLY_QUOTA_EXHAUSTED once the visitor quota is used, without Retry-After", function()
      emu:config{ visitor_credits = 8 }
      assert.equal(200, post{ file(PNG) }.status)
      assert.equal(200, post{ file(PNG) }.status)
      local res = post{ file(PNG) }
      expect(res, 429, "VISITOR_MONTHLY_QUOTA_EXHAUSTED")
      assert.is_nil(res.headers["retry-after"])
      assert.equal(8, emu:state().visitor_used)
    end)
    it("402 INSUFFICIENT_CREDITS for a key without credits", function()
      emu:config{ credits = 4 }
      assert.equal(200, post({ file(PNG) }, { auth = "Bearer " .. KEY }).status)
      expect(post({ file(PNG) }, { auth = "Bearer " .. KEY }), 402, "INSUFFICIENT_CREDITS")
    end)
    it("429 SERVICE_BUSY with Retry-After over the rate limit", function()
      emu:config{ rate_limit = 1, retry_after = 3 }
      assert.equal(200, post{ file(PNG) }.status)
      local res = post{ file(PNG) }
      expect(res, 429, "SERVICE_BUSY")
      assert.equal("3", res.headers["retry-after"])
    end)
  end)

  describe("engine failures and billing", function()
    it("502 REQUEST_FAILED is charged, 503 SERVICE_TEMPORARILY_UNAVAILABLE is not", function()
      emu:config{ engine_errors = { 503, 502 } }
      expect(post{ file(PNG) }, 503, "SERVICE_TEMPORARILY_UNAVAILABLE", "暂时不可用")
      assert.equal(0, emu:state().charged)
      expect(post{ file(PNG) }, 502, "REQUEST_FAILED", "识别失败")
      assert.equal(4, emu:state().charged)
      assert.equal(200, post{ file(PNG) }.status)
      assert.equal(8, emu:state().charged)
    end)
    it("refused requests cost nothing", function()
      post{ field("url", "https://a.example/x.png"), file(PNG) }
      post{ file("not an image") }
      assert.equal(0, emu:state().charged)
    end)
  end)

  describe("routing", function()
    it("answers other paths with 404 and other methods with 405, with X-Request-Id", function()
      expect(post({ file(PNG) }, { path = "/api/v1/image/ocr2" }), 404, "NOT_FOUND")
      expect(post(nil, { method = "GET" }), 405, "METHOD_NOT_ALLOWED")
    end)
  end)
end)
