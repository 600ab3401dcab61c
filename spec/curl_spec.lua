-- ocr.curl sessions against a real HTTP server (spec/emulators/httptest.py on 127.0.0.1).
-- Reference hashes come from the server (Python's hashlib) or from sha1sum, never from the
-- module under test.
local curl = require "ocr.curl"
local emulator = require "helpers.emulator"
local cjson = require "cjson"
local socket = require "socket"
-- helpers.files runs its non-Lua children (sha1sum, ls, mktemp, rm) without the sanitizer runtimes
local F = require "helpers.files"
local rig = require "helpers.rig"

local function json(res)
  assert(res, "no response")
  return cjson.decode(res.body)
end

describe("ocr.curl", function()
  local emu, s, tmp

  setup(function() emu, tmp = rig.start("httptest") end)

  teardown(function()
    if s then s:close() end
    rig.stop(emu, tmp)
  end)

  before_each(function()
    emu:reset()
    if s then s:close() end
    s = curl.session()
  end)

  local function url(path) return emu.url .. path end

  describe("module", function()
    it("reports its versions and resolver", function()
      assert.equal("0.1.0", curl._VERSION)
      assert.truthy(curl._CURL_VERSION:match("^libcurl/%d+%.%d+"))
      assert.is_boolean(curl._ASYNCH_DNS)
    end)
  end)

  describe("responses", function()
    it("returns statuses as responses, not errors", function()
      for _, code in ipairs{ 200, 201, 204, 404, 500 } do
        local res, err = s:request{ url = url("/status/" .. code) }
        assert.is_nil(err)
        assert.equal(code, res.status)
        if code == 204 then
          assert.equal("", res.body)
        else
          assert.same({ status = code }, json(res))
        end
        assert.equal(url("/status/" .. code), res.url)
        assert.is_number(res.time)
        assert.is_nil(res.saved)
      end
    end)

    it("lowercases header names and joins repeats with ', '", function()
      local res = assert(s:request{ url = url("/headers?X-Custom-One=a&X-Custom-One=b&X-Other=c") })
      assert.equal("a, b", res.headers["x-custom-one"])
      assert.equal("c", res.headers["x-other"])
      assert.equal("text/plain; charset=utf-8", res.headers["content-type"])
      for name in pairs(res.headers) do assert.equal(name:lower(), name) end
    end)

    it("reassembles chunked bodies", function()
      local res = assert(s:request{ url = url("/chunked?n=4") })
      assert.equal("chunked", res.headers["transfer-encoding"])
      assert.equal("piece 1 of 4\npiece 2 of 4\npiece 3 of 4\npiece 4 of 4\n", res.body)
      assert.is_nil(res.headers["content-length"])
    end)

    it("counts bytes both ways", function()
      local res = assert(s:request{ url = url("/bytes?n=3000"), method = "POST", body = "abc" })
      assert.equal(3, res.bytes_sent)
      assert.equal(3000, res.bytes_received)
      assert.equal(3000, #res.body)
    end)
  end)

  describe("requests", function()
    it("sends the method, headers and body as given", function()
      local res = assert(s:request{
        url = url("/echo?a=1&b="), method = "PATCH", body = "hello world",
        headers = { ["X-Test"] = "value", ["X-Num"] = 42, ["Content-Type"] = "text/plain" },
      })
      local e = json(res)
      assert.equal("PATCH", e.method)
      assert.same({ a = "1", b = "" }, e.query)
      assert.equal("value", e.headers["x-test"])
      assert.equal("42", e.headers["x-num"])
      assert.equal("text/plain", e.headers["content-type"])
      assert.equal(11, e.body_size)
      -- sha1("hello world"), from Python's hashlib
      assert.equal("2aae6c35c94fcfb415dbe95f408b9ce91ee846ed", e.body_sha1)
      assert.truthy(e.headers["user-agent"]:match("^lua%-ocr/0%.1%.0 libcurl/"))
    end)

    it("defaults to GET, or POST with a body, and sends no made-up Content-Type", function()
      assert.equal("GET", json(s:request{ url = url("/echo") }).method)
      local e = json(s:request{ url = url("/echo"), body = "x=1" })
      assert.equal("POST", e.method)
      assert.is_nil(e.headers["content-type"])
      e = json(s:request{ url = url("/echo"), method = "DELETE" })
      assert.equal("DELETE", e.method)
      e = json(s:request{ url = url("/echo"), method = "PUT" })
      assert.equal("PUT", e.method)
      assert.equal("0", e.headers["content-length"])
    end)

    it("sends HEAD without reading a body", function()
      local res = assert(s:request{ url = url("/bytes?n=5000"), method = "HEAD" })
      assert.equal(200, res.status)
      assert.equal("5000", res.headers["content-length"])
      assert.equal("", res.body)
      assert.equal("HEAD", emu:requests("/bytes")[1].method)
    end)

    it("never sends Expect: 100-continue, even for large bodies", function()
      local body = ("0123456789abcdef"):rep(128 * 1024)   -- 2 MiB
      local e = json(s:request{ url = url("/echo"), body = body, headers = { ["Content-Type"] = "application/octet-stream" } })
      assert.is_nil(e.headers.expect)
      assert.equal(#body, e.body_size)
      assert.equal(F.sha1sum_string(body), e.body_sha1)
    end)

    it("offers the encodings libcurl can decode", function()
      local e = json(s:request{ url = url("/echo") })
      assert.truthy(e.headers["accept-encoding"]:match("gzip"))
    end)

    it("keeps the connection alive within a session, not across sessions", function()
      local p1 = json(s:request{ url = url("/conn") }).port
      local p2 = json(s:request{ url = url("/conn") }).port
      assert.equal(p1, p2)
      local other = curl.session()
      local p3 = json(other:request{ url = url("/conn") }).port
      other:close()
      assert.not_equal(p1, p3)
    end)
  end)

  describe("errors", function()
    it("times out a slow request (kind timeout, sent)", function()
      local t0 = socket.gettime()
      local res, err = s:request{ url = url("/slow?ms=3000"), timeout = 0.3 }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.is_true(err.sent)
      assert.equal(28, err.curl_code)   -- CURLE_OPERATION_TIMEDOUT
      assert.is_string(err.message)
      assert.is_true(socket.gettime() - t0 < 2)
    end)

    it("reports a refused connection as network, not sent", function()
      local res, err = s:request{ url = "http://127.0.0.1:" .. emulator.closed_port() .. "/x" }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.is_false(err.sent)
      assert.equal(7, err.curl_code)    -- CURLE_COULDNT_CONNECT
    end)

    it("reports a failed TLS handshake as tls, not sent", function()
      -- the emulator speaks plain HTTP: the handshake fails before any request byte
      local res, err = s:request{ url = "https://127.0.0.1:" .. emu.port .. "/status/200" }
      assert.is_nil(res)
      assert.equal("tls", err.kind)
      assert.is_false(err.sent)
    end)

    it("refuses file:// and ftp:// before anything happens", function()
      for _, u in ipairs{ "file:///etc/passwd", "ftp://127.0.0.1:" .. emu.port .. "/x",
                          "FILE:///etc/passwd", "127.0.0.1/x", "" } do
        local res, err = s:request{ url = u }
        assert.is_nil(res)
        assert.equal("invalid_input", err.kind)
        assert.is_false(err.sent)
        assert.is_nil(err.curl_code)
      end
      assert.same({}, emu:log())
    end)

    it("does not follow redirects by default", function()
      local res = assert(s:request{ url = url("/redirect?to=/status/201") })
      assert.equal(302, res.status)
      assert.equal("/status/201", res.headers.location)
      assert.equal(0, #emu:requests("/status"))
    end)

    it("follows redirects when asked, within max_redirects", function()
      local res = assert(s:request{ url = url("/redirect?to=/status/201"), follow_redirects = true })
      assert.equal(201, res.status)
      assert.equal(url("/status/201"), res.url)
      local res2, err = s:request{ url = url("/redirect?to=/status/201"), follow_redirects = true,
                                   max_redirects = 0 }
      assert.is_nil(res2)
      assert.equal("network", err.kind)
      assert.equal(47, err.curl_code)   -- CURLE_TOO_MANY_REDIRECTS
    end)

    it("refuses a redirect to file:// when following", function()
      local path = tmp .. "/secret.txt"
      F.write(path, "secret")
      local res, err = s:request{ url = url("/redirect?to=file://" .. path), follow_redirects = true }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.truthy(err.message:match("redirect"))
      local with_session_default = curl.session{ follow_redirects = true }
      res, err = with_session_default:request{ url = url("/redirect?to=ftp://127.0.0.1/x") }
      with_session_default:close()
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
    end)

    it("refuses CR/LF and bad header names without sending anything", function()
      local bad = {
        { ["X-Bad"] = "a\r\nX-Injected: 1" },
        { ["X-Bad"] = "a\nb" },
        { ["X-Bad"] = "a\rb" },
        { ["X-Bad"] = "a\0b" },
        { ["X-Bad\r\nX-Injected"] = "1" },
        { ["X-Bad: x"] = "1" },
        { ["X Bad"] = "1" },
        { [""] = "1" },
      }
      for _, headers in ipairs(bad) do
        local res, err = s:request{ url = url("/echo"), headers = headers }
        assert.is_nil(res)
        assert.equal("invalid_input", err.kind)
        assert.is_false(err.sent)
      end
      local res, err = s:request{ url = url("/echo"), method = "GET /x HTTP/1.1\r\n" }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.same({}, emu:log())
    end)

    it("sends a header with an empty value as an empty header (libcurl's \"Name;\")", function()
      local res = assert(s:request{ url = url("/echo"), headers = { ["X-Empty"] = "", ["X-Full"] = "v" } })
      local seen = json(res).headers
      assert.equal("", seen["x-empty"])
      assert.equal("v", seen["x-full"])
    end)

    it("lowercases response header names of any length", function()
      local long = "X-" .. string.rep("Long-Name", 10)   -- over the 64-byte fast path
      local res = assert(s:request{ url = url("/headers?" .. long .. "=1&" .. long .. "=2&X-Short=3") })
      assert.equal("1, 2", res.headers[long:lower()])
      assert.equal("3", res.headers["x-short"])
      assert.is_nil(res.headers[long])
    end)

    it("refuses a URL with a space or a control character, and an empty save_to, sending nothing", function()
      for _, u in ipairs{ url("/echo?a b"), url("/echo\t"), url("/echo\r\nX-Injected: 1") } do
        local res, err = s:request{ url = u }
        assert.is_nil(res)
        assert.equal("invalid_input", err.kind)
        assert.equal("url: contains a space or a control character", err.message)
      end
      local res, err = s:request{ url = url("/echo"), save_to = "" }
      assert.is_nil(res)
      assert.equal("save_to: must be a non-empty path without NUL bytes", err.message)
      assert.same({}, emu:log())
    end)

    it("caps the response body at max_response_size", function()
      local res, err = s:request{ url = url("/bytes?n=100000"), max_response_size = 1000 }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      assert.is_true(err.sent)
      -- no Content-Length to reject up front: counted while streaming
      res, err = s:request{ url = url("/bytes?n=100000&chunked=1"), max_response_size = 99999 }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      res = assert(s:request{ url = url("/bytes?n=100000&chunked=1"), max_response_size = 100000 })
      assert.equal(100000, #res.body)
      local capped = curl.session{ max_response_size = 10 }
      res, err = capped:request{ url = url("/bytes?n=11") }
      capped:close()
      assert.equal("too_large", err.kind)
    end)

    it("rejects a huge declared Content-Length up front", function()
      local res, err = s:request{ url = url("/big-length") }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      res, err = s:request{ url = url("/big-length?len=2000"), max_response_size = 1500 }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
    end)

    it("reports a dropped connection as a network error", function()
      emu:fault{ action = "drop", path = "/status", times = 2 }
      local res, err = s:request{ url = url("/status/200") }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.is_true(err.sent)
    end)

    it("reports a reset connection as a network error", function()
      emu:fault{ action = "reset", path = "/status", times = 2 }
      local res, err = s:request{ url = url("/status/200") }
      assert.is_nil(res)
      assert.equal("network", err.kind)
    end)

    it("reports a truncated body as a network error", function()
      emu:fault{ action = "truncate", path = "/echo" }
      local res, err = s:request{ url = url("/echo?pad=" .. ("x"):rep(200)) }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.equal(18, err.curl_code)   -- CURLE_PARTIAL_FILE
      emu:fault{ action = "truncate", path = "/bytes" }
      res, err = s:request{ url = url("/bytes?n=100000") }
      assert.is_nil(res)
      assert.equal("network", err.kind)
    end)

    -- libcurl reports these status lines as "unsupported protocol", the code a refused redirect
    -- has too: they are the server's garbage, not the caller's input.
    it("reports an unparsable status line as a network error, not a refused redirect", function()
      for _, raw in ipairs{ "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
                            "HTTP/7.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
                            "hello, not http\r\n\r\n" } do
        emu:fault{ action = "raw", path = "/status", body = raw }
        local res, err = s:request{ url = url("/status/200"), follow_redirects = true }
        assert.is_nil(res, raw)
        assert.equal("network", err.kind, raw)
        assert.is_true(err.sent, raw)
        assert.is_nil(err.message:find("redirect"), err.message)
      end
      -- A well-formed answer on the next connection: nothing of the garbage stuck.
      assert.equal(200, assert(s:request{ url = url("/status/200") }).status)
    end)

    it("recovers after errors on the same session", function()
      s:request{ url = url("/slow?ms=2000"), timeout = 0.2 }
      s:request{ url = url("/big-length") }
      local res = assert(s:request{ url = url("/status/200") })
      assert.equal(200, res.status)
    end)
  end)

  describe("forms", function()
    it("sends text, in-memory and on-disk file parts", function()
      local path = tmp .. "/photo.png"
      local file_data = ("\137PNG\r\n\26\n" .. ("\0\1\2\255"):rep(5000))
      F.write(path, file_data)
      local mem = ("binary\0data\r\n--boundary-like\r\n"):rep(100)
      local e = json(s:request{ url = url("/echo"), form = {
        { name = "text", value = "héllo wörld" },
        { name = "mem", filename = "blob.bin", content_type = "application/x-test", data = mem },
        { name = "disk", file = path },
        { name = "disk2", file = path, filename = "renamed.jpg", content_type = "image/jpeg" },
      } })
      assert.equal("POST", e.method)
      assert.truthy(e.headers["content-type"]:match("^multipart/form%-data; boundary="))
      assert.equal("héllo wörld", e.form.text[1].value)
      assert.equal("blob.bin", e.form.mem[1].filename)
      assert.equal("application/x-test", e.form.mem[1].content_type)
      assert.equal(#mem, e.form.mem[1].size)
      assert.equal(F.sha1sum_string(mem), e.form.mem[1].sha1)
      assert.equal("photo.png", e.form.disk[1].filename)
      assert.equal(#file_data, e.form.disk[1].size)
      assert.equal(F.sha1sum(path), e.form.disk[1].sha1)
      assert.equal("renamed.jpg", e.form.disk2[1].filename)
      assert.equal("image/jpeg", e.form.disk2[1].content_type)
    end)

    -- A form without files is sent as one buffer; with files, its bytes are streamed around the
    -- files' contents. The same parts must come out as the same bytes either way, and as
    -- ocr.core.multipart_plan's (the one form module behind both).
    it("sends the same bytes for a part held in memory and one streamed from a file", function()
      local text = ("line one\r\nline \"two\"\r\n--not-a-boundary\r\n"):rep(20)
      local path = tmp .. "/same.txt"
      F.write(path, text)
      local function send(last_part)
        local res = assert(s:request{ url = url("/echo"), form = {
          { name = "plain", value = "héllo" },
          { name = 'quo"te', value = "q" },
          { name = "typed", value = "{}", content_type = "application/json" },
          last_part,
        } })
        local e = json(res)
        local boundary = e.headers["content-type"]:match("^multipart/form%-data; boundary=(.+)$")
        assert.truthy(boundary, e.headers["content-type"])
        assert.is_nil(text:find(boundary, 1, true))
        return e, boundary
      end
      local part = { name = "doc", filename = 'a "b".txt', content_type = "text/plain" }
      local mem, b1 = send{ name = part.name, filename = part.filename, content_type = part.content_type, data = text }
      local disk, b2 = send{ name = part.name, filename = part.filename, content_type = part.content_type, file = path }
      assert.truthy(b1:match("^%-%-%-%-ocr%x+$"), b1)
      assert.equal(39, #b1)
      assert.not_equal(b1, b2)
      assert.equal(disk.body_size, mem.body_size)
      assert.equal(disk.headers["content-length"], mem.headers["content-length"])
      assert.equal(disk.body:gsub(b2:gsub("%p", "%%%0"), "B"), (mem.body:gsub(b1:gsub("%p", "%%%0"), "B")))
      -- parsed back by the server, too ('"' in names travels as %22, as browsers send it)
      assert.equal(F.sha1sum_string(text), mem.form.doc[1].sha1)
      assert.equal('a %22b%22.txt', mem.form.doc[1].filename)
      assert.equal("q", mem.form["quo%22te"][1].value)
      assert.equal("héllo", mem.form.plain[1].value)
      assert.truthy(mem.body:find("\r\nContent-Type: application/json\r\n\r\n{}\r\n", 1, true))
    end)

    it("sends a large in-memory form whole, with Content-Length and no 100-continue wait", function()
      local chunk = {}
      for i = 0, 255 do chunk[#chunk + 1] = string.char(i) end
      local big = (table.concat(chunk) .. "\r\n--------------------------\r\n"):rep(30000)   -- ~8.5 MB
      local e = json(s:request{ url = url("/upload"), form = {
        { name = "meta", value = "v" },
        { name = "blob", filename = "b.bin", content_type = "application/octet-stream", data = big },
      } })
      assert.is_true(e.multipart_complete)
      assert.equal(cjson.null, e.transfer_encoding)   -- sent with a Content-Length
      assert.equal(cjson.null, e.expect)
      assert.equal(2, #e.parts)
      assert.equal(#big, e.parts[2].size)
      assert.equal(F.sha1sum_string(big), e.parts[2].sha1)
      -- the session keeps working, and a later small form is not padded with the big one
      local e2 = json(s:request{ url = url("/upload"), form = { { name = "meta", value = "w" } } })
      assert.is_true(e2.multipart_complete)
      assert.is_true(e2.size < 1024)
    end)

    it("sends forms of many parts", function()
      local form = {}
      for i = 1, 40 do form[i] = { name = "p" .. i, value = ("v"):rep(i) } end
      local e = json(s:request{ url = url("/echo"), form = form })
      for i = 1, 40 do assert.equal(("v"):rep(i), e.form["p" .. i][1].value) end
    end)

    it("never reuses a boundary between forms", function()
      local seen = {}
      for _ = 1, 50 do
        local e = json(s:request{ url = url("/echo"), form = { { name = "a", value = "1" } } })
        local b = e.headers["content-type"]:match("boundary=(.+)$")
        assert.is_nil(seen[b])
        seen[b] = true
      end
    end)

    it("refuses a missing or unreadable file before connecting", function()
      for _, f in ipairs{ tmp .. "/does-not-exist", tmp } do
        local res, err = s:request{ url = url("/echo"), form = { { name = "f", file = f } } }
        assert.is_nil(res)
        assert.equal("invalid_input", err.kind)
        assert.is_false(err.sent)
      end
      local res, err = s:request{ url = url("/echo"), upload_file = tmp .. "/does-not-exist" }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.same({}, emu:log())
    end)

    it("streams a form's file again when a 307 redirect repeats the request", function()
      local path = tmp .. "/again.bin"
      F.write(path, ("again\0"):rep(50000))
      local e = json(s:request{ url = url("/redirect?status=307&to=/echo"), follow_redirects = true,
        form = { { name = "a", value = "1" }, { name = "f", file = path } } })
      assert.equal("POST", e.method)
      assert.equal("1", e.form.a[1].value)
      assert.equal(F.sha1sum(path), e.form.f[1].sha1)
      assert.equal("application/octet-stream", e.form.f[1].content_type)
    end)

    it("fails a form whose file shrinks while it is sent, as invalid_input", function()
      local path = tmp .. "/shrinks.bin"
      F.write(path, ("x"):rep(16 * 1024 * 1024))
      local cut = false
      local res, err = s:request{ url = url("/upload"), form = { { name = "f", file = path } },
        on_progress = function(ev)
          if not cut and ev.ulnow > 0 then
            cut = true
            assert(io.open(path, "wb")):close()
          end
        end }
      assert.is_true(cut)
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.equal("'" .. path .. "' changed size while it was sent", err.message)
    end)

    it("keeps a caller's Content-Type for a form and adds the boundary to it", function()
      local e = json(s:request{ url = url("/echo"), headers = { ["Content-Type"] = "multipart/mixed" },
        form = { { name = "a", value = "1" } } })
      assert.truthy(e.headers["content-type"]:match("^multipart/mixed; boundary=%-%-%-%-ocr%x+$"),
                    e.headers["content-type"])
    end)

    it("refuses CR/LF in part names", function()
      local res, err = s:request{ url = url("/echo"), form = { { name = "a\r\nb", value = "1" } } }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.same({}, emu:log())
    end)
  end)

  describe("upload_file", function()
    it("streams a file as the body, PUT by default", function()
      local path = tmp .. "/up.bin"
      F.write(path, ("upload\0"):rep(10000))
      local e = json(s:request{ url = url("/upload"), upload_file = path })
      assert.equal("PUT", e.method)
      assert.equal(70000, e.size)
      assert.equal(F.sha1sum(path), e.sha1)
      assert.equal(cjson.null, e.expect)
      e = json(s:request{ url = url("/upload"), upload_file = path, method = "POST",
                          headers = { ["Content-Type"] = "application/octet-stream" } })
      assert.equal("POST", e.method)
      assert.equal(70000, e.size)
      assert.equal("application/octet-stream", e.content_type)
    end)
  end)

  describe("save_to", function()
    it("streams a 2xx body to a temp file and renames it into place", function()
      local path = tmp .. "/dl/out.bin"
      F.mkdir(tmp .. "/dl")
      local res = assert(s:request{ url = url("/bytes?n=300000&seed=5&chunk=7000"), save_to = path })
      assert.equal(200, res.status)
      assert.equal(path, res.saved)
      assert.is_nil(res.body)
      local ref = json(s:request{ url = url("/bytes-sha1?n=300000&seed=5") })
      assert.equal(ref.sha1, F.sha1sum(path))
      assert.same({ "out.bin" }, F.list(tmp .. "/dl"))
      F.rmdir(tmp .. "/dl")
    end)

    it("leaves nothing behind when the transfer fails", function()
      local dir = tmp .. "/fail"
      F.mkdir(dir)
      emu:fault{ action = "truncate", path = "/bytes" }
      local res, err = s:request{ url = url("/bytes?n=500000"), save_to = dir .. "/a.bin" }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      res, err = s:request{ url = url("/bytes?n=5000"), save_to = dir .. "/b.bin",
                            max_response_size = 4999 }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      res, err = s:request{ url = url("/bytes?n=5000&chunked=1"), save_to = dir .. "/c.bin",
                            max_download_size = 4000 }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      res, err = s:request{ url = url("/slow?ms=2000"), save_to = dir .. "/d.bin", timeout = 0.2 }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.same({}, F.list(dir))
    end)

    it("keeps a non-2xx body in memory and writes nothing", function()
      local dir = tmp .. "/notfound"
      F.mkdir(dir)
      local res = assert(s:request{ url = url("/status/404"), save_to = dir .. "/x.bin" })
      assert.equal(404, res.status)
      assert.is_nil(res.saved)
      assert.same({ status = 404 }, json(res))
      res = assert(s:request{ url = url("/bytes?n=1000&status=500"), save_to = dir .. "/y.bin" })
      assert.equal(500, res.status)
      assert.equal(1000, #res.body)
      assert.same({}, F.list(dir))
    end)

    it("does not touch an existing file when the download fails", function()
      local path = tmp .. "/existing.bin"
      F.write(path, "old content")
      emu:fault{ action = "truncate", path = "/bytes" }
      local res = s:request{ url = url("/bytes?n=100000"), save_to = path }
      assert.is_nil(res)
      assert.equal("old content", F.read(path))
      assert.is_nil((table.concat(F.list(tmp), " "):match("%.part%-")))
    end)

    it("refuses a directory that does not exist before connecting", function()
      local res, err = s:request{ url = url("/bytes?n=10"), save_to = tmp .. "/no/such/dir/x" }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.is_false(err.sent)
      assert.same({}, emu:log())
    end)

    it("follows a redirect into the saved file", function()
      local path = tmp .. "/redirected.bin"
      local res = assert(s:request{ url = url("/redirect?to=/bytes%3Fn%3D1234%26seed%3D9"),
                                    follow_redirects = true, save_to = path })
      assert.equal(200, res.status)
      local ref = json(s:request{ url = url("/bytes-sha1?n=1234&seed=9") })
      assert.equal(ref.sha1, F.sha1sum(path))
      os.remove(path)
    end)
  end)

  describe("on_progress", function()
    it("is called with the transfer's counters", function()
      local events = {}
      local res = assert(s:request{
        url = url("/bytes?n=200000&chunk=20000&delay=20"),
        on_progress = function(ev) events[#events + 1] = ev end,
      })
      assert.equal(200000, #res.body)
      assert.is_true(#events >= 2)
      local last = 0
      for _, ev in ipairs(events) do
        assert.is_number(ev.dltotal)
        assert.is_number(ev.ultotal)
        assert.is_number(ev.ulnow)
        assert.is_true(ev.dlnow >= last)
        last = ev.dlnow
      end
      assert.equal(200000, events[#events].dlnow)
      assert.equal(200000, events[#events].dltotal)
    end)

    it("aborts the transfer cleanly when it raises", function()
      local calls = 0
      local res, err = s:request{
        url = url("/bytes?n=400000&chunk=10000&delay=20"),
        on_progress = function(ev)
          calls = calls + 1
          if ev.dlnow > 0 then error("boom") end
        end,
      }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.truthy(err.message:match("^on_progress: .*boom"))
      -- a non-string error value and a save_to download aborted mid-way
      res, err = s:request{ url = url("/bytes?n=400000&chunk=10000&delay=20"),
                            save_to = tmp .. "/aborted.bin",
                            on_progress = function(ev) if ev.dlnow > 0 then error({}) end end }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.is_false(F.exists(tmp .. "/aborted.bin"))
      assert.is_nil((table.concat(F.list(tmp), " "):match("%.part%-")))
      assert.equal(200, s:request{ url = url("/status/200") }.status)
    end)

    it("cannot reuse or close its own session", function()
      local _, err = s:request{ url = url("/status/200"),
                                on_progress = function() s:request{ url = url("/status/201") } end }
      assert.equal("invalid_input", err.kind)
      assert.truthy(err.message:match("busy"))
      _, err = s:request{ url = url("/status/200"), on_progress = function() s:close() end }
      assert.equal("invalid_input", err.kind)
      assert.equal(200, s:request{ url = url("/status/200") }.status)
    end)
  end)

  describe("arguments", function()
    it("raises on wrong types and unknown fields", function()
      local u = url("/status/200")
      assert.has_error(function() curl.session(5) end)
      assert.has_error(function() curl.session{ timeout = "1" } end)
      assert.has_error(function() curl.session{ timeout = 0 } end)
      assert.has_error(function() curl.session{ timeot = 1 } end)
      assert.has_error(function() curl.session{ insecure = "yes" } end)
      assert.has_error(function() curl.session{ max_response_size = 1.5 } end)
      assert.has_error(function() curl.session{ max_response_size = -1 } end)
      assert.has_error(function() curl.session{ proxy = 1 } end)
      assert.has_error(function() s:request("http://x") end)
      assert.has_error(function() s:request{} end)
      assert.has_error(function() s:request{ url = 5 } end)
      assert.has_error(function() s:request{ url = u, urll = u } end)
      assert.has_error(function() s:request{ url = u, headers = "x" } end)
      assert.has_error(function() s:request{ url = u, headers = { ["X-A"] = {} } } end)
      assert.has_error(function() s:request{ url = u, headers = { "positional" } } end)
      assert.has_error(function() s:request{ url = u, body = 5 } end)
      assert.has_error(function() s:request{ url = u, body = "a", form = {} } end)
      assert.has_error(function() s:request{ url = u, form = { { value = "no name" } } } end)
      assert.has_error(function() s:request{ url = u, form = { { name = "a" } } } end)
      assert.has_error(function() s:request{ url = u, form = { { name = "a", value = "1", data = "2" } } } end)
      assert.has_error(function() s:request{ url = u, form = { "x" } } end)
      assert.has_error(function() s:request{ url = u, form = { { name = "a", value = 1 } } } end)
      assert.has_error(function() s:request{ url = u, on_progress = 1 } end)
      assert.has_error(function() s:request{ url = u, timeout = -1 } end)
      assert.has_error(function() s:request{ url = u, follow_redirects = 1 } end)
      assert.has_error(function() s:request{ url = u, save_to = 1 } end)
      assert.has_error(function() s:request{ url = u, method = 1 } end)
      assert.has_error(function() s.request(nil, { url = u }) end)
      assert.same({}, emu:log())
      -- the session is still usable
      assert.equal(200, s:request{ url = u }.status)
    end)

    it("raises on a closed session", function()
      local x = curl.session()
      x:close()
      x:close()
      assert.has_error(function() x:request{ url = url("/status/200") } end, "ocr.curl: attempt to use a closed session")
      assert.truthy(tostring(x):match("closed"))
    end)

    it("overrides session defaults per request", function()
      local slow = curl.session{ timeout = 0.2, user_agent = "custom/1" }
      local _, err = slow:request{ url = url("/slow?ms=1000") }
      assert.equal("timeout", err.kind)
      local e = json(slow:request{ url = url("/echo"), timeout = 5 })
      assert.equal("custom/1", e.headers["user-agent"])
      e = json(slow:request{ url = url("/echo"), timeout = 5, user_agent = "other/2" })
      assert.equal("other/2", e.headers["user-agent"])
      slow:close()
    end)
  end)

  describe("200 MB streams", function()
    it("upload and download in constant memory", function()
      local dir = F.tmpdir()
      local lua = "lua" .. _VERSION:match("%d+%.%d+")
      -- a Lua child that loads ocr.curl: it keeps the sanitizer environment, if any
      local p = assert(io.popen(("%s spec/tools/stream_200mb.lua '%s' '%s'"):format(lua, emu.url, dir)))
      local line = p:read("*l")
      p:close()
      F.rmdir(dir)
      assert.truthy(line, "the tool printed nothing")
      local r = cjson.decode(line)
      local size = 200 * 1024 * 1024
      assert.equal(size, r.size)
      -- form file part, streamed from disk
      assert.equal(200, r.form.status)
      assert.is_true(r.form.body.multipart_complete)
      local part = r.form.body.parts[2]
      assert.equal("file", part.name)
      assert.equal(size, part.size)
      assert.equal(r.src_sha1, part.sha1)
      -- upload_file
      assert.equal(200, r.put.status)
      assert.equal(size, r.put.body.size)
      assert.equal(r.src_sha1, r.put.body.sha1)
      -- download with save_to, hashed by sha1sum vs the server's own hash
      assert.equal(200, r.download.status)
      assert.equal(size, r.download.size)
      assert.equal(r.download.server_sha1, r.download.sha1)
      assert.same({}, r.leftovers)
      if not os.getenv("OCR_SANITIZED") then
        assert.is_true(r.vmhwm_kb < 32 * 1024, "peak RSS " .. tostring(r.vmhwm_kb) .. " kB")
      end
    end)
  end)
end)
