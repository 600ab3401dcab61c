-- ocr.core encodings: base64 (RFC 4648) and RFC 3986 percent-encoding.
-- Known answers come from RFC 4648 section 10 and from python3 (base64.b64encode,
-- urllib.parse.quote(s, safe="")), run once by hand; the pure-Lua reference encoder below is
-- an independent implementation used for long random inputs.
local core = require "ocr.core"

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Straightforward RFC 4648 encoder, arithmetic only (no bit operators: loads on any Lua).
local function ref_b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = { math.floor(n / 262144) % 64, math.floor(n / 4096) % 64,
                math.floor(n / 64) % 64, n % 64 }
    local k = b == nil and 2 or (c == nil and 3 or 4)
    for j = 1, 4 do
      out[#out + 1] = j <= k and B64:sub(q[j] + 1, q[j] + 1) or "="
    end
  end
  return table.concat(out)
end

-- Deterministic pseudo-random bytes (LCG), so failures are reproducible.
local function bytes(n, seed)
  local t, x = {}, seed
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 2147483648
    t[i] = string.char(math.floor(x / 65536) % 256)
  end
  return table.concat(t)
end

local function all_bytes()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

describe("ocr.core.base64_encode / base64_decode", function()
  local rfc = {
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  }
  for _, v in ipairs(rfc) do
    it("RFC 4648 §10: BASE64(\"" .. v[1] .. "\") = \"" .. v[2] .. "\"", function()
      assert.are.equal(v[2], core.base64_encode(v[1]))
      assert.are.equal(v[1], core.base64_decode(v[2]))
    end)
  end

  it("encodes all 256 byte values like python3's base64.b64encode", function()
    local expected = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1" ..
      "Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0" ..
      "dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKz" ..
      "tLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v8PHy" ..
      "8/T19vf4+fr7/P3+/w=="
    assert.are.equal(expected, core.base64_encode(all_bytes()))
    assert.are.equal(all_bytes(), core.base64_decode(expected))
  end)

  it("matches the reference encoder and round-trips across internal chunk sizes", function()
    for _, n in ipairs({ 1, 2, 3, 767, 768, 769, 1023, 1024, 1025, 3000, 100001 }) do
      local s = bytes(n, n)
      local e = core.base64_encode(s)
      assert.are.equal(ref_b64(s), e)
      assert.are.equal(4 * math.ceil(n / 3), #e)
      assert.is_nil(e:find("[\r\n]"))          -- no line breaks, ever
      assert.are.equal(s, core.base64_decode(e))
    end
  end)

  it("trims exactly the padding bytes (no stray NULs at the end)", function()
    assert.are.equal("\0", core.base64_decode("AA=="))
    assert.are.equal("\0\0", core.base64_decode("AAA="))
    assert.are.equal("\0\0\0", core.base64_decode("AAAA"))
    assert.are.equal(1, #core.base64_decode("Zg=="))
  end)

  describe("strict decoding", function()
    local function fails(input, pattern)
      local v, err = core.base64_decode(input)
      assert.is_nil(v)
      assert.is_string(err)
      assert.matches(pattern, err, 1, true)
    end

    it("rejects characters outside the alphabet, with their offset", function()
      fails("Zm9v YmFy", "base64_decode: invalid character at offset 4")
      fails(" Zm9v", "base64_decode: invalid character at offset 0")
      fails("Zm9vYmFy\n", "base64_decode: invalid character at offset 8")
      fails("Zm9v\r\nYmFy", "base64_decode: invalid character at offset 4")
      fails("Zm9v\tYmFy", "invalid character at offset 4")
      fails("Zm9v-_==", "invalid character at offset 4")   -- base64url alphabet is not base64
      fails("Zm9v\0\0\0\0", "invalid character at offset 4")
      fails("Zm9v\255abc", "invalid character at offset 4")
      fails("Zm9v.", "invalid character at offset 4")
    end)

    it("rejects lengths that are not a multiple of 4", function()
      fails("Z", "base64_decode: bad length 1")
      fails("Zm9", "bad length 3")
      fails("Zg=", "bad length 3")
      fails("Zm9vYg=", "bad length 7")
      fails("Zm9vYmFyZ", "bad length 9")
    end)

    it("rejects misplaced padding", function()
      fails("Zm=v", "base64_decode: bad padding at offset 2")
      fails("====", "bad padding at offset 0")
      fails("Z===", "bad padding at offset 1")
      fails("Zg==Zg==", "bad padding at offset 2")
      fails("Zm9=Zm9v", "bad padding at offset 3")
      fails("=Zm9", "bad padding at offset 0")
    end)
  end)
end)

describe("ocr.core.url_encode", function()
  it("leaves exactly the RFC 3986 unreserved characters bare", function()
    local unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    assert.are.equal(unreserved, core.url_encode(unreserved))
    for i = 0, 255 do
      local c = string.char(i)
      local e = core.url_encode(c)
      if unreserved:find(c, 1, true) then
        assert.are.equal(c, e)
      else
        assert.are.equal(string.format("%%%02X", i), e)   -- uppercase hex, always escaped
      end
    end
  end)

  it("escapes reserved characters, space, percent and plus", function()
    assert.are.equal("%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D",
                     core.url_encode(":/?#[]@!$&'()*+,;="))
    assert.are.equal("a%20b", core.url_encode("a b"))
    assert.are.equal("100%25", core.url_encode("100%"))
    assert.are.equal("a%2Bb", core.url_encode("a+b"))
    assert.are.equal("", core.url_encode(""))
    assert.are.equal("%00x%00", core.url_encode("\0x\0"))
  end)

  it("encodes UTF-8 byte by byte (python3 urllib.parse.quote(s, safe=''))", function()
    assert.are.equal("%E4%B8%AD%E6%96%87", core.url_encode("中文"))
    assert.are.equal("%E8%85%BE%E8%AE%AF%E4%BA%91%20OCR%2F%E8%AF%86%E5%88%AB.png",
                     core.url_encode("腾讯云 OCR/识别.png"))
    assert.are.equal("https%3A%2F%2Fex.com%2Fa%3Fb%3D1%26c%3D%E5%9B%BE",
                     core.url_encode("https://ex.com/a?b=1&c=图"))
  end)
end)

describe("ocr.core.url_decode", function()
  it("decodes escapes in either case", function()
    assert.are.equal("中", core.url_decode("%E4%B8%AD"))
    assert.are.equal("中", core.url_decode("%e4%b8%ad"))
    assert.are.equal("中", core.url_decode("%E4%b8%Ad"))
    assert.are.equal("a b", core.url_decode("a%20b"))
    assert.are.equal("\0", core.url_decode("%00"))
    assert.are.equal("", core.url_decode(""))
    assert.are.equal("plain-text_.~", core.url_decode("plain-text_.~"))
  end)

  it("leaves '+' as '+' (RFC 3986, not form decoding)", function()
    assert.are.equal("a+b", core.url_decode("a+b"))
    assert.are.equal("+ +", core.url_decode("+%20+"))
  end)

  it("passes unescaped reserved characters and raw UTF-8 through", function()
    assert.are.equal("a/b?c=d&e", core.url_decode("a/b?c=d&e"))
    assert.are.equal("图片", core.url_decode("图片"))
  end)

  it("refuses malformed escapes with nil and the offset", function()
    local bad = {
      { "%", 0 }, { "%2", 0 }, { "abc%", 3 }, { "abc%4", 3 }, { "%zz", 0 }, { "%2G", 0 },
      { "%G2", 0 }, { "ok%20then%", 9 }, { "%%41", 0 }, { "a% 1", 1 }, { "%-1", 0 },
    }
    for _, b in ipairs(bad) do
      local v, err = core.url_decode(b[1])
      assert.is_nil(v, b[1])
      assert.are.equal("url_decode: malformed escape at offset " .. b[2], err)
    end
  end)

  it("round-trips every byte value and random binary", function()
    local s = all_bytes()
    assert.are.equal(s, core.url_decode(core.url_encode(s)))
    for _, n in ipairs({ 0, 1, 17, 4096 }) do
      local r = bytes(n, 7 * n + 1)
      assert.are.equal(r, core.url_decode(core.url_encode(r)))
    end
    local u = "路径/文件 名+(1).pdf?x=y&z=%"
    assert.are.equal(u, core.url_decode(core.url_encode(u)))
  end)
end)

describe("argument checking", function()
  for _, name in ipairs({ "base64_encode", "base64_decode", "url_encode", "url_decode" }) do
    it(name .. " raises on non-string arguments", function()
      assert.has_error(function() core[name]() end)
      assert.has_error(function() core[name]({}) end)
      assert.has_error(function() core[name](false) end)
      assert.has_error(function() core[name](12) end)
      local ok, err = pcall(core[name], {})
      assert.is_false(ok)
      assert.matches("string expected, got table", err, 1, true)
    end)
  end
end)
