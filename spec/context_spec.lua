-- ctx:url, the URL builder every provider uses (lua/ocr/context.lua), including its per-client
-- memo of endpoint URLs (kept without their query).
local ocr = require "ocr"
local context = require "ocr.context"

describe("ctx:url", function()
  local function ctx_for(endpoint)
    ocr.register("url_spec", { credentials = {}, sources = { "data" },
                               recognize = function() return nil end })
    return context.new(ocr.new("url_spec", { endpoint = endpoint }))
  end

  it("joins the endpoint and the path with exactly one slash", function()
    for _, endpoint in ipairs{ "http://h.test/api", "http://h.test/api/", "http://h.test/api//" } do
      local ctx = ctx_for(endpoint)
      assert.equal("http://h.test/api/v1/x", ctx:url("/v1/x"))
      assert.equal("http://h.test/api/v1/x", ctx:url("v1/x"))
      assert.equal("http://h.test/api/v1/x", ctx:url("//v1/x"))
      assert.equal("http://h.test/api/", ctx:url())
    end
  end)

  it("encodes queries with sorted keys and keeps them out of the memo", function()
    local ctx = ctx_for("http://h.test")
    assert.equal("http://h.test/s?a=1&b=x%20y", ctx:url("/s", { b = "x y", a = 1 }))
    assert.equal("http://h.test/s?a=2", ctx:url("/s", { a = 2 }))
    assert.equal("http://h.test/s", ctx:url("/s"))
    assert.equal("http://h.test/s?a=2", ctx:url("/s", { a = 2 }))
    assert.equal("http://h.test/s?t=1&a=3", ctx:url("/s?t=1", { a = 3 }))
    assert.equal("http://h.test/s", ctx:url("/s", {}))
    assert.equal("http://h.test/s?k=true", ctx:url("/s", { k = true }))
  end)

  it("answers the same URL from the memo, for any path (even 'n'), and not for another base", function()
    local ctx = ctx_for("http://h.test/")
    for _ = 1, 3 do
      assert.equal("http://h.test/n", ctx:url("n"))
      assert.equal("http://h.test/", ctx:url(""))
      assert.equal("http://other.test/n", ctx:url("n", nil, "http://other.test/"))
    end
    for i = 1, 200 do assert.equal("http://h.test/p" .. i, ctx:url("/p" .. i)) end
    assert.equal(64, ctx.client.url_memo_size)
  end)
end)

describe("ctx:download", function()
  -- The result file URL comes from the vendor: one that is not http(s) is the vendor's fault,
  -- refused before any request (found by spec/provider_fuzz_spec.lua: it was `invalid_input`).
  it("refuses a vendor URL that is not http(s) as a protocol error, sending nothing", function()
    ocr.register("download_spec", { credentials = {}, sources = { "data" },
                                    recognize = function() return nil end })
    local ctx = context.new(ocr.new("download_spec", { endpoint = "http://127.0.0.1:9" }))
    for _, url in ipairs{ "x", "中\239\191\189", "https://h.test/a b.png", "file:///etc/passwd", "", 5, {} } do
      local res, err = ctx:download(url)
      assert.is_nil(res)
      assert.equal("protocol", err.kind, tostring(url))
      assert.equal("download_spec", err.provider)
    end
  end)
end)

describe("a provider's misspelt field", function()
  -- Each workflow makes one mistake a provider author makes; the result must name it instead of
  -- the field being dropped silently (no request is sent: port 9 would refuse it anyway).
  local cases = {
    { "ctx:request", function(ctx) return ctx:request{ path = "/x", decod = "json" } end, "decod" },
    { "ctx:poll", function(ctx) return ctx:poll{ step = function() return "done", 1 end, intervall = 1 } end, "intervall" },
    { "ctx:download", function(ctx) return ctx:download("http://127.0.0.1:9/r", { out = "/tmp" }) end, "out" },
  }
  for _, c in ipairs(cases) do
    it(("is refused by %s, naming it, as the job's error"):format(c[1]), function()
      ocr.register("typo_spec", { credentials = {}, sources = { "data" }, recognize = c[2] })
      local res, err = ocr.new("typo_spec", { endpoint = "http://127.0.0.1:9", retries = 0 }):recognize{ data = "x" }
      assert.is_nil(res)
      assert.equal("protocol", err.kind)
      assert.truthy(err.message:find(("%s: unknown field '%s'"):format(c[1], c[3]), 1, true), err.message)
    end)
  end

  it("starting with '_' is the provider's own, and left alone", function()
    local seen
    ocr.register("typo_spec", { credentials = {}, sources = { "data" }, recognize = function(ctx)
      local res, err = ctx:request{ path = "/x", _mine = "kept", sign = function(_, req) seen = req._mine end }
      return res, err
    end })
    local _, err = ocr.new("typo_spec", { endpoint = "http://127.0.0.1:9", retries = 0 }):recognize{ data = "x" }
    assert.equal("kept", seen)
    assert.equal("network", err.kind)
  end)
end)

describe("ctx:poll", function()
  -- A fake clock: every sleep is recorded and moves time on at once.
  local slept
  before_each(function()
    local t = 0
    slept = {}
    ocr.runtime.set{ now = function() return t end,
                     sleep = function(s) slept[#slept + 1] = s; t = t + s end }
  end)
  after_each(function() ocr.runtime.reset() end)

  local function polling_client(defaults, opts)
    ocr.register("poll_spec", { credentials = {}, sources = { "data" }, defaults = defaults,
      recognize = function(ctx)
        return ctx:poll{ interval = 0.01, step = function(_, n)
          if n == 3 then return "done", ocr.result.new{ text = "ok" } end
          return "pending"
        end }
      end })
    local o = { endpoint = "http://127.0.0.1:9", transport = { request = function() end } }
    for k, v in pairs(opts or {}) do o[k] = v end
    return ocr.new("poll_spec", o)
  end

  it("never waits less than the provider's min_poll_interval, whatever interval is asked", function()
    assert(polling_client({ min_poll_interval = 0.5 }):recognize{ data = "x" })
    assert.same({ 0.5, 0.5 }, slept)
  end)

  it("waits less only when the caller lowers min_poll_interval, which has no floor by default", function()
    assert(polling_client({ min_poll_interval = 0.5 }, { min_poll_interval = 0 }):recognize{ data = "x" })
    assert.same({ 0.01, 0.01 }, slept)
    slept = {}
    assert(polling_client():recognize{ data = "x" })
    assert.same({ 0.01, 0.01 }, slept)
  end)
end)

describe("ctx:download refuses what ocr.url refuses, as the vendor's fault", function()
  it("CR/LF, bad ports, a broken IPv6 host, over-long URLs", function()
    ocr.register("download_spec2", { credentials = {}, sources = { "data" },
                                     recognize = function() return nil end })
    local ctx = context.new(ocr.new("download_spec2", { endpoint = "http://127.0.0.1:9" }))
    for _, u in ipairs{ "http://h/a\r\nX: y", "http://h:0/", "http://h:99999/", "http://[::1/x",
                        "http://h/" .. ("a"):rep(context.MAX_URL) } do
      local res, err = ctx:download(u)
      assert.is_nil(res)
      assert.equal("protocol", err.kind)
      assert.truthy(err.message:find("result file URL is unusable", 1, true), err.message)
    end
  end)
end)
