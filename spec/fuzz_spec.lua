-- Random and mutated input thrown at the C core: every call must end in a documented answer
-- (a value, `nil, message`, or a Lua error with a message), never a crash. Under `make test-asan`
-- the same calls run with AddressSanitizer + UBSan, which turn an overread or a leak into a failed
-- run. Deterministic (helpers.prng), so a failure names its seed and replays.
local core = require "ocr.core"
local curl = require "ocr.curl"
local mime = require "mime"
local rig = require "helpers.rig"
local prng = require "helpers.prng"

local unpack = table.unpack or unpack

-- Up to `n` random edits: flip a byte, cut the tail, insert noise, repeat a slice.
local function mutate(g, s, n)
  local b = {}
  for i = 1, #s do b[i] = s:byte(i) end   -- (not s:byte(1, -1): Lua 5.1's C stack holds ~8000)
  for _ = 1, g.int(0, n or 5) do
    local op = g.int(1, 4)
    if op == 1 and #b > 0 then
      b[g.int(1, #b)] = g.int(0, 255)
    elseif op == 2 and #b > 0 then
      for i = #b, g.int(1, #b), -1 do b[i] = nil end
    elseif op == 3 then
      local at = g.int(1, #b + 1)
      for _ = 1, g.int(1, 12) do table.insert(b, at, g.int(0, 255)) end
    elseif op == 4 and #b > 2 then
      local i = g.int(1, #b)
      local j = math.min(#b, i + g.int(0, 24))
      for k = j, i, -1 do table.insert(b, j + 1, b[k]) end
    end
  end
  local out = {}
  for i = 1, #b, 4000 do out[#out + 1] = string.char(unpack(b, i, math.min(#b, i + 3999))) end
  return table.concat(out)
end

-- Any Lua value, tables nested a little, including the numbers that break naive C.
local ODD_NUMBERS = { 0, -1, 1, 0.5, 1 / 0, -1 / 0, 2 ^ 31, 2 ^ 53, -2 ^ 63, 1e308 }
local function any_value(g, depth)
  local c = g.int(1, (depth or 0) > 1 and 4 or 6)
  if c == 1 then return nil
  elseif c == 2 then return g.int(0, 1) == 1
  elseif c == 3 then return ODD_NUMBERS[g.int(1, #ODD_NUMBERS)]
  elseif c == 4 then return g.bytes(g.len())
  elseif c == 5 then
    local t = {}
    for i = 1, g.int(0, 4) do t[i] = any_value(g, (depth or 0) + 1) end
    t.name, t.value = any_value(g, 2), any_value(g, 2)
    return t
  end
  return print   -- a function where data is expected
end

-- A failed call must have said why.
local function assert_message(ok, err, what)
  if not ok then
    assert(type(err) == "string" and #err > 0, what .. ": raised without a message: " .. tostring(err))
  end
end

describe("fuzz: ocr.core", function()
  it("answers random arguments to every function with a value or an error message", function()
    local names = { "sha1", "md5", "hex", "base64_encode", "base64_decode", "url_encode",
                    "url_decode", "hmac_sha1", "xml_decode", "multipart", "cos_sign", "stat", "split_lines",
                    "sha256", "sha256_file" }
    local g = prng(1)
    local calls = 0
    for i = 1, 3000 do
      local name = names[g.int(1, #names)]
      local a, b = any_value(g), any_value(g)
      local ok, r1, r2 = pcall(core[name], a, b)
      assert_message(ok, r1, ("%s (call %d)"):format(name, i))
      if ok and r1 == nil then
        assert(type(r2) == "string", name .. " returned nil without a message")
      end
      calls = calls + 1
    end
    assert.equal(3000, calls)
  end)

  it("decodes mutated XML into a table or refuses it with line:col: message", function()
    local docs = {
      '<?xml version="1.0" encoding="UTF-8"?><Response><Code>0</Code><Items><Item a="1">x</Item>'
        .. '<Item>y&amp;z</Item></Items><Mixed>t<b>u</b>v</Mixed></Response>',
      '<a><b><c><d>1</d><d>2</d></c></b><e x="&lt;" y=\'q\'/></a>',
      '<!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>',
      '<r xmlns:p="u"><p:a p:b="1">\228\189\160\229\165\189</p:a><![CDATA[ <x> ]]></r>',
      ("<a>"):rep(70) .. ("</a>"):rep(70),
    }
    local g = prng(2)
    local decoded, refused = 0, 0
    for i = 1, 2000 do
      local doc = mutate(g, docs[g.int(1, #docs)], 6)
      local opts = g.int(1, 3) == 1 and { max_depth = g.int(1, 80), max_size = g.int(0, 400),
                                           arrays = { Item = true, d = true } } or nil
      local t, err = core.xml_decode(doc, opts)
      if t then
        assert(type(t) == "table" and next(t) ~= nil, "decode " .. i .. ": an empty table")
        decoded = decoded + 1
      else
        assert(type(err) == "string" and (err:match("^%d+:%d+: .") or err:match("^document larger than max_size")),
               ("decode %d: %q"):format(i, tostring(err)))
        refused = refused + 1
      end
    end
    -- Both paths were exercised, or the mutations were too timid (or too wild) to test anything.
    assert.is_true(decoded > 100, "decoded " .. decoded)
    assert.is_true(refused > 100, "refused " .. refused)
  end)

  -- Strict on the alphabet, the length and the padding; bits under the padding may be non-zero
  -- (codec.c says why), so only the last character before '=' may differ on re-encoding.
  it("decodes mutated base64 strictly: what it accepts re-encodes to the same text", function()
    local g = prng(3)
    local accepted = 0
    for i = 1, 2000 do
      local text = mutate(g, core.base64_encode(g.bytes(g.len())), 2)
      local raw, err = core.base64_decode(text)
      if raw then
        local canon = core.base64_encode(raw)
        assert.equal(#text, #canon, "input " .. i)
        local pad = text:find("=", 1, true)
        if pad then
          assert.equal(text:sub(1, pad - 2), canon:sub(1, pad - 2), "input " .. i)
          assert.equal(text:sub(pad), canon:sub(pad), "input " .. i)
        else
          assert.equal(text, canon, "input " .. i)
        end
        accepted = accepted + 1
      else
        assert.is_string(err)
      end
    end
    assert.is_true(accepted > 100, "accepted " .. accepted)
  end)

  it("round-trips mutated percent-encoding it accepts", function()
    local g = prng(4)
    for i = 1, 2000 do
      local text = mutate(g, core.url_encode(g.bytes(g.len())), 3)
      local raw, err = core.url_decode(text)
      if raw then
        assert.equal(raw, core.url_decode(core.url_encode(raw)), "input " .. i)
      else
        assert.is_string(err)
      end
    end
  end)

  it("signs or refuses q-sign requests with any field replaced by junk", function()
    local keys = { "secret_id", "secret_key", "method", "path", "params", "headers", "start", "expire" }
    local g = prng(5)
    local signed = 0
    for i = 1, 2000 do
      local t = { secret_id = "AKIDexample", secret_key = "key", method = "put", path = "/a b/c.png",
                  params = { ["x y"] = "1", z = "" }, headers = { Host = "h.example", ["Content-Type"] = "t" },
                  start = 1700000000, expire = 1700003600 }
      for _ = 1, g.int(0, 2) do t[keys[g.int(1, #keys)]] = any_value(g) end
      local ok, auth = pcall(core.cos_sign, t)
      assert_message(ok, auth, "cos_sign " .. i)
      if ok and auth then
        assert(auth:match("^q%-sign%-algorithm=sha1&q%-ak=.-&q%-signature=%x+$"), auth)
        assert.is_nil(auth:find("key&", 1, true), "the secret key must not appear in the header")
        signed = signed + 1
      end
    end
    assert.is_true(signed > 100, "signed " .. signed)
  end)

  it("encodes or refuses forms with junk parts", function()
    local g = prng(6)
    for i = 1, 1000 do
      local parts = {}
      for k = 1, g.int(0, 4) do
        local p = g.int(1, 2) == 1 and { name = "f" .. k, value = g.bytes(g.len()) }
          or { name = "img", filename = 'a"b\r\n.png', content_type = "image/png", data = g.bytes(g.len()) }
        if g.int(1, 3) == 1 then
          p[({ "name", "value", "filename", "content_type", "data" })[g.int(1, 5)]] = any_value(g)
        end
        parts[k] = p
      end
      local ok, body, ctype = pcall(core.multipart, parts, g.int(1, 4) == 1 and any_value(g) or nil)
      assert_message(ok, body, "multipart " .. i)
      if ok and body then
        local boundary = ctype:match("^multipart/form%-data; boundary=\"?([^\"]+)")
        assert(boundary, ctype)
        assert.equal("--" .. boundary .. "--\r\n", body:sub(-#boundary - 6))
      end
    end
  end)
end)

-- ocr.core.http_response (csrc/http_parse.c) is fed what a socket delivers: any bytes, cut
-- anywhere. Every call answers body + state or nil + message; a whole response cut at random
-- points gives back its body exactly.
describe("fuzz: ocr.core.http_response", function()
  local STATES = { head = true, body = true, done = true }

  -- A valid response of the given framing ("length", "chunked" or "eof") carrying `body`
  -- (statuses that may have one: not 1xx, 204 or 304).
  local STATUSES = { 200, 201, 206, 400, 404, 429, 500, 503 }
  local function response(g, framing, body)
    local head = { g.int(1, 4) == 1 and "HTTP/1.0 200 OK"
                   or "HTTP/1.1 " .. STATUSES[g.int(1, #STATUSES)] .. " Whatever" }
    for i = 1, g.int(0, 4) do head[#head + 1] = ("X-H%d: %s"):format(g.int(1, 3), ("v"):rep(g.int(0, 40)) .. i) end
    local wire = {}
    if framing == "length" then
      head[#head + 1] = "Content-Length: " .. #body
      wire[1] = body
    elseif framing == "chunked" then
      head[#head + 1] = "Transfer-Encoding: chunked"
      local at = 1
      while at <= #body do
        local n = math.min(#body - at + 1, g.int(1, 300))
        -- (concatenated: Lua 5.1's format("%s") stops at a NUL)
        wire[#wire + 1] = ("%x"):format(n) .. (g.int(1, 3) == 1 and ";ext=" .. g.int(1, 9) or "") ..
                          "\r\n" .. body:sub(at, at + n - 1) .. "\r\n"
        at = at + n
      end
      wire[#wire + 1] = g.int(1, 2) == 1 and "0\r\nX-Trailer: t\r\n\r\n" or "0\r\n\r\n"
    else
      head[#head + 1] = "Connection: close"
      wire[1] = body
    end
    local interim = g.int(1, 4) == 1 and "HTTP/1.1 100 Continue\r\n\r\n" or ""
    return interim .. table.concat(head, "\r\n") .. "\r\n\r\n" .. table.concat(wire)
  end

  -- `s` cut at up to `n` random points.
  local function split(g, s, n)
    local cuts = {}
    for _ = 1, g.int(0, n) do cuts[#cuts + 1] = g.int(0, #s) end
    table.sort(cuts)
    local pieces, at = {}, 0
    for _, c in ipairs(cuts) do
      pieces[#pieces + 1] = s:sub(at + 1, c)
      at = c
    end
    pieces[#pieces + 1] = s:sub(at + 1)
    return pieces
  end

  -- Feeds the pieces, then finish() (the peer closed); checks the shape of every answer and that
  -- a refusal sticks. Returns the body, the final state (nil when refused) and the message.
  local function drive(p, pieces, what)
    local body, state, err = {}, nil, nil
    local calls = {}
    for _, piece in ipairs(pieces) do calls[#calls + 1] = function() return p:feed(piece) end end
    calls[#calls + 1] = function() return p:finish() end
    for i, call in ipairs(calls) do
      local ok, out, st = pcall(call)
      assert(ok, what .. ", call " .. i .. ": raised " .. tostring(out))
      if out == nil then
        assert(type(st) == "string" and #st > 0, what .. ": nil without a message")
        if state == "done" then
          assert(st == "parser already finished", what .. ": " .. st)
        elseif err then
          assert(st == err, what .. ": a second, different error: " .. st)
        else
          err = st
        end
      else
        assert(type(out) == "string" and STATES[st], what .. ", call " .. i .. ": " .. tostring(st))
        assert(not err, what .. ": an answer after an error")
        body[#body + 1] = out
        state = st
      end
    end
    return table.concat(body), not err and state or nil, err
  end

  it("gives back the body of valid responses cut at random points", function()
    local g = prng(11)
    local framings = { "length", "chunked", "eof" }
    for round = 1, 600 do
      local framing = framings[g.int(1, 3)]
      local body = g.bytes(g.len())
      local wire = response(g, framing, body)
      local garbage = framing ~= "eof" and g.int(1, 4) == 1 and "HTTP/1.1 200 OK\r\n" or ""
      local what = ("round %d (%s)"):format(round, framing)
      local p = core.http_response()
      local got, state, err = drive(p, split(g, wire .. garbage, g.int(0, 12)), what)
      assert(err == nil, what .. ": " .. tostring(err))
      assert.equal("done", state, what)
      assert(got == body, what .. ": the body differs")
      assert.equal(#garbage, p:extra(), what)
      local status, headers, keep_alive = p:head()
      assert.is_number(status)
      assert.is_table(headers)
      assert.equal(framing ~= "eof" and not wire:find("^HTTP/1.0") and not wire:find("\r\nHTTP/1.0"),
                   keep_alive, what)
      assert.equal(framing == "length" and #body or nil, p:content_length(), what)
    end
  end)

  it("answers mutated responses with body + state or nil + message, never raising", function()
    local g = prng(12)
    local framings = { "length", "chunked", "eof" }
    local done, refused = 0, 0
    for round = 1, 1500 do
      local wire = mutate(g, response(g, framings[g.int(1, 3)], g.bytes(g.len())), 6)
      local opts = g.int(1, 3) == 1 and { head = g.int(1, 2) == 1, max_header_size = g.int(1, 300),
                                          max_headers = g.int(0, 6) } or nil
      local p = core.http_response(opts)
      local _, state = drive(p, split(g, wire, g.int(0, 20)), "round " .. round)
      if state == "done" then done = done + 1 else refused = refused + 1 end
      local status, headers = p:head()
      assert.truthy(status == nil or (type(status) == "number" and type(headers) == "table"))
      assert.is_number(p:extra())
    end
    assert.is_true(done > 100, "done " .. done)
    assert.is_true(refused > 100, "refused " .. refused)
  end)
end)

describe("fuzz: ocr.curl against mutated HTTP answers", function()
  local emu, tmp
  setup(function() emu, tmp = rig.start("httptest") end)
  teardown(function() rig.stop(emu, tmp) end)

  local ANSWERS = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":[1,2,3]}",
    "HTTP/1.1 302 Found\r\nLocation: /status/201\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nX-A: b\r\nX-A: c\r\nContent-Length: 2\r\n\r\nno",
  }
  local KINDS = { timeout = true, network = true, tls = true, too_large = true, invalid_input = true }

  local function check(i, res, err)
    if res then
      assert(type(res.status) == "number" and type(res.headers) == "table" and type(res.body) == "string",
             "answer " .. i)
    else
      assert(type(err) == "table" and KINDS[err.kind] and type(err.message) == "string"
             and type(err.sent) == "boolean", "answer " .. i .. ": " .. tostring(err and err.message))
    end
  end

  -- Queues one mutated answer for the next request to /status.
  local function raw_fault(g)
    local answer = mutate(g, ANSWERS[g.int(1, #ANSWERS)], 4)
    emu:fault{ action = "raw", path = "/status", body_b64 = (mime.b64(answer)) }
  end

  it("turns every answer into a response or an error on a session", function()
    local g = prng(7)
    local s = curl.session{ timeout = 5 }
    local answered, failed = 0, 0
    for i = 1, 120 do
      raw_fault(g)
      local res, err = s:request{ url = emu.url .. "/status/200", follow_redirects = g.int(1, 2) == 1,
                                  max_response_size = g.int(1, 4) == 1 and g.int(0, 20) or nil }
      check(i, res, err)
      if res then answered = answered + 1 else failed = failed + 1 end
    end
    s:close()
    assert.is_true(answered > 10 and failed > 10, ("answered %d, failed %d"):format(answered, failed))
  end)

  it("turns every answer into a response or an error on a multi handle", function()
    local g = prng(8)
    local m = curl.multi()
    for round = 1, 20 do
      emu:reset()
      for _ = 1, 6 do raw_fault(g) end
      local ids = {}
      for k = 1, 6 do ids[assert(m:add{ url = emu.url .. "/status/200", timeout = 5 })] = k end
      local done = 0
      while done < 6 do
        m:perform()
        m:poll(50)
        while true do
          local id, res, err = m:info_read()
          if not id then break end
          assert(ids[id], ("an id it never gave: %s (%s) in round %d"):format(tostring(id), math.type and math.type(id) or type(id), round))
          ids[id] = nil
          check(round, res, err)
          done = done + 1
        end
      end
    end
    assert.equal(0, m:count())
    m:close()
  end)
end)

-- ocr.tesseract's byte checks (csrc/image_check.c) read lengths and offsets from the image before
-- any decoder does: walked on random damage, they answer pages or an error of the model, and a
-- file cut anywhere short is never taken for whole.
local has_tess, tess = pcall(require, "ocr.tesseract")
local describe_tess = has_tess and describe or function(name) pending(name .. " (ocr.tesseract not built)") end
describe_tess("fuzz: ocr.tesseract's checks of image bytes", function()
  local images = {
    { "spec/fixtures/tiff/pages.tif", 2 }, { "examples/sample.png", 0 }, { "spec/fixtures/jpeg/page1.jpg", 0 },
  }
  for _, img in ipairs(images) do img.data = assert(require("helpers.files").read(img[1]), img[1]) end
  local kinds = { invalid_input = true, too_large = true }

  it("counts the pages of whole images and passes other formats", function()
    for _, img in ipairs(images) do assert.equal(img[2], tess._check_image(img.data), img[1]) end
    local _, sizes = tess._check_image(images[1].data)
    assert.same({ { width = 2250, height = 372 }, { width = 2250, height = 444 } }, sizes,
                "each TIFF page's size, from its directory")
    assert.equal(0, tess._check_image("GIF89a and the rest"))
    assert.equal(0, tess._check_image(""))
    local _, pdf = tess._check_image("%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n")
    assert.equal("unsupported", pdf.kind)
    local _, err = tess._check_image(images[1].data, 1)
    assert.same({ kind = "too_large", message = "TIFF image has 2 pages, over max_pages (1)" }, err)
    assert.has_error(function() tess._check_image(images[1].data, 0) end)
  end)

  it("takes no prefix of an image for the whole", function()
    local g = prng(4242)
    for _, img in ipairs(images) do
      for _ = 1, 150 do
        local prefix = img.data:sub(1, g.int(0, #img.data - 1))
        local n, err = tess._check_image(prefix)
        if #prefix < 8 then
          -- too short to know the format by its magic number: left to the decoders, which refuse it
          assert.truthy(n ~= nil or err.kind == "invalid_input")
        else
          assert.is_nil(n, ("%s cut to %d bytes"):format(img[1], #prefix))
          assert.equal("invalid_input", err.kind)
          assert.matches("truncated", err.message)
        end
      end
    end
  end)

  it("answers mutated images with pages or an error of the model", function()
    local g = prng(5151)
    for round = 1, 600 do
      local img = images[g.int(1, #images)]
      local head = math.min(#img.data, 2000)
      local bad = mutate(g, img.data:sub(1, head), 6) .. img.data:sub(head + 1)
      local n, err = tess._check_image(bad, g.int(1, 3))
      if n ~= nil then
        assert.truthy(math.type == nil or math.type(n) == "integer")
        assert.truthy(n >= 0 and n <= 3, ("round %d: %s"):format(round, tostring(n)))
        if n > 0 then   -- a TIFF: every page's size, each a positive number
          local sizes = err
          assert.equal(n, #sizes, ("round %d"):format(round))
          for _, sz in ipairs(sizes) do assert.truthy(sz.width >= 1 and sz.height >= 1) end
        end
      else
        assert.truthy(kinds[err.kind] and type(err.message) == "string", ("round %d"):format(round))
      end
    end
  end)
end)

-- `make fuzz` (fuzz/, libFuzzer) keeps each input that crashed a harness or broke one of its
-- invariants in spec/fixtures/fuzz/<harness>/. Each is replayed here through the harness's own
-- check (fuzz/checks.lua; checks.decode.<harness> reads the bytes as the harness's C does), and
-- so are the harnesses' seeds (fuzz/corpus/<harness>/): the check must return true or raise an
-- error with a message. image_check calls ocr.tesseract's _check_image, when it is built.
describe("fuzz: libFuzzer's findings and seeds, replayed", function()
  local F = require "helpers.files"
  local checks = dofile("fuzz/checks.lua")
  local HARNESSES = { "xml_decode", "multipart", "codec", "cos_sign", "http_response", "image_check",
                      "redis_reply" }

  local function replay(harness, path)
    local args = checks.decode[harness](assert(F.read(path), path))
    local ok, res, why = pcall(checks[harness], unpack(args, 1, args.n))
    if ok then
      assert(res == true, path .. ": " .. tostring(why))
    else
      assert(type(res) == "string" and #res > 0, path .. ": raised without a message: " .. tostring(res))
    end
  end

  for _, harness in ipairs(HARNESSES) do
    local it_or_pending = it
    if harness == "image_check" and not pcall(require, "ocr.tesseract") then
      it_or_pending = function(name) pending(name .. " (ocr.tesseract not built)") end
    end
    if harness == "redis_reply" and not pcall(require, "ocr.hiredis") then
      it_or_pending = function(name) pending(name .. " (ocr.hiredis not built)") end
    end
    local found = "spec/fixtures/fuzz/" .. harness
    for _, name in ipairs(F.exists(found) and F.list(found) or {}) do
      it_or_pending(harness .. ": " .. name, function() replay(harness, found .. "/" .. name) end)
    end
    local seeds = "fuzz/corpus/" .. harness
    it_or_pending(harness .. ": the seeds in " .. seeds, function()
      local names = F.list(seeds)
      assert.is_true(#names > 0, "no seeds in " .. seeds)
      for _, name in ipairs(names) do replay(harness, seeds .. "/" .. name) end
    end)
  end
end)
