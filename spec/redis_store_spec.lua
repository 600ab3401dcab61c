-- ocr.store.redis against a real redis-server (spec/helpers/redis.lua starts its own): the store
-- interface, the rate script on Redis's clock, NOSCRIPT, AUTH and SELECT, hostile answers, and
-- what happens when Redis is not there (on_store_error local | fail) and comes back.
local ocr = require "ocr"
local core = require "ocr.core"
local F = require "helpers.files"
local emulator = require "helpers.emulator"
local R = require "helpers.redis"

assert(not R.missing(), R.missing())

describe("ocr.store.redis", function()
  local redis, events

  local function store(opts)
    opts = opts or {}
    opts.port = opts.port or redis.port
    opts.timeout = opts.timeout or 0.3
    opts.log = opts.log or function(e) events[#events + 1] = e end
    return ocr.store.redis(opts)
  end

  setup(function() redis = R.start() end)
  teardown(function() redis.stop() end)
  before_each(function()
    events = {}
    redis.conn():call("FLUSHALL")
  end)

  describe("the store interface", function()
    it("gets, sets, adds, increments and deletes, under its prefix", function()
      local s = store{ prefix = "t1:" }
      assert.is_nil(s:get("k"))
      assert.is_true(s:set("k", "v"))
      assert.equal("v", s:get("k"))
      assert.equal("v", redis.conn():call("GET", "t1:k"))         -- (the prefix is Redis's key)
      assert.same({ false, "exists" }, { s:add("k", "w") })
      assert.equal("v", s:get("k"))
      assert.is_true(s:add("k2", "w"))
      assert.same({ nil, "not found" }, { s:incr("n", 1) })
      assert.equal(5, s:incr("n", 2, 3))
      assert.equal(6.5, s:incr("n", 1.5))
      assert.equal(4.5, s:incr("n", -2))
      assert.is_true(s:delete("k"))
      assert.is_nil(s:get("k"))
      assert.is_true(s:delete("never-there"))
      assert.is_nil(store{ prefix = "other:" }:get("k2"))        -- prefixes keep stores apart
    end)

    it("keeps any bytes, and honours TTLs in milliseconds", function()
      local s = store()
      local bytes = "a\0b\r\n$3\r\n*1\r\n" .. string.rep("\255", 3000)
      s:set("bin", bytes)
      assert.equal(bytes, s:get("bin"))
      s:set("short", "x", 0.05)
      assert.is_true(s:add("once", "1", 0.05))
      assert.equal(1, s:incr("count", 1, 0, 0.05))
      local ttl = redis.conn():call("PTTL", "ocr:short")
      assert.is_true(ttl > 0 and ttl <= 50, tostring(ttl))
      core.sleep(0.12)
      assert.is_nil(s:get("short"))
      assert.is_true(s:add("once", "2"))
      assert.is_nil(s:incr("count", 1))
      assert.is_true(s:set("forever", "y", 0))
      assert.equal(-1, redis.conn():call("PTTL", "ocr:forever"))
    end)

    it("is what ocr.cache and budgets take: a cached result crosses processes", function()
      local s = store()
      assert.is_true(ocr.store.redis ~= nil)
      -- budget.new checks the interface; a reservation is one atomic INCRBYFLOAT script
      local b = require("ocr.budget").new{ credits = 3, per = "run", store = s }
      assert.truthy(b:reserve("scope", 2))
      local r, refusal = b:reserve("scope", 2)
      assert.is_nil(r)
      assert.equal("quota", refusal.kind)
      assert.is_true(refusal.budget)
    end)

    it("reads redis:// URLs, with a password and a database, and keeps the password out of sight", function()
      local secret = "s3cr3t-" .. tostring(os.time())
      local guarded = R.start{ password = secret }
      finally(function() guarded.stop() end)
      local s = ocr.store.redis{ url = guarded.url(3), timeout = 0.3, log = function(e) events[#events + 1] = e end }
      assert.is_true(s:set("k", "in db 3"))
      local c = guarded.conn()
      assert.is_false(c:call("GET", "ocr:k"))                      -- not in db 0
      c:call("SELECT", 3)
      assert.equal("in db 3", c:call("GET", "ocr:k"))
      assert.falsy(tostring(s):find(secret, 1, true))
      -- A wrong password: the calls fail like an outage, and nothing says the password.
      local wrong = ocr.store.redis{ url = ("redis://:%s@127.0.0.1:%d/0"):format("nope-" .. secret, guarded.port),
                                     timeout = 0.3, on_store_error = "fail",
                                     log = function(e) events[#events + 1] = e end }
      local v, err = wrong:get("k")
      assert.is_nil(v)
      assert.truthy(err:find("AUTH", 1, true), err)
      local seen = err .. tostring(wrong)
      for _, e in ipairs(events) do for _, x in pairs(e) do seen = seen .. tostring(x) end end
      assert.falsy(seen:find(secret, 1, true))
      assert.equal(1, #events)
      assert.equal("store_down", events[1].event)
    end)

    it("refuses bad options and URLs when made, naming them", function()
      for _, case in ipairs{
        { { url = "http://x" }, "redis://" }, { { url = "rediss://h" }, "TLS" },
        { { url = "redis://h/x" }, "database" }, { { port = 0 }, "port" }, { { db = -1 }, "db" },
        { { on_store_error = "ignore" }, "on_store_error" }, { { colour = 1 }, "colour" },
        { { timeout = 0 }, "timeout" }, { "redis://:pw@", "host" },
      } do
        local ok, err = pcall(ocr.store.redis, case[1])
        assert.is_false(ok)
        assert.truthy(tostring(err):find(case[2], 1, true), tostring(err))
      end
    end)
  end)

  describe("rate limits on Redis's clock", function()
    it("spaces takes 1/rate apart in arrival order, whatever `now` the caller believes", function()
      local s = store()
      local w1, went1 = s:take("k", 2, 1, 0)
      local w2, went2 = s:take("k", 2, 1, 1e9)        -- (a caller whose clock is far ahead)
      local w3 = s:take("k", 2, 1, -5)
      assert.equal(0, w1)
      assert.is_true(went1)
      assert.is_false(went2)
      assert.near(0.5, w2, 0.02)
      assert.near(1.0, w3, 0.02)
      -- go: not before 1/rate after the last departure, recorded when it answers 0
      local late = s:go("k", 2)
      assert.is_true(late > 0.4 and late <= 0.5, tostring(late))
      assert.equal(0, s:go("k", 2, true))               -- (the request really left: recorded)
      assert.is_true(s:go("k", 2) > 0.45)
    end)

    it("loads its scripts again after a SCRIPT FLUSH (a restarted Redis answers NOSCRIPT)", function()
      local s = store()
      assert.equal(0, (s:take("n", 10, 1)))
      assert.equal(0, s.script_loads)
      redis.conn():call("SCRIPT", "FLUSH")
      assert.is_true(s:take("n", 10, 1) > 0)
      assert.equal(1, s.script_loads)
      assert.equal(2, s:incr("c", 2, 0))                 -- (a script not loaded yet: loaded)
      assert.equal(2, s.script_loads)
      redis.conn():call("SCRIPT", "FLUSH")
      assert.equal(3, s:incr("c", 1))
      assert.equal(3, s.script_loads)
    end)

    it("makes a client's rate limit the fleet's: two clients of one key in two stores share it", function()
      local a, b = store(), store()
      local limiter = require("ocr.ratelimit").limiter("picwish:k", { per_second = 4, margin = 0 })
      local slept = 0
      local function sleep(s) slept = slept + s; core.sleep(s) end
      local t0 = core.monotime()
      for i = 1, 4 do assert.is_true(limiter:acquire(sleep, nil, nil, i % 2 == 0 and a or b)) end
      local took = core.monotime() - t0
      assert.is_true(took >= 0.74, ("4 takes at 4/s took %.3f s"):format(took))
      assert.is_true(took < 1.5, ("4 takes at 4/s took %.3f s"):format(took))
    end)
  end)

  describe("when Redis is away", function()
    it("local (default): stands in with this process's memory, says so once, and recovers", function()
      local port = emulator.closed_port()
      local s = store{ port = port, retry_after = 0.05 }
      local t0 = core.monotime()
      assert.is_nil(s:get("k"))
      assert.is_true(s:set("k", "kept here"))
      assert.equal("kept here", s:get("k"))
      assert.equal(3, s:incr("n", 3, 0))
      local w, went = s:take("r", 2, 1)
      assert.equal(0, w)
      assert.is_false(went)
      assert.equal(0, s:go("r", 2))
      assert.is_true(s:go("r", 2) > 0.4)                -- this process's own spacing
      assert.is_true(core.monotime() - t0 < 1, "calls on an unreachable Redis must not wait")
      assert.equal(1, #events)
      assert.equal("store_down", events[1].event)
      assert.equal("local", events[1].fallback)
      -- Redis comes up on that port: the store uses it again, and says so once.
      local back = R.start{ port = port }
      finally(function() back.stop() end)
      core.sleep(0.06)
      assert.is_true(s:set("k", "in redis"))
      assert.equal("in redis", back.conn():call("GET", "ocr:k"))
      assert.equal(2, #events)
      assert.equal("store_up", events[2].event)
      assert.equal(1, s.outages)
    end)

    it("fail: every call answers nil, err at once; a client fails billed requests with kind server, sending nothing", function()
      local emu = emulator.start("picwish")
      finally(function() emu:stop() end)
      emu:config{ qps = 0 }
      local s = store{ port = emulator.closed_port(), on_store_error = "fail" }
      local v, err = s:get("k")
      assert.is_nil(v)
      assert.truthy(err:find("store unavailable", 1, true))
      local c = ocr.new("picwish", { api_key = "k", endpoint = emu.url, store = s, retries = 2,
                                     poll_interval = 0.01, min_poll_interval = 0 })
      local res, rerr = c:recognize{ data = F.image("hello"), filename = "p.png" }
      assert.is_nil(res)
      assert.equal("server", rerr.kind)
      assert.is_false(rerr.sent)
      assert.truthy(rerr.message:find("rate limit", 1, true), rerr.message)
      assert.equal(0, #emu:requests("/api/tasks/document/ocr", "POST"))
      -- with a budget on the same store: refused before anything is sent, and nothing raised
      local cb = ocr.new("picwish", { api_key = "k", endpoint = emu.url, store = s, rate = false,
                                      budget = { credits = 10, per = "day" } })
      res, rerr = cb:recognize{ data = F.image("hello"), filename = "p.png" }
      assert.is_nil(res)
      assert.equal("server", rerr.kind)
      assert.truthy(rerr.message:find("budget", 1, true), rerr.message)
      assert.equal(0, #emu:requests("/api/tasks/document/ocr", "POST"))
    end)

    it("bounds every call by timeout, against a server that accepts and never answers", function()
      local socket = require "socket"
      local server = assert(socket.bind("127.0.0.1", 0))
      local _, port_s = server:getsockname()
      local port = tonumber(port_s)
      local s = store{ port = port, timeout = 0.1, retry_after = 0, on_store_error = "fail" }
      local t0 = core.monotime()
      local v, err = s:get("k")
      local took = core.monotime() - t0
      server:close()
      assert.is_nil(v)
      assert.truthy(err:find("timed out", 1, true), err)
      assert.is_true(took < 0.5, ("took %.3f s"):format(took))
    end)
  end)

  describe("hostile answers", function()
    local h = require "ocr.hiredis"

    it("reads replies in pieces, and refuses arrays that claim more than max_reply could hold", function()
      local r = h.reader(1024)
      assert.is_true(r:feed("*3\r\n$3\r\nab"))
      assert.is_nil(r:get())
      assert.is_true(r:feed("c\r\n:-7\r\n$-1\r\n"))
      assert.same({ "abc", -7, false }, r:get())
      r = h.reader(1024)
      r:feed("*2000000000\r\n")
      local v, err, kind = r:get()
      assert.is_nil(v)
      assert.equal("protocol", kind)
      assert.truthy(err)
      assert.same({ nil, "reader failed earlier", "protocol" }, { r:feed("+OK\r\n") })
      r = h.reader(64)
      assert.same({ nil, "reply larger than max_reply", "protocol" }, { r:feed(string.rep("x", 65)) })
      for _, bad in ipairs{ "?what\r\n", "$abc\r\n", ":12x\r\n", "*-5x\r\n",
                            string.rep("*1\r\n", 20) .. ":1\r\n" } do
        r = h.reader()
        r:feed(bad)
        local rv, rerr, rkind = r:get()
        assert.is_nil(rv)
        assert.equal("protocol", rkind, bad)
        assert.truthy(rerr)
      end
    end)

    it("drops a connection that answers garbage, too much, or more than one reply", function()
      local socket = require "socket"
      for _, answer in ipairs{ "?garbage\r\n", "+OK\r\n+EXTRA\r\n", "$99999999999\r\n" .. string.rep("x", 70000),
                               "*5\r\n" } do
        local server = assert(socket.bind("127.0.0.1", 0))
        local _, port_s = server:getsockname()
      local port = tonumber(port_s)
        local conn = assert(h.connect{ host = "127.0.0.1", port = port, timeout = 0.2, max_reply = 65536 })
        -- The answer waits in the kernel's buffer before the command is even sent.
        server:settimeout(1)
        local peer = assert(server:accept())
        peer:send(answer)
        local v, err, kind = conn:call("GET", "k")
        assert.is_nil(v, answer)
        assert.truthy(kind == "protocol" or kind == "timeout", tostring(kind) .. " " .. tostring(err))
        assert.same({ nil, "connection closed", "io" }, { conn:call("PING") })
        peer:close()
        server:close()
      end
    end)
  end)
end)
