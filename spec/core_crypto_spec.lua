-- ocr.core hashing: sha1, md5, sha256, sha256_file, hmac_sha1, hex.
-- Vectors come from the standards (FIPS 180 / RFC 3174 examples for SHA-1, FIPS 180-2 appendix B
-- for SHA-256, RFC 1321 appendix
-- A.5 for MD5, RFC 2202 section 3 for HMAC-SHA1) and were re-checked once with python3's
-- hashlib/hmac; none of them was produced by the code under test.
local core = require "ocr.core"
local F = require "helpers.files"

-- Independent hex helpers written with the Lua string library only.
local function tohex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
local function fromhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

describe("ocr.core.sha1", function()
  local vectors = {
    { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
    { string.rep("a", 1000000), "34aa973cd4c4daa4f61eeb2bdbad27316534016f" },
  }
  for i, v in ipairs(vectors) do
    it("matches FIPS 180 vector #" .. i .. " (" .. #v[1] .. " bytes)", function()
      local d = core.sha1(v[1])
      assert.are.equal(20, #d)
      assert.are.equal(v[2], tohex(d))
    end)
  end

  it("hashes embedded NUL bytes rather than stopping at them", function()
    assert.are_not.equal(core.sha1("a\0b"), core.sha1("a"))
    assert.are_not.equal(core.sha1("a\0b"), core.sha1("a\0c"))
  end)
end)

describe("ocr.core.sha256", function()
  local vectors = {
    { "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
    { string.rep("a", 1000000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
  }
  for i, v in ipairs(vectors) do
    it("matches FIPS 180-2 vector #" .. i .. " (" .. #v[1] .. " bytes)", function()
      local d = core.sha256(v[1])
      assert.are.equal(32, #d)
      assert.are.equal(v[2], tohex(d))
    end)
  end

  it("refuses what is not a string instead of hashing its textual form", function()
    assert.has_error(function() core.sha256(1) end)
    assert.has_error(function() core.sha256(nil) end)
    assert.are_not.equal(core.sha256("a\0b"), core.sha256("a"))
  end)
end)

describe("ocr.core.sha256_file", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() F.rmdir(dir) end)

  it("streams a file: the same digest as sha256 of its bytes, at every chunk boundary", function()
    for _, n in ipairs{ 0, 1, 65535, 65536, 65537, 3 * 65536 + 17 } do
      local bytes = {}
      for i = 1, n do bytes[i] = string.char((i * 7 + n) % 256) end
      local data = table.concat(bytes)
      local path = dir .. "/f" .. n
      F.write(path, data)
      assert.are.equal(tohex(core.sha256(data)), tohex(core.sha256_file(path)), "size " .. n)
    end
  end)

  it("matches the FIPS 180-2 million-a vector read from disk", function()
    local path = dir .. "/million"
    F.write(path, string.rep("a", 1000000))
    assert.are.equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
                     tohex(core.sha256_file(path)))
  end)

  it("answers nil and a message for a file it cannot read, and raises only for a non-string", function()
    local d, err = core.sha256_file(dir .. "/missing")
    assert.is_nil(d)
    assert.truthy(err:find("missing", 1, true), err)
    d, err = core.sha256_file(dir)   -- a directory: read() fails with EISDIR
    assert.is_nil(d)
    assert.is_string(err)
    d, err = core.sha256_file(dir .. "/x\0y")
    assert.is_nil(d)
    assert.truthy(err:find("NUL", 1, true))
    assert.has_error(function() core.sha256_file({}) end)
  end)
end)

describe("ocr.core.md5", function()
  local vectors = {
    { "", "d41d8cd98f00b204e9800998ecf8427e" },
    { "a", "0cc175b9c0f1b6a831c399e269772661" },
    { "abc", "900150983cd24fb0d6963f7d28e17f72" },
    { "message digest", "f96b697d7cb7938d525a2f31aaf161d0" },
    { "abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b" },
    { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
      "d174ab98d277d9f5a5611c2c9f419d9f" },
    { string.rep("1234567890", 8), "57edf4a22be3c955ac49da2e2107b67a" },
  }
  for i, v in ipairs(vectors) do
    it("matches RFC 1321 vector #" .. i, function()
      local d = core.md5(v[1])
      assert.are.equal(16, #d)
      assert.are.equal(v[2], tohex(d))
    end)
  end
end)

describe("ocr.core.hmac_sha1", function()
  -- RFC 2202 section 3, test cases 1-7.
  local cases = {
    { string.rep("\11", 20), "Hi There", "b617318655057264e28bc0b6fb378c8ef146be00" },
    { "Jefe", "what do ya want for nothing?", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" },
    { string.rep("\170", 20), string.rep("\221", 50), "125d7342b9ac11cd91a39af48aa17b4f63f175d3" },
    { fromhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), string.rep("\205", 50),
      "4c9007f4026250c6bc8414f9bf50c86c2d7235da" },
    { string.rep("\12", 20), "Test With Truncation", "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04" },
    { string.rep("\170", 80), "Test Using Larger Than Block-Size Key - Hash Key First",
      "aa4ae5e15272d00e95705637ce8a3b55ed402112" },
    { string.rep("\170", 80),
      "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
      "e8e99d0f45237d786d6bbaa7965c7808bbff1a91" },
  }
  for i, c in ipairs(cases) do
    it("matches RFC 2202 test case " .. i, function()
      local d = core.hmac_sha1(c[1], c[2])
      assert.are.equal(20, #d)
      assert.are.equal(c[3], tohex(d))
    end)
  end

  it("RFC 2202 case 5 truncated to 96 bits is the documented prefix", function()
    local d = core.hmac_sha1(cases[5][1], cases[5][2])
    assert.are.equal("4c1a03424b55e07fe7f27be1", tohex(d:sub(1, 12)))
  end)

  it("depends on the argument order (key first)", function()
    assert.are_not.equal(core.hmac_sha1("Jefe", "x"), core.hmac_sha1("x", "Jefe"))
  end)

  it("accepts an empty key and empty data", function()
    -- python3: hmac.new(b"", b"", hashlib.sha1).hexdigest()
    assert.are.equal("fbdb1d1b18aa6c08324b7d64b71fb76370690e1d", tohex(core.hmac_sha1("", "")))
  end)
end)

describe("ocr.core.hex", function()
  it("encodes bytes as lowercase hex", function()
    assert.are.equal("", core.hex(""))
    assert.are.equal("00017f80ff", core.hex("\0\1\127\128\255"))
    assert.are.equal("616263", core.hex("abc"))
    assert.are.equal("a9993e364706816aba3e25717850c26c9cd0d89d", core.hex(core.sha1("abc")))
  end)

  it("agrees with string.format on every byte value and across chunk boundaries", function()
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    local all = table.concat(t)
    local long = string.rep(all, 9) .. "xyz"   -- 2307 bytes: several internal chunks
    assert.are.equal(tohex(all), core.hex(all))
    assert.are.equal(tohex(long), core.hex(long))
    assert.are.equal(2 * #long, #core.hex(long))
  end)
end)

describe("argument checking", function()
  local fns = { "sha1", "md5", "hex" }
  for _, name in ipairs(fns) do
    it(name .. " raises on non-string arguments", function()
      assert.has_error(function() core[name]() end)
      assert.has_error(function() core[name](nil) end)
      assert.has_error(function() core[name]({}) end)
      assert.has_error(function() core[name](true) end)
      -- numbers are refused too: their text form differs between Lua versions
      assert.has_error(function() core[name](42) end)
    end)
  end

  it("hmac_sha1 raises on a missing or non-string key or message", function()
    assert.has_error(function() core.hmac_sha1("key") end)
    assert.has_error(function() core.hmac_sha1(nil, "msg") end)
    assert.has_error(function() core.hmac_sha1({}, "msg") end)
    assert.has_error(function() core.hmac_sha1("key", false) end)
    assert.has_error(function() core.hmac_sha1(1, "msg") end)
  end)

  it("names the expected type in the message", function()
    local ok, err = pcall(core.sha1, {})
    assert.is_false(ok)
    assert.matches("string expected, got table", err, 1, true)
  end)
end)
