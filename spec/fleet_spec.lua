-- A fleet on one Redis: separate Lua processes and nginx workers on one picwish key share its
-- 2 creates/s through ocr.store.redis (a real redis-server, spec/helpers/redis.lua), against the
-- emulator's own qps check; a Redis restart mid-run; a worker killed with pending tasks, finished
-- by another; clocks that disagree. Workers: spec/helpers/fleet_worker.lua (Lua processes) and
-- spec/helpers/nginx_fleet.lua (nginx's timers).
local cjson = require "cjson"
local core = require "ocr.core"
local F = require "helpers.files"
local emulator = require "helpers.emulator"
local nginx = require "helpers.nginx"
local R = require "helpers.redis"

assert(not R.missing(), R.missing())

local KEY = "test-picwish-key"
local CREATE = "/api/tasks/document/ocr"
local version = _VERSION:match("%d+%.%d+")
local LUA = version == "5.1" and (rawget(_G, "jit") and "luajit" or "lua5.1") or ("lua" .. version)
local CPATH = (os.getenv("OCR_CPATH_DIR") or ("build/lua" .. version)) .. "/?.so"

-- Starts a worker process; returns {pid=, result()} (result waits for its JSON line).
local function spawn(cfg)
  cfg.cpath, cfg.api_key = CPATH, KEY
  local json = cjson.encode(cfg)
  assert(not json:find("'", 1, true))
  local p = io.popen("sh -c 'echo $$; exec " .. LUA .. " spec/helpers/fleet_worker.lua \"$0\"' '" .. json .. "' 2>&1")
  local pid = assert(tonumber(p:read("*l")))
  local w = { pid = pid, pipe = p }
  function w.line() return p:read("*l") end
  function w.result()
    local all = p:read("*a")
    p:close()
    local line = all:match("({.*})%s*$")
    assert(line, "the worker printed no result: " .. all)
    return cjson.decode(line), all
  end
  return w
end

-- Creates per second over the accepted creates' arrival times, and the smallest gap between two.
local function pace(accepted)
  table.sort(accepted)
  local gap = math.huge
  for i = 2, #accepted do gap = math.min(gap, accepted[i] - accepted[i - 1]) end
  return (#accepted - 1) / (accepted[#accepted] - accepted[1]), gap
end

describe("a fleet on one Redis", function()
  local redis, emu

  lazy_setup(function()
    redis = R.start()
    emu = emulator.start("picwish")
  end)
  lazy_teardown(function()
    if emu then emu:stop() end
    if redis then redis.stop() end
  end)
  before_each(function()
    emu:reset()
    emu:config{ qps = 2, script = { { state = 1, progress = 100 } } }
    redis.conn():call("FLUSHALL")
  end)

  it("4 Lua processes and 2 nginx workers keep one key's 2 creates/s: no 429, >= 1.9/s together", function()
    local missing = nginx.missing()
    assert(not missing, missing)
    local dir = F.tmpdir()
    local img = F.write(dir .. "/scan.png", F.image("through nginx"))
    local pre, lua = nginx.preamble("$PREFIX", { workers = 2 })
    local server = nginx.start(pre .. "http {\n" .. lua .. [[
  lua_shared_dict ocr 1m;
  init_worker_by_lua_block { ngx.timer.every(0.05, require("helpers.nginx_fleet").tick) }
  server {
    listen 127.0.0.1:$PORT reuseport;
    location = /fleet { content_by_lua_block { require("helpers.nginx_fleet").start() } }
    location = /fleet-result { content_by_lua_block { require("helpers.nginx_fleet").result() } }
  }
}
]], { dir = dir .. "/nginx" })
    finally(function()
      server.stop()
      F.rmdir(dir)
    end)
    local seconds = 20
    -- A margin of 4% (1.92/s) tolerates about 40 ms of delay between a worker's turn and its
    -- request's arrival: CI runs this under ASan, 6 workers on 2 shared cores.
    local margin = 0.04
    local http = require "socket.http"
    local body = cjson.encode{ endpoint = emu.url, api_key = KEY, redis = redis.url(), seconds = seconds, file = img,
                               margin = margin }
    local ok, status = http.request(server.url("/fleet"), body)
    assert(ok and status == 200, tostring(status))
    local workers = {}
    for i = 1, 4 do workers[i] = spawn{ endpoint = emu.url, redis = redis.url(), seconds = seconds, margin = margin } end
    local results = {}
    for i, w in ipairs(workers) do results[i] = w.result() end
    local from_nginx
    for _ = 1, 200 do
      from_nginx = cjson.decode((assert(http.request(server.url("/fleet-result"))))).workers
      if #from_nginx == 2 then break end
      core.sleep(0.05)
    end
    assert.equal(2, #from_nginx, server.log())
    local state = emu:state()
    local per_second, gap = pace(state.accepted)
    print(("\n  fleet: %d creates in %d s, %.2f creates/s (limit 2), smallest gap %.3f s, %d x 429")
          :format(#state.accepted, seconds, per_second, gap, state.qps_refused))
    assert.equal(0, state.qps_refused)
    assert.is_true(per_second >= 1.9, ("%.2f creates/s"):format(per_second))
    assert.is_true(per_second <= 2.0, ("%.2f creates/s"):format(per_second))
    -- Every party took part, and none failed.
    for _, r in ipairs(results) do
      assert.is_true(r.done >= 2, cjson.encode(r))
      assert.same({}, r.errors)
      assert.same({}, r.events)
    end
    for _, r in ipairs(from_nginx) do
      assert.is_true(r.done >= 2, cjson.encode(r))
      assert.same({}, r.errors)
    end
  end)

  it("inside nginx: cosockets in a handler, and a log phase that cannot block takes the fallback", function()
    local missing = nginx.missing()
    assert(not missing, missing)
    local pre, lua = nginx.preamble("$PREFIX", { workers = 1 })
    local server = nginx.start(pre .. "http {\n" .. lua .. ([[
  lua_shared_dict ocr 1m;
  init_by_lua_block {
    events = {}
    store = require("ocr").store.redis{ port = %d, timeout = 0.25,
                                        log = function(e) events[#events + 1] = e.event end }
  }
  server {
    listen 127.0.0.1:$PORT;
    location = /set { content_by_lua_block {
      local ok, err = store:set("from-nginx", "cosocket")
      local w, went = store:take("nginx-key", 2, 1)
      ngx.say(tostring(ok), " ", tostring(err), " ", tostring(w), " ", tostring(went), " ", #events)
    } }
    location = /log-phase {
      content_by_lua_block { ngx.say("ok") }
      log_by_lua_block {
        local t0 = ngx.now()
        local v, err = store:get("from-nginx")
        ngx.update_time()
        ngx.shared.ocr:set("log", tostring(v) .. " " .. table.concat(events, ",") .. " "
                                   .. tostring(ngx.now() - t0 < 0.2))
      }
    }
    location = /log-result { content_by_lua_block { ngx.say(ngx.shared.ocr:get("log")) } }
  }
}
]]):format(redis.port))
    finally(function() server.stop() end)
    local http = require "socket.http"
    local body = assert(http.request(server.url("/set")))
    assert.equal("true nil 0 true 0\n", body)
    local c = redis.conn()
    assert.equal("cosocket", c:call("GET", "ocr:from-nginx"))
    -- (the connection went back to the pool: Redis sees one nginx client for two requests,
    -- the one whose last command was the rate script)
    assert(http.request(server.url("/set")))
    local clients = c:call("CLIENT", "LIST")
    local _, n = clients:gsub("cmd=evalsha", "")
    local _, all = clients:gsub("cmd=set", "")
    assert.equal(1, n + all, clients)
    http.request(server.url("/log-phase"))
    local got
    for _ = 1, 50 do
      got = http.request(server.url("/log-result"))
      if got and got ~= "nil\n" then break end
      core.sleep(0.02)
    end
    -- The log phase has no cosockets: the call did not wait and found nothing in this worker's
    -- memory; Redis was not asked, so that is no outage (none is logged).
    assert.equal("nil  true\n", got)
  end)

  it("control: the same processes without the Redis store collect 429s (the limit is live)", function()
    local workers = {}
    for i = 1, 4 do workers[i] = spawn{ endpoint = emu.url, seconds = 4 } end
    local failed = 0
    for _, w in ipairs(workers) do failed = failed + (w.result().errors.rate_limited or 0) end
    local state = emu:state()
    assert.is_true(state.qps_refused > 0)
    assert.equal(state.qps_refused, failed)
  end)

  it("clocks 5 s apart share the limit exactly: Redis's clock decides", function()
    local a = spawn{ endpoint = emu.url, redis = redis.url(), seconds = 6, offset = 5, margin = 0.04 }
    local b = spawn{ endpoint = emu.url, redis = redis.url(), seconds = 6, offset = -5, margin = 0.04 }
    local c = spawn{ endpoint = emu.url, redis = redis.url(), seconds = 6, margin = 0.04 }
    for _, w in ipairs{ a, b, c } do
      local r = w.result()
      assert.same({}, r.errors)
      assert.is_true(r.done >= 2)
    end
    local state = emu:state()
    local per_second, gap = pace(state.accepted)
    assert.equal(0, state.qps_refused)
    assert.is_true(gap >= 0.45, ("two creates %.3f s apart"):format(gap))   -- (1/1.92 = 0.52 s, less jitter)
    assert.is_true(per_second >= 1.85, ("%.2f creates/s"):format(per_second))
  end)

  it("a Redis killed and restarted mid-run: every input ends once, scripts reload, 429s bounded", function()
    local inputs = {}
    for i = 1, 5 do inputs[i] = "page " .. i end
    local workers = {}
    for i = 1, 3 do workers[i] = spawn{ endpoint = emu.url, redis = redis.url(), inputs = inputs, retries = 10 } end
    core.sleep(2)
    local killed_at = core.monotime()
    redis.kill()
    core.sleep(1.5)
    redis.start()
    local outage = core.monotime() - killed_at
    local loads, outages = 0, 0
    for _, w in ipairs(workers) do
      local r, all = w.result()
      assert.equal(5, r.done, all)                      -- every input: exactly one answer, a result
      for i = 1, 5 do assert.equal("res", r.outcomes[i], all) end
      loads = loads + r.script_loads
      outages = outages + r.outages
      -- One store_down per outage, then store_up; the command line shows them (stderr).
      for i, e in ipairs(r.events) do assert.equal(i % 2 == 1 and "store_down" or "store_up", e) end
      assert.is_true(#r.events % 2 == 0, all)
      assert.is_true(r.outages <= 1, all)
    end
    local state = emu:state()
    print(("\n  restart: outage %.1f s, %d workers noticed it, %d script reloads, %d x 429 (retried)")
          :format(outage, outages, loads, state.qps_refused))
    assert.is_true(outages >= 1)
    assert.is_true(loads >= 1)
    -- During the outage each process keeps 2/s on its own: at most (3 - 1) x 2 extra per second.
    assert.is_true(state.qps_refused <= math.ceil(4 * outage) + 6, tostring(state.qps_refused))
    assert.equal(15, #emu:requests(CREATE, "POST") - state.qps_refused)
  end)

  it("two processes on the same inputs at once: each is created once (claims in Redis)", function()
    local steps = {}
    for i = 1, 10 do steps[i] = { state = i < 10 and 4 or 1, progress = i * 10 } end
    emu:config{ qps = 0, script = steps }
    local inputs = { "page 1", "page 2", "page 3" }
    local a = spawn{ endpoint = emu.url, redis = redis.url(), inputs = inputs, cache = true }
    local b = spawn{ endpoint = emu.url, redis = redis.url(), inputs = inputs, cache = true }
    for _, w in ipairs{ a, b } do
      local r, all = w.result()
      assert.equal(3, r.done, all)
    end
    assert.equal(3, #emu:requests(CREATE, "POST"))
  end)

  it("a worker killed with a pending task: another finishes it from Redis, creating nothing twice", function()
    local steps = {}
    for i = 1, 30 do steps[i] = { state = i < 30 and 4 or 1, progress = math.floor(i * 100 / 30) } end
    emu:config{ qps = 0, script = steps }
    local inputs = {}
    for i = 1, 4 do inputs[i] = "page " .. i end
    local a = spawn{ endpoint = emu.url, redis = redis.url(), inputs = inputs, cache = true }
    assert.equal("READY", a.line())
    local killed = false
    for _ = 1, 1000 do
      local n, active = 0, 0
      for _, t in pairs(emu:state().tasks) do
        n = n + 1
        if t.polls >= 1 and t.polls <= 15 then active = active + 1 end
      end
      if n >= 2 and active == 1 then
        os.execute("kill -9 " .. a.pid)
        killed = true
        break
      end
      core.sleep(0.01)
    end
    a.pipe:close()
    assert.is_true(killed, "the worker was never caught with a task half-way")
    local before = #emu:requests(CREATE, "POST")
    local b = spawn{ endpoint = emu.url, redis = redis.url(), inputs = inputs, cache = true }
    assert.equal("READY", b.line())
    local r, all = b.result()
    assert.equal(4, r.done, all)
    local count = {}
    for _, how in pairs(r.outcomes) do count[how] = (count[how] or 0) + 1 end
    assert.same({ cached = before - 1, resumed = 1, res = 4 - before }, count)
    require("helpers.expect").each_created_once(emu, CREATE)
    assert.equal(4, #emu:requests(CREATE, "POST"))
  end)
end)
