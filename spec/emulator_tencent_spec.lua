-- Proves that spec/emulators/tencent.py enforces the Tencent COS / CI OCR contract
-- (its public API documentation). Requests go through a raw LuaSocket client so
-- the spec controls every byte; they are signed by a small q-sign written here in Lua on top of
-- ocr.core's primitives (sha1, hmac_sha1, hex, url_encode) -- deliberately not ocr.core.cos_sign,
-- which this spec only cross-checks. The signer itself is first checked against the worked
-- examples of Tencent's "Request Signature" document, so neither side vouches for itself.
local core = require "ocr.core"
local emulator = require "helpers.emulator"
local rawhttp = require "helpers.rawhttp"

local AK, SK = "AKIDtestSecretId", "testSecretKey"
local PNG = "\137PNG\r\n\26\n\0\0\0\rIHDR"

-- q-sign ---------------------------------------------------------------------------------------

local function canonical(pairs)
  local t = {}
  for _, p in ipairs(pairs) do t[#t + 1] = { core.url_encode(p[1]):lower(), core.url_encode(p[2]) } end
  table.sort(t, function(a, b) return a[1] < b[1] end)
  local keys, kv = {}, {}
  for i, p in ipairs(t) do keys[i], kv[i] = p[1], p[1] .. "=" .. p[2] end
  return table.concat(keys, ";"), table.concat(kv, "&")
end

--- o: {ak, sk, method, path (decoded), params = {{k, v}}, headers = {{k, v}}, start, expire}
--- (keys and values raw, not encoded). Returns the Authorization value and the intermediates.
local function qsign(o)
  local kt = o.start .. ";" .. o.expire
  local sign_key = core.hex(core.hmac_sha1(o.sk, kt))
  local plist, pstr = canonical(o.params or {})
  local hlist, hstr = canonical(o.headers or {})
  local http_string = o.method:lower() .. "\n" .. o.path .. "\n" .. pstr .. "\n" .. hstr .. "\n"
  local sts = "sha1\n" .. kt .. "\n" .. core.hex(core.sha1(http_string)) .. "\n"
  local sig = core.hex(core.hmac_sha1(sign_key, sts))
  return ("q-sign-algorithm=sha1&q-ak=%s&q-sign-time=%s&q-key-time=%s&q-header-list=%s"
          .. "&q-url-param-list=%s&q-signature=%s"):format(o.ak, kt, kt, hlist, plist, sig),
         { sign_key = sign_key, http_string = http_string, string_to_sign = sts, signature = sig }
end

local function decode_query(q)
  local out = {}
  for seg in (q or ""):gmatch("[^&]+") do
    local k, v = seg:match("^([^=]*)=?(.*)$")
    out[#out + 1] = { assert(core.url_decode(k)), assert(core.url_decode(v)) }
  end
  return out
end

describe("tencent emulator", function()
  local emu, host

  --- A signed request. o: {method, path (raw, as on the wire), query (raw), headers = {{k, v}},
  --- body, length = false (no Content-Length), ak, sk, start, expire, token,
  --- unsigned = {lowercase header name = true}, unsigned_params = {name = true},
  --- auth = exact Authorization (or false for none), tamper = function(auth) -> auth}
  local function cos(o)
    local now = os.time()
    local headers = { { "Host", host } }
    for _, h in ipairs(o.headers or {}) do headers[#headers + 1] = h end
    if o.token then headers[#headers + 1] = { "x-cos-security-token", o.token } end
    if o.body and o.length ~= false then
      headers[#headers + 1] = { "Content-Length", tostring(#o.body) }
    end
    local signed = {}
    for _, h in ipairs(headers) do
      local n = h[1]:lower()
      if not (o.unsigned or {})[n] and (n == "host" or n:match("^x%-cos%-") or n:match("^x%-ci%-")
                                         or n == "content-md5" or n == "content-type") then
        signed[#signed + 1] = { n, h[2] }
      end
    end
    local params = {}
    for _, p in ipairs(decode_query(o.query)) do
      if not (o.unsigned_params or {})[p[1]] then params[#params + 1] = p end
    end
    local auth = o.auth
    if auth == nil then
      auth = qsign{ ak = o.ak or AK, sk = o.sk or SK, method = o.method,
                    path = assert(core.url_decode(o.path)), params = params, headers = signed,
                    start = o.start or now - 60, expire = o.expire or now + 600 }
      if o.tamper then auth = o.tamper(auth) end
    end
    if auth then headers[#headers + 1] = { "Authorization", auth } end
    local target = o.path .. ((o.query and o.query ~= "") and ("?" .. o.query) or "")
    -- Host and Content-Length are in `headers` already, as signed (or deliberately left out)
    return rawhttp.request(emu.port, o.method, target, headers, o.body,
                           { host = false, length = false })
  end

  local function put(key, bytes, extra)
    local o = { method = "PUT", path = "/" .. key, body = bytes }
    for k, v in pairs(extra or {}) do o[k] = v end
    local res = cos(o)
    assert.are.equal(200, res.status, res.body)
    return res
  end

  local function ocr(key, query, extra)
    local o = { method = "GET", path = "/" .. key, query = "ci-process=OCR" .. (query or "") }
    for k, v in pairs(extra or {}) do o[k] = v end
    return cos(o)
  end

  --- Asserts a COS XML error and returns its fields.
  local function expect_error(res, status, code)
    assert.are.equal(status, res.status, res.body)
    assert.are.equal("application/xml", res.headers["content-type"])
    local e = {}
    for _, f in ipairs({ "Code", "Message", "Resource", "RequestId", "TraceId" }) do
      e[f] = res.body:match("<Error>.*<" .. f .. ">(.-)</" .. f .. ">.*</Error>")
      assert.truthy(e[f], f .. " missing in " .. res.body)
    end
    assert.truthy(res.body:match('^<%?xml version="1.0" encoding="UTF%-8"%?>'))
    assert.are.equal(code, e.Code, e.Message)
    assert.are.equal(res.headers["x-cos-request-id"], e.RequestId)
    return e
  end

  local function detections(body)
    local out = {}
    for block in body:gmatch("<TextDetections>(.-)</TextDetections>") do out[#out + 1] = block end
    return out
  end

  setup(function()
    emu = emulator.start("tencent")
    host = "127.0.0.1:" .. emu.port
  end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  describe("the spec's own signer", function()
    -- Worked examples of https://cloud.tencent.com/document/product/436/7778 (upload and
    -- download); the document prints the intermediates and masks the signatures' last 4 digits.
    local doc_sk = "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"
    local put_headers = {
      { "Date", "Thu, 16 May 2019 06:45:51 GMT" },
      { "Host", "examplebucket-1250000000.cos.ap-beijing.myqcloud.com" },
      { "Content-Type", "text/plain" }, { "Content-Length", "13" },
      { "Content-MD5", "mQ/fVh815F3k6TAUm8m0eg==" }, { "x-cos-acl", "private" },
      { "x-cos-grant-read", 'uin="100000000011"' } }
    local get_headers = { { "Date", "Thu, 16 May 2019 06:55:53 GMT" },
                          { "Host", "examplebucket-1250000000.cos.ap-beijing.myqcloud.com" } }
    local get_params = { { "response-content-type", "application/octet-stream" },
                         { "response-cache-control", "max-age=600" } }

    it("reproduces the documented upload example", function()
      local auth, mid = qsign{ ak = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", sk = doc_sk,
                               method = "PUT", path = "/exampleobject(腾讯云)",
                               headers = put_headers, start = 1557989151, expire = 1557996351 }
      assert.are.equal("eb2519b498b02ac213cb1f3d1a3d27a3b3c9bc5f", mid.sign_key)
      assert.are.equal("sha1\n1557989151;1557996351\n8b2751e77f43a0995d6e9eb9477f4b685cca4172\n",
                       mid.string_to_sign)
      assert.are.equal("3b8851a11a569213c17ba8fa7dcf2abec693", mid.signature:sub(1, 36))
      assert.truthy(auth:find("&q-header-list=content-length;content-md5;content-type;date;host;"
                              .. "x-cos-acl;x-cos-grant-read&q-url-param-list=&", 1, true))
    end)
    it("reproduces the documented download example", function()
      local auth, mid = qsign{ ak = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", sk = doc_sk,
                               method = "GET", path = "/exampleobject(腾讯云)", params = get_params,
                               headers = get_headers, start = 1557989753, expire = 1557996953 }
      assert.are.equal("937914bf490e9e8c189836aad2052e4feeb35eaf", mid.sign_key)
      assert.are.equal("get\n/exampleobject(腾讯云)\nresponse-cache-control=max-age%3D600"
                       .. "&response-content-type=application%2Foctet-stream\ndate=Thu%2C%2016%20May"
                       .. "%202019%2006%3A55%3A53%20GMT&host=examplebucket-1250000000.cos.ap-beijing"
                       .. ".myqcloud.com\n", mid.http_string)
      assert.are.equal("54ecfe22f59d3514fdc764b87a32d8133ea611e6", core.hex(core.sha1(mid.http_string)))
      assert.are.equal("01681b8c9d798a678e43b685a9f1bba0f6c0", mid.signature:sub(1, 36))
      assert.truthy(auth:find("&q-header-list=date;host&q-url-param-list=response-cache-control;"
                              .. "response-content-type&", 1, true))
    end)
    it("agrees with the emulator's own self-test on the same examples", function()
      -- (a sanitizer preloaded into this Lua must not follow into python)
      local p = assert(io.popen("env -u LD_PRELOAD python3 spec/emulators/qsign.py selftest"))
      local out = p:read("*a")
      local ok = p:close()
      assert.are.equal("qsign selftest ok\n", out)
      assert.truthy(ok)
    end)
    it("agrees with ocr.core.cos_sign", function()
      if type(core.cos_sign) ~= "function" then return pending("ocr.core.cos_sign not built") end
      local function map(list)
        local m = {}
        for _, kv in ipairs(list) do m[kv[1]] = kv[2] end
        return m
      end
      local mine = qsign{ ak = "AKIDexample", sk = doc_sk, method = "GET", path = "/a b/图.png",
                          params = get_params, headers = get_headers, start = 1557989753,
                          expire = 1557996953 }
      assert.are.equal(mine, core.cos_sign{ secret_id = "AKIDexample", secret_key = doc_sk,
                                            method = "GET", path = "/a b/图.png",
                                            params = map(get_params), headers = map(get_headers),
                                            start = 1557989753, expire = 1557996953 })
    end)
  end)

  describe("authentication", function()
    it("accepts a good signature (PUT, GET, HEAD, DELETE)", function()
      local res = put("dir/a%20b%E5%9B%BE.png", PNG .. "TEXT:hi")
      assert.are.equal('"' .. core.hex(core.md5(PNG .. "TEXT:hi")) .. '"', res.headers["etag"])
      assert.truthy(res.headers["x-cos-request-id"])
      assert.are.same({ size = #PNG + 7, etag = res.headers["etag"] },
                      emu:state().objects["dir/a b图.png"])
      local got = cos{ method = "GET", path = "/dir/a%20b%E5%9B%BE.png" }
      assert.are.equal(200, got.status)
      assert.are.equal(PNG .. "TEXT:hi", got.body)
      local head = cos{ method = "HEAD", path = "/dir/a%20b%E5%9B%BE.png" }
      assert.are.equal(200, head.status)
      assert.are.equal(tostring(#PNG + 7), head.headers["content-length"])
      assert.are.equal(204, cos{ method = "DELETE", path = "/dir/a%20b%E5%9B%BE.png" }.status)
      expect_error(cos{ method = "GET", path = "/dir/a%20b%E5%9B%BE.png" }, 404, "NoSuchKey")
      -- COS answers 204 for a key that is not there
      assert.are.equal(204, cos{ method = "DELETE", path = "/dir/a%20b%E5%9B%BE.png" }.status)
      assert.are.same({}, emu:state().objects)
    end)
    it("refuses a request without Authorization", function()
      local e = expect_error(cos{ method = "GET", path = "/x.png", auth = false }, 403,
                             "AccessDenied")
      assert.are.equal(host .. "/x.png", e.Resource)
    end)
    it("refuses an Authorization with a field missing", function()
      for _, field in ipairs({ "q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time",
                               "q-header-list", "q-url-param-list", "q-signature" }) do
        local res = cos{ method = "GET", path = "/x.png", tamper = function(a)
          return (a:gsub("&?" .. field:gsub("%-", "%%-") .. "=[^&]*", ""))
        end }
        expect_error(res, 403, "AccessDenied")
      end
    end)
    it("refuses a tampered signature with SignatureDoesNotMatch", function()
      put("x.png", PNG)
      local res = cos{ method = "GET", path = "/x.png", tamper = function(a)
        return a:gsub("(q%-signature=)(%x)", function(k, d) return k .. (d == "0" and "1" or "0") end)
      end }
      expect_error(res, 403, "SignatureDoesNotMatch")
      expect_error(cos{ method = "GET", path = "/x.png", sk = "wrongSecretKey" }, 403,
                   "SignatureDoesNotMatch")
      -- a signature made for another path
      local auth = qsign{ ak = AK, sk = SK, method = "GET", path = "/y.png",
                          headers = { { "host", host } }, start = os.time() - 60,
                          expire = os.time() + 600 }
      expect_error(cos{ method = "GET", path = "/x.png", auth = auth }, 403, "SignatureDoesNotMatch")
    end)
    it("refuses an unknown SecretId with InvalidAccessKeyId", function()
      expect_error(cos{ method = "GET", path = "/x.png", ak = "AKIDunknown" }, 403,
                   "InvalidAccessKeyId")
    end)
    it("wants host and every x-cos-* / x-ci-* header signed", function()
      put("x.png", PNG)
      expect_error(cos{ method = "GET", path = "/x.png", unsigned = { host = true } }, 403,
                   "AccessDenied")
      expect_error(cos{ method = "PUT", path = "/y.png", body = PNG,
                        headers = { { "x-cos-acl", "private" } }, unsigned = { ["x-cos-acl"] = true } },
                   403, "AccessDenied")
      expect_error(cos{ method = "GET", path = "/x.png", headers = { { "x-ci-trace", "1" } },
                        unsigned = { ["x-ci-trace"] = true } }, 403, "AccessDenied")
      -- signed, the same headers pass
      put("y.png", PNG, { headers = { { "x-cos-acl", "private" } } })
    end)
    it("wants every query parameter signed unless require_all_params_signed is off", function()
      put("x.png", PNG)
      local res = ocr("x.png", "&isword=true", { unsigned_params = { isword = true } })
      expect_error(res, 403, "AccessDenied")
      emu:config({ require_all_params_signed = false })
      res = ocr("x.png", "&isword=true", { unsigned_params = { isword = true } })
      assert.are.equal(200, res.status, res.body)
    end)
    it("refuses a signature naming a header or parameter that is not sent", function()
      put("x.png", PNG)
      local now = os.time()
      local auth = qsign{ ak = AK, sk = SK, method = "GET", path = "/x.png",
                          headers = { { "host", host }, { "x-cos-meta-a", "1" } },
                          start = now - 60, expire = now + 600 }
      expect_error(cos{ method = "GET", path = "/x.png", auth = auth }, 403, "SignatureDoesNotMatch")
    end)
    it("refuses an expired window with AccessDenied 'Request has expired'", function()
      local now = os.time()
      local e = expect_error(cos{ method = "GET", path = "/x.png", start = now - 3600,
                                  expire = now - 5 }, 403, "AccessDenied")
      assert.are.equal("Request has expired", e.Message)
    end)
    it("refuses a window starting beyond max_skew with RequestTimeTooSkewed", function()
      put("x.png", PNG)
      local now = os.time()
      expect_error(cos{ method = "GET", path = "/x.png", start = now + 1000, expire = now + 2000 },
                   403, "RequestTimeTooSkewed")
      -- within the skew it passes
      assert.are.equal(200, cos{ method = "GET", path = "/x.png", start = now + 300,
                                 expire = now + 2000 }.status)
      emu:config({ max_skew = 100 })
      expect_error(cos{ method = "GET", path = "/x.png", start = now + 300, expire = now + 2000 },
                   403, "RequestTimeTooSkewed")
    end)
    describe("with a temporary credential", function()
      before_each(function()
        emu:config({ credentials = { AKIDtemp = { key = "tempKey", token = "tok-123" } } })
      end)
      local function get(extra)
        local o = { method = "GET", path = "/x.png", ak = "AKIDtemp", sk = "tempKey" }
        for k, v in pairs(extra or {}) do o[k] = v end
        return cos(o)
      end
      it("requires x-cos-security-token", function()
        expect_error(get(), 403, "InvalidAccessKeyId")
      end)
      it("requires the right token", function()
        expect_error(get({ token = "tok-456" }), 403, "InvalidAccessKeyId")
      end)
      it("requires the token signed", function()
        expect_error(get({ token = "tok-123", unsigned = { ["x-cos-security-token"] = true } }),
                     403, "AccessDenied")
      end)
      it("accepts the signed token", function()
        expect_error(get({ token = "tok-123" }), 404, "NoSuchKey")   -- authenticated, no object
        assert.are.equal(200, cos{ method = "PUT", path = "/x.png", body = PNG, ak = "AKIDtemp",
                                   sk = "tempKey", token = "tok-123" }.status)
      end)
      it("no longer knows the default credential", function()
        expect_error(cos{ method = "GET", path = "/x.png" }, 403, "InvalidAccessKeyId")
      end)
    end)
  end)

  describe("objects", function()
    it("wants Content-Length on PUT", function()
      local res = cos{ method = "PUT", path = "/c.png", length = false,
                       headers = { { "Transfer-Encoding", "chunked" } },
                       body = ("%x\r\n"):format(#PNG) .. PNG .. "\r\n0\r\n\r\n" }
      expect_error(res, 411, "MissingContentLength")
    end)
    it("refuses an object over max_object_size", function()
      emu:config({ max_object_size = 16 })
      put("ok.png", ("x"):rep(16))
      expect_error(cos{ method = "PUT", path = "/big.png", body = ("x"):rep(17) }, 400,
                   "EntityTooLarge")
    end)
    it("checks Content-MD5", function()
      local good = core.base64_encode(core.md5(PNG))
      put("m.png", PNG, { headers = { { "Content-MD5", good } } })
      expect_error(cos{ method = "PUT", path = "/m.png", body = PNG .. "x",
                        headers = { { "Content-MD5", good } } }, 400, "BadDigest")
    end)
    it("preloads objects from config", function()
      emu:config({ objects_b64 = { ["pre/l.png"] = core.base64_encode(PNG .. "TEXT:preloaded") } })
      local res = ocr("pre/l.png")
      assert.are.equal(200, res.status, res.body)
      assert.are.equal("preloaded", detections(res.body)[1]:match("<DetectedText>(.-)</DetectedText>"))
    end)
  end)

  describe("OCR", function()
    it("recognises an object, one TextDetections per line, with Words when isword=true", function()
      put("scan.png", PNG .. "TEXT:Hello world\n你好\n")
      local res = ocr("scan.png", "&type=general&language-type=zh&isword=true")
      assert.are.equal(200, res.status, res.body)
      assert.are.equal("application/xml", res.headers["content-type"])
      local body = res.body
      assert.truthy(body:match("^<Response>.*</Response>$"))
      local d = detections(body)
      assert.are.equal(2, #d)
      assert.are.equal("Hello world", d[1]:match("<DetectedText>(.-)</DetectedText>"))
      assert.are.equal("你好", d[2]:match("<DetectedText>(.-)</DetectedText>"))
      for i, block in ipairs(d) do
        local conf = tonumber(block:match("^<DetectedText>.-</DetectedText><Confidence>(%d+)</Confidence>"))
        assert.truthy(conf and conf >= 0 and conf <= 100)
        local pts = {}
        for x, y in block:gmatch("<Polygon><X>(%d+)</X><Y>(%d+)</Y></Polygon>") do
          pts[#pts + 1] = { tonumber(x), tonumber(y) }
        end
        assert.are.equal(4, #pts)
        local x, y, w, h = block:match("<ItemPolygon><X>(%d+)</X><Y>(%d+)</Y><Width>(%d+)</Width>"
                                       .. "<Height>(%d+)</Height></ItemPolygon>")
        x, y, w, h = tonumber(x), tonumber(y), tonumber(w), tonumber(h)
        assert.are.same({ { x, y }, { x + w, y }, { x + w, y + h }, { x, y + h } }, pts)
        assert.are.equal(20 + (i - 1) * 40, y)   -- lines stacked vertically
      end
      local chars = {}
      for c in body:gmatch("<Character>(.-)</Character>") do chars[#chars + 1] = c end
      assert.are.same({ "Hello", "world", "你", "好" }, chars)
      local words = select(2, body:gsub("<Words>", ""))
      assert.are.equal(4, words)
      assert.are.equal(16, select(2, body:gsub("<WordCoordinate><X>%d+</X><Y>%d+</Y></WordCoordinate>", "")))
      assert.truthy(body:match("</TextDetections><Language>zh</Language><Angel>0</Angel>"
                               .. "<PdfPageSize>0</PdfPageSize><RequestId>(.-)</RequestId></Response>$"))
      assert.are.equal(res.headers["x-cos-request-id"], body:match("<RequestId>(.-)</RequestId>"))
      assert.is_nil(body:find("<WordPolygon>", 1, true))
    end)
    it("leaves Words out unless isword=true (and for other types)", function()
      put("scan.png", PNG .. "TEXT:Hello")
      assert.is_nil(ocr("scan.png").body:find("<Words>", 1, true))
      assert.is_nil(ocr("scan.png", "&isword=false").body:find("<Words>", 1, true))
      assert.is_nil(ocr("scan.png", "&type=fast&isword=true").body:find("<Words>", 1, true))
      assert.truthy(ocr("scan.png", "&type=accurate&isword=true").body:find("<Words>", 1, true))
    end)
    it("gives WordPolygon for handwriting with enable-word-polygon=true", function()
      put("hw.png", PNG .. "TEXT:ab cd")
      local body = ocr("hw.png", "&type=handwriting&enable-word-polygon=true").body
      assert.are.equal(2, select(2, body:gsub("<WordPolygon><LeftTop><X>%d+</X><Y>%d+</Y></LeftTop>"
        .. "<RightTop><X>%d+</X><Y>%d+</Y></RightTop><RightBottom><X>%d+</X><Y>%d+</Y></RightBottom>"
        .. "<LeftBottom><X>%d+</X><Y>%d+</Y></LeftBottom></WordPolygon>", "")))
      assert.is_nil(ocr("hw.png", "&enable-word-polygon=true").body:find("<WordPolygon>", 1, true))
    end)
    it("XML-escapes recognised text", function()
      put("esc.png", PNG .. "TEXT:a<b & c>d\n\"q\" 'x'")
      local body = ocr("esc.png", "&isword=true").body
      local d = detections(body)
      assert.are.equal("a&lt;b &amp; c&gt;d", d[1]:match("<DetectedText>(.-)</DetectedText>"))
      assert.are.equal("&quot;q&quot; &apos;x&apos;", d[2]:match("<DetectedText>(.-)</DetectedText>"))
      assert.truthy(body:find("<Character>a&lt;b</Character>", 1, true))
      assert.truthy(body:find("<Character>c&gt;d</Character>", 1, true))
      assert.truthy(body:find("<Character>&amp;</Character>", 1, true))
      if type(core.xml_decode) == "function" then   -- a real (expat) parser reads it back
        local t = assert(core.xml_decode(body))
        assert.are.equal("a<b & c>d", t.Response.TextDetections[1].DetectedText)
        assert.are.equal("\"q\" 'x'", t.Response.TextDetections[2].DetectedText)
      end
    end)
    it("recognises default_text without the marker, and reports settings", function()
      emu:config({ default_text = "first\nsecond", angle = 1.5 })
      put("plain.png", PNG)
      local body = ocr("plain.png", "&language-type=auto").body
      assert.are.equal(2, #detections(body))
      assert.truthy(body:find("<Language>mix</Language><Angel>1.5</Angel>", 1, true))
    end)
    it("orders children alphabetically with xml_order=example, like the document's sample", function()
      emu:config({ xml_order = "example" })
      put("o.png", PNG .. "TEXT:x")
      local body = ocr("o.png").body
      assert.truthy(body:match("^<Response><Angel>0</Angel><Language>zh</Language><PdfPageSize>0"
                               .. "</PdfPageSize><RequestId>.-</RequestId><TextDetections><Confidence>"))
    end)
    describe("detect-url", function()
      it("accepts a URL encoded once", function()
        emu:config({ url_text = "from the web" })
        local res = cos{ method = "GET", path = "/",
                         query = "ci-process=OCR&detect-url=" .. core.url_encode("https://a.example/x.png?a=1&b=2") }
        assert.are.equal(200, res.status, res.body)
        assert.are.equal("from the web", res.body:match("<DetectedText>(.-)</DetectedText>"))
      end)
      it("refuses a URL encoded twice", function()
        local twice = core.url_encode(core.url_encode("http://a.example/x.png"))
        local e = expect_error(cos{ method = "GET", path = "/",
                                    query = "ci-process=OCR&detect-url=" .. twice },
                               400, "InvalidArgument")
        assert.truthy(e.Message:find("more than once", 1, true), e.Message)
      end)
      it("refuses a URL not encoded at all, unless told otherwise", function()
        local q = "ci-process=OCR&detect-url=http://a.example/x.png"
        expect_error(cos{ method = "GET", path = "/", query = q }, 400, "InvalidArgument")
        emu:config({ detect_url_must_be_encoded = false })
        assert.are.equal(200, cos{ method = "GET", path = "/", query = q }.status)
      end)
      it("refuses a non-http URL", function()
        expect_error(cos{ method = "GET", path = "/", query = "ci-process=OCR&detect-url="
                          .. core.url_encode("ftp://a.example/x.png") }, 400, "InvalidArgument")
      end)
      it("reports an unreachable URL", function()
        emu:config({ unreachable_urls = { "http://a.example/gone.png" } })
        expect_error(cos{ method = "GET", path = "/", query = "ci-process=OCR&detect-url="
                          .. core.url_encode("http://a.example/gone.png") }, 400,
                     "ResourceDownloadFailed")
      end)
    end)
    it("refuses bad parameters with InvalidArgument", function()
      put("p.png", PNG)
      for _, q in ipairs({ "ci-process=ocr", "ci-process=OCR&type=bogus", "ci-process=OCR&type=",
                           "ci-process=OCR&language-type=english", "ci-process=OCR&ispdf=yes",
                           "ci-process=OCR&isword=True", "ci-process=OCR&enable-word-polygon=1",
                           "ci-process=OCR&pdf-pagenumber=0", "ci-process=OCR&pdf-pagenumber=-1",
                           "ci-process=OCR&pdf-pagenumber=1.5", "ci-process=OCR&foo=bar",
                           "ci-process=OCR&type=general&type=fast" }) do
        expect_error(cos{ method = "GET", path = "/p.png", query = q }, 400, "InvalidArgument")
      end
      for _, lt in ipairs({ "zh", "zh_rare", "auto", "mix", "jap", "kor", "spa", "fre", "ger", "por",
                            "vie", "may", "rus", "ita", "hol", "swe", "fin", "dan", "nor", "hun",
                            "tha", "hi", "ara" }) do
        assert.are.equal(200, ocr("p.png", "&language-type=" .. lt).status, lt)
      end
    end)
    it("wants a key or detect-url, and an existing object", function()
      expect_error(cos{ method = "GET", path = "/", query = "ci-process=OCR" }, 400, "InvalidArgument")
      expect_error(ocr("missing.png"), 404, "NoSuchKey")
    end)
    it("refuses content that is no image", function()
      put("t.txt", "just text TEXT:hello")
      expect_error(ocr("t.txt"), 400, "InvalidContent")
      put("empty.png", "")
      expect_error(ocr("empty.png"), 400, "MissingContent")
    end)
    it("recognises one page of a PDF only with ispdf=true", function()
      put("d.pdf", "%PDF-1.7\nTEXT:page one\fpage two\nline 2")
      expect_error(ocr("d.pdf"), 400, "InvalidContent")
      expect_error(ocr("d.pdf", "&type=accurate&ispdf=true"), 400, "InvalidContent")
      local body = ocr("d.pdf", "&ispdf=true").body
      assert.are.equal("page one", body:match("<DetectedText>(.-)</DetectedText>"))
      assert.truthy(body:find("<PdfPageSize>2</PdfPageSize>", 1, true))
      body = ocr("d.pdf", "&ispdf=true&pdf-pagenumber=2").body
      assert.are.equal(2, #detections(body))
      assert.are.equal("page two", body:match("<DetectedText>(.-)</DetectedText>"))
      expect_error(ocr("d.pdf", "&ispdf=true&pdf-pagenumber=3"), 400, "InvalidArgument")
    end)
    it("counts OCR requests in its state", function()
      put("s.png", PNG)
      ocr("s.png")
      ocr("s.png")
      assert.are.equal(2, emu:state().ocr_requests)
    end)
  end)
end)
