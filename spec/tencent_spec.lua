-- The tencent provider end to end through the public API, against the strict COS emulator, which
-- verifies every q-sign signature with its own implementation.
local ocr = require "ocr"
local core = require "ocr.core"
local F = require "helpers.files"
local rig = require "helpers.rig"
local expect = require "helpers.expect"

local SID, SKEY = "AKIDtestSecretId", "testSecretKey"

describe("tencent provider", function()
  local emu, dir, img

  local function client(opts)
    return rig.client("tencent", { secret_id = SID, secret_key = SKEY, endpoint = emu.url,
      backoff = { base = 0.01, cap = 0.05 } }, opts)
  end

  -- Puts an object into the emulator's bucket directly (not through the provider under test).
  local function preload(key, data)
    emu:config{ objects_b64 = { [key] = core.base64_encode(data) } }
  end

  setup(function()
    emu, dir, img = rig.start("tencent", { { "scan.png", "Hello COS\n你好 腾讯云" } })
  end)
  teardown(function() rig.stop(emu, dir) end)
  before_each(function() emu:reset() end)

  describe("sources", function()
    it("recognizes an object key, mapping polygons, boxes, confidence and angle", function()
      preload("scans/page 1.png", F.image("First line\n第二行"))
      emu:config{ angle = 359.5 }
      local res, err = client():recognize{ key = "scans/page 1.png" }
      assert.is_nil(err)
      assert.equal("First line\n第二行", res.text)
      assert.equal(2, #res.lines)
      local l1 = res.lines[1]
      assert.equal("First line", l1.text)
      assert.is_true(l1.confidence > 0 and l1.confidence <= 1)
      assert.equal(4, #l1.polygon)
      assert.is_number(l1.box.x)
      assert.is_true(l1.box.w > 0 and l1.box.h > 0)
      assert.is_true(res.lines[2].box.y > l1.box.y)
      assert.equal(359.5, res.angle)
      assert.equal("zh", res.language)
      assert.truthy(res.request_id)
      local gets = emu:requests("/scans/page 1.png", "GET")
      assert.equal(1, #gets)
      assert.equal("OCR", gets[1].query["ci-process"])
    end)

    it("keeps a single TextDetections as a list of one line", function()
      preload("one.png", F.image("only line"))
      local res = assert(client():recognize{ key = "one.png" })
      assert.equal(1, #res.lines)
      assert.equal("only line", res.lines[1].text)
    end)

    it("returns words with isword = true", function()
      preload("w.png", F.image("hello big world"))
      local res = assert(client():recognize{ key = "w.png", isword = true })
      local words = res.lines[1].words
      assert.equal(3, #words)
      assert.equal("world", words[3].text)
      assert.equal(4, #words[1].polygon)
      assert.is_true(words[1].confidence <= 1)
      assert.equal("true", emu:requests("/w.png", "GET")[1].query.isword)
    end)

    it("returns word polygons for handwriting with enable_word_polygon", function()
      preload("h.png", F.image("hand written"))
      local res = assert(client():recognize{ key = "h.png", type = "handwriting", enable_word_polygon = true })
      local words = res.lines[1].words
      assert.equal(2, #words)
      assert.equal(4, #words[2].polygon)
    end)

    it("sends every documented parameter", function()
      preload("doc.pdf", "%PDF-1.4\nTEXT:page one\fpage two")
      local res, err = client():recognize{ key = "doc.pdf", type = "general", language = "und",
                                           ispdf = true, pdf_pagenumber = 2, isword = false }
      assert.is_nil(err)
      assert.equal(2, res.pages)
      local q = emu:requests("/doc.pdf", "GET")[1].query
      assert.same({ ["ci-process"] = "OCR", type = "general", ["language-type"] = "auto", ispdf = "true",
                    ["pdf-pagenumber"] = "2", isword = "false" }, q)
    end)

    it("sends a URL as detect-url, percent-encoded once", function()
      emu:config{ url_text = "from the web" }
      local url = "https://example.com/a b/图.png?x=1&y=2"
      local res, err = client():recognize{ url = url }
      assert.is_nil(err)
      assert.equal("from the web", res.text)
      local e = emu:requests("/", "GET")[1]
      assert.equal(url, e.query["detect-url"])
      assert.truthy(e.raw_query:find("detect-url=https%3A%2F%2Fexample.com%2Fa%20b%2F", 1, true))
    end)

    it("uploads a file with a signed PUT, recognizes it, then deletes it", function()
      local res, err = client{ upload_prefix = "tmp/ocr/" }:recognize{ file = img }
      assert.is_nil(err)
      assert.equal("Hello COS\n你好 腾讯云", res.text)
      local log = emu:log()
      assert.equal(3, #log)
      assert.equal("PUT", log[1].method)
      assert.truthy(log[1].path:match("^/tmp/ocr/%x+%.png$"))
      assert.equal("GET", log[2].method)
      assert.equal(log[1].path, log[2].path)
      assert.equal("DELETE", log[3].method)
      assert.same({}, emu:state().objects)
    end)

    it("keeps the upload with keep_upload and recognizes in-memory data", function()
      local res, err = client{ keep_upload = true }:recognize{ data = F.image("kept"), filename = "k.jpg" }
      assert.is_nil(err)
      assert.equal("kept", res.text)
      local key = res.raw.UploadedKey
      assert.truthy(key:match("^ocr%-uploads/%x+%.jpg$"))
      assert.truthy(emu:state().objects[key])
      local again = assert(client():recognize{ key = key })
      assert.equal("kept", again.text)
    end)
  end)

  describe("signing", function()
    it("sends a security token, signed, for temporary credentials", function()
      emu:config{ credentials = { TMPID = { key = "tmpkey", token = "session-token-xyz" } } }
      preload("t.png", F.image("temp"))
      local res, err = ocr.new("tencent", { secret_id = "TMPID", secret_key = "tmpkey",
        security_token = "session-token-xyz", endpoint = emu.url }):recognize{ key = "t.png" }
      assert.is_nil(err)
      assert.equal("temp", res.text)
      local e = emu:requests("/t.png")[1]
      assert.equal("session-token-xyz", e.headers["x-cos-security-token"])
      assert.truthy(e.headers.authorization:find("x-cos-security-token", 1, true))
      local _, err2 = ocr.new("tencent", { secret_id = "TMPID", secret_key = "tmpkey",
        endpoint = emu.url }):recognize{ key = "t.png" }
      assert.equal("auth", err2.kind)
    end)

    it("maps a wrong secret key to auth / SignatureDoesNotMatch, never retried", function()
      preload("a.png", F.image("x"))
      local res, err = client{ secret_key = "wrong-secret-key" }:recognize{ key = "a.png" }
      assert.is_nil(res)
      assert.equal("auth", err.kind)
      assert.equal("SignatureDoesNotMatch", err.code)
      assert.equal(403, err.status)
      assert.truthy(err.request_id)
      assert.equal(1, #emu:log())
      assert.is_nil(tostring(err):find("wrong-secret-key", 1, true))
    end)

    it("maps an unknown secret id to auth / InvalidAccessKeyId", function()
      local _, err = client{ secret_id = "AKIDnobody" }:recognize{ key = "a.png" }
      assert.equal("auth", err.kind)
      assert.equal("InvalidAccessKeyId", err.code)
    end)

    it("signs keys with unicode, spaces and plus signs", function()
      local key = "目录/a+b c~d.png"
      preload(key, F.image("odd key"))
      local res, err = client():recognize{ key = key }
      assert.is_nil(err)
      assert.equal("odd key", res.text)
    end)

    it("builds the endpoint from bucket and region", function()
      local c = ocr.new("tencent", { secret_id = SID, secret_key = SKEY, bucket = "scans-1250000000",
                                     region = "ap-guangzhou" })
      assert.equal("https://scans-1250000000.cos.ap-guangzhou.myqcloud.com", c.endpoint)
      assert.has_error(function() ocr.new("tencent", { secret_id = SID, secret_key = SKEY }) end)
      assert.has_error(function()
        ocr.new("tencent", { secret_id = SID, secret_key = SKEY, bucket = "no_appid", region = "ap-guangzhou" })
      end)
    end)
  end)

  describe("errors", function()
    it("maps NoSuchKey to not_found with the request id", function()
      local res, err = client():recognize{ key = "missing.png" }
      assert.is_nil(res)
      assert.equal("not_found", err.kind)
      assert.equal("NoSuchKey", err.code)
      assert.equal(404, err.status)
      assert.truthy(err.request_id and #err.request_id > 0)
    end)

    it("maps content the vendor cannot read to invalid_input", function()
      preload("bad.png", "not an image at all")
      local _, err = client():recognize{ key = "bad.png" }
      assert.equal("invalid_input", err.kind)
      assert.equal("InvalidContent", err.code)
    end)

    it("maps an unreachable detect-url to invalid_input", function()
      emu:config{ unreachable_urls = { "https://gone.example/x.png" } }
      local _, err = client():recognize{ url = "https://gone.example/x.png" }
      assert.equal("invalid_input", err.kind)
      assert.equal("ResourceDownloadFailed", err.code)
    end)

    local injected = {
      { 503, "SlowDown", "rate_limited" }, { 500, "InternalError", "server" },
      { 403, "AccessDenied", "auth" }, { 400, "InvalidArgument", "invalid_input" },
      { 404, "ResourceNotFound", "not_found" }, { 403, "RequestTimeTooSkewed", "auth" },
      { 400, "MissingContent", "invalid_input" },
    }
    for _, c in ipairs(injected) do
      it(("maps %d %s to %s"):format(c[1], c[2], c[3]), function()
        preload("e.png", F.image("x"))
        emu:fault{ action = "status", status = c[1], times = 10, content_type = "application/xml",
                   body = ("<?xml version='1.0'?><Error><Code>%s</Code><Message>injected</Message><RequestId>rid-1</RequestId></Error>"):format(c[2]) }
        local _, err = client{ retries = 1 }:recognize{ key = "e.png" }
        assert.equal(c[3], err.kind)
        assert.equal(c[2], err.code)
        assert.equal("rid-1", err.request_id)
        -- The OCR GET is billed: only a refusal (rate_limited: nothing was done) is sent again.
        local expected_attempts = c[3] == "rate_limited" and 2 or 1
        assert.equal(expected_attempts, #emu:log())
      end)
    end

    it("the billed OCR GET: a SlowDown is retried, a lost or cut answer is never sent again", function()
      preload("r.png", F.image("retried"))
      emu:fault{ action = "status", status = 503, path = "/r.png",
                 body = "<Error><Code>SlowDown</Code></Error>", content_type = "application/xml" }
      local res, err = client{ retries = 3 }:recognize{ key = "r.png" }
      assert.is_nil(err)
      assert.equal("retried", res.text)
      assert.equal(2, #emu:log())
      for _, fault in ipairs{ "drop", "truncate" } do
        emu:reset()
        preload("r.png", F.image("retried"))
        emu:fault{ action = fault, path = "/r.png" }
        local res2, err2 = client{ retries = 3 }:recognize{ key = "r.png" }
        assert.is_nil(res2)
        assert.equal("network", err2.kind, fault)
        assert.is_true(err2.sent, fault)
        assert.equal(1, #emu:requests("/r.png", "GET"), fault)   -- paid once, asked once
      end
    end)

    it("turns malformed XML into a protocol error", function()
      preload("m.png", F.image("x"))
      emu:fault{ action = "malformed", body = "<Response><TextDetections>", content_type = "application/xml" }
      local _, err = client():recognize{ key = "m.png" }
      assert.equal("protocol", err.kind)
    end)

    it("deletes the upload even when recognition fails", function()
      emu:fault{ action = "status", status = 400, method = "GET", content_type = "application/xml",
                 body = "<Error><Code>InvalidArgument</Code><Message>no</Message></Error>" }
      local _, err = client():recognize{ file = img }
      assert.equal("invalid_input", err.kind)
      local methods = {}
      for _, e in ipairs(emu:log()) do methods[#methods + 1] = e.method end
      assert.same({ "PUT", "GET", "DELETE" }, methods)
      assert.same({}, emu:state().objects)
    end)
  end)

  describe("invalid input sends nothing", function()
    local cases = {
      { "an unknown type", { key = "a.png", type = "magic" } },
      { "an unknown language", { key = "a.png", language = "klingon" } },
      { "a language with a type other than general", { key = "a.png", type = "fast", language = "ja" } },
      { "a non-boolean isword", { key = "a.png", isword = "yes" } },
      { "page 0", { key = "a.png", pdf_pagenumber = 0 } },
      { "a key and a url", { key = "a.png", url = "https://a.example/b.png" } },
      { "an empty key", { key = "/" } },
      { "a missing file", { file = dir .. "/nope.png" } },
    }
    for _, c in ipairs(cases) do
      it("refuses " .. c[1], function()
        expect.invalid_input_sends_nothing(client(), c[2], emu)
      end)
    end
  end)
end)
