-- The client's own contract, apart from any vendor: what ocr.new refuses, what client:result
-- guards, what a provider without a `check` gets for a non-2xx answer, and the rate limiter's
-- log event. Real HTTP against spec/emulators/httptest.py.
local ocr = require "ocr"
local emulator = require "helpers.emulator"

-- A made-up vendor that GETs whatever path the input names; `billed` marks it a billed create.
-- Registered under two names: the rate limiter keeps state per provider, and the late-departure
-- spec wants a bucket of its own.
local function made_up(name)
  ocr.register(name, {
    credentials = {},
    sources = { "data" },
    options = { path = "string", billed = "boolean" },
    recognize = function(ctx, input)
      local res, err = ctx:request{ method = "GET", path = input.path or "/status/200", billed = input.billed }
      if not res then return nil, err end
      return ocr.result.new{ text = input.data }
    end,
  })
end
made_up("client_spec")
made_up("client_spec_late")

describe("client", function()
  local http
  setup(function() http = emulator.start("httptest") end)
  teardown(function() http:stop() end)
  before_each(function() http:reset() end)

  describe("ocr.new refuses, naming the option", function()
    local cases = {
      { "a transport without a request method", { transport = {} }, "option 'transport' must have a request method" },
      { "an endpoint that is not http(s)", { endpoint = "ftp://files.example/" }, "endpoint must be an http(s) URL" },
      { "a relative endpoint", { endpoint = "/api" }, "endpoint must be an http(s) URL" },
      { "a rate of zero per second", { rate = { per_second = 0 } }, "rate.per_second must be a positive number" },
      { "a rate given as a string", { rate = { per_second = "2" } }, "rate.per_second must be a positive number" },
      { "a negative retry count", { retries = -1 }, "option 'retries' must be >= 0" },
      { "a zero timeout", { timeout = 0 }, "option 'timeout' must be positive" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local opts = { endpoint = "http://127.0.0.1:1" }
        for k, v in pairs(c[2]) do opts[k] = v end
        local ok, err = pcall(ocr.new, "client_spec", opts)
        assert.is_false(ok)
        assert.truthy(tostring(err):find(c[3], 1, true), tostring(err))
        assert.truthy(tostring(err):find('ocr.new("client_spec")', 1, true), tostring(err))
      end)
    end
  end)

  describe("ocr.register refuses a definition it would misread, naming the field", function()
    local function recognize() return ocr.result.new{ text = "x" } end
    local cases = {
      { "a name with a space", "my vendor", { recognize = recognize }, "name must be [A-Za-z0-9_-]+" },
      { "no recognize", "spec_def", {}, "definition.recognize must be a function" },
      { "a misspelt field", "spec_def", { recognize = recognize, max_filesize = 10 },
        "unknown definition field 'max_filesize'" },
      { "a field in the singular", "spec_def", { recognize = recognize, source = { "data" } },
        "unknown definition field 'source'" },
      { "a hook that is not a function", "spec_def", { recognize = recognize, validate = "strict" },
        "definition.validate must be a function" },
      { "options that are not a table", "spec_def", { recognize = recognize, options = "lang" },
        "definition.options must be a table" },
      { "a size limit that is not a positive number", "spec_def", { recognize = recognize, max_file_size = "5MB" },
        "definition.max_file_size must be a number > 0" },
      { "a rate that is a number", "spec_def", { recognize = recognize, rate = 2 },
        "definition.rate must be a table or false" },
      { "an unknown source", "spec_def", { recognize = recognize, sources = { "stdin" } }, "unknown source stdin" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local ok, err = pcall(ocr.register, c[2], c[3])
        assert.is_false(ok)
        assert.truthy(tostring(err):find(("ocr.register(%q)"):format(c[2]), 1, true), tostring(err))
        assert.truthy(tostring(err):find(c[4], 1, true), tostring(err))
      end)
    end

    it("lets a provider keep fields of its own under names starting with '_'", function()
      ocr.register("spec_def_own", { credentials = {}, sources = { "data" }, _helper = function() end,
                                     recognize = function(_, input) return ocr.result.new{ text = input.data } end })
      assert.equal("own", ocr.new("spec_def_own", { endpoint = http.url }):recognize{ data = "own" }.text)
    end)
  end)

  describe("client:result", function()
    it("is unsupported for a provider without tasks", function()
      local res, err = ocr.new("client_spec", { endpoint = http.url }):result("t-1")
      assert.is_nil(res)
      assert.equal("unsupported", err.kind)
      assert.equal("client_spec has no tasks to fetch later", err.message)
    end)

    it("wants a non-empty task id, and sends nothing without one", function()
      local c = ocr.new("picwish", { api_key = "k", endpoint = http.url })
      for _, bad in ipairs{ "", 42, false } do
        local res, err = c:result(bad)
        assert.is_nil(res)
        assert.equal("invalid_input", err.kind)
        assert.equal("task_id must be a non-empty string", err.message)
      end
      assert.equal(0, #http:log())
    end)
  end)

  it("calls a workflow that returns neither result nor error a protocol error", function()
    ocr.register("client_spec_silent", { credentials = {}, sources = { "data" }, offline = true,
                                         recognize = function() end })
    local res, err = ocr.new("client_spec_silent", {}):recognize{ data = "x" }
    assert.is_nil(res)
    assert.equal("protocol", err.kind)
    assert.equal("provider returned neither result nor error", err.message)
    assert.equal("client_spec_silent", err.provider)
  end)

  it("builds errors for providers and transports of one's own (ocr.error, ocr.is_error)", function()
    local err = ocr.error{ provider = "mine", kind = "quota", code = 7.0, message = "out of pages" }
    assert.is_true(ocr.is_error(err))
    assert.equal(7, err.code)
    assert.equal("mine: quota: out of pages code=7", tostring(err))
    assert.is_false(ocr.is_error({ kind = "quota", message = "a look-alike table" }))
    assert.is_false(ocr.is_error("quota"))
  end)

  it("maps a non-2xx answer onto an error by its status when the provider has no check", function()
    local c = ocr.new("client_spec", { endpoint = http.url, retries = 0 })
    for status, kind in pairs{ [404] = "not_found", [401] = "auth", [503] = "server", [429] = "rate_limited" } do
      local res, err = c:recognize{ data = "x", path = "/status/" .. status }
      assert.is_nil(res)
      assert.equal(kind, err.kind)
      assert.equal(status, err.status)
      assert.equal(("HTTP %d"):format(status), err.message)
    end
    assert.equal("x", (c:recognize{ data = "x", path = "/status/204" }).text)
  end)

  it("keeps 1/rate after a billed request that left late, even when the bucket has a token", function()
    local core = require "ocr.core"
    local c = ocr.new("client_spec_late", { endpoint = http.url, rate = { per_second = 2, burst = 1, margin = 0 } })
    assert.truthy(c:recognize{ data = "a", billed = true })
    -- as if that request had left 0.3 s late (a late wake-up, a busy step): 0.5 s after the
    -- first token the bucket holds a token again, but the vendor saw the request at +0.3 s
    core.sleep(0.3)
    c.limiter.on_start()
    core.sleep(0.25)
    assert.truthy(c:recognize{ data = "b", billed = true })
    local log = http:log()
    assert.equal(2, #log)
    local gap = log[2].t - log[1].t
    assert.is_true(gap >= 0.75, ("second billed request only %.3f s after the first"):format(gap))
  end)

  it("logs a rate-limit wait with its delay, then the request", function()
    local events = {}
    local c = ocr.new("client_spec", { endpoint = http.url, rate = { per_second = 20, burst = 1 },
                                       log = function(ev) events[#events + 1] = ev end })
    assert.truthy(c:recognize{ data = "a", billed = true })
    assert.truthy(c:recognize{ data = "b", billed = true })   -- right away: waits for its token
    local waits, requests = {}, 0
    for _, ev in ipairs(events) do
      if ev.event == "rate_limit_wait" then waits[#waits + 1] = ev end
      if ev.event == "request" then requests = requests + 1 end
    end
    assert.equal(2, requests)
    assert.equal(1, #waits)
    assert.equal("client_spec", waits[1].provider)
    assert.is_true(waits[1].delay > 0 and waits[1].delay <= 1 / 20 / 0.98 + 1e-9, tostring(waits[1].delay))
    assert.truthy(waits[1].url:find("/status/200", 1, true))
  end)

  -- A provider that takes bytes but no URL (like tesseract and compdf) still gets `url`: the
  -- client fetches it. This one is a local engine (no transport until the first URL) that
  -- answers with the name and size it was handed.
  describe("an input URL for a provider that takes no URL", function()
    local function bytes_provider(name, max)
      ocr.register(name, {
        offline = true, credentials = {}, sources = { "file", "data" }, max_file_size = max,
        recognize = function(_, input)
          return ocr.result.new{ text = ("%s:%d"):format(tostring(input.filename), #input.data) }
        end,
      })
    end
    bytes_provider("client_spec_bytes", 100000)
    bytes_provider("client_spec_small", 10000)
    local function url(path) return http.url .. path end
    local function gets(path) return #http:requests(path, "GET") end

    it("is fetched, then handed over as data named after the URL", function()
      local client = ocr.new("client_spec_bytes", { retries = 2 })
      assert.is_nil(client.transport, "a local engine loads no transport up front")
      local res = assert(client:recognize{ url = url("/files/examples/sample.png?v=1") })
      assert.equal("sample.png:50292", res.text)
      assert.equal(1, gets("/files/examples/sample.png"))
      local named = assert(client:recognize{ url = url("/files/examples/sample.png"), filename = "scan.png" })
      assert.equal("scan.png:50292", named.text, "the caller's filename wins")
    end)

    it("is fetched inside jobs too, several at once, each result in its place", function()
      local client = ocr.new("client_spec_bytes")
      local out = client:recognize_all({
        { url = url("/files/examples/sample.png") }, { url = url("/files/spec/fixtures/tiff/pages.tif") },
        { url = url("/files/examples/none.png") }, { data = "abc", filename = "given.bin" },
      }, { concurrency = 3 })
      assert.equal("sample.png:50292", out[1].res.text)
      assert.equal("pages.tif:5568", out[2].res.text)
      assert.equal("invalid_input", out[3].err.kind)
      assert.equal("given.bin:3", out[4].res.text)
    end)

    it("is retried on 503 and 429 like any unbilled request", function()
      http:fault{ action = "status", path = "/files/", status = 503, times = 1 }
      http:fault{ action = "status", path = "/files/", status = 429, times = 1,
                  headers = { ["Retry-After"] = "0" } }
      local client = ocr.new("client_spec_bytes", { retries = 3, backoff = { base = 0.01, max = 0.05 } })
      local res = assert(client:recognize{ url = url("/files/examples/sample.png") })
      assert.equal("sample.png:50292", res.text)
      assert.equal(3, gets("/files/"))
    end)

    it("fails as the input's fault when its host refuses, once, whatever the status", function()
      local client = ocr.new("client_spec_bytes", { retries = 3 })
      for _, case in ipairs{ { "/files/examples/none.png", 404 }, { "/status/401", 401 }, { "/status/403", 403 } } do
        http:reset()
        local res, err = client:recognize{ url = url(case[1]) }
        assert.is_nil(res)
        assert.equal("invalid_input", err.kind, "not `auth`: the OCR credentials are not in question")
        assert.equal(case[2], err.status)
        assert.equal(("the input URL answered HTTP %d"):format(case[2]), err.message)
        assert.equal(1, #http:requests(nil, "GET"), "not retried")
      end
    end)

    it("is bounded by the provider's max_file_size and checked like the caller's data", function()
      local _, bad = ocr.new("client_spec_bytes"):recognize{ url = "ftp://files.example/a.png" }
      assert.equal("invalid_input", bad.kind)
      assert.equal("url must be an absolute http(s) URL", bad.message)
      local _, err = ocr.new("client_spec_small"):recognize{ url = url("/files/examples/sample.png") }
      assert.equal("too_large", err.kind)
      local _, empty = ocr.new("client_spec_bytes"):recognize{ url = url("/status/204") }
      assert.equal("invalid_input", empty.kind)
      assert.equal("fetched from the input URL: data is empty", empty.message)
    end)

    it("is still refused by a provider that takes neither url nor data", function()
      ocr.register("client_spec_files", { offline = true, credentials = {}, sources = { "file" },
                                          recognize = function() return ocr.result.new{ text = "" } end })
      local _, err = ocr.new("client_spec_files"):recognize{ url = url("/files/examples/sample.png") }
      assert.equal("invalid_input", err.kind)
      assert.equal("provider client_spec_files does not accept the source 'url' (it takes file)", err.message)
      assert.equal(0, gets("/files/"))
    end)
  end)
end)
