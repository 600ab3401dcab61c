-- ocr.core.cos_sign: Tencent COS "q-sign" Authorization values.
-- Expected values were produced once by spec/tools/qsign_vectors.py, an independent python3
-- implementation written from the algorithm text (hashlib/hmac/urllib.parse.quote), which
-- itself first reproduces the two worked examples of Tencent's "Request Signature" document
-- (cloud.tencent.com/document/product/436/7778). The doc_* cases below are those examples.
local core = require "ocr.core"

local DOC_ID, DOC_KEY = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"
local ID, KEY = "AKIDexample", "secret-key-value"

local function sign(t)
  local base = { secret_id = ID, secret_key = KEY, method = "GET", path = "/", start = 1, expire = 2 }
  for k, v in pairs(t) do base[k] = v end
  return core.cos_sign(base)
end

local function fields(auth)
  local out, order = {}, {}
  for k, v in auth:gmatch("([^&=]+)=([^&]*)") do
    out[k] = v
    order[#order + 1] = k
  end
  return out, order
end

describe("ocr.core.cos_sign", function()
  it("reproduces Tencent's documented PUT example", function()
    local auth = core.cos_sign{
      secret_id = DOC_ID, secret_key = DOC_KEY, method = "PUT", path = "/exampleobject(腾讯云)",
      start = 1557989151, expire = 1557996351,
      headers = {
        ["Date"] = "Thu, 16 May 2019 06:45:51 GMT",
        ["Host"] = "examplebucket-1250000000.cos.ap-beijing.myqcloud.com",
        ["Content-Type"] = "text/plain", ["Content-Length"] = 13,
        ["Content-MD5"] = "mQ/fVh815F3k6TAUm8m0eg==", ["x-cos-acl"] = "private",
        ["x-cos-grant-read"] = 'uin="100000000011"',
      },
    }
    assert.are.equal("q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q" ..
      "&q-sign-time=1557989151;1557996351&q-key-time=1557989151;1557996351" ..
      "&q-header-list=content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read" ..
      "&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172", auth)
  end)

  it("reproduces Tencent's documented GET example (signed URL parameters)", function()
    local auth = core.cos_sign{
      secret_id = DOC_ID, secret_key = DOC_KEY, method = "GET", path = "/exampleobject(腾讯云)",
      start = 1557989753, expire = 1557996953,
      params = { ["response-content-type"] = "application/octet-stream",
                 ["response-cache-control"] = "max-age=600" },
      headers = { Date = "Thu, 16 May 2019 06:55:53 GMT",
                  Host = "examplebucket-1250000000.cos.ap-beijing.myqcloud.com" },
    }
    assert.are.equal("q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q" ..
      "&q-sign-time=1557989753;1557996953&q-key-time=1557989753;1557996953" ..
      "&q-header-list=date;host&q-url-param-list=response-cache-control;response-content-type" ..
      "&q-signature=01681b8c9d798a678e43b685a9f1bba0f6c0e012", auth)
  end)

  -- The four cases below mirror CASES in spec/tools/qsign_vectors.py one for one.
  it("signs a CI OCR GET (qsign_vectors.py: ocr_get)", function()
    assert.are.equal("q-sign-algorithm=sha1&q-ak=AKIDexample&q-sign-time=1700000000;1700003600" ..
      "&q-key-time=1700000000;1700003600&q-header-list=host" ..
      "&q-url-param-list=ci-process;ispdf;language-type;pdf-pagenumber;type" ..
      "&q-signature=dae09fa6d5065001ae72f86aeae70bc9065404d2",
      sign{ method = "GET", path = "/scan/page 1.jpg", start = 1700000000, expire = 1700003600,
            params = { ["ci-process"] = "OCR", type = "general", ["language-type"] = "zh",
                       ispdf = "false", ["pdf-pagenumber"] = "1" },
            headers = { Host = "ex-1250000000.cos.ap-beijing.myqcloud.com" } })
  end)

  it("signs unicode keys and values, spaces, '+', '/' and a security token (unicode)", function()
    assert.are.equal("q-sign-algorithm=sha1&q-ak=AKIDexample&q-sign-time=0;0&q-key-time=0;0" ..
      "&q-header-list=content-type;host;x-cos-meta-%e5%90%8d%e5%ad%97;x-cos-security-token" ..
      "&q-url-param-list=%e5%89%8d%e7%bc%80;key%20with%20space" ..
      "&q-signature=15e47cbe60c225315ffdb4c04f53fdf71756a830",
      sign{ method = "put", path = "/目录/文件 名.pdf", start = 0, expire = 0,
            params = { ["前缀"] = "值 一", ["Key With Space"] = "a+b/c" },
            headers = { ["Content-Type"] = "image/jpeg", ["X-COS-Meta-名字"] = "张三",
                        ["x-cos-security-token"] = "tok/en+with=chars ",
                        Host = "b-1.cos.ap-guangzhou.myqcloud.com" } })
  end)

  it("signs params without a value as 'k=' (empty_values)", function()
    assert.are.equal("q-sign-algorithm=sha1&q-ak=AKIDexample&q-sign-time=1;2&q-key-time=1;2" ..
      "&q-header-list=&q-url-param-list=acl;max-keys;prefix;uploads" ..
      "&q-signature=7bc6452f5456a2106a533a5764de31fa2cc24b9f",
      sign{ method = "Get", path = "/", start = 1, expire = 2,
            params = { uploads = "", acl = "", prefix = "a b", ["max-keys"] = "20" },
            headers = {} })
  end)

  it("sorts byte-wise on the encoded, lowercased key (sorting)", function()
    assert.are.equal("q-sign-algorithm=sha1&q-ak=AKIDexample&q-sign-time=10;20&q-key-time=10;20" ..
      "&q-header-list=x-ci-foo;x-cos-a;x-cos-b&q-url-param-list=a-;a.;a~;b;b_;z" ..
      "&q-signature=21c0bd7018c966d40adae4e2473651cb940f151c",
      sign{ method = "HEAD", path = "/k", start = 10, expire = 20,
            params = { b = "2", B_ = "3", ["a~"] = "1", ["A."] = "0", ["a-"] = "x", Z = "z" },
            headers = { ["X-Ci-Foo"] = "~-._", ["x-cos-b"] = "!*'()", ["x-cos-A"] = "%41" } })
  end)

  describe("structure", function()
    local auth = sign{ params = { B = "1", a = "2", ["C d"] = "" },
                       headers = { ["X-Cos-Z"] = "1", Host = "h", ["x-cos-security-token"] = "t" } }
    local f, order = fields(auth)

    it("has the seven fields in the documented order", function()
      assert.are.same({ "q-sign-algorithm", "q-ak", "q-sign-time", "q-key-time",
                        "q-header-list", "q-url-param-list", "q-signature" }, order)
      assert.are.equal("sha1", f["q-sign-algorithm"])
      assert.are.equal(ID, f["q-ak"])
      assert.are.equal("1;2", f["q-sign-time"])
      assert.are.equal(f["q-sign-time"], f["q-key-time"])
      assert.matches("^%x+$", f["q-signature"])
      assert.are.equal(40, #f["q-signature"])
      assert.is_nil(f["q-signature"]:find("%u"))
    end)

    it("lists lowercased, encoded keys in sorted order", function()
      assert.are.equal("host;x-cos-security-token;x-cos-z", f["q-header-list"])
      assert.are.equal("a;b;c%20d", f["q-url-param-list"])
    end)

    it("has empty key lists when nothing is signed", function()
      local g = fields(sign{})
      assert.are.equal("", g["q-header-list"])
      assert.are.equal("", g["q-url-param-list"])
    end)
  end)

  describe("sensitivity", function()
    local base = sign{ params = { a = "1" }, headers = { host = "h" } }
    it("changes with every signed input", function()
      assert.are_not.equal(base, sign{ params = { a = "2" }, headers = { host = "h" } })
      assert.are_not.equal(base, sign{ params = { a = "1" }, headers = { host = "H" } })
      assert.are_not.equal(base, sign{ params = { a = "1" }, headers = { host = "h" }, path = "/x" })
      assert.are_not.equal(base, sign{ params = { a = "1" }, headers = { host = "h" }, method = "PUT" })
      assert.are_not.equal(base, sign{ params = { a = "1" }, headers = { host = "h" }, secret_key = "k2" })
      assert.are_not.equal(base, sign{ params = { a = "1" }, headers = { host = "h" }, expire = 3 })
    end)
    it("does not depend on the case of the method or of header names", function()
      assert.are.equal(base, sign{ params = { a = "1" }, headers = { HOST = "h" }, method = "get" })
    end)
    it("accepts numbers as values, integral floats printed as integers", function()
      local s = sign{ params = { ["pdf-pagenumber"] = "3" } }
      assert.are.equal(s, sign{ params = { ["pdf-pagenumber"] = 3 } })
      assert.are.equal(s, sign{ params = { ["pdf-pagenumber"] = 3.0 } })
      assert.are.equal(sign{ params = { x = "1.5" } }, sign{ params = { x = 1.5 } })
    end)
    it("accepts an integral float for start/expire", function()
      assert.are.equal(sign{ start = 5, expire = 9 }, sign{ start = 5.0, expire = 9.0 })
    end)
  end)

  describe("argument errors", function()
    local function err_of(t)
      local ok, err = pcall(sign, t)
      assert.is_false(ok)
      return tostring(err)
    end

    it("requires a table argument", function()
      assert.has_error(function() core.cos_sign() end)
      assert.has_error(function() core.cos_sign("x") end)
    end)

    it("requires non-empty string credentials, method and path", function()
      for _, k in ipairs({ "secret_id", "secret_key", "method", "path" }) do
        assert.matches("'" .. k .. "'", err_of{ [k] = "" }, 1, true)
        assert.matches("'" .. k .. "'", err_of{ [k] = 12 }, 1, true)
        local ok = pcall(core.cos_sign, { secret_id = ID, secret_key = KEY, method = "GET",
                                          path = "/", start = 1, expire = 2, [k] = false })
        assert.is_false(ok)
      end
    end)

    it("refuses a secret_id that could break the header", function()
      assert.matches("secret_id", err_of{ secret_id = "AKID\r\nX-Evil: 1" }, 1, true)
      assert.matches("secret_id", err_of{ secret_id = "AKID&q-ak=x" }, 1, true)
      assert.matches("secret_id", err_of{ secret_id = "AK ID" }, 1, true)
    end)

    it("requires integer times with start <= expire", function()
      assert.matches("'start'", err_of{ start = 1.5 }, 1, true)
      assert.matches("'start'", err_of{ start = "1" }, 1, true)
      assert.matches("'start'", err_of{ start = -1 }, 1, true)
      assert.matches("'expire'", err_of{ expire = false }, 1, true)
      assert.matches("'start' must not be after 'expire'", err_of{ start = 3, expire = 2 }, 1, true)
      assert.matches("'start'", err_of{ start = 0 / 0 }, 1, true)
      assert.matches("'expire'", err_of{ expire = math.huge }, 1, true)
    end)

    it("requires params/headers to be tables of string -> string|number", function()
      assert.matches("'params' must be a table", err_of{ params = "a=1" }, 1, true)
      assert.matches("'headers' must be a table", err_of{ headers = 1 }, 1, true)
      assert.matches("params['bad'] must be a string or number, got table",
                     err_of{ params = { ok = "1", bad = {} } }, 1, true)
      assert.matches("headers['X-Flag'] must be a string or number, got boolean",
                     err_of{ headers = { ["X-Flag"] = true } }, 1, true)
      assert.matches("params keys must be strings, got number", err_of{ params = { "x" } }, 1, true)
      assert.matches("headers key must not be empty", err_of{ headers = { [""] = "x" } }, 1, true)
      assert.matches("finite", err_of{ params = { n = math.huge } }, 1, true)
    end)

    it("refuses keys that collide once lowercased", function()
      assert.matches("duplicate headers key 'host'",
                     err_of{ headers = { Host = "a", host = "b" } }, 1, true)
    end)

    it("bounds the number of entries and the total size", function()
      local many = {}
      for i = 1, 1001 do many["k" .. i] = "v" end
      assert.matches("more than 1000 entries in 'params'", err_of{ params = many }, 1, true)
      many["k1001"] = nil
      assert.is_string(sign{ params = many })         -- exactly 1000 is fine
      local big = string.rep("x", 600 * 1024)
      assert.matches("larger than", err_of{ headers = { a = big, b = big } }, 1, true)
      assert.matches("larger than", err_of{ path = "/" .. string.rep("p", 1024 * 1024) }, 1, true)
      assert.is_string(sign{ headers = { a = big } })
    end)
  end)
end)
