-- What calls cost (res.cost, err.cost), client:stats(), and budgets that refuse a billed request
-- before it is sent, end to end against the strict emulators: what was sent is read from their
-- request logs, what they charged from their state.
local ocr = require "ocr"
local budget = require "ocr.budget"
local registry = require "ocr.registry"
local F = require "helpers.files"
local rig = require "helpers.rig"
local emulator = require "helpers.emulator"

local OCR = "/api/v1/image/ocr"
local CREATE = "/api/tasks/document/ocr"

describe("cost", function()
  it("is declared per provider, nil where the price is unknown", function()
    local function cost(name) return registry.get(name).cost end
    assert.same({ credits = 1, unit = "credit", per = "create", when = "success" }, cost("picwish"))
    assert.same({ credits = 4, unit = "credit", per = "call", when = "success" }, cost("uapi"))
    assert.same({ credits = 0, unit = "credit" }, cost("tesseract"))
    assert.equal(1, cost("tencent").credits)
    assert.equal("call", cost("tencent").unit)
    assert.equal(1, cost("oldfish").credits)
    assert.is_nil(cost("compdf"))
  end)

  it("is checked: ocr.register and ocr.new raise on a bad declaration", function()
    local def = { recognize = function() end, cost = { credits = -1 } }
    assert.has_error(function() ocr.register("cost_bad", def) end)
    def.cost = { credits = 1, when = "sometimes" }
    assert.has_error(function() ocr.register("cost_bad", def) end)
    def.cost = { credits = 1, price = 2 }
    assert.has_error(function() ocr.register("cost_bad", def) end)
    def.cost = function() return { credits = 1 } end
    ocr.register("cost_fn", def)
    local ok, err = pcall(ocr.new, "uapi", { cost = { credits = "4" } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("cost.credits", 1, true), err)
  end)

  describe("uapi", function()
    local emu, dir, img
    local function client(opts)
      return rig.client("uapi", { endpoint = emu.url, retries = 0, backoff = { base = 0.01, cap = 0.05 } }, opts)
    end
    local function posts() return #emu:requests(OCR, "POST") end

    setup(function() emu, dir, img = rig.start("uapi", { { "scan.png", "four credits" } }) end)
    teardown(function() rig.stop(emu, dir) end)
    before_each(function()
      emu:reset()
      emu:config{ visitor_credits = 100000 }
    end)

    it("res.cost is what the emulator charged; a 502 costs, a 503 does not", function()
      local c = client()
      local res, err = c:recognize{ file = img }
      assert.is_nil(err)
      assert.equal(4, res.cost)
      assert.equal(4, emu:state().charged)
      emu:config{ engine_errors = { 502 } }
      res, err = c:recognize{ file = img }
      assert.equal("server", err.kind)
      assert.equal(4, err.cost)
      assert.equal(8, emu:state().charged)
      emu:config{ engine_errors = { 503 } }
      res, err = c:recognize{ file = img }
      assert.equal("server", err.kind)
      assert.equal(0, err.cost)
      assert.equal(8, emu:state().charged)
    end)

    it("a refused input costs 0 and sends nothing", function()
      local _, err = client():recognize{ file = dir .. "/missing.png" }
      assert.equal("invalid_input", err.kind)
      assert.equal(0, err.cost)
      assert.equal(0, posts())
    end)

    it("client:stats() counts calls, successes, failures by kind, credits and latency", function()
      local c = client()
      assert.same({ requests = 0, successes = 0, failures = {}, credits = 0, unit = "credit",
                    latency = { samples = 0 } }, c:stats())
      for _ = 1, 3 do assert(c:recognize{ file = img }) end
      emu:config{ engine_errors = { 502 } }
      c:recognize{ file = img }
      c:recognize{ url = "not a url" }
      local s = c:stats()
      assert.equal(5, s.requests)
      assert.equal(3, s.successes)
      assert.same({ server = 1, invalid_input = 1 }, s.failures)
      assert.equal(16, s.credits)
      assert.equal("credit", s.unit)
      assert.equal(3, s.latency.samples)
      assert.is_true(s.latency.p50 > 0 and s.latency.p50 <= s.latency.p95)
      s.failures.server = 99   -- (a snapshot: the caller's to keep)
      assert.equal(1, c:stats().failures.server)
    end)

    describe("budget", function()
      it("refuses the billed request that would exceed it, before sending anything", function()
        local store = require("ocr.store").memory()
        local c = client{ budget = { credits = 8, per = "day", store = store } }
        assert(c:recognize{ file = img })
        assert(c:recognize{ file = img })
        local res, err = c:recognize{ file = img }
        assert.is_nil(res)
        assert.equal("quota", err.kind)
        assert.is_true(err.budget)
        assert.is_false(err.retryable)
        assert.is_false(err.sent)
        assert.equal(0, err.cost)
        assert.equal(2, posts())
        local s = c:stats()
        assert.same({ credits = 8, per = "day", spent = 8 }, s.budget)
        assert.equal(1, s.failures.quota)
        -- The count sits in the store under the provider, a hash of the credentials and the UTC day.
        local key = next(store.nodes)   -- (ocr.store.memory keeps its entries by key)
        assert.truthy(key:find("uapi:", 1, true), key)
        assert.truthy(key:find(os.date("!%Y-%m-%d"), 1, true), key)
      end)

      it("of 0 credits sends nothing at all", function()
        local _, err = client{ budget = { credits = 0, per = "run" } }:recognize{ file = img }
        assert.is_true(err.budget)
        assert.equal(0, #emu:log())
      end)

      it("gets back what a request not billed held: a 503, a 429 re-sent", function()
        local c = client{ budget = { credits = 4, per = "run" } }
        emu:config{ engine_errors = { 503 } }
        local _, err = c:recognize{ file = img }
        assert.equal("server", err.kind)
        assert.equal(0, c:stats().budget.spent)
        emu:fault{ action = "status", path = OCR, method = "POST", status = 429,
                   headers = { ["Retry-After"] = "0" }, body = '{"code":"RATE_LIMITED","message":"slow"}' }
        local res = assert(client{ budget = c.budget, retries = 1 }:recognize{ file = img })
        assert.equal(4, res.cost)
        assert.equal(3, posts())
        assert.equal(4, c:stats().budget.spent)
      end)

      it("keeps what a request whose answer was lost may have cost", function()
        local c = client{ budget = { credits = 4, per = "run" } }
        emu:fault{ action = "drop", path = OCR, method = "POST" }
        local _, err = c:recognize{ file = img }
        assert.equal("network", err.kind)
        assert.equal(4, err.cost)
        _, err = c:recognize{ file = img }
        assert.is_true(err.budget)
        assert.equal(1, posts())
      end)

      it("never lets jobs racing for the last credits overshoot it", function()
        local c = client{ budget = { credits = 8, per = "run" } }
        local jobs = {}
        for i = 1, 5 do jobs[i] = c:submit{ file = img } end
        ocr.run()
        local ok, refused = 0, 0
        for _, job in ipairs(jobs) do
          local res, err = job:result()
          if res then ok = ok + 1 elseif err.budget then refused = refused + 1 end
        end
        assert.equal(2, ok)
        assert.equal(3, refused)
        assert.equal(2, posts())
        assert.equal(8, emu:state().charged)
      end)

      it("is shared by clients given the same spec, and by a store's users", function()
        local spec = { credits = 4, per = "run" }
        assert(client{ budget = spec }:recognize{ file = img })
        local _, err = client{ budget = spec }:recognize{ file = img }
        assert.is_true(err.budget)
        local store = require("ocr.store").memory()
        assert(client{ budget = { credits = 4, per = "day", store = store } }:recognize{ file = img })
        _, err = client{ budget = { credits = 4, per = "day", store = store } }:recognize{ file = img }
        assert.is_true(err.budget)
        -- another credential counts apart
        assert(client{ api_key = "test-uapi-key", budget = { credits = 4, per = "day", store = store } }
               :recognize{ file = img })
        assert.equal(3, posts())
      end)

      it("counts in stores of ocr.store's interface (incr with an init), a dir shared by its openers", function()
        -- A strict store: incr on an absent key without init is nil, "not found".
        local values = {}
        local strict = {
          get = function(_, k) return values[k] end,
          incr = function(_, k, by, init, ttl)
            assert(ttl == nil or type(ttl) == "number")
            if values[k] == nil then
              if init == nil then return nil, "not found" end
              values[k] = init
            end
            values[k] = values[k] + by
            return values[k]
          end,
        }
        local c = client{ budget = { credits = 4, per = "run", store = strict } }
        assert(c:recognize{ file = img })
        local _, err = c:recognize{ file = img }
        assert.is_true(err.budget)
        assert.equal(1, posts())
        local ok, store = pcall(require, "ocr.store")
        if not ok then return end   -- (the store module arrives with its own branch)
        local d = F.tmpdir()
        local spec = function() return { credits = 4, per = "day", store = store.dir(d) } end
        local res, rerr = client{ budget = spec() }:recognize{ file = img }
        local _, refused = client{ budget = spec() }:recognize{ file = img }   -- (another opener)
        F.rmdir(d)
        assert.is_nil(rerr)
        assert.equal(4, res.cost)
        assert.is_true(refused.budget)
        assert.equal(2, posts())
      end)

      it("a cancelled job is counted, and costs nothing when it never sent", function()
        local c = client{ budget = { credits = 4, per = "run" } }
        local job = c:submit{ file = img }
        job:cancel()
        ocr.run()
        assert.equal(0, c:stats().budget.spent)
        assert.equal(1, c:stats().failures.cancelled)
        assert(c:recognize{ file = img })
      end)

      it("applies a pipeline's budget to its clients' billed requests (budget.within)", function()
        local b = budget.new{ credits = 4, per = "run" }
        local a, k = client(), client{ api_key = "test-uapi-key" }
        local res = assert(budget.within(b, function() return a:recognize{ file = img } end))
        assert.equal(4, res.cost)
        local _, err = budget.within(b, function() return k:recognize{ file = img } end)
        assert.is_true(err.budget)
        -- jobs submitted within it count too
        local job = budget.within(b, function() return a:submit{ file = img } end)
        ocr.run()
        assert.is_true(select(2, job:result()).budget)
        assert.equal(1, posts())
        assert.equal(4, b:spent("pipeline"))
        assert(a:recognize{ file = img })   -- (outside it: the client's own, none)
      end)

      it("ocr.new raises on a bad budget, and on one over an unknown price", function()
        for _, bad in ipairs{ { credits = 1 }, { credits = 1, per = "week" }, { credits = -1, per = "day" },
                              { credits = 1, per = "day", store = {} }, { credits = 1, per = "day", limit = 2 } } do
          assert.is_false((pcall(client, { budget = bad })))
        end
        local ok, err = pcall(ocr.new, "compdf", { api_key = "k", budget = { credits = 1, per = "day" } })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("cost = {credits = n}", 1, true), err)
        assert.truthy(ocr.new("compdf", { api_key = "k", cost = { credits = 1 }, budget = { credits = 1, per = "day" } }))
      end)
    end)
  end)

  describe("picwish", function()
    local emu, dir, img
    local function client(opts)
      return rig.client("picwish", { api_key = "test-picwish-key", endpoint = emu.url, poll_interval = 0.01,
        poll_timeout = 5, backoff = { base = 0.01, cap = 0.05 }, rate = false }, opts)
    end
    local function creates() return #emu:requests(CREATE, "POST") end

    setup(function() emu, dir, img = rig.start("picwish", { { "scan.png", "one credit" } }) end)
    teardown(function() rig.stop(emu, dir) end)
    before_each(function()
      emu:reset()
      emu:config{ qps = 0 }
    end)

    it("a recognition costs its create; polls, downloads and client:result are free", function()
      local c = client()
      local res = assert(c:recognize{ file = img })
      assert.equal(1, res.cost)
      assert.is_true(#emu:requests(CREATE .. "/", "GET") >= 1)
      local again = assert(c:result(res.task_id))
      assert.equal(0, again.cost)
      assert.equal(1, c:stats().credits)
      assert.equal(2, c:stats().successes)
    end)

    it("a refused create costs nothing, a lost answer counts", function()
      emu:fault{ action = "status", path = CREATE, method = "POST", status = 500, body = '{"status":500,"message":"boom"}' }
      local _, err = client():recognize{ file = img }
      assert.equal(0, err.cost)
      emu:fault{ action = "drop", path = CREATE, method = "POST" }
      _, err = client():recognize{ file = img }
      assert.equal(1, err.cost)
    end)

    it("a budget refusal sends nothing", function()
      local c = client{ budget = { credits = 1, per = "hour", store = require("ocr.store").memory() } }
      assert(c:recognize{ file = img })
      local _, err = c:recognize{ file = img }
      assert.is_true(err.budget)
      assert.equal(1, creates())
    end)
  end)

  describe("tencent", function()
    local emu, dir, img
    setup(function() emu, dir, img = rig.start("tencent", { { "scan.png", "one call" } }) end)
    teardown(function() rig.stop(emu, dir) end)
    before_each(function() emu:reset() end)

    it("counts the OCR request, and an exhausted budget refuses before the upload", function()
      local c = rig.client("tencent", { secret_id = "AKIDtestSecretId", secret_key = "testSecretKey",
                                        endpoint = emu.url, budget = { credits = 1, per = "run" } })
      local res = assert(c:recognize{ file = img })
      assert.equal(1, res.cost)
      assert.equal("call", c:stats().unit)
      local n = #emu:log()
      local _, err = c:recognize{ file = img }
      assert.is_true(err.budget)
      assert.equal(n, #emu:log())
    end)
  end)

  it("tesseract costs 0", function()
    local ok = pcall(require, "ocr.tesseract")
    if not ok then return pending("ocr.tesseract is not built") end
    local c = ocr.new("tesseract", { threads = 1, budget = { credits = 0, per = "run" } })
    local res = assert(c:recognize{ file = "examples/sample.png" })
    assert.equal(0, res.cost)
    assert.equal(0, c:stats().credits)
  end)

  it("a client's cost option prices a provider whose price is unknown", function()
    local http = emulator.start("compdf")
    local d = F.tmpdir()
    local file = F.write(d .. "/a.png", F.image("priced"))
    local c = ocr.new("compdf", { api_key = "test-compdf-key", endpoint = http.url .. "/server/",
                                  cost = { credits = 2, unit = "page" } })
    local ok, res, err = pcall(c.recognize, c, { file = file })
    http:stop()
    F.rmdir(d)
    assert.is_true(ok, res)
    assert.is_nil(err)
    assert.equal(2, res.cost)
    assert.equal("page", c:stats().unit)
    assert.is_nil(ocr.new("compdf", { api_key = "k" }):stats().unit)
  end)
end)
