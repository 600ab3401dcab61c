-- ocr.cache: results answered from a store without a request, vendor tasks resumed instead of
-- created again (a batch killed with kill -9 half-way and rerun creates no task twice, as the
-- emulator's log shows), in scripts, in jobs, with recognize_all and around any client-like object.
local ocr = require "ocr"
local cjson = require "cjson.safe"
local F = require "helpers.files"
local rig = require "helpers.rig"

local KEY = "test-picwish-key"
local CREATE = "/api/tasks/document/ocr"

-- A script of `n` polls: queued, processing, then done at poll n.
local function script(n)
  local s = { { state = 0, progress = 0 } }
  for i = 2, n - 1 do s[i] = { state = 4, progress = i } end
  s[n] = { state = 1, progress = 100 }
  return s
end

describe("ocr.cache", function()
  local emu, dir, img, img2, same

  local function client(opts)
    return rig.client("picwish", { api_key = KEY, endpoint = emu.url, poll_interval = 0.01,
      poll_timeout = 5, backoff = { base = 0.01, cap = 0.05 }, rate = false }, opts)
  end

  local function creates() return #emu:requests(CREATE, "POST") end

  setup(function()
    emu, dir, img, img2, same = rig.start("picwish", { { "a.png", "first page" }, { "b.png", "second page" },
                                                       { "copy.png", "first page" } })
  end)
  teardown(function() rig.stop(emu, dir) end)
  before_each(function()
    emu:reset()
    emu:config{ qps = 0 }
  end)

  describe("in a script", function()
    it("answers a second recognize from the store: cached, nothing sent", function()
      local cached = ocr.cache(client(), { store = ocr.store.memory{}, ttl = 3600 })
      local res, err = cached:recognize{ file = img }
      assert.is_nil(err)
      assert.equal("first page", res.text)
      assert.is_nil(res.cached)
      local sent = #emu:log()
      local again = assert(cached:recognize{ file = img })
      assert.is_true(again.cached)
      assert.equal(sent, #emu:log())                       -- not one request
      assert.equal(res.text, again.text)
      assert.same(res.lines, again.lines)
      assert.equal(res.task_id, again.task_id)
      assert.equal("picwish", again.provider)
      assert.equal(res.files[1].url, again.files[1].url)
      assert.is_nil(again.raw)                             -- the vendor's answer is not kept
      assert.equal("first page", tostring(again))          -- a result, as the model says
      assert.equal("picwish", cached.provider)
      again.note = "mine"                                  -- each hit is a table of its own
      assert.is_nil(assert(cached:recognize{ file = img }).note)
    end)

    it("keys by the bytes, the language and the options that change the result", function()
      local cached = ocr.cache(client(), { store = ocr.store.memory{} })
      assert(cached:recognize{ file = img })
      assert.equal(1, creates())
      assert.is_true(assert(cached:recognize{ file = same }).cached)          -- same bytes, other name
      assert.is_true(assert(cached:recognize{ data = F.read(img) }).cached)   -- as data
      assert.is_true(assert(cached:recognize(img)).cached)                    -- the short form
      assert.is_true(assert(cached:recognize{ file = img, _row = 7 }).cached) -- the caller's own field
      assert.equal(1, creates())
      assert.is_nil(assert(cached:recognize{ file = img2 }).cached)           -- other bytes
      assert.is_nil(assert(cached:recognize{ file = img, language = "en" }).cached)
      assert.is_true(assert(cached:recognize{ file = img, language = "English" }).cached)  -- same native
      assert.is_nil(assert(cached:recognize{ file = img, format = "txt" }).cached) -- (not sent before)
      assert.equal(4, creates())
      -- a client default counts like the input's own
      local en = ocr.cache(client{ language = "en" }, { store = cached.store })
      assert.is_true(assert(en:recognize{ file = img, language = "en" }).cached)
      assert.is_true(assert(en:recognize{ file = img }).cached)
      assert.equal(4, creates())
    end)

    it("keys a URL input by the URL", function()
      local cached = ocr.cache(client(), { store = ocr.store.memory{} })
      assert(cached:recognize{ url = "https://example.com/a.png" })
      assert.is_true(assert(cached:recognize{ url = "https://example.com/a.png" }).cached)
      assert.is_nil(assert(cached:recognize{ url = "https://example.com/b.png" }).cached)
      assert.equal(2, creates())
    end)

    it("keeps no error: a failed input is sent again", function()
      local bad = F.write(dir .. "/bad.png", "not an image at all")
      local cached = ocr.cache(client(), { store = ocr.store.memory{} })
      local _, err = cached:recognize{ file = bad }   -- the vendor fails the task (state -7)
      assert.truthy(err and err.task_id)
      local _, again = cached:recognize{ file = bad }
      assert.equal(err.kind, again.kind)
      assert.are_not.equal(err.task_id, again.task_id)
      assert.equal(2, creates())
      _, err = cached:recognize{ file = dir .. "/missing.png" }   -- the client's own check answers
      assert.equal("invalid_input", err.kind)
    end)

    it("resumes a task left pending by a poll timeout instead of creating it again", function()
      emu:config{ qps = 0, script = script(30) }
      local store = ocr.store.memory{}
      local seen = {}
      local _, err = ocr.cache(client{ poll_timeout = 0.05 }, { store = store })
                     :recognize{ file = img, on_task = function(id) seen[#seen + 1] = id end }
      assert.equal("timeout", err.kind)
      assert.same({ err.task_id }, seen)                     -- the caller's on_task still called
      local res = assert(ocr.cache(client(), { store = store }):recognize{ file = img })
      assert.is_true(res.resumed)
      assert.is_nil(res.cached)
      assert.equal(err.task_id, res.task_id)
      assert.equal("first page", res.text)
      assert.equal(1, creates())
      assert.is_true(assert(ocr.cache(client(), { store = store }):recognize{ file = img }).cached)
    end)

    it("creates anew when the vendor no longer knows the pending task", function()
      local cached = ocr.cache(client(), { store = ocr.store.memory{} })
      local key = cached:key_of{ file = img }
      cached.store:set(key, cjson.encode{ v = 1, state = "pending", task_id = "gone-1234" })
      local res = assert(cached:recognize{ file = img })
      assert.is_nil(res.resumed)
      assert.equal("first page", res.text)
      assert.equal(1, #emu:requests(CREATE .. "/gone-1234", "GET"))
      assert.equal(1, creates())
    end)

    it("ignores a damaged dir entry and replaces it", function()
      local store = ocr.store.dir(dir .. "/damaged")
      local cached = ocr.cache(client(), { store = store })
      assert(cached:recognize{ file = img })
      local file = store:file(cached:key_of{ file = img })
      local whole = F.read(file)
      F.write(file, whole:sub(1, math.floor(#whole / 2)))
      local res = assert(cached:recognize{ file = img })
      assert.is_nil(res.cached)
      assert.equal(2, creates())
      assert.is_true(assert(cached:recognize{ file = img }).cached)
    end)

    it("checks its arguments", function()
      assert.has_error(function() ocr.cache(nil, { store = ocr.store.memory{} }) end)
      assert.has_error(function() ocr.cache(client(), {}) end)
      assert.has_error(function() ocr.cache(client(), { store = ocr.store.memory{}, tll = 5 }) end)
      assert.has_error(function() ocr.cache(client(), { store = ocr.store.memory{}, ttl = -5 }) end)
    end)
  end)

  describe("as jobs", function()
    it("submit and ocr.step: a job answered from the store", function()
      local cached = ocr.cache(client(), { store = ocr.store.memory{} })
      local job = cached:submit{ file = img }
      ocr.run()
      local res = assert(job:result())
      assert.is_nil(res.cached)
      job = cached:submit{ file = img }
      while ocr.step(0.01) > 0 do end
      res = assert(job:result())
      assert.is_true(res.cached)
      assert.equal(1, creates())
    end)

    it("recognize_all: exactly one of res/err for every input, cached ones unsent", function()
      local cached = ocr.cache(client(), { store = ocr.store.dir(dir .. "/all") })
      assert(cached:recognize{ file = img })
      local inputs = { { file = img, _row = 1 }, { file = img2 }, { file = dir .. "/missing.png" },
                       img, { file = same } }
      local done = {}
      local out = cached:recognize_all(inputs, { concurrency = 3,
                                                 on_result = function(i) done[#done + 1] = i end })
      assert.equal(#inputs, #out)
      assert.equal(#inputs, #done)
      for i, o in ipairs(out) do
        assert.is_true((o.res == nil) ~= (o.err == nil), "input " .. i)
        assert.equal(inputs[i], o.input)
      end
      assert.is_true(out[1].res.cached)
      assert.equal("second page", out[2].res.text)
      assert.equal("invalid_input", out[3].err.kind)
      assert.is_true(out[4].res.cached)
      assert.is_true(out[5].res.cached)
      assert.equal(2, creates())
      assert.has_error(function() cached:recognize_all(inputs, { concurency = 2 }) end)
    end)
  end)

  describe("one input read by several workers at once", function()
    it("jobs: the first claims and creates, the others wait and resume its task", function()
      emu:config{ qps = 0, script = script(8) }
      local store = ocr.store.memory{}
      local cached = ocr.cache(client(), { store = store })
      local out = cached:recognize_all({ { file = img }, { file = same }, { data = F.read(img) } },
                                       { concurrency = 3 })
      for i = 1, 3 do assert.equal("first page", out[i].res and out[i].res.text, "input " .. i) end
      assert.equal(1, creates())                        -- three readers, one task paid for
      local resumed = 0
      for i = 1, 3 do if out[i].res.resumed or out[i].res.cached then resumed = resumed + 1 end end
      assert.equal(2, resumed)
      assert.is_nil(store:get(cached:key_of{ file = img } .. ":claim"))   -- (released)
    end)

    it("a claim left by a worker that failed is taken by the next", function()
      emu:fault{ action = "status", path = CREATE, method = "POST", status = 500, times = 1,
                 body = '{"status":500,"message":"boom"}' }
      local store = ocr.store.memory{}
      local cached = ocr.cache(client{ retries = 0 }, { store = store })
      local out = cached:recognize_all({ { file = img }, { file = same } }, { concurrency = 2 })
      local ok, failed = 0, 0
      for i = 1, 2 do if out[i].res then ok = ok + 1 else failed = failed + 1 end end
      assert.same({ 1, 1 }, { ok, failed })             -- the second created after the first failed
      assert.equal(2, creates())
    end)

    it("a claim that never goes (a store that keeps it) is waited for at most claim_ttl", function()
      local store = ocr.store.memory{}
      local cached = ocr.cache(client(), { store = store, claim_ttl = 0.3 })
      store:add(cached:key_of{ file = img } .. ":claim", "a dead worker's")
      local t0 = require("ocr.core").monotime()
      local res = assert(cached:recognize{ file = img })
      assert.equal("first page", res.text)
      assert.is_true(require("ocr.core").monotime() - t0 >= 0.3)
      assert.equal(1, creates())
    end)
  end)

  describe("around any object with the client API", function()
    -- A stand-in for a pipeline (ocr.fallback, ocr.cascade): recognize, submit, recognize_all,
    -- result and a provider name, no provider definition.
    local function pipeline(inner, key_of)
      local p = { provider = "mine", calls = 0 }
      function p.recognize(_, input) p.calls = p.calls + 1; return inner:recognize(input) end
      function p.submit(_, input) return inner:submit(input) end
      function p.recognize_all(_, inputs, opts) return inner:recognize_all(inputs, opts) end
      function p.result(_, task_id, input) return inner:result(task_id, input) end
      p.cache_key_of = key_of
      return p
    end

    it("caches a pipeline, keyed by its provider name and language", function()
      local p = pipeline(client())
      local cached = ocr.cache(p, { store = ocr.store.memory{} })
      assert.equal("mine", cached.provider)
      assert.equal("first page", assert(cached:recognize{ file = img }).text)
      assert.is_true(assert(cached:recognize{ file = img }).cached)
      assert.is_nil(assert(cached:recognize{ file = img, language = "en" }).cached)
      assert.equal(2, p.calls)
      local out = cached:recognize_all({ { file = img }, { file = img2 } })
      assert.is_true(out[1].res.cached)
      assert.equal("second page", out[2].res.text)
    end)

    it("uses the object's cache_key_of when it has one", function()
      local p = pipeline(client(), function(_, input) return { fmt = input.format or "txt" } end)
      local cached = ocr.cache(p, { store = ocr.store.memory{} })
      assert(cached:recognize{ file = img })
      assert.is_true(assert(cached:recognize{ file = img, format = "txt" }).cached)
      assert.is_true(assert(cached:recognize{ file = img, language = "en" }).cached)  -- (not in its key)
    end)

    it("resumes through the object's result", function()
      emu:config{ qps = 0, script = script(30) }
      local store = ocr.store.memory{}
      local _, err = ocr.cache(pipeline(client{ poll_timeout = 0.05 }), { store = store }):recognize{ file = img }
      assert.equal("timeout", err.kind)
      local res = assert(ocr.cache(pipeline(client()), { store = store }):recognize{ file = img })
      assert.is_true(res.resumed)
      assert.equal(1, creates())
    end)

    it("nests: a cache over a cache", function()
      local outer = ocr.cache(ocr.cache(client(), { store = ocr.store.memory{} }), { store = ocr.store.memory{} })
      assert(outer:recognize{ file = img })
      assert.is_true(assert(outer:recognize{ file = img }).cached)
      assert.equal(1, creates())
    end)
  end)

  -- A batch in a child process, killed with kill -9 while two of its tasks are being polled,
  -- then run again: every input is created exactly once over both runs.
  it("resumes a batch killed half-way: no task is created twice", function()
    local steps = 20
    emu:config{ qps = 0, script = script(steps) }
    local imgs = {}
    for i = 1, 6 do imgs[i] = F.write(dir .. "/p" .. i .. ".png", F.image("page " .. i)) end
    local version = _VERSION:match("%d+%.%d+")
    local lua = version == "5.1" and (rawget(_G, "jit") and "luajit" or "lua5.1") or ("lua" .. version)
    local cpath = (os.getenv("OCR_CPATH_DIR") or ("build/lua" .. version)) .. "/?.so"
    local batch = F.write(dir .. "/batch.lua", ([[
      package.path = "lua/?.lua;" .. package.path
      package.cpath = %q .. ";" .. package.cpath
      local ocr = require "ocr"
      local c = ocr.new("picwish", { api_key = %q, endpoint = %q, poll_interval = 0.05,
                                     poll_timeout = 60, rate = false })
      local cached = ocr.cache(c, { store = ocr.store.dir(%q), ttl = 3600 })
      local inputs = {}
      for i = 1, 6 do inputs[i] = { file = %q .. "/p" .. i .. ".png" } end
      for i, o in ipairs(cached:recognize_all(inputs, { concurrency = 2 })) do
        local how = o.res and (o.res.cached and "cached" or o.res.resumed and "resumed" or "new")
        print(i, how or "error", o.res and o.res.text or tostring(o.err))
      end
    ]]):format(cpath, KEY, emu.url, dir .. "/batch-store", dir))

    -- First run: killed once two tasks are done and both slots poll tasks far from their end
    -- (no create can be under way then: each slot's next create waits for its task to finish).
    local p = io.popen("sh -c 'echo $$; exec " .. lua .. " " .. batch .. "' 2>&1")
    local pid = assert(tonumber(p:read("*l")))
    local killed = false
    for _ = 1, 1500 do
      local tasks = emu:state().tasks
      local n_creates = creates()
      local n, done, early, active = 0, 0, 0, 0
      for _, t in pairs(tasks) do
        n = n + 1
        if t.polls >= steps then done = done + 1
        else
          active = active + 1
          if t.polls >= 1 and t.polls <= 10 then early = early + 1 end
        end
      end
      if n == n_creates and done >= 2 and active == 2 and early == 2 then
        os.execute("kill -9 " .. pid)
        killed = true
        break
      end
      require("ocr.core").sleep(0.01)
    end
    local first = p:read("*a")
    p:close()
    assert.is_true(killed, "the batch was never caught half-way: " .. first)
    assert.falsy(first:find("\t"), first)                  -- no result printed: killed mid-batch
    local before = creates()
    assert.equal(4, before)

    -- Second run, to its end.
    p = io.popen(lua .. " " .. batch .. " 2>&1")
    local second = p:read("*a")
    p:close()
    local how = {}
    for i, h, text in second:gmatch("(%d+)\t(%S+)\t([^\n]*)") do
      how[tonumber(i)] = h
      assert.equal("page " .. i, text)
    end
    assert.equal(6, #how, second)
    local count = { cached = 0, resumed = 0, new = 0 }
    for _, h in ipairs(how) do count[h] = (count[h] or 0) + 1 end
    assert.same({ cached = 2, resumed = 2, new = 2 }, count)
    -- The log: six creates in all, one per input.
    require("helpers.expect").each_created_once(emu, CREATE)
    assert.equal(6, creates())
  end)
end)
