-- ocr.core.http_response: the sans-I/O HTTP/1.1 response parser (csrc/http_parse.c over
-- http_parser). Responses are fed whole and byte by byte; both must give the same answer.
local core = require "ocr.core"
local F = require "helpers.files"

-- Feeds each string of `pieces` in turn. Returns the body, the last state, and the error of
-- the first refused feed (when one was), after which nothing more is fed. Pieces after "done"
-- are refused as "parser already finished" (and counted by extra()).
local function feed_all(p, pieces)
  local body, state = {}, nil
  for _, piece in ipairs(pieces) do
    local out, st = p:feed(piece)
    if out == nil and state == "done" then
      assert.equal("parser already finished", st)
    elseif out == nil then
      return table.concat(body), nil, st
    else
      assert.is_string(out)
      body[#body + 1] = out
      state = st
    end
  end
  return table.concat(body), state
end

local function bytes(s)
  local t = {}
  for i = 1, #s do t[i] = s:sub(i, i) end
  return t
end

-- The same response fed whole and byte by byte: body, state, error, head, extra and declared
-- length are equal both ways. Returns the first parser and what it answered.
local function parse_both_ways(response, opts)
  local results = {}
  for way, pieces in ipairs({ { response }, bytes(response) }) do
    local p = core.http_response(opts)
    local body, state, err = feed_all(p, pieces)
    local status, headers, keep_alive = p:head()
    results[way] = { p = p, body = body, state = state, err = err, status = status,
                     headers = headers, keep_alive = keep_alive, extra = p:extra(),
                     length = p:content_length() }
  end
  local a, b = results[1], results[2]
  -- (a refused feed returns no body: one refused whole has none, fed byte by byte it may)
  for _, k in ipairs({ a.err == nil and "body" or "err", "state", "err", "status", "keep_alive",
                       "extra", "length" }) do
    assert.equal(a[k], b[k], k .. " differs when fed byte by byte")
  end
  assert.same(a.headers, b.headers)
  return a
end

describe("ocr.core.http_response", function()
  it("parses a Content-Length response fed whole or byte by byte alike", function()
    local r = parse_both_ways("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n" ..
                              "X-Request-Id: abc\r\n\r\nhello world")
    assert.equal("hello world", r.body)
    assert.equal("done", r.state)
    assert.is_nil(r.err)
    assert.equal(200, r.status)
    assert.same({ ["content-type"] = "text/plain", ["content-length"] = "11", ["x-request-id"] = "abc" },
                r.headers)
    assert.is_true(r.keep_alive)
    assert.equal(11, r.length)
    assert.equal("11", tostring(r.length), "an integer, fit for a header")
    assert.equal(0, r.extra)
  end)

  it("reports the head, then the body, then done, as the bytes arrive", function()
    local p = core.http_response()
    assert.same({ "", "head" }, { p:feed("HTTP/1.1 200 OK\r\nContent-Le") })
    assert.is_nil(p:head())
    assert.is_nil(p:content_length())
    assert.same({ "", "body" }, { p:feed("ngth: 6\r\n\r\n") })
    assert.equal(200, (p:head()))
    assert.equal(6, p:content_length())
    assert.same({ "abc", "body" }, { p:feed("abc") })
    assert.same({ "def", "done" }, { p:feed("def") })
  end)

  it("de-chunks a chunked body with extensions and trailers, fed byte by byte", function()
    local r = parse_both_ways("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n" ..
                              "5;name=value\r\nhello\r\n" ..
                              "1;a;b=\"q\"\r\n \r\n" ..
                              "A\r\n0123456789\r\n" ..
                              "0\r\nX-Checksum: 42\r\nX-Other: t\r\n\r\n")
    assert.equal("hello 0123456789", r.body)
    assert.equal("done", r.state)
    assert.is_nil(r.length, "no declared length")
    assert.is_true(r.keep_alive)
    assert.equal(0, r.extra)
    assert.same({ ["transfer-encoding"] = "chunked", trailer = "X-Checksum" }, r.headers,
                "trailers are dropped, not mixed into the head")
  end)

  it("ends a body delimited by the connection's end on finish()", function()
    local p = core.http_response()
    assert.same({ "first ", "body" }, { p:feed("HTTP/1.1 200 OK\r\nContent-Type: a/b\r\n\r\nfirst ") })
    assert.same({ "second", "body" }, { p:feed("second") })
    assert.same({ "", "done" }, { p:finish() })
    local status, _, keep_alive = p:head()
    assert.equal(200, status)
    assert.is_false(keep_alive, "a body read to the end closes the connection")
    assert.is_nil(p:content_length())
    assert.same({ "", "done" }, { p:finish() }, "the response stays complete")
    assert.same({ nil, "parser already finished" }, { p:feed("more") })
  end)

  it("expects no body in the answer to a HEAD request", function()
    local response = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    local r = parse_both_ways(response, { head = true })
    assert.same({ "", "done", 200, 1234, true, 0 },
                { r.body, r.state, r.status, r.length, r.keep_alive, r.extra })
    -- the same bytes answering a GET wait for the 1234 bytes
    assert.equal("body", parse_both_ways(response).state)
    -- a HEAD answer without a length is complete too, and keeps the connection
    local h = parse_both_ways("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", { head = true })
    assert.same({ "done", true }, { h.state, h.keep_alive })
  end)

  for _, status in ipairs({ 204, 304 }) do
    it("expects no body after " .. status .. ", even with a Content-Length", function()
      local r = parse_both_ways("HTTP/1.1 " .. status .. " X\r\nETag: \"e\"\r\n\r\n")
      assert.same({ "", "done", status, true, 0 }, { r.body, r.state, r.status, r.keep_alive, r.extra })
      local c = parse_both_ways("HTTP/1.1 " .. status .. " X\r\nContent-Length: 5\r\n\r\nhello")
      assert.same({ "", "done", 5 }, { c.body, c.state, c.extra }, "the 5 bytes are not its body")
    end)
  end

  it("skips interim 100 and 103 responses and reads the final one", function()
    local r = parse_both_ways("HTTP/1.1 100 Continue\r\n\r\n" ..
                              "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" ..
                              "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nLocation: /t/1\r\n\r\nok")
    assert.same({ "ok", "done", 201, 2, 0 }, { r.body, r.state, r.status, r.length, r.extra })
    assert.same({ ["content-length"] = "2", location = "/t/1" }, r.headers)
    local p = core.http_response()
    assert.same({ "", "head" }, { p:feed("HTTP/1.1 100 Continue\r\n\r\n") })
    assert.is_nil(p:head(), "an interim head is not the response's")
  end)

  it("treats 101 as the final response: what follows is another protocol's", function()
    local r = parse_both_ways("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" ..
                              "Connection: Upgrade\r\n\r\n\129\5hello")
    assert.same({ "", "done", 101, 7 }, { r.body, r.state, r.status, r.extra })
  end)

  it("says whether the connection may be kept alive", function()
    local cases = {
      { "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true },
      { "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false },
      { "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false },
      { "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true },
      { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true },
    }
    for i, c in ipairs(cases) do
      local r = parse_both_ways(c[1])
      assert.equal("done", r.state, "case " .. i)
      assert.equal(c[2], r.keep_alive, "case " .. i)
    end
  end)

  it("lowercases names, joins repeated ones in order and trims trailing blanks", function()
    local r = parse_both_ways("HTTP/1.1 200 OK\r\nX-A: 1\r\nSet-Cookie: a=1; Path=/\r\nx-a: 2\r\n" ..
                              "SET-COOKIE: b=2\r\nX-A:3 \t\r\nX-Empty:\r\nX-Blank:   \r\nContent-Length: 0\r\n\r\n")
    assert.same({ ["x-a"] = "1, 2, 3", ["set-cookie"] = "a=1; Path=/, b=2", ["x-empty"] = "",
                  ["x-blank"] = "", ["content-length"] = "0" }, r.headers)
  end)

  it("returns a new headers table on every call", function()
    local p = core.http_response()
    p:feed("HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 0\r\n\r\n")
    local _, h1 = p:head()
    h1.a = "changed"
    local _, h2 = p:head()
    assert.equal("b", h2.a)
  end)

  describe("limits", function()
    -- 38 bytes of head: status line, one field, the blank line.
    local small = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    it("refuses a head over max_header_size, counting every byte before the body", function()
      assert.equal(38, #small)
      assert.equal("done", parse_both_ways(small, { max_header_size = 38 }).state)
      local r = parse_both_ways(small, { max_header_size = 37 })
      assert.same({ nil, "response headers larger than 37 bytes" }, { r.state, r.err })
      local big = parse_both_ways("HTTP/1.1 200 OK\r\nX-Big: " .. ("v"):rep(70000) .. "\r\n\r\n")
      assert.equal("response headers larger than 65536 bytes", big.err)
    end)

    it("checks each name and value as it arrives, before storing it", function()
      -- over the limit when the name (the value) ends, before the broken byte after it is read
      local name = "HTTP/1.1 200 OK\r\n" .. ("A"):rep(30) .. ": a\0\r\n\r\n"
      local value = "HTTP/1.1 200 OK\r\nA: " .. ("v"):rep(30) .. "\r\n\0: 1\r\n\r\n"
      for _, head in ipairs({ name, value }) do
        assert.equal("response headers larger than 40 bytes",
                     parse_both_ways(head, { max_header_size = 40 }).err)
        assert.matches("^malformed HTTP response: invalid character in header",
                       parse_both_ways(head, { max_header_size = 60 }).err)
      end
    end)

    it("refuses as soon as a feed passes the limit, even with bytes stored nowhere", function()
      local p = core.http_response{ max_header_size = 100 }
      assert.same({ "", "head" }, { p:feed("HTTP/1.1 200 OK\r\nX-Blank:" .. (" "):rep(40)) })
      assert.same({ nil, "response headers larger than 100 bytes" }, { p:feed((" "):rep(60)) })
    end)

    it("counts interim heads too, so an endless run of 100 Continue ends", function()
      local interim = "HTTP/1.1 100 Continue\r\n\r\n"   -- 25 bytes
      local ok = parse_both_ways(interim .. small, { max_header_size = 25 + 38 })
      assert.equal("done", ok.state)
      local r = parse_both_ways(interim .. small, { max_header_size = 25 + 37 })
      assert.equal("response headers larger than 62 bytes", r.err)
      local p = core.http_response()
      local body, state, err = feed_all(p, { ("HTTP/1.1 100 \r\n\r\n"):rep(4000) })
      assert.same({ "", nil, "response headers larger than 65536 bytes" }, { body, state, err })
    end)

    it("refuses more than max_headers fields", function()
      local head = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n"
      assert.equal("body", parse_both_ways(head, { max_headers = 3 }).state)
      assert.equal("more than 2 response headers", parse_both_ways(head, { max_headers = 2 }).err)
      assert.equal("more than 0 response headers", parse_both_ways(head, { max_headers = 0 }).err)
      local many = "HTTP/1.1 200 OK\r\n" .. ("X: y\r\n"):rep(101) .. "\r\n"
      assert.equal("more than 100 response headers", parse_both_ways(many).err)
    end)
  end)

  describe("malformed responses", function()
    it("names the error and the byte it is at, fed whole or byte by byte", function()
      local cases = {
        { "HTTP/1.1 2x0 OK\r\n\r\n", "invalid HTTP status code (at byte 10)" },
        { "XTTP/1.1 200 OK\r\n\r\n", "invalid constant string (at byte 0)" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
          "invalid character in chunk size header (at byte 57)", 200 },
        { "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n", "invalid character in header (at byte 23)" },
        { "HTTP/1.1 200 OK\r\nX-A\0: ab\r\n\r\n", "invalid character in header (at byte 20)" },
        -- a value's first byte, which http_parser leaves unchecked, and a folded line's
        { "HTTP/1.1 200 OK\r\nX-A: \0b\r\n\r\n", "invalid character in header (at byte 22)" },
        { "HTTP/1.1 200 OK\r\nX-A:\1\r\n\r\n", "invalid character in header (at byte 21)" },
        { "HTTP/1.1 200 OK\r\nX-A: a\r\n \0\r\n\r\n", "invalid character in header (at byte 26)" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "invalid character in content-length header (at byte 34)" },
      }
      for i, c in ipairs(cases) do
        local r = parse_both_ways(c[1])
        assert.equal("malformed HTTP response: " .. c[2], r.err, "case " .. i)
        assert.equal(c[3], r.status, "case " .. i .. ": the head is there when it was complete")
      end
    end)

    it("keeps the body fed before a broken chunk and then refuses", function()
      local p = core.http_response()
      assert.same({ "hello", "body" },
                  { p:feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n") })
      local body, err = p:feed("g\r\n")
      assert.is_nil(body)
      assert.equal("malformed HTTP response: invalid character in chunk size header (at byte 57)", err)
      assert.equal(200, (p:head()), "the head stays readable")
    end)

    it("answers every call after an error with the same error", function()
      local p = core.http_response()
      local _, err = p:feed("HTTP/1.1 abc\r\n")
      assert.matches("^malformed HTTP response: ", err)
      assert.same({ nil, err }, { p:feed("HTTP/1.1 200 OK\r\n\r\n") })
      assert.same({ nil, err }, { p:finish() })
      assert.equal(0, p:extra())
    end)
  end)

  it("counts the bytes fed after the response ended, in that feed and later ones", function()
    local p = core.http_response()
    assert.same({ "abc", "done" },
                { p:feed("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n") })
    assert.equal(17, p:extra())
    assert.same({ nil, "parser already finished" }, { p:feed("more") })
    assert.equal(21, p:extra())
    assert.same({ nil, "parser already finished" }, { p:feed("") })
    assert.equal(21, p:extra())
  end)

  describe("finish()", function()
    it("refuses a Content-Length body cut short", function()
      local p = core.http_response()
      assert.same({ "abc", "body" }, { p:feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") })
      assert.same({ nil, "connection closed before the response was complete" }, { p:finish() })
      assert.same({ nil, "connection closed before the response was complete" }, { p:feed("defghij") })
    end)

    it("refuses a chunked body, a head or nothing cut short", function()
      for _, bytes_sent in ipairs({ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                                    "HTTP/1.1 200 OK\r\nContent-Le", "", "HTTP/1.1 100 Continue\r\n\r\n" }) do
        local p = core.http_response()
        assert.is_string((p:feed(bytes_sent)))
        assert.same({ nil, "connection closed before the response was complete" }, { p:finish() })
      end
    end)

    it("does not take an empty feed for the connection's end", function()
      local p = core.http_response()
      p:feed("HTTP/1.1 200 OK\r\n\r\nbody to the end")
      assert.same({ "", "body" }, { p:feed("") })
      assert.same({ "", "done" }, { p:finish() })
    end)
  end)

  describe("programmer mistakes raise", function()
    it("checks the options", function()
      assert.has_error(function() core.http_response{ max_header_sise = 10 } end,
                       "bad option to 'http_response' (unknown option 'max_header_sise')")
      assert.has_error(function() core.http_response{ head = "yes" } end)
      assert.has_error(function() core.http_response{ max_header_size = 0 } end)
      assert.has_error(function() core.http_response{ max_header_size = 1.5 } end)
      assert.has_error(function() core.http_response{ max_headers = -1 } end)
      assert.has_error(function() core.http_response{ max_headers = "10" } end)
      assert.has_error(function() core.http_response("x") end)
      assert.is_userdata(core.http_response{ head = false, max_header_size = 1, max_headers = 0 })
    end)

    it("checks feed's argument and the receiver", function()
      local p = core.http_response()
      assert.has_error(function() p:feed(12) end)
      assert.has_error(function() p:feed() end)
      assert.has_error(function() p.feed({}, "x") end)
      assert.matches("^ocr.http_response %(head%)$", tostring(p))
    end)
  end)

  -- The README's example, on a stand-in for a LuaSocket connection: receive(n) hands what has
  -- arrived as the partial result of a "timeout", and "closed" (with the last bytes) at the end.
  describe("the README example", function()
    local function readme_block()
      local readme = assert(F.read("README.md"))
      for code in readme:gmatch("\n```lua\n(.-)\n```") do
        if code:find("core.http_response{", 1, true) then return code end
      end
      error("no README example uses core.http_response")
    end

    local function fake_socket(arrivals, closes)
      local sock = { sent = {}, closed = false }
      local i = 0
      function sock:send(s) self.sent[#self.sent + 1] = s return #s end
      function sock:receive(n)
        assert.equal(4096, n)
        i = i + 1
        local piece = arrivals[i]
        if i >= #arrivals and closes then return nil, "closed", piece or "" end
        assert(piece, "the example read past the response")
        return nil, "timeout", piece
      end
      function sock:close() self.closed = true end
      return sock
    end

    local function run(sock)
      local printed = {}
      local env = setmetatable({ sock = sock, print = function(...)
        local t = {}
        for k = 1, select("#", ...) do t[k] = tostring((select(k, ...))) end
        printed[#printed + 1] = table.concat(t, "\t")
      end }, { __index = _G })
      local fn
      if setfenv then
        fn = setfenv(assert(loadstring(readme_block(), "README")), env)
      else
        fn = assert(load(readme_block(), "README", "t", env))
      end
      local ok, err = pcall(fn)
      return ok, ok and table.concat(printed, "\n") or err
    end

    it("reads a chunked answer on a kept-alive connection", function()
      local sock = fake_socket({ "", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n",
                                 "\r\n5\r\nhello", "\r\n6\r\n world\r\n0\r\n\r\n" })
      local ok, printed = run(sock)
      assert.is_true(ok, printed)
      assert.equal("200\ttext/plain\thello world", printed)
      assert.equal("GET /v1/status HTTP/1.1\r\nHost: api.example.com\r\n\r\n", sock.sent[1])
      assert.is_false(sock.closed)
    end)

    it("reads a body that ends with the connection, and closes it", function()
      local sock = fake_socket({ "HTTP/1.0 200 OK\r\nContent-Type: a/b\r\n\r\nto the", " end" }, true)
      local ok, printed = run(sock)
      assert.is_true(ok, printed)
      assert.equal("200\ta/b\tto the end", printed)
      assert.is_true(sock.closed)
    end)

    it("raises the parser's message for an answer cut short", function()
      local ok, err = run(fake_socket({ "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc" }, true))
      assert.is_false(ok)
      assert.matches("connection closed before the response was complete", err, 1, true)
    end)
  end)

  it("keeps working after many parsers are collected mid-response", function()
    for i = 1, 200 do
      local p = core.http_response()
      p:feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-N: " .. i .. "\r\n\r\n3\r\nabc\r\n4\r\nde")
    end
    collectgarbage()
    collectgarbage()
    local r = parse_both_ways("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert.same({ "x", "done" }, { r.body, r.state })
  end)
end)
