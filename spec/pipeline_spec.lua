-- Pipelines (ocr.fallback, ocr.race, ocr.cascade) end to end against the picwish and uapi
-- emulators: which member read the input, which were asked (the emulators' request logs), what
-- `attempts` says, nesting, scripts, scheduler jobs and recognize_all. No timing is asserted:
-- a race's loser is told by what its emulator saw, never by a clock.
local ocr = require "ocr"
local core = require "ocr.core"
local F = require "helpers.files"
local rig = require "helpers.rig"
local emulator = require "helpers.emulator"

local TEXT = "Hello pipeline\n第二行 of text"
local CREATE = "/api/tasks/document/ocr"        -- picwish: create, then polls under CREATE/<id>
local OCR = "/api/v1/image/ocr"                 -- uapi: one POST

describe("pipelines", function()
  local pw, ua, dir, img

  local function picwish(opts)
    return rig.client("picwish", { api_key = "test-picwish-key", endpoint = pw.url, poll_interval = 0.01,
      poll_timeout = 30, backoff = { base = 0.01, cap = 0.05 }, rate = false, retries = 0 }, opts)
  end
  local function uapi(opts)
    return rig.client("uapi", { endpoint = ua.url, backoff = { base = 0.01, cap = 0.05 }, retries = 0 }, opts)
  end
  local function creates() return #pw:requests(CREATE, "POST") end
  local function polls() return #pw:requests(CREATE .. "/", "GET") end
  local function posts() return #ua:requests(OCR, "POST") end
  -- picwish never finishes a task (every poll: still queued): a member that never wins.
  local function picwish_forever() pw:config{ qps = 0, script = { { state = 0, progress = 0 } } } end

  setup(function()
    pw, dir, img = rig.start("picwish", { { "scan.png", TEXT } })
    ua = emulator.start("uapi")
  end)
  teardown(function()
    ua:stop()
    rig.stop(pw, dir)
  end)
  before_each(function()
    pw:reset()
    pw:config{ qps = 0 }
    ua:reset()
    ua:config{ visitor_credits = 100000 }
  end)
  after_each(function()
    ocr.run()   -- (a spec that failed half-way leaves no job behind)
  end)

  describe("construction", function()
    it("raises on programmer mistakes", function()
      local c = uapi()
      assert.has_error(function() ocr.fallback{} end, "ocr.fallback: at least one client expected")
      assert.has_error(function() ocr.fallback(c) end)   -- a client is not a list of clients
      assert.has_error(function() ocr.race{ c, {} } end,
                       "ocr.race: member 2 is not a client (no recognize and submit methods)")
      assert.has_error(function() ocr.fallback{ c, tries = 2 } end, "ocr.fallback: unknown option 'tries'")
      assert.has_error(function() ocr.fallback{ c, on = { "quota", "nope" } } end,
                       'ocr.fallback: option \'on\' names an unknown error kind "nope"')
      assert.has_error(function() ocr.race{ c, hedge_after = -1 } end,
                       "ocr.race: option 'hedge_after' must be a number of seconds >= 0")
      assert.has_error(function() ocr.cascade{ c } end,
                       "ocr.cascade: option 'accept' (function(res) -> boolean) is required")
      assert.has_error(function() ocr.cascade{ c, accept = 0.9 } end,
                       "ocr.cascade: option 'accept' must be a function")
      assert.has_error(function() ocr.fallback{ c, [3] = c } end)   -- a hole
      assert.has_error(function() ocr.fallback{ c }.recognize(img) end,
                       "pipeline:recognize: call it with a colon, pipeline:recognize(...)")
    end)

    it("names itself after its members, nested ones too", function()
      local p = ocr.fallback{ ocr.cascade{ picwish(), uapi(), accept = function() return true end }, uapi() }
      assert.equal("fallback(cascade(picwish,uapi),uapi)", p.provider)
      assert.equal("race(uapi)", ocr.race{ uapi() }.provider)
    end)
  end)

  describe("ocr.fallback", function()
    it("stops at the first success; the next member is never asked", function()
      local res, err = ocr.fallback{ picwish(), uapi() }:recognize(img)   -- (a path, as clients take)
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal("picwish", res.provider)
      assert.equal(1, #res.attempts)
      assert.same({ "picwish" }, { res.attempts[1].provider, res.attempts[1].kind })
      assert.equal(res.task_id, res.attempts[1].task_id)
      assert.equal(0, posts())
    end)

    it("goes on after an error the next vendor may not have, listing every attempt", function()
      pw:fault{ action = "status", path = CREATE, method = "POST", status = 402,
                body = '{"status": 402, "message": "no credits"}' }
      local res, err = ocr.fallback{ picwish(), uapi() }:recognize{ file = img, _row = 7 }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal("uapi", res.provider)
      assert.equal(2, #res.attempts)
      assert.same({ "picwish", "quota", "no credits" },
                  { res.attempts[1].provider, res.attempts[1].kind, res.attempts[1].message })
      assert.same({ "uapi" }, { res.attempts[2].provider, res.attempts[2].kind })
      assert.equal(res.confidence, res.attempts[2].confidence)
      -- what each attempt cost: picwish's refused create nothing, uapi's call 4 credits
      assert.same({ 0, 4 }, { res.attempts[1].cost, res.attempts[2].cost })
      assert.equal(4, res.cost)
      assert.equal(1, creates())
      assert.equal(1, posts())
    end)

    it("stops at once on invalid input every vendor would refuse", function()
      local res, err = ocr.fallback{ picwish(), uapi() }:recognize{ file = dir .. "/missing.png" }
      assert.is_nil(res)
      assert.equal("invalid_input", err.kind)
      assert.equal("picwish", err.provider)
      assert.equal(1, #err.attempts)
      assert.equal(0, creates())
      assert.equal(0, posts())
    end)

    it("fails with the last error when every member failed, each attempt listed", function()
      pw:fault{ action = "status", path = CREATE, method = "POST", status = 500, body = '{"status": 500}' }
      ua:fault{ action = "status", path = OCR, method = "POST", status = 500, body = '{"code": "X", "message": "down"}' }
      local p = ocr.fallback{ picwish(), uapi() }
      local res, err = p:recognize(img)
      assert.is_nil(res)
      assert.equal("server", err.kind)
      assert.equal("uapi", err.provider)
      assert.equal(2, #err.attempts)
      assert.same({ "picwish", "server" }, { err.attempts[1].provider, err.attempts[1].kind })
      assert.same({ "uapi", "server", "down" }, { err.attempts[2].provider, err.attempts[2].kind, err.attempts[2].message })
      assert.truthy(tostring(err):find("attempts=picwish:server,uapi:server", 1, true), tostring(err))
      assert.is_true(ocr.is_error(err))
    end)

    it("falls through only on the kinds named in `on`", function()
      pw:fault{ action = "status", path = CREATE, method = "POST", status = 500, body = '{"status": 500}' }
      local _, err = ocr.fallback{ picwish(), uapi(), on = { "quota" } }:recognize(img)
      assert.equal("server", err.kind)
      assert.equal(1, #err.attempts)
      assert.equal(0, posts())
    end)
  end)

  describe("ocr.cascade", function()
    local function has_confidence(res) return res.confidence ~= nil end

    it("escalates while accept says no, and returns the accepted result", function()
      local seen = {}
      local res, err = ocr.cascade{ picwish(), uapi(), accept = function(r)
        seen[#seen + 1] = r.provider
        return has_confidence(r)
      end }:recognize(img)
      assert.is_nil(err)
      assert.same({ "picwish", "uapi" }, seen)
      assert.equal("uapi", res.provider)
      assert.is_true(res.accepted)
      assert.is_true(res.confidence > 0.8 and res.confidence < 1)
      assert.equal(2, #res.attempts)
      assert.is_nil(res.attempts[1].confidence)   -- (picwish gives none)
      assert.equal(res.confidence, res.attempts[2].confidence)
    end)

    it("stops at the first accepted result", function()
      local res = ocr.cascade{ uapi(), picwish(), accept = has_confidence }:recognize(img)
      assert.equal("uapi", res.provider)
      assert.equal(0, creates())
    end)

    it("returns the best result seen, marked accepted = false, when none is accepted", function()
      local res, err = ocr.cascade{ picwish(), uapi(), accept = function() return false end }:recognize(img)
      assert.is_nil(err)
      assert.equal("uapi", res.provider)   -- a confidence beats none
      assert.is_false(res.accepted)
      assert.equal(2, #res.attempts)
    end)

    it("escalates past a member's error, and fails only when no member gave a result", function()
      ua:fault{ action = "status", path = OCR, method = "POST", status = 500, body = '{"message": "down"}' }
      local res = ocr.cascade{ uapi(), picwish(), accept = has_confidence }:recognize(img)
      assert.equal("picwish", res.provider)
      assert.is_false(res.accepted)
      assert.same({ "server" }, { res.attempts[1].kind, res.attempts[2].kind })

      ua:fault{ action = "status", path = OCR, method = "POST", status = 500, body = '{"message": "down"}' }
      pw:fault{ action = "status", path = CREATE, method = "POST", status = 402, body = '{"status": 402}' }
      local res2, err = ocr.cascade{ uapi(), picwish(), accept = has_confidence }:recognize(img)
      assert.is_nil(res2)
      assert.equal("quota", err.kind)
      assert.equal(2, #err.attempts)
    end)
  end)

  describe("ocr.race", function()
    it("a first member that answers wins before the next one is started", function()
      local res, err = ocr.race{ uapi(), picwish(), hedge_after = 3600 }:recognize(img)
      assert.is_nil(err)
      assert.equal("uapi", res.provider)
      assert.equal(1, #res.attempts)
      assert.equal(0, creates())
      assert.equal(0, ocr.in_flight())
    end)

    it("hedges with the next member; the first success wins and the loser is cancelled", function()
      picwish_forever()
      local res, err = ocr.race{ picwish(), uapi(), hedge_after = 0.05 }:recognize(img)
      assert.is_nil(err)
      assert.equal("uapi", res.provider)
      assert.equal(0, ocr.in_flight())            -- the loser's job is gone
      assert.same({ "uapi", "picwish" }, { res.attempts[1].provider, res.attempts[2].provider })
      assert.equal("cancelled", res.attempts[2].kind)
      local task = pw:requests(CREATE .. "/", "GET")[1].path:sub(#CREATE + 2)
      assert.equal(task, res.attempts[2].task_id)   -- what was paid for is not lost
      -- No poll after the cancel: steps and time go by, the emulator sees nothing more.
      local seen = polls()
      for _ = 1, 5 do ocr.step(0.02) end
      core.sleep(0.1)
      assert.equal(seen, polls())
    end)

    it("aborts a loser's transfer that is still waiting for its answer", function()
      pw:fault{ action = "slow", path = CREATE, method = "POST", delay = 3 }
      local res = ocr.race{ picwish(), uapi(), hedge_after = 0.05 }:recognize(img)
      assert.equal("uapi", res.provider)
      assert.equal("cancelled", res.attempts[2].kind)
      assert.equal(1, creates())
      assert.equal(0, ocr.in_flight())   -- its transfer left the multi handle with it
      assert.equal(0, polls())
    end)

    it("a failure starts the next member at once", function()
      ua:fault{ action = "status", path = OCR, method = "POST", status = 500, body = '{"message": "down"}' }
      local res, err = ocr.race{ uapi(), picwish(), hedge_after = 3600 }:recognize(img)
      assert.is_nil(err)
      assert.equal("picwish", res.provider)
      assert.same({ "uapi", "server" }, { res.attempts[1].provider, res.attempts[1].kind })
      assert.equal("picwish", res.attempts[2].provider)
    end)

    it("fails with every attempt when all fail; invalid input ends it at once", function()
      ua:fault{ action = "status", path = OCR, method = "POST", status = 500, body = '{"message": "down"}' }
      pw:fault{ action = "status", path = CREATE, method = "POST", status = 500, body = '{"status": 500}' }
      local _, err = ocr.race{ uapi(), picwish() }:recognize(img)
      assert.equal("server", err.kind)
      assert.equal(2, #err.attempts)

      local _, err2 = ocr.race{ uapi(), picwish(), hedge_after = 3600 }:recognize{ file = dir .. "/missing.png" }
      assert.equal("invalid_input", err2.kind)
      assert.equal(1, #err2.attempts)
      assert.equal(0, ocr.in_flight())
    end)
  end)

  describe("nesting", function()
    it("a fallback of a cascade", function()
      ua:fault{ action = "status", path = OCR, method = "POST", status = 500, body = '{"message": "down"}' }
      pw:fault{ action = "status", path = CREATE, method = "POST", status = 402, body = '{"status": 402}' }
      local inner = ocr.cascade{ uapi(), picwish(), accept = function() return true end }
      local res, err = ocr.fallback{ inner, uapi() }:recognize(img)
      assert.is_nil(err)
      assert.equal("uapi", res.provider)
      assert.equal(2, #res.attempts)
      local a1 = res.attempts[1]
      assert.same({ "cascade(uapi,picwish)", "quota" }, { a1.provider, a1.kind })
      assert.same({ "server", "quota" }, { a1.attempts[1].kind, a1.attempts[2].kind })
    end)

    it("a race inside a fallback", function()
      picwish_forever()
      ua:fault{ action = "status", path = OCR, method = "POST", status = 429, times = 1,
                body = '{"code": "RATE", "message": "slow down"}' }
      local p = ocr.fallback{ uapi(), ocr.race{ picwish(), uapi(), hedge_after = 0.05 } }
      local res, err = p:recognize(img)
      assert.is_nil(err)
      assert.equal("uapi", res.provider)
      assert.same({ "uapi", "rate_limited" }, { res.attempts[1].provider, res.attempts[1].kind })
      assert.equal("race(picwish,uapi)", res.attempts[2].provider)
      assert.equal("cancelled", res.attempts[2].attempts[2].kind)
      assert.equal(0, ocr.in_flight())
    end)
  end)

  describe("as jobs", function()
    it("submit: a fallback advanced by ocr.step, next to a plain client's job", function()
      pw:fault{ action = "status", path = CREATE, method = "POST", status = 402, body = '{"status": 402}' }
      local job = ocr.fallback{ picwish(), uapi() }:submit{ file = img }
      local other = uapi():submit(img)
      assert.is_false(job:done())
      while ocr.step(0.05) > 0 do end
      assert.is_true(job:done())
      local res, err = job:result()
      assert.is_nil(err)
      assert.equal("uapi", res.provider)
      assert.equal("quota", res.attempts[1].kind)
      assert.equal(TEXT, (other:result()).text)
    end)

    it("submit: a race in a job pauses until a member finishes, and cancels the loser", function()
      picwish_forever()
      local job = ocr.race{ picwish(), uapi(), hedge_after = 0.05 }:submit(img)
      ocr.run()
      local res, err = job:result()
      assert.is_nil(err)
      assert.equal("uapi", res.provider)
      assert.equal("cancelled", res.attempts[2].kind)
      local seen = polls()
      core.sleep(0.1)
      ocr.step(0)
      assert.equal(seen, polls())
    end)

    it("cancelling a race's job cancels the members' jobs", function()
      picwish_forever()
      local job = ocr.race{ picwish(), picwish(), hedge_after = 0 }:submit(img)
      while creates() < 2 do ocr.step(0.02) end   -- both members started
      assert.is_true(job:cancel())
      assert.equal("cancelled", select(2, job:result()).kind)
      assert.equal(0, ocr.in_flight())
      local seen = polls()
      core.sleep(0.1)
      ocr.step(0)
      assert.equal(seen, polls())
    end)

    it("recognize_all: every input gets exactly one of res/err, in order", function()
      ua:fault{ action = "status", path = OCR, method = "POST", status = 500, times = 1, body = '{"message": "down"}' }
      local inputs = { { file = img, _row = 1 }, { file = dir .. "/missing.png", _row = 2 }, img }
      local called = {}
      local out = ocr.fallback{ uapi(), picwish() }:recognize_all(inputs, {
        concurrency = 2, on_result = function(i) called[#called + 1] = i end })
      assert.equal(3, #out)
      assert.equal(3, #called)
      for i = 1, 3 do
        assert.is_true((out[i].res == nil) ~= (out[i].err == nil), "exactly one of res/err: " .. i)
        assert.equal(inputs[i], out[i].input)
      end
      assert.equal(TEXT, out[1].res.text)
      assert.equal("invalid_input", out[2].err.kind)
      assert.equal(TEXT, out[3].res.text)
      assert.has_error(function() ocr.race{ uapi() }:recognize_all(inputs, { concurency = 2 }) end,
                       "recognize_all: unknown option 'concurency' for recognize_all")
    end)

    it("recognize_all of races, each loser cancelled", function()
      picwish_forever()
      local out = ocr.race{ picwish(), uapi(), hedge_after = 0.05 }:recognize_all({ img, img, img }, { concurrency = 3 })
      for i = 1, 3 do
        assert.is_nil(out[i].err)
        assert.equal("uapi", out[i].res.provider)
        assert.equal("cancelled", out[i].res.attempts[2].kind)
      end
      assert.equal(0, ocr.in_flight())
    end)

    it("recognize while other jobs are in flight runs the pipeline as one of them", function()
      local other = uapi():submit(img)
      local res = ocr.cascade{ uapi(), accept = function() return true end }:recognize(img)
      assert.equal("uapi", res.provider)
      ocr.run()
      assert.equal(TEXT, (other:result()).text)
    end)
  end)

  describe("res.confidence", function()
    it("is the length-weighted mean of the line confidences a vendor gives, nil when none", function()
      local res = uapi():recognize(img)
      local sum, n = 0, 0
      for _, line in ipairs(res.lines) do
        local chars = utf8 and utf8.len(line.text) or #line.text:gsub("[\128-\191]", "")
        sum, n = sum + line.confidence * chars, n + chars
      end
      assert.is_true(math.abs(res.confidence - sum / n) < 1e-9)
      assert.is_nil(picwish():recognize(img).confidence)
    end)
  end)

  describe("budget", function()
    it("bounds every billed request of every member, refusing before anything is sent", function()
      local p = ocr.fallback{ picwish(), uapi(), budget = { credits = 0, per = "run" } }
      local res, err = p:recognize(img)
      assert.is_nil(res)
      assert.equal("quota", err.kind)
      assert.is_true(err.budget)
      assert.equal(0, creates())
      assert.equal(0, posts())
      assert.equal(2, #err.attempts)
    end)

    it("lets the spending it allows through, and counts it", function()
      local store = ocr.store.memory{}
      local spec = { credits = 4, per = "run", store = store }
      local p = ocr.fallback{ uapi(), picwish(), budget = spec }
      assert.truthy(p:recognize(img))                 -- uapi: 4 credits
      local res, err = p:recognize(img)               -- over: uapi refused, picwish too
      assert.is_nil(res)
      assert.is_true(err.budget)
      assert.equal(1, posts())
      assert.equal(0, creates())
    end)

    it("checks its option like the rest", function()
      assert.has_error(function() ocr.fallback{ uapi(), budget = { credits = -1 } } end)
    end)
  end)

  describe("cached", function()
    it("a cached fallback of a cascade: the second run sends nothing", function()
      local store = ocr.store.memory{}
      local function build()
        return ocr.cache(ocr.fallback{
          ocr.cascade{ picwish(), uapi(), accept = function(res) return (res.confidence or 0) >= 0.5 end },
          picwish(),
        }, { store = store })
      end
      local res, err = build():recognize(img)
      assert.is_nil(err)
      assert.equal("uapi", res.provider)   -- (picwish's text has no confidence: escalated)
      assert.equal(1, creates())
      assert.equal(1, posts())
      local again = assert(build():recognize(img))
      assert.is_true(again.cached)
      assert.equal(res.text, again.text)
      assert.equal(1, creates())
      assert.equal(1, posts())
    end)

    it("as jobs and with recognize_all: exactly one of res/err each, cached ones unsent", function()
      local cached = ocr.cache(ocr.fallback{ uapi(), picwish() }, { store = ocr.store.memory{} })
      local job = cached:submit(img)
      ocr.run()
      assert.truthy(job:result())
      local out = cached:recognize_all({ img, img, { file = dir .. "/missing.png" } }, { concurrency = 2 })
      assert.truthy(out[1].res and out[1].res.cached and out[2].res and out[2].res.cached)
      assert.equal("invalid_input", out[3].err.kind)
      assert.equal(1, posts())
    end)
  end)
end)
