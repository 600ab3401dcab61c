-- The picwish provider end to end through the public API, against the strict PicWish emulator.
local ocr = require "ocr"
local F = require "helpers.files"
local rig = require "helpers.rig"
local expect = require "helpers.expect"

local KEY = "test-picwish-key"

describe("picwish provider", function()
  local emu, dir, img

  local function client(opts)
    return rig.client("picwish", { api_key = KEY, endpoint = emu.url, poll_interval = 0.01,
      poll_timeout = 5, backoff = { base = 0.01, cap = 0.05 }, rate = false }, opts)
  end

  setup(function()
    emu, dir, img = rig.start("picwish", { { "scan.png", "Hello lua-ocr\n你好，世界" } })
  end)
  teardown(function() rig.stop(emu, dir) end)
  before_each(function()
    emu:reset()
    emu:config{ qps = 0 }
  end)

  describe("success", function()
    it("recognizes a file: create, poll through the states, download the txt result", function()
      local events = {}
      local res, err = client{ on_progress = function(ev) events[#events + 1] = ev.stage end }
                       :recognize{ file = img, language = "English,ChinesePRC" }
      assert.is_nil(err)
      assert.equal("Hello lua-ocr\n你好，世界", res.text)
      assert.equal(2, #res.lines)
      assert.equal("你好，世界", res.lines[2].text)
      assert.equal("picwish", res.provider)
      assert.truthy(res.task_id and #res.task_id > 0)
      assert.equal("txt", res.files[1].format)
      assert.truthy(res.files[1].url:match("/results/"))

      local creates = emu:requests("/api/tasks/document/ocr", "POST")
      assert.equal(1, #creates)
      local form = creates[1].form
      assert.equal("scan.png", form.image_file[1].filename)
      assert.equal("image/png", form.image_file[1].content_type)
      assert.equal("txt", form.format[1].value)
      assert.equal("English,ChinesePRC", form.language[1].value)
      assert.equal(KEY, creates[1].headers["x-api-key"])
      local polls = emu:requests("/api/tasks/document/ocr/" .. res.task_id, "GET")
      assert.equal(3, #polls) -- the default script: 0 -> 4 -> 1
      for _, stage in ipairs{ "upload", "queued", "processing", "download", "done" } do
        local seen = false
        for _, s in ipairs(events) do seen = seen or s == stage end
        assert.is_true(seen, "no progress event for stage " .. stage)
      end
    end)

    it("hands the task id to on_task once, before the first poll; a raising on_task is only logged", function()
      local seen, polls_then = {}, nil
      local res, err = client():recognize{ file = img, on_task = function(id)
        seen[#seen + 1] = id
        polls_then = #emu:requests("/api/tasks/document/ocr/" .. id, "GET")
      end }
      assert.is_nil(err)
      assert.same({ res.task_id }, seen)
      assert.equal(0, polls_then)
      local events = {}
      res, err = client{ log = function(ev) events[#events + 1] = ev end }
                 :recognize{ file = img, on_task = function() error("disk full") end }
      assert.is_nil(err)
      assert.equal("Hello lua-ocr\n你好，世界", res.text)
      local logged
      for _, ev in ipairs(events) do
        if ev.event == "on_task_failed" then logged = ev end
      end
      assert.truthy(logged and logged.message:find("disk full", 1, true))
      assert.equal(res.task_id, logged.task_id)
      -- checked like any option
      local _, e = client():recognize{ file = img, on_task = "no" }
      assert.equal("invalid_input", e.kind)
    end)

    it("sends in-memory data as an image_file part with the given filename", function()
      local res, err = client():recognize{ data = F.image("from memory"), filename = "page.jpg" }
      assert.is_nil(err)
      assert.equal("from memory", res.text)
      local form = emu:requests("/api/tasks/document/ocr", "POST")[1].form
      assert.equal("page.jpg", form.image_file[1].filename)
      assert.equal("image/jpeg", form.image_file[1].content_type)
    end)

    it("names unnamed in-memory data by its format", function()
      local res, err = client():recognize{ data = F.image("unnamed") }
      assert.is_nil(err)
      assert.equal("unnamed", res.text)
      local form = emu:requests("/api/tasks/document/ocr", "POST")[1].form
      assert.equal("image.png", form.image_file[1].filename)
      assert.equal("image/png", form.image_file[1].content_type)
    end)

    it("sends a URL as image_url", function()
      emu:config{ url_text = "text behind a URL" }
      local res, err = client():recognize{ url = "https://example.com/a%20b.png" }
      assert.is_nil(err)
      assert.equal("text behind a URL", res.text)
      local form = emu:requests("/api/tasks/document/ocr", "POST")[1].form
      assert.equal("https://example.com/a%20b.png", form.image_url[1].value)
      assert.is_nil(form.image_file)
    end)

    it("saves non-txt formats into output and lists them in res.files", function()
      local out = dir .. "/out"
      F.mkdir(out)
      local res, err = client():recognize{ file = img, format = "pdf", output = out }
      assert.is_nil(err)
      assert.equal("pdf", res.files[1].format)
      assert.equal(out .. "/" .. res.task_id .. ".pdf", res.files[1].path)
      assert.equal("%PDF", F.read(res.files[1].path):sub(1, 4))
      -- a second run never overwrites the first file
      local res2 = assert(client():result(res.task_id, { format = "pdf", output = out }))
      assert.are_not.equal(res.files[1].path, res2.files[1].path)
    end)

    it("returns the URL only with download = false", function()
      local res, err = client():recognize{ file = img, format = "docx", download = false }
      assert.is_nil(err)
      assert.is_nil(res.files[1].path)
      assert.truthy(res.files[1].url:match("%.docx"))
      assert.equal(0, #emu:requests("/results/"))
    end)
  end)

  describe("invalid input sends nothing", function()
    local cases = {
      { "two sources", { file = "x.png", url = "https://a.example/x.png" }, "exactly one source" },
      { "no source", { language = "English" }, "one source is required" },
      { "a key source", { key = "a/b.png" }, "does not accept" },
      { "a missing file", { file = "/nonexistent/scan.png" }, "cannot read" },
      { "a directory", { file = "/tmp" }, "not a file" },
      { "a long password", { data = "x", password = string.rep("p", 33) }, "32 characters" },
      { "an unknown format", { data = "x", format = "doc" }, "format" },
      { "a port other than 80/443", { url = "http://example.com:8080/a.png" }, "port 8080" },
      { "too many languages", { data = "x", language = "A,B,C,D,E,F,G,H,I,J,K" }, "at most 10" },
      { "an unknown option", { data = "x", langauge = "English" }, "unknown option 'langauge'" },
      { "a language name that is not one", { data = "x", language = "English,Chinese PRC" },
        'language "Chinese PRC" is not one picwish reads' },
      { "a file format without output", { data = "x", format = "pdf" }, "output" },
      { "an output that is not a directory", { data = "x", output = "/nonexistent" }, "output" },
      { "empty data", { data = "" }, "empty" },
      { "a relative url", { url = "example.com/a.png" }, "absolute" },
      -- the port as ocr.url reads it: an upper-case scheme, an IPv6 host, user information
      { "a port after an upper-case scheme", { url = "HTTPS://example.com:8443/a.png" }, "port 8443" },
      { "a port after an IPv6 host", { url = "http://[2001:db8::1]:81/a.png" }, "port 81" },
      { "a port after user information", { url = "http://u:p@example.com:8080/a.png" }, "port 8080" },
      { "a CR/LF in the url", { url = "http://example.com/a.png\r\nX: y" }, "absolute" },
    }
    for _, c in ipairs(cases) do
      it("refuses " .. c[1], function()
        expect.invalid_input_sends_nothing(client(), c[2], emu, c[3])
      end)
    end

    it("accepts a url on port 80 or 443 however it is written, in any scheme case", function()
      for _, u in ipairs{ "HTTP://example.com/a.png", "https://example.com:443/a.png",
                          "http://example.com:0080/a.png", "http://[::1]:80/a.png" } do
        assert.is_nil(client():check_input{ url = u }, u)
      end
    end)

    it("accepts a result file URL whose scheme is upper-case", function()
      emu:config{ result_base = emu.url:gsub("^http:", "HTTP:") }
      local res, err = client():recognize{ data = F.image("upper") }
      assert.is_nil(err)
      assert.equal("upper", res.text)
      assert.truthy(res.files[1].url:find("^HTTP://"))
    end)

    it("accepts a password of exactly 32 characters, counted as characters not bytes", function()
      local res, err = client():recognize{ data = F.image("ok"), password = string.rep("密", 32) }
      assert.is_nil(err)
      assert.equal("ok", res.text)
    end)

    it("raises on programmer mistakes in ocr.new", function()
      assert.has_error(function() ocr.new("nope", {}) end)
      assert.has_error(function() ocr.new("picwish", { endpoint = emu.url }) end, nil)
      assert.has_error(function() ocr.new("picwish", { api_key = KEY, timeout = "10" }) end)
      assert.has_error(function() ocr.new("picwish", { api_key = KEY, colour = true }) end)
      local ok, msg = pcall(ocr.new, "picwish", { endpoint = emu.url })
      assert.is_false(ok)
      assert.truthy(msg:find("OCR_PICWISH_API_KEY", 1, true))
    end)
  end)

  describe("documented HTTP statuses", function()
    local kinds = { [400] = "invalid_input", [401] = "auth", [404] = "not_found",
                    [413] = "too_large", [429] = "rate_limited", [500] = "server" }
    for status, kind in pairs(kinds) do
      it(("maps %d on create to %s"):format(status, kind), function()
        emu:fault{ action = "status", path = "/api/tasks/document/ocr", method = "POST",
                   status = status, times = 10,
                   body = ('{"status": %d, "message": "injected %d"}'):format(status, status) }
        local res, err = client{ retries = 0 }:recognize{ file = img }
        assert.is_nil(res)
        assert.equal(kind, err.kind)
        assert.equal(status, err.status)
        assert.truthy(err.message:find("injected", 1, true))
      end)
    end

    it("maps a wrong key to auth without retrying", function()
      local res, err = client{ api_key = "wrong-key" }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("auth", err.kind)
      assert.equal(401, err.status)
      assert.equal(1, #emu:log())
    end)

    it("reads the status from the body when HTTP says 200", function()
      emu:config{ error_style = "body", qps = 0 }
      local res, err = client{ api_key = "wrong-key" }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("auth", err.kind)
      assert.equal(401, err.code)
    end)

    it("maps an unknown task id to not_found", function()
      local res, err = client():result("00000000-0000-0000-0000-000000000000")
      assert.is_nil(res)
      assert.equal("not_found", err.kind)
      assert.equal("00000000-0000-0000-0000-000000000000", err.task_id)
    end)
  end)

  describe("every documented task state", function()
    local expected = {
      [-17] = "task_failed", [-16] = "task_failed", [-15] = "server", [-14] = "invalid_input",
      [-13] = "task_failed", [-11] = "task_failed", [-10] = "task_failed", [-9] = "task_failed",
      [-8] = "timeout", [-7] = "invalid_input", [-5] = "too_large", [-3] = "invalid_input",
      [-2] = "server", [-1] = "task_failed",
    }
    for state, kind in pairs(expected) do
      it(("maps state %d to %s, keeping the task id"):format(state, kind), function()
        emu:config{ qps = 0, script = { { state = 0, progress = 0 }, { state = 4, progress = 30 },
                                        { state = state, progress = 0 } } }
        local res, err = client():recognize{ file = img }
        assert.is_nil(res)
        assert.equal(kind, err.kind)
        assert.equal(state, err.code)
        assert.truthy(err.task_id)
        assert.equal(1, #emu:requests("/api/tasks/document/ocr", "POST"))
      end)
    end

    it("walks every pending state (0, 2, 3, 4, 5, 6) before success", function()
      local progress = {}
      emu:config{ qps = 0, script = {
        { state = 0, progress = 0 }, { state = 2, progress = 5 }, { state = 3, progress = 10 },
        { state = 4, progress = 40 }, { state = 5, progress = 80 }, { state = 6, progress = 90 },
        { state = 1, progress = 100 } } }
      local res, err = client{ on_progress = function(ev)
        if ev.state then progress[#progress + 1] = ev.stage .. ":" .. ev.progress end
      end }:recognize{ file = img }
      assert.is_nil(err)
      assert.truthy(res.text:find("Hello", 1, true))
      assert.same({ "queued:0", "queued:5", "queued:10", "processing:40", "processing:80", "processing:90" }, progress)
    end)

    it("maps an invalid image (no known magic number) to invalid_input", function()
      local res, err = client():recognize{ data = "GIF? no, plain text", filename = "x.png" }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.equal(-7, err.code)
    end)
  end)

  describe("polling and expiry", function()
    it("times out with the task id, and client:result fetches it later", function()
      local steps = {}
      for i = 1, 30 do steps[i] = { state = 4, progress = i } end
      steps[31] = { state = 1, progress = 100 }
      emu:config{ qps = 0, script = steps }
      local c = client{ poll_timeout = 0.05, poll_interval = 0.02 }
      local res, err = c:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.truthy(err.task_id)
      assert.is_true(err.retryable)
      local res2, err2 = client{ poll_timeout = 5, poll_interval = 0.001 }:result(err.task_id)
      assert.is_nil(err2)
      assert.equal("Hello lua-ocr\n你好，世界", res2.text)
      assert.equal(err.task_id, res2.task_id)
      assert.equal(1, #emu:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("reports an expired result URL as not_found", function()
      emu:config{ qps = 0, file_ttl = -1 }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("not_found", err.kind)
      assert.equal(403, err.status)
      assert.truthy(err.message:find("1 hour", 1, true))
    end)
  end)

  describe("faults and retries", function()
    it("retries a 429 on create and honours Retry-After", function()
      emu:fault{ action = "status", path = "/api/tasks/document/ocr", method = "POST", status = 429,
                 headers = { ["Retry-After"] = "1" }, body = '{"status":429,"message":"slow down"}' }
      local t0 = require("ocr.core").monotime()
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.truthy(res.text)
      assert.is_true(require("ocr.core").monotime() - t0 >= 0.95)
      assert.equal(2, #emu:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("respects the emulator's 2 creates per second with retries, never losing a job", function()
      emu:config{ qps = 2 }
      -- Full jitter may pick short delays several times in a row: give the retries room (the
      -- emulator's window is one second) so that this asserts "429s are retried", not luck.
      local c = client{ retries = 20, retry_budget = 100, backoff = { base = 0.25, cap = 0.5 } }
      for i = 1, 4 do
        local res, err = c:recognize{ data = F.image("job " .. i), filename = "p.png" }
        assert.is_nil(err)
        assert.equal("job " .. i, res.text)
      end
    end)

    it("does not re-send a billed create whose answer was lost (dropped connection)", function()
      emu:fault{ action = "drop", path = "/api/tasks/document/ocr", method = "POST" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.is_true(err.sent)
      assert.is_true(err.retryable)
      assert.equal(1, #emu:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("does not re-send a billed create after a 500", function()
      emu:fault{ action = "status", path = "/api/tasks/document/ocr", method = "POST", status = 500,
                 body = '{"status":500,"message":"boom"}' }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("server", err.kind)
      assert.equal(1, #emu:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("re-sends a create that never left this machine (connection refused)", function()
      expect.refused_and_retried(client, { file = img })
    end)

    it("retries polls through 5xx, drops, truncated and slow answers", function()
      local c = client{ timeout = 0.5, retries = 3 }
      -- Faults apply in order, each to the first request that reaches it.
      emu:fault{ action = "status", path = "/api/tasks/document/ocr/", status = 503, body = "{}" }
      emu:fault{ action = "drop", path = "/api/tasks/document/ocr/" }
      emu:fault{ action = "truncate", path = "/api/tasks/document/ocr/" }
      emu:fault{ action = "slow", delay = 1, path = "/api/tasks/document/ocr/" }
      local res, err = c:recognize{ file = img }
      assert.is_nil(err)
      assert.equal("Hello lua-ocr\n你好，世界", res.text)
      -- libcurl itself re-sends an idempotent GET once when a reused connection dies before any
      -- answer, so a drop may be absorbed without reaching our retry loop: at least 4 faults hit.
      local faulted = 0
      for _, e in ipairs(emu:requests("/api/tasks/document/ocr/")) do
        if type(e.fault) == "string" then faulted = faulted + 1 end
      end
      assert.is_true(faulted >= 4, "faults seen: " .. faulted)
    end)

    -- A status line libcurl cannot parse is the server's garbage (network), so a read is retried;
    -- it used to come back as a refused redirect (invalid_input) and fail the job.
    it("retries a poll answered with a broken status line", function()
      emu:fault{ action = "raw", path = "/api/tasks/document/ocr/", method = "GET",
                 body = "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal("Hello lua-ocr\n你好，世界", res.text)
      local raw = 0
      for _, e in ipairs(emu:requests("/api/tasks/document/ocr/")) do
        if e.fault == "raw" then raw = raw + 1 end
      end
      assert.equal(1, raw)
    end)

    it("retries a failed result download", function()
      emu:fault{ action = "status", path = "/results/", status = 500, body = "oops" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.truthy(res.text:find("Hello", 1, true))
      assert.equal(2, #emu:requests("/results/"))
    end)

    it("turns a malformed JSON answer into a protocol error", function()
      emu:fault{ action = "malformed", path = "/api/tasks/document/ocr", method = "POST" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("protocol", err.kind)
    end)

    it("turns an answer without data.task_id into a protocol error", function()
      emu:fault{ action = "status", status = 200, path = "/api/tasks/document/ocr", method = "POST",
                 body = '{"status":200,"message":"ok","data":{}}' }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("protocol", err.kind)
      assert.truthy(err.message:find("task_id", 1, true))
    end)
  end)

  describe("secrets", function()
    it("never puts the API key in errors or log events", function()
      local secret = "sk-super-secret-key-123456"
      emu:config{ qps = 0, api_key = secret }
      local events = {}
      local c = client{ api_key = secret, log = function(ev) events[#events + 1] = ev end }
      emu:fault{ action = "status", path = "/api/tasks/document/ocr", method = "POST", status = 401,
                 body = '{"status":401,"message":"bad key ' .. secret .. '"}' }
      local _, err = c:recognize{ file = img }
      assert.equal("auth", err.kind)
      assert.is_nil(tostring(err):find(secret, 1, true))
      assert.truthy(tostring(err):find("***", 1, true))
      local res = assert(c:recognize{ file = img })
      assert.truthy(res.text)
      assert.is_true(#events > 3)
      expect.no_field_contains(events, secret, "secret in log field ")
    end)
  end)
end)
