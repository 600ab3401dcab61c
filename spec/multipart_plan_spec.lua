-- ocr.core.multipart_plan: a multipart body for a transport that streams files from disk. The
-- pieces, with each file's content read in place, must be byte for byte the body
-- ocr.core.multipart makes of the same parts held in memory.
local core = require "ocr.core"
local F = require "helpers.files"
local shell = require "helpers.shell"
local prng = require "helpers.prng"

local TOOLS = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec") .. "/tools"

-- The body a plan describes: its strings, and its files read where they go.
local function assemble(pieces)
  local out = {}
  for i, piece in ipairs(pieces) do
    if type(piece) == "table" then
      local data = assert(F.read(piece.file), piece.file)
      assert.equal(#data, piece.size, "piece " .. i .. ": the file's size")
      out[i] = data
    else
      out[i] = piece
    end
  end
  return table.concat(out)
end

-- Strings and files alternate, beginning and ending with a string: consecutive strings merged.
local function assert_alternates(pieces)
  assert.is_true(#pieces % 2 == 1, "an odd number of pieces")
  for i, piece in ipairs(pieces) do
    if i % 2 == 1 then
      assert.is_string(piece, "piece " .. i)
      assert.is_true(#piece > 0, "piece " .. i .. " is empty")
    else
      assert.is_table(piece, "piece " .. i)
      assert.same({ "file", "size" }, (function()
        local keys = {}
        for k in pairs(piece) do keys[#keys + 1] = k end
        table.sort(keys)
        return keys
      end)())
    end
  end
end

-- Parses `Content-Type: ct` + body with python's email parser (as spec/multipart_spec.lua does).
local function parse(body, ct)
  local cjson = require "cjson"
  local path = os.tmpname()
  F.write(path, "Content-Type: " .. ct .. "\r\n\r\n" .. body)
  local p = shell.popen("python3 '" .. TOOLS .. "/parse_multipart.py' '" .. path .. "'")
  local out = p:read("*a")
  p:close()
  os.remove(path)
  local doc = cjson.decode(out)
  local function fromhex(h)
    if h == nil or h == cjson.null then return nil end
    return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
  end
  for _, part in ipairs(doc.parts) do
    part.name, part.filename, part.data = fromhex(part.name_hex), fromhex(part.filename_hex),
                                          fromhex(part.data_hex)
  end
  return doc
end

describe("ocr.core.multipart_plan", function()
  local dir
  setup(function() dir = F.tmpdir() end)
  teardown(function() F.rmdir(dir) end)

  it("leaves a hole for each file's content in core.multipart's bytes", function()
    local path = F.write(dir .. "/scan page.png", "\137PNG\r\n\26\nrest\0of\255it")
    local pieces, ct, length = core.multipart_plan({
      { name = "lang", value = "en" },
      { name = "file", file = path },
      { name = "n", value = 3 },
    }, "XyZ")
    assert.equal("multipart/form-data; boundary=XyZ", ct)
    assert.same({
      "--XyZ\r\nContent-Disposition: form-data; name=\"lang\"\r\n\r\nen\r\n" ..
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan page.png\"\r\n" ..
      "Content-Type: application/octet-stream\r\n\r\n",
      { file = path, size = 18 },
      "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n3\r\n--XyZ--\r\n",
    }, pieces)
    assert.equal(#pieces[1] + 18 + #pieces[3], length)
    assert.equal(tostring(#pieces[1] + 18 + #pieces[3]), tostring(length), "an integer, fit for Content-Length")
  end)

  it("makes core.multipart's body of random mixes of value, data and file parts", function()
    local g = prng(9001)
    local boundary = "plan-boundary-7c1e"
    local names = { "a", "file", "名字", 'q"uote', "x y" }
    local files = {}
    for k = 1, 6 do
      local len = ({ 0, 1, g.len(), g.len(), 70000, g.int(1, 3000) })[k]
      files[k] = F.write(("%s/f%d%s"):format(dir, k, k % 2 == 0 and ".bin" or ""), g.bytes(len))
    end
    for round = 1, 60 do
      local parts, as_data, nfiles = {}, {}, 0
      for i = 1, g.int(1, 7) do
        local name = names[g.int(1, #names)]
        local kind = g.int(1, 3)
        if kind == 1 then
          local v = g.int(1, 4) == 1 and g.int(0, 1000) or g.bytes(g.len())
          parts[i] = { name = name, value = v }
          as_data[i] = { name = name, value = v }
        elseif kind == 2 then
          local d = g.bytes(g.len())
          local ctype = g.int(1, 2) == 1 and "text/plain; charset=utf-8" or nil
          parts[i] = { name = name, data = d, filename = "d.txt", content_type = ctype }
          as_data[i] = { name = name, data = d, filename = "d.txt", content_type = ctype }
        else
          local path = files[g.int(1, #files)]
          local filename = g.int(1, 2) == 1 and "given\r\nname.png" or nil
          local ctype = g.int(1, 2) == 1 and "image/png" or nil
          parts[i] = { name = name, file = path, filename = filename, content_type = ctype }
          as_data[i] = { name = name, data = F.read(path), content_type = ctype,
                         filename = filename or path:match("[^/]*$") }
          nfiles = nfiles + 1
        end
      end
      local pieces, ct, length = core.multipart_plan(parts, boundary)
      local body, ct2 = core.multipart(as_data, boundary)
      assert.is_table(pieces, "round " .. round .. ": " .. tostring(ct))
      assert_alternates(pieces)
      assert.equal(2 * nfiles + 1, #pieces, "round " .. round)
      local planned = assemble(pieces)
      assert.is_true(planned == body, "round " .. round .. ": the plan's bytes differ from multipart's")
      assert.equal(#body, length, "round " .. round)
      assert.equal(ct2, ct)
    end
  end)

  it("draws a random boundary when none is given, and python's parser reads the result", function()
    local bin = ("\0\r\n--\255"):rep(1000)
    local path = F.write(dir .. "/blob.bin", bin)
    local pieces, ct, length = core.multipart_plan({
      { name = "meta", value = "{\"a\":1}" },
      { name = "upload", file = path, filename = "扫描件.bin", content_type = "application/x-thing" },
      { name = "again", file = path },
    })
    local boundary = ct:match("^multipart/form%-data; boundary=(%-%-%-%-ocr%x+)$")
    assert.is_string(boundary)
    assert.equal(39, #boundary)
    local body = assemble(pieces)
    assert.equal(#body, length)
    local doc = parse(body, ct)
    assert.same({}, doc.defects)
    assert.equal(3, #doc.parts)
    assert.same({ "meta", nil, "{\"a\":1}" }, { doc.parts[1].name, doc.parts[1].filename, doc.parts[1].data })
    assert.same({ "upload", "扫描件.bin", "application/x-thing" },
                { doc.parts[2].name, doc.parts[2].filename, doc.parts[2].content_type })
    assert.is_true(doc.parts[2].data == bin)
    assert.same({ "again", "blob.bin", "application/octet-stream" },
                { doc.parts[3].name, doc.parts[3].filename, doc.parts[3].content_type })
    assert.is_true(doc.parts[3].data == bin)
  end)

  it("plans an empty file as a hole of size 0", function()
    local path = F.write(dir .. "/empty", "")
    local pieces, _, length = core.multipart_plan({ { name = "f", file = path } }, "B")
    assert.same({ file = path, size = 0 }, pieces[2])
    assert.equal(#pieces[1] + #pieces[3], length)
    assert.equal(core.multipart({ { name = "f", filename = "empty", data = "" } }, "B"), assemble(pieces))
  end)

  describe("files it cannot read", function()
    it("refuses a missing file, a directory and a FIFO with nil, message", function()
      local ok = { name = "ok", value = "1" }
      local missing = dir .. "/no such file"
      assert.same({ nil, "multipart: part #2: cannot read '" .. missing .. "': No such file or directory" },
                  { core.multipart_plan({ ok, { name = "f", file = missing } }) })
      assert.same({ nil, "multipart: part #1: cannot read '" .. dir .. "': not a regular file" },
                  { core.multipart_plan({ { name = "f", file = dir }, ok }) })
      local fifo = dir .. "/fifo"
      assert.truthy(shell.execute("mkfifo '" .. fifo .. "'"))
      assert.same({ nil, "multipart: part #1: cannot read '" .. fifo .. "': not a regular file" },
                  { core.multipart_plan({ { name = "f", file = fifo } }) }, "and without waiting for a writer")
      assert.same({ nil, "multipart: part #1: cannot read '" .. dir .. "/a': the path contains a NUL byte" },
                  { core.multipart_plan({ { name = "f", file = dir .. "/a\0b" } }) })
    end)

    it("checks the parts' shape first: a malformed part raises even after a missing file", function()
      assert.has_error(function()
        core.multipart_plan({ { name = "f", file = dir .. "/missing" }, { name = "g", value = {} } })
      end, "multipart: part #2: 'value' must be a string or number, got table")
    end)
  end)

  describe("part validation", function()
    local function err_of(parts, boundary)
      local ok, err = pcall(core.multipart_plan, parts, boundary)
      assert.is_false(ok)
      return tostring(err)
    end
    local cases = {
      { { name = "f", file = "/x", value = "v" }, "part #1: exactly one of 'value', 'data' and 'file' is required" },
      { { name = "f", file = "/x", data = "d", filename = "n" }, "exactly one of 'value', 'data' and 'file'" },
      { { name = "f" }, "exactly one of 'value', 'data' and 'file'" },
      { { name = "f", file = 12 }, "part #1: 'file' must be a string, got number" },
      { { name = "f", file = "/x", filename = true }, "part #1: 'filename' must be a string" },
      { { name = "f", file = "/x", content_type = "a\nb" }, "part #1: 'content_type' contains a control character" },
      { { name = "f", value = "v", filename = "n" }, "'filename' and 'content_type' need 'data' or 'file'" },
      { { file = "/x" }, "part #1: 'name' must be a string" },
      { { name = "f", file = "/x", path = "typo" }, "part #1: unknown field 'path'" },
    }
    for i, c in ipairs(cases) do
      it("refuses bad part table #" .. i .. " (" .. c[2] .. ")", function()
        assert.matches(c[2], err_of({ c[1] }), 1, true)
      end)
    end

    it("checks the parts table and the boundary as core.multipart does", function()
      assert.matches("at least one part", err_of({}), 1, true)
      assert.has_error(function() core.multipart_plan("x") end)
      assert.has_error(function() core.multipart_plan({ { name = "a", value = "x" } }, "a@b") end)
      assert.has_error(function() core.multipart_plan({ { name = "a", value = "x" } }, 5) end)
    end)

    it("leaves core.multipart without file parts", function()
      local ok, err = pcall(core.multipart, { { name = "f", file = "/etc/hostname" } })
      assert.is_false(ok)
      assert.matches("part #1: unknown field 'file'", err, 1, true)
    end)
  end)

  it("refuses a boundary found in a content held in memory", function()
    local path = F.write(dir .. "/has-sep", "--SEP-- inside the file is not scanned")
    assert.same({ nil, "multipart: boundary occurs in the content of part #2" },
                { core.multipart_plan({ { name = "f", file = path }, { name = "v", value = "a SEP b" } }, "SEP") })
    local pieces = core.multipart_plan({ { name = "f", file = path } }, "SEP")
    assert.is_table(pieces, "a file's content cannot be scanned: the caller's boundary is trusted")
  end)
end)
