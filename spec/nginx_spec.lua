-- OpenResty, for real: Debian's nginx with libnginx-mod-http-lua, started by the spec on
-- 127.0.0.1 (spec/helpers/nginx.lua), running the checkout's Lua and the 5.1-ABI modules against
-- the same strict emulators as every other spec. The handlers (spec/helpers/nginx_app.lua) call
-- the public API as a user's would; nothing of nginx or of the transport is stood in for.
local cjson = require "cjson"
local http = require "socket.http"
http.TIMEOUT = 30  -- a hung nginx fails the spec with its log rather than hanging the suite
local ltn12 = require "ltn12"
local nginx = require "helpers.nginx"
local emulator = require "helpers.emulator"
local F = require "helpers.files"
local rig = require "helpers.rig"
local shell = require "helpers.shell"
local tls = require "helpers.tls"

local missing = nginx.missing()
if missing then
  describe("OpenResty", function() pending("nginx cannot run here: " .. missing) end)
  return
end

local function request(url, body, method)
  local chunks = {}
  local ok, status, headers = http.request{
    url = url, method = method or (body and "POST" or "GET"),
    headers = body and { ["content-type"] = "application/json", ["content-length"] = #body } or nil,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  assert(ok, "request to " .. url .. " failed: " .. tostring(status))
  return status, table.concat(chunks), headers
end

local function call(server, path, t)
  local status, body = request(server.url(path), cjson.encode(t))
  assert(status == 200, ("nginx answered %s: %s\n%s"):format(tostring(status), body, server.log()))
  local ok, v = pcall(cjson.decode, body)
  assert(ok, "not JSON: " .. body .. "\n" .. server.log())
  return v
end

-- Sends many requests to nginx at once (libcurl's multi interface: a client, not the code under
-- test) and returns their decoded answers in order, with each one's completion time.
local function concurrently(urls_and_bodies)
  local curl, core, multi = require "ocr.curl", require "ocr.core", require "helpers.multi"
  local m = curl.multi{}
  local ids, out = {}, {}
  local t0 = core.monotime()
  for i, rb in ipairs(urls_and_bodies) do
    local id = assert(m:add{ method = rb.body and "POST" or "GET", url = rb.url, body = rb.body,
                             headers = rb.body and { ["Content-Type"] = "application/json" } or nil,
                             timeout = 60 })
    ids[id] = i
  end
  local left = #urls_and_bodies
  while left > 0 do
    multi.round(m, 50, function(id, res, err)
      out[ids[id]] = { at = core.monotime() - t0, status = res and res.status, body = res and res.body,
                       err = err }
      left = left - 1
    end)
  end
  m:close()
  return out
end

local PRE, LUA = nil, nil
local function http_block(server_blocks, extra)
  local pre, lua = nginx.preamble("$PREFIX", extra)
  return pre .. "http {\n" .. lua .. (extra and extra.http or "") .. "\n" .. server_blocks .. "\n}\n"
end

local APP = [[
  location = /run { content_by_lua_block { require("helpers.nginx_app").run() } }
  location = /transport { content_by_lua_block { require("helpers.nginx_app").transport() } }
  location = /ping { return 200 "pong"; }
  location = /access { access_by_lua_block { require("helpers.nginx_app").run() ngx.exit(ngx.HTTP_OK) } }
  location = /rewrite { rewrite_by_lua_block { require("helpers.nginx_app").run() ngx.exit(ngx.HTTP_OK) } }
]]

describe("OpenResty: one worker, cosockets", function()
  local server, emus, dir, img, ca

  lazy_setup(function()
    dir = F.tmpdir()
    img = F.write(dir .. "/scan.png", F.image("Through nginx\nline two"))
    -- A CA the nginx trusts, a server certificate it signed (for 127.0.0.1), and a
    -- self-signed one it does not trust.
    local certs = tls.make(dir)
    ca = certs.ca
    emus = {}
    for _, name in ipairs{ "picwish", "tencent", "compdf", "oldfish", "uapi", "httptest" } do
      emus[name] = emulator.start(name)
    end
    emus.picwish_tls = emulator.start("picwish", tls.args(certs.cert, certs.key))
    emus.untrusted = emulator.start("picwish", tls.args(certs.self_cert, certs.self_key))
    server = nginx.start(http_block(([[
  lua_shared_dict ocr 1m;
  lua_ssl_trusted_certificate %s;
  lua_ssl_verify_depth 2;
  server { listen 127.0.0.1:$PORT; %s }
]]):format(ca, APP)))
  end)

  lazy_teardown(function()
    if server then server.stop() end
    for _, e in pairs(emus or {}) do e:stop() end
    F.rmdir(dir)
  end)

  before_each(function()
    for name, e in pairs(emus) do
      if name ~= "httptest" then e:reset() end
    end
  end)

  local function run(provider, opts, input)
    return call(server, "/run", { provider = provider, opts = opts, input = input })
  end

  describe("require 'ocr' lazily in a content handler, every provider's workflow", function()
    it("picwish: create, poll, download the result file into output", function()
      local out = F.mkdir(dir .. "/out-picwish")
      local r = run("picwish", { api_key = "test-picwish-key", endpoint = emus.picwish.url, poll_interval = 0.01 },
                    { file = img, format = "pdf", output = out })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal(1, #emus.picwish:requests("/api/tasks/document/ocr", "POST"))
      assert.equal(1, #emus.picwish:requests("/results/", "GET"))
      assert.equal(1, #r.res.files)
      assert.equal(out .. "/" .. r.res.task_id .. ".pdf", r.res.files[1].path)
      assert.equal("%PDF", F.read(r.res.files[1].path):sub(1, 4))
    end)

    it("tencent: a q-signed PUT of the file, then the signed OCR GET, XML answer", function()
      local r = run("tencent", { secret_id = "AKIDtestSecretId", secret_key = "testSecretKey",
                                 endpoint = emus.tencent.url }, { file = img })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal("Through nginx\nline two", r.res.text)
      assert.equal(1, #emus.tencent:requests("/", "PUT"))
      local gets = emus.tencent:requests("/", "GET")
      assert.equal(1, #gets)
      assert.truthy(gets[1].headers.authorization:find("q-sign-algorithm=sha1", 1, true))
    end)

    it("compdf: sync upload, the result downloaded into output", function()
      local out = F.mkdir(dir .. "/out-compdf")
      local r = run("compdf", { api_key = "test-compdf-key", endpoint = emus.compdf.url .. "/server/",
                                poll_interval = 0.01 }, { file = img, output = out })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal("Through nginx\nline two", r.res.text)
      assert.equal(1, #emus.compdf:requests("/server/v2/process/documentAI/ocr", "POST"))
      assert.equal("Through nginx\nline two", F.read(r.res.files[1].path))
    end)

    it("oldfish: the file as a multipart part, then the task polled", function()
      local r = run("oldfish", { token = "test-oldfish-token", endpoint = emus.oldfish.url,
                                 poll_interval = 0.01 }, { file = img })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal("Through nginx\nline two", r.res.text)
      local posts = emus.oldfish:requests("/Code.ashx", "POST")
      assert.equal("scan.png", posts[1].form.file[1].filename)
    end)

    it("uapi: anonymous, a streamed file part", function()
      emus.uapi:config{ visitor_credits = 1000 }
      local r = run("uapi", { endpoint = emus.uapi.url }, { file = img })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal("Through nginx\nline two", r.res.text)
    end)
  end)

  describe("failures", function()
    local function picwish(opts)
      local o = { api_key = "test-picwish-key", endpoint = emus.picwish.url, poll_interval = 0.01,
                  backoff = { base = 0.01, cap = 0.05 } }
      for k, v in pairs(opts or {}) do o[k] = v end
      return o
    end

    it("a vendor slower than timeout is a timeout", function()
      emus.picwish:fault{ action = "slow", path = "/api/tasks/document/ocr", method = "POST", delay = 2 }
      local r = run("picwish", picwish{ timeout = 0.3, retries = 0 }, { file = img })
      assert.equal("timeout", r.err.kind)
      assert.is_true(r.err.sent)
      assert.equal(1, #emus.picwish:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("a billed create whose answer is lost is not sent again", function()
      emus.picwish:fault{ action = "drop", path = "/api/tasks/document/ocr", method = "POST" }
      local r = run("picwish", picwish(), { file = img })
      assert.equal("network", r.err.kind)
      assert.is_true(r.err.sent)
      assert.equal(1, #emus.picwish:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("a dropped poll is retried (not billed) and the task still finishes", function()
      emus.picwish:fault{ action = "drop", path = "/api/tasks/document/ocr/", method = "GET" }
      local r = run("picwish", picwish(), { file = img })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal("Through nginx\nline two", r.res.text)
    end)

    it("429 with Retry-After: waits as told, then the create goes through once", function()
      emus.picwish:fault{ action = "status", path = "/api/tasks/document/ocr", method = "POST", status = 429,
                          headers = { ["Retry-After"] = "1" }, body = '{"status":429,"message":"busy"}' }
      local r = run("picwish", picwish(), { file = img })
      assert.is_nil(r.err, cjson.encode(r.err))
      local creates = emus.picwish:requests("/api/tasks/document/ocr", "POST")
      assert.equal(2, #creates)
      assert.is_true(creates[2].t - creates[1].t >= 0.9, "waited " .. (creates[2].t - creates[1].t))
    end)

    it("a refused connection is a network error, not sent", function()
      local r = run("picwish", picwish{ endpoint = "http://127.0.0.1:" .. emulator.closed_port(), retries = 0 },
                    { file = img })
      assert.equal("network", r.err.kind)
      assert.is_false(r.err.sent)
    end)

    it("TLS: a server certificate signed by the trusted CA works end to end (result over https)", function()
      local r = run("picwish", picwish{ endpoint = emus.picwish_tls.url }, { file = img, format = "txt" })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal("Through nginx\nline two", r.res.text)
      assert.truthy(emus.picwish_tls.url:find("^https://"))
      assert.equal(1, #emus.picwish_tls:requests("/results/", "GET"))
    end)

    it("TLS: an untrusted certificate fails before anything is sent, naming the directive", function()
      local r = run("picwish", picwish{ endpoint = emus.untrusted.url, retries = 0 }, { file = img })
      assert.equal("network", r.err.kind)
      assert.is_false(r.err.sent)
      assert.truthy(r.err.message:find("TLS handshake", 1, true), r.err.message)
      assert.truthy(r.err.message:find("lua_ssl_trusted_certificate", 1, true), r.err.message)
      assert.equal(0, #emus.untrusted:requests("/api/"))
    end)
  end)

  describe("jobs on light threads", function()
    it("recognize_all runs its inputs concurrently, one res or err each", function()
      emus.picwish:config{ qps = 0 }
      for _ = 1, 6 do
        emus.picwish:fault{ action = "slow", path = "/api/tasks/document/ocr", method = "POST", delay = 0.4 }
      end
      local inputs = {}
      for i = 1, 6 do inputs[i] = { file = img } end
      inputs[4] = { file = dir .. "/missing.png" }
      local r = call(server, "/run", { provider = "picwish", inputs = inputs, concurrency = 6,
        opts = { api_key = "test-picwish-key", endpoint = emus.picwish.url, poll_interval = 0.01, rate = false } })
      assert.equal(6, #r.out)
      for i, o in ipairs(r.out) do
        if i == 4 then
          assert.equal("invalid_input", o.err.kind)
          assert.is_nil(o.res)
        else
          assert.is_nil(o.err, cjson.encode(o.err))
          assert.equal("Through nginx\nline two", o.res.text)
        end
      end
      -- all five creates arrived before the first slow one could have been answered
      local creates = emus.picwish:requests("/api/tasks/document/ocr", "POST")
      assert.equal(5, #creates)
      assert.is_true(creates[5].t - creates[1].t < 0.4, "serialised: " .. (creates[5].t - creates[1].t))
    end)

    it("submit returns jobs at once; job:result() waits for each", function()
      emus.picwish:config{ qps = 0 }
      local r = call(server, "/run", { provider = "picwish", submit = { { file = img }, { file = img } },
        opts = { api_key = "test-picwish-key", endpoint = emus.picwish.url, poll_interval = 0.01, rate = false } })
      assert.equal(2, #r.jobs)
      for _, j in ipairs(r.jobs) do
        assert.is_true(j.done)
        assert.equal("Through nginx\nline two", j.res.text)
      end
      assert.are_not.equal(r.jobs[1].id, r.jobs[2].id)
    end)
  end)

  describe("pipelines", function()
    local CREATE = "/api/tasks/document/ocr"
    local function picwish_m() return { provider = "picwish", opts = { api_key = "test-picwish-key",
      endpoint = emus.picwish.url, poll_interval = 0.01, rate = false, retries = 0 } } end
    local function uapi_m() return { provider = "uapi", opts = { endpoint = emus.uapi.url, retries = 0 } } end
    local function polls() return #emus.picwish:requests(CREATE .. "/", "GET") end
    before_each(function()
      emus.picwish:config{ qps = 0 }
      emus.uapi:config{ visitor_credits = 1000 }
    end)

    it("a race on light threads: the loser's thread is killed, its task no longer polled", function()
      emus.picwish:config{ script = { { state = 0, progress = 0 } } }   -- never finishes
      local r = call(server, "/run", { input = { file = img },
        pipeline = { kind = "race", hedge_after = 0.05, members = { picwish_m(), uapi_m() } } })
      assert.is_nil(r.err, cjson.encode(r.err))
      assert.equal("uapi", r.res.provider)
      assert.equal("Through nginx\nline two", r.res.text)
      assert.same({ "uapi", "picwish" }, { r.res.attempts[1].provider, r.res.attempts[2].provider })
      assert.equal("cancelled", r.res.attempts[2].kind)
      assert.equal(1, #emus.picwish:requests(CREATE, "POST"))
      local seen = polls()
      assert.is_true(seen >= 1)
      require("ocr.core").sleep(0.2)
      assert.equal(seen, polls())
      assert.equal("pong", select(2, request(server.url("/ping"))))   -- the worker is fine
    end)

    it("a cached fallback: the second request is answered from the dir store, nothing sent", function()
      local cache = dir .. "/nginx-cache"
      local p = { kind = "fallback", cache = cache, members = { uapi_m(), picwish_m() } }
      local r1 = call(server, "/run", { input = { file = img }, pipeline = p })
      assert.is_nil(r1.err, cjson.encode(r1.err))
      assert.is_nil(r1.res.cached)
      local r2 = call(server, "/run", { input = { file = img }, pipeline = p })
      assert.is_nil(r2.err, cjson.encode(r2.err))
      assert.is_true(r2.res.cached)
      assert.equal(r1.res.text, r2.res.text)
      assert.equal(1, #emus.uapi:requests("/api/v1/image/ocr", "POST"))
    end)

    it("a fallback of a cascade, as a job and in recognize_all", function()
      emus.picwish:fault{ action = "status", path = CREATE, method = "POST", status = 402, times = 3,
                          body = '{"status": 402}' }
      local p = { kind = "fallback", members = {
        { pipeline = { kind = "cascade", min_confidence = 2, members = { picwish_m() } } }, uapi_m() } }
      local r = call(server, "/run", { pipeline = p, submit = { { file = img } } })
      local j = r.jobs[1]
      assert.is_true(j.done)
      assert.is_nil(j.err, cjson.encode(j.err))
      assert.equal("uapi", j.res.provider)
      assert.same({ "cascade(picwish)", "quota" }, { j.res.attempts[1].provider, j.res.attempts[1].kind })

      r = call(server, "/run", { pipeline = p, concurrency = 3,
                                 inputs = { { file = img }, { file = dir .. "/missing.png" }, { file = img } } })
      assert.equal(3, #r.out)
      assert.equal("uapi", r.out[1].res.provider)
      assert.equal("invalid_input", r.out[2].err.kind)
      assert.is_nil(r.out[2].res)
      assert.equal("uapi", r.out[3].res.provider)
    end)
  end)

  describe("phases and choices", function()
    local function picwish_call(extra)
      local t = { provider = "picwish", input = { file = img },
                  opts = { api_key = "test-picwish-key", endpoint = emus.picwish.url, poll_interval = 0.01 } }
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end

    it("rewrite and access handlers and ngx.timer callbacks use cosockets by themselves", function()
      for _, case in ipairs{ { "/rewrite", {}, "rewrite" }, { "/access", {}, "access" },
                             { "/run", { timer = true }, "timer" } } do
        local r = call(server, case[1], picwish_call(case[2]))
        assert.is_nil(r.err, case[1] .. ": " .. cjson.encode(r.err or {}))
        assert.equal("Through nginx\nline two", r.res.text)
        assert.equal(case[3], r.phase)
      end
      assert.equal(3, #emus.picwish:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("a client's own transport wins over the host's", function()
      local r = call(server, "/run", picwish_call{ counting_transport = true })
      assert.is_nil(r.err, cjson.encode(r.err or {}))
      assert.equal("Through nginx\nline two", r.res.text)
      -- create, poll, result download: all through the client's transport
      assert.equal(#emus.picwish:requests("/"), r.transport_requests)
      assert.is_true(r.transport_requests >= 2)
    end)
  end)

  describe("never blocks the worker", function()
    it("20 OCR requests to a slow vendor overlap, and a static location answers meanwhile", function()
      emus.picwish:config{ qps = 0 }
      for _ = 1, 20 do
        emus.picwish:fault{ action = "slow", path = "/api/tasks/document/ocr", method = "POST", delay = 0.5 }
      end
      local body = cjson.encode{ provider = "picwish", input = { file = img },
        opts = { api_key = "test-picwish-key", endpoint = emus.picwish.url, poll_interval = 0.01, rate = false } }
      local reqs = {}
      for i = 1, 20 do reqs[i] = { url = server.url("/run"), body = body } end
      reqs[21] = { url = server.url("/ping") }
      local out = concurrently(reqs)
      local first_ocr = math.huge
      for i = 1, 20 do
        assert.equal(200, out[i].status)
        assert.equal("Through nginx\nline two", cjson.decode(out[i].body).res.text)
        first_ocr = math.min(first_ocr, out[i].at)
      end
      assert.equal("pong", out[21].body)
      assert.is_true(out[21].at < first_ocr, "the ping waited behind the OCR requests")
      local creates = emus.picwish:requests("/api/tasks/document/ocr", "POST")
      assert.equal(20, #creates)
      assert.is_true(creates[20].t - creates[1].t < 0.5, "serialised: " .. (creates[20].t - creates[1].t))
    end)

    it("tesseract: the page is read on the worker's own pool while other requests are served", function()
      local body = cjson.encode{ provider = "tesseract", input = { file = io.popen("pwd"):read("*l") .. "/examples/sample.png" } }
      local out = concurrently{ { url = server.url("/run"), body = body }, { url = server.url("/ping") } }
      local r = cjson.decode(out[1].body)
      assert.is_nil(r.err, out[1].body)
      assert.truthy(r.res.text:find("Offline OCR for Lua", 1, true), r.res.text)
      assert.equal("pong", out[2].body)
      assert.is_true(out[2].at < out[1].at)
    end)
  end)

  describe("the cosocket transport", function()
    local function transport(req, opts)
      return call(server, "/transport", { req = req, opts = opts })
    end

    it("reads chunked bodies, keeps connections alive per pool, refuses what curl refuses", function()
      local base = emus.httptest.url
      local r = transport{ url = base .. "/chunked?n=3" }
      assert.equal("piece 1 of 3\npiece 2 of 3\npiece 3 of 3\n", r.res.body)
      local p1 = cjson.decode(transport{ url = base .. "/conn" }.res.body).port
      local p2 = cjson.decode(transport{ url = base .. "/conn" }.res.body).port
      assert.equal(p1, p2)   -- the second request reused the pooled connection
      local p3 = cjson.decode(transport{ url = base .. "/conn", fresh_connect = true }.res.body).port
      assert.are_not.equal(p1, p3)
      assert.equal("invalid_input", transport{ url = "file:///etc/passwd" }.err.kind)
      assert.equal("invalid_input", transport{ url = base .. "/echo", headers = { ["X-A"] = "a\r\nX-B: b" } }.err.kind)
      local big = transport{ url = base .. "/bytes?n=100000", max_response_size = 50000 }
      assert.equal("too_large", big.err.kind)
    end)

    it("reads its URL with ocr.url: any scheme case, Host and target from it, no credentials", function()
      local base = emus.httptest.url
      local upper = base:gsub("^http:", "HTTP:")
      local r = transport{ url = upper .. "/echo?a=1#fragment" }
      local echo = cjson.decode(r.res.body)
      assert.equal("/echo", echo.path)
      assert.equal(base:match("^http://(.*)$"), echo.headers.host)
      for _, bad in ipairs{ base:gsub("^http://", "http://user:pw@") .. "/echo", base .. "/echo\r\nX: y",
                            "http://127.0.0.1:0/echo", "ftp://127.0.0.1/" } do
        local e = transport{ url = bad }.err
        assert.equal("invalid_input", e.kind, bad)
        assert.truthy(e.message:find("^url: "), e.message)
      end
    end)

    it("saves a 2xx body through a temporary file, and a broken answer is a network error", function()
      local base = emus.httptest.url
      local path = dir .. "/saved.bin"
      local r = transport{ url = base .. "/bytes?n=300000&seed=7", save_to = path }
      assert.equal(path, r.res.path)
      local sha = cjson.decode(transport{ url = base .. "/bytes-sha1?n=300000&seed=7" }.res.body).sha1
      local got = io.popen("sha1sum " .. path):read("*l"):match("^%x+")
      assert.equal(sha, got)
      emus.httptest:fault{ action = "raw", path = "/echo", body = "HTTP/1.1 2x0 Nope\r\n\r\n" }
      local bad = transport{ url = base .. "/echo" }
      assert.equal("network", bad.err.kind)
      assert.truthy(bad.err.message:find("malformed", 1, true))
      emus.httptest:fault{ action = "truncate", path = "/bytes" }
      local cut = transport{ url = base .. "/bytes?n=100000", save_to = dir .. "/cut.bin" }
      assert.equal("network", cut.err.kind)
      assert.is_nil(F.read(dir .. "/cut.bin"))
    end)

    it("streams a multipart file part from disk: the server gets every byte", function()
      local big = dir .. "/big.bin"
      shell.execute(("head -c 3000000 /dev/urandom > %s"):format(big))
      local sha = io.popen("sha1sum " .. big):read("*l"):match("^%x+")
      local r = transport{ method = "POST", url = emus.httptest.url .. "/upload",
                           form = { { name = "lang", value = "en" }, { name = "file", file = big, filename = "big.bin" } } }
      local up = cjson.decode(r.res.body)
      assert.is_true(up.multipart_complete)
      assert.equal("file", up.parts[2].name)
      assert.equal(3000000, up.parts[2].size)
      assert.equal(sha, up.parts[2].sha1)
    end)
  end)
end)

describe("OpenResty: two workers, init_by_lua, phases", function()
  local server, emu, dir, img, https

  lazy_setup(function()
    dir = F.tmpdir()
    img = F.write(dir .. "/scan.png", F.image("Shared bucket"))
    emu = emulator.start("picwish")
    local certs = tls.make(dir)
    https = emulator.start("picwish", tls.args(certs.cert, certs.key))
    -- No lua_ssl_trusted_certificate here: the TLS error must say which directive is missing.
    server = nginx.start(http_block(([[
  lua_shared_dict ocr 1m;
  init_by_lua_block {
    ocr = require "ocr"
    early = ocr.new("picwish", { api_key = "test-picwish-key", endpoint = "%s", poll_interval = 0.01 })
    local res, err = early:recognize{ data = "\137PNG\r\n\26\nTEXT:x" }
    init_err = tostring(err)
  }
  init_worker_by_lua_block { ngx.timer.every(0.02, require("helpers.nginx_app").burst_tick) }
  server {
    listen 127.0.0.1:$PORT reuseport;
    %s
    location = /init { content_by_lua_block { ngx.say(init_err) } }
    location = /early { content_by_lua_block {
      local res, err = early:recognize{ data = "\137PNG\r\n\26\nTEXT:made in init" }
      ngx.say(res and res.text or tostring(err))
    } }
    location = /log-phase {
      content_by_lua_block { ngx.say("ok") }
      log_by_lua_block {
        local res, err = early:recognize{ data = "\137PNG\r\n\26\nTEXT:x" }
        ngx.shared.ocr:set("log-phase", tostring(err) .. " kind=" .. tostring(err and err.kind))
      }
    }
    location = /log-phase-result { content_by_lua_block { ngx.say(ngx.shared.ocr:get("log-phase")) } }
    location = /burst { content_by_lua_block { require("helpers.nginx_app").burst_start() } }
    location = /burst-result { content_by_lua_block { require("helpers.nginx_app").burst_result() } }
  }
]]):format(emu.url, APP), { workers = 2 }))
  end)

  lazy_teardown(function()
    if server then server.stop() end
    if emu then emu:stop() end
    if https then https:stop() end
    F.rmdir(dir)
  end)

  before_each(function() emu:reset() end)

  it("a client made in init_by_lua sends over cosockets in a content handler", function()
    local _, body = request(server.url("/early"))
    assert.equal("made in init\n", body)
  end)

  it("a request in init_by_lua fails at once, naming the phase and ngx.timer.at", function()
    local _, body = request(server.url("/init"))
    assert.truthy(body:find("invalid_input", 1, true), body)
    assert.truthy(body:find("init phase", 1, true), body)
    assert.truthy(body:find("ngx.timer.at", 1, true), body)
  end)

  it("a request in the log phase fails at once with invalid_input, sending nothing", function()
    request(server.url("/log-phase"))
    local body
    for _ = 1, 50 do   -- (the log phase runs after the answer went out)
      body = select(2, request(server.url("/log-phase-result")))
      if body ~= "nil\n" then break end
      require("socket").sleep(0.02)
    end
    assert.truthy(body:find("log phase", 1, true), body)
    assert.truthy(body:find("kind=invalid_input", 1, true), body)
    assert.equal(0, #emu:requests("/api/"))
  end)

  it("both workers share one picwish bucket through the shared dict: no 429, about 2 creates/s", function()
    call(server, "/burst", { provider = "picwish", input = { file = img }, n = 4,
      opts = { api_key = "test-picwish-key", endpoint = emu.url, poll_interval = 0.01 } })
    local workers
    for _ = 1, 300 do
      workers = call(server, "/burst-result", {}).workers
      if #workers == 2 then break end
      require("socket").sleep(0.05)
    end
    assert.equal(2, #workers, "both workers should have answered their burst")
    assert.are_not.equal(workers[1].pid, workers[2].pid)
    for _, w in ipairs(workers) do
      assert.equal(4, #w.out)
      for _, o in ipairs(w.out) do
        assert.is_nil(o.err, cjson.encode(o.err))
        assert.equal("Shared bucket", o.res.text)
      end
    end
    local creates = emu:requests("/api/tasks/document/ocr", "POST")
    assert.equal(8, #creates)   -- a 429 would have been retried: a ninth create
    local rate = (#creates - 1) / (creates[#creates].t - creates[1].t)
    assert.is_true(rate >= 1.9 and rate <= 2.0, ("%.3f creates/s"):format(rate))
  end)

  it("TLS without lua_ssl_trusted_certificate: the error names the directive", function()
    local r = call(server, "/run", { provider = "picwish", input = { file = img },
      opts = { api_key = "test-picwish-key", endpoint = https.url, retries = 0 } })
    assert.equal("network", r.err.kind)
    assert.is_false(r.err.sent)
    assert.truthy(r.err.message:find("lua_ssl_trusted_certificate", 1, true), r.err.message)
  end)
end)

describe("OpenResty: the README's nginx.conf", function()
  it("runs as it stands (its port aside) and reads an image through picwish", function()
    local readme = assert(F.read("README.md"))
    local section = readme:match("\n## OpenResty\n(.-)\n## ")
    local conf = section and section:match("```nginx\n(.-)```")
    assert.truthy(conf, "README has no nginx.conf under ## OpenResty")
    local listen = "listen 127.0.0.1:8080;"
    assert.truthy(conf:find(listen, 1, true))
    conf = conf:gsub(listen:gsub("%p", "%%%0"), "listen 127.0.0.1:$PORT;")
    -- The prefix holds what a checkout holds after `make LUA_VERSION=5.1` (copies: the workers
    -- run as nobody and must read them, wherever the checkout lives).
    local dir = F.tmpdir()
    assert(shell.execute(("chmod 755 %s && mkdir -p %s/build %s/logs && cp -r lua %s/ && cp -r build/lua5.1 %s/build/")
                         :format(dir, dir, dir, dir, dir)))
    local emu, server = emulator.start("picwish"), nil
    finally(function()   -- one finally per test: busted keeps only the last one given
      if server then server.stop() end
      emu:stop()
    end)
    emu:config{ script = { { state = 1, progress = 100 } } }
    server = nginx.start(conf, { dir = dir, env = { OCR_PICWISH_API_KEY = "test-picwish-key",
                                                    OCR_PICWISH_ENDPOINT = emu.url } })
    local status, body = request(server.url("/ocr"), F.image("From the README\nverbatim"))
    assert.equal(200, status, body .. server.log())
    assert.equal("From the README\nverbatim\n", body)
    assert.equal(1, #emu:requests("/api/tasks/document/ocr", "POST"))
  end)
end)
