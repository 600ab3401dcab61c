-- ocr.core.multipart: multipart/form-data bodies.
-- Bodies are parsed back by an independent parser, spec/tools/parse_multipart.py (python3's
-- email.parser.BytesParser with policy.default), and compared byte for byte.
local core = require "ocr.core"
local cjson = require "cjson"

local TOOLS = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec") .. "/tools"

local function fromhex(h)
  if h == nil or h == cjson.null then return nil end
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- Runs the python parser on `Content-Type: ct\r\n\r\n` .. body and returns the decoded JSON,
-- with the *_hex fields turned back into byte strings.
local function parse(body, ct)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write("Content-Type: ", ct, "\r\n\r\n", body)
  f:close()
  -- Under the sanitizer run the ASan runtime is preloaded into this process: exec the parser
  -- through env with it removed, so python's own allocations are never reported as ours.
  local p = assert(io.popen("exec env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS " ..
    "-u UBSAN_OPTIONS python3 '" .. TOOLS .. "/parse_multipart.py' '" .. path .. "'", "r"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  local doc = cjson.decode(out)
  for _, part in ipairs(doc.parts) do
    part.name = fromhex(part.name_hex)
    part.filename = fromhex(part.filename_hex)
    part.data = fromhex(part.data_hex)
    part.disposition_raw = fromhex(part.disposition_hex)
  end
  return doc
end

local function all_bytes()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

describe("ocr.core.multipart", function()
  it("lays the body out as RFC 7578 describes", function()
    local body, ct = core.multipart({
      { name = "a", value = "1" },
      { name = "f", filename = "x.txt", content_type = "text/plain", data = "hi" },
    }, "XyZ")
    assert.are.equal("multipart/form-data; boundary=XyZ", ct)
    assert.are.equal(
      "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n" ..
      "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n" ..
      "Content-Type: text/plain\r\n\r\nhi\r\n--XyZ--\r\n", body)
  end)

  it("round-trips text and binary file parts through python's email parser", function()
    local bin = "\0\0PNG\r\n\26\n" .. all_bytes() .. "\r\n--not-the-boundary\r\n" .. all_bytes() .. "\0"
    local parts = {
      { name = "language", value = "zh" },
      { name = "page", value = 3 },
      { name = "file", filename = "扫描件 第1页.png", content_type = "image/png", data = bin },
      { name = "中文字段", value = "值：图片识别" },
      { name = "blob", filename = "a.bin", data = "x\0y" },
      { name = "empty", value = "" },
      { name = "trailing", filename = "t.txt", content_type = "text/plain; charset=utf-8",
        data = "line\r\n\r\n" },
    }
    local body, ct = core.multipart(parts)
    local doc = parse(body, ct)
    assert.is_true(doc.multipart)
    assert.are.same({}, doc.defects)
    assert.are.equal(ct:match("boundary=(.*)$"), doc.boundary)
    assert.are.equal(#parts, #doc.parts)
    local expect = {
      { "language", nil, "text/plain", false, "zh" },
      { "page", nil, "text/plain", false, "3" },
      { "file", "扫描件 第1页.png", "image/png", true, bin },
      { "中文字段", nil, "text/plain", false, "值：图片识别" },
      { "blob", "a.bin", "application/octet-stream", true, "x\0y" },
      { "empty", nil, "text/plain", false, "" },
      { "trailing", "t.txt", "text/plain", true, "line\r\n\r\n" },
    }
    for i, e in ipairs(expect) do
      local p = doc.parts[i]
      assert.are.equal("form-data", p.disposition)
      assert.are.equal(e[1], p.name)
      assert.are.equal(e[2], p.filename)
      assert.are.equal(e[3], p.content_type)
      assert.are.equal(e[4], p.has_content_type)
      assert.are.equal(e[5], p.data)
    end
  end)

  it("carries a large body exactly", function()
    local big = string.rep(all_bytes(), 8192)   -- 2 MiB
    local body, ct = core.multipart({ { name = "file", filename = "big.bin", data = big } })
    local doc = parse(body, ct)
    assert.are.equal(1, #doc.parts)
    assert.are.equal(#big, #doc.parts[1].data)
    assert.is_true(big == doc.parts[1].data)   -- not are.equal: a failure would print 2 MiB
  end)

  it("generates a fresh random '----ocr' + 32 hex boundary", function()
    local b1, ct1 = core.multipart({ { name = "a", value = "x" } })
    local b2, ct2 = core.multipart({ { name = "a", value = "x" } })
    local bnd = ct1:match("^multipart/form%-data; boundary=(%-%-%-%-ocr%x+)$")
    assert.is_string(bnd)
    assert.are.equal(39, #bnd)
    assert.are_not.equal(ct1, ct2)
    assert.are.equal(1, select(2, b1:gsub("^%-%-" .. bnd:gsub("%-", "%%-") .. "\r\n", "")))
    assert.are_not.equal(b1, b2)
  end)

  describe("names and filenames", function()
    it("percent-escapes '\"', CR and LF (WHATWG), leaving other bytes raw", function()
      local body = core.multipart({
        { name = 'a"b\r\nc', filename = 'evil"\r\nContent-Type: text/html.txt', data = "d" },
      }, "B")
      assert.is_truthy(body:find('name="a%22b%0D%0Ac"; filename="evil%22%0D%0AContent-Type: text/html.txt"\r\n',
                                 1, true))
      assert.is_nil(body:find("\r\nContent-Type: text/html", 1, true))
      local doc = parse(body, "multipart/form-data; boundary=B")
      assert.are.equal(1, #doc.parts)
      assert.are.same({}, doc.defects)
      assert.are.equal("a%22b%0D%0Ac", doc.parts[1].name)
      assert.are.equal("evil%22%0D%0AContent-Type: text/html.txt", doc.parts[1].filename)
      assert.are.equal("application/octet-stream", doc.parts[1].content_type)
      assert.are.equal("d", doc.parts[1].data)
    end)

    it("sends UTF-8 names raw", function()
      local body = core.multipart({ { name = "名字", value = "v" } }, "B")
      assert.is_truthy(body:find('name="名字"', 1, true))
    end)
  end)

  describe("boundaries", function()
    it("quotes a given boundary that is not an RFC 2045 token", function()
      local body, ct = core.multipart({ { name = "a", value = "x" } }, "my bound:ary'(1)")
      assert.are.equal('multipart/form-data; boundary="my bound:ary\'(1)"', ct)
      local doc = parse(body, ct)
      assert.are.equal("my bound:ary'(1)", doc.boundary)
      assert.are.equal("x", doc.parts[1].data)
    end)

    it("accepts 1 and 70 character boundaries", function()
      assert.is_string((core.multipart({ { name = "a", value = "x" } }, "z")))
      local b70 = string.rep("a", 70)
      local body, ct = core.multipart({ { name = "a", value = "x" } }, b70)
      assert.are.equal("x", parse(body, ct).parts[1].data)
    end)

    it("refuses invalid boundaries with a Lua error", function()
      local parts = { { name = "a", value = "x" } }
      for _, b in ipairs({ "", string.rep("a", 71), "a@b", "ends with space ", "a\r\nb",
                           "quote\"", "semi;colon", "é" }) do
        assert.has_error(function() core.multipart(parts, b) end)
      end
      assert.has_error(function() core.multipart(parts, {}) end)
      assert.has_error(function() core.multipart(parts, 12) end)
    end)

    it("refuses a boundary that occurs in the content", function()
      local body, err = core.multipart({
        { name = "a", value = "fine" },
        { name = "f", filename = "f.bin", data = "xx\r\n--SEP--\r\nyy" },
      }, "SEP")
      assert.is_nil(body)
      assert.are.equal("multipart: boundary occurs in the content of part #2", err)
      local b2, err2 = core.multipart({ { name = "a", value = "has SEP inside" } }, "SEP")
      assert.is_nil(b2)
      assert.matches("part #1", err2, 1, true)
      assert.is_string((core.multipart({ { name = "SEP", value = "SE P" } }, "SEP")))
    end)
  end)

  describe("part validation", function()
    local function err_of(parts)
      local ok, err = pcall(core.multipart, parts)
      assert.is_false(ok)
      return tostring(err)
    end
    local ok_part = { name = "ok", value = "1" }

    it("needs a non-empty array of tables", function()
      assert.has_error(function() core.multipart() end)
      assert.has_error(function() core.multipart("x") end)
      assert.matches("at least one part", err_of({}), 1, true)
      assert.matches("part #2 must be a table, got string", err_of({ ok_part, "x" }), 1, true)
    end)

    local cases = {
      { { value = "x" }, "part #2: 'name' must be a string" },
      { { name = 5, value = "x" }, "part #2: 'name' must be a string" },
      { { name = "", value = "x" }, "part #2: 'name' must not be empty" },
      { { name = "n" }, "part #2: exactly one of 'value' and 'data'" },
      { { name = "n", value = "x", data = "y", filename = "f" }, "part #2: exactly one of" },
      { { name = "n", data = "y" }, "part #2: 'data' needs a string 'filename'" },
      { { name = "n", data = "y", filename = 1 }, "part #2: 'data' needs a string 'filename'" },
      { { name = "n", data = 12, filename = "f" }, "part #2: 'data' must be a string, got number" },
      { { name = "n", value = "x", filename = "f" }, "part #2: 'filename' and 'content_type' need 'data'" },
      { { name = "n", value = "x", content_type = "a/b" }, "part #2: 'filename' and 'content_type'" },
      { { name = "n", value = true }, "part #2: 'value' must be a string or number, got boolean" },
      { { name = "n", value = 0 / 0 }, "part #2: 'value' must be a finite number" },
      { { name = "n", filename = "f", data = "d", content_type = "text/plain\r\nX: y" },
        "part #2: 'content_type' contains a control character" },
      { { name = "n", filename = "f", data = "d", content_type = "" },
        "part #2: 'content_type' must not be empty" },
      { { name = "n", filename = "f", data = "d", content_type = {} },
        "part #2: 'content_type' must be a string" },
      { { name = "n", value = "x", filname = "typo" }, "part #2: unknown field 'filname'" },
      { { name = "n", value = "x", [1] = "y" }, "part #2: unexpected number key" },
      { { name = "n", value = "x", ["name\0x"] = "y" }, "part #2: unknown field 'name" },
    }
    for i, c in ipairs(cases) do
      it("refuses bad part table #" .. i .. " (" .. c[2] .. ")", function()
        assert.matches(c[2], err_of({ ok_part, c[1] }), 1, true)
      end)
    end

    it("prints integral numbers without a fraction", function()
      local body = core.multipart({ { name = "a", value = 2.0 }, { name = "b", value = 1.5 } }, "B")
      assert.is_truthy(body:find('name="a"\r\n\r\n2\r\n', 1, true))
      assert.is_truthy(body:find('name="b"\r\n\r\n1.5\r\n', 1, true))
    end)
  end)

  it("refuses bodies over 1 GiB with nil, message (measured before allocating)", function()
    local chunk = string.rep("\0", 64 * 1024 * 1024)
    local parts = {}
    for i = 1, 16 do parts[i] = { name = "p" .. i, filename = "f", data = chunk } end
    local body, err = core.multipart(parts)
    assert.is_nil(body)
    assert.are.equal("multipart: body would be larger than 1 GiB", err)
  end)
end)
