--- Benchmark 8 (issue 21): a fleet's rate limit in Redis.
--   (a) what a Redis-backed rate limit adds per billed request on loopback: Limiter:acquire plus
--       the departure mark (`on_start`), as a billed request does them, with the bucket in
--       ocr.store.redis against the same with the process-local bucket (the baseline), and one
--       bare PING round trip through ocr.hiredis (the floor: a take is one script call, the mark
--       another). Median and p99 over single calls, rounds alternated local, Redis, PING.
--   (b) 4 worker processes (spec/helpers/fleet_worker.lua) on one picwish key against the
--       emulator at qps 2, sharing the limit through Redis: creates/s together vs the limit of 2,
--       and the 429s the emulator answered.
-- redis-server is started here on a free port with a temporary directory, and stopped after.
local M = {}

local function start_redis(lib, core)
  local dir = lib.tmpdir()
  local s = require("socket").bind("127.0.0.1", 0)
  local _, port = s:getsockname()
  s:close()
  port = tonumber(port)
  os.execute(("redis-server --port %d --bind 127.0.0.1 --dir %s --save '' --appendonly no --daemonize yes " ..
              "--pidfile %s/redis.pid --logfile %s/redis.log"):format(port, dir, dir, dir))
  local h = require "ocr.hiredis"
  for _ = 1, 200 do
    local c = h.connect{ host = "127.0.0.1", port = port, timeout = 0.2 }
    if c and c:call("PING") == "PONG" then return port, c, dir end
    core.sleep(0.02)
  end
  error("redis-server did not start", 0)
end

function M.run(b)
  local ocr, lib, row, verdict = b.ocr, b.lib, b.row, b.verdict
  local core = require "ocr.core"
  local ratelimit = require "ocr.ratelimit"
  local now, median, percentile = lib.now, lib.median, lib.percentile
  local Q = b.quick
  local B = "8. Rate limits in Redis (a fleet)"
  if not pcall(require, "ocr.hiredis") or not io.open("/usr/bin/redis-server") then
    row(B, "skipped: needs redis-server and ocr.hiredis (libhiredis-dev)", "–")
    return
  end
  local port, ping_conn, dir = start_redis(lib, core)
  local ok, err = pcall(function()
    -- (a)
    local store = ocr.store.redis{ port = port, timeout = 1 }
    local fast = { per_second = 1e9, burst = 1e9, margin = 0 }   -- (never waits: the cost alone)
    local local_limiter = ratelimit.limiter("bench:local", fast)
    local redis_limiter = ratelimit.limiter("bench:redis", fast)
    local sleep = function() end
    local memory = ratelimit.memory_store()
    local function billed_local()
      local_limiter:acquire(sleep, nil, nil, memory)
      local_limiter.on_start()
    end
    local function billed_redis()
      redis_limiter:acquire(sleep, nil, nil, store)
      redis_limiter.on_start()
    end
    local function ping() ping_conn:call("PING") end
    local N, ROUNDS = Q and 200 or 1000, Q and 3 or 7
    for _ = 1, 200 do billed_local() billed_redis() ping() end   -- (warm: scripts loaded)
    local samples = { l = {}, r = {}, p = {} }
    for _ = 1, ROUNDS do
      for key, fn in pairs{ l = billed_local, r = billed_redis, p = ping } do
        local s = samples[key]
        for _ = 1, N do
          local t0 = now()
          fn()
          s[#s + 1] = now() - t0
        end
      end
    end
    local us = function(s) return ("%.1f µs"):format(s * 1e6) end
    local ml, mr, mp = median(samples.l), median(samples.r), median(samples.p)
    row(B, ("baseline: the process-local bucket, acquire + departure mark, %d calls × %d rounds"):format(N, ROUNDS),
        ("median %s, p99 %s"):format(us(ml), us(percentile(samples.l, 99))))
    row(B, "floor: one PING round trip to Redis on loopback (ocr.hiredis, blocking)",
        ("median %s, p99 %s"):format(us(mp), us(percentile(samples.p, 99))))
    row(B, "`ocr.store.redis`: acquire (the take script) + departure mark (the go script): what it adds per billed request",
        ("median %s (%.1f PINGs), p99 %s"):format(us(mr - ml), (mr - ml) / mp, us(percentile(samples.r, 99))),
        "≤ 3 round trips", verdict((mr - ml) <= 3 * mp))

    -- (b)
    local emu = lib.emulator("picwish")
    emu.config{ qps = 2, script = { { state = 1, progress = 100 } } }
    ping_conn:call("FLUSHALL")
    local seconds = Q and 5 or 15
    local version = _VERSION:match("%d+%.%d+")
    local cjson = require "cjson"
    local pipes = {}
    for i = 1, 4 do
      local cfg = cjson.encode{ endpoint = emu.url, api_key = "test-picwish-key", seconds = seconds,
                                redis = ("redis://127.0.0.1:%d/0"):format(port), cpath = b.cpath .. "/?.so" }
      pipes[i] = assert(io.popen(("lua%s %s/spec/helpers/fleet_worker.lua %s 2>&1"):format(version, lib.ROOT, lib.sh_quote(cfg))))
    end
    for _, p in ipairs(pipes) do p:read("*a") p:close() end
    local state = emu.state()
    local t = state.accepted
    table.sort(t)
    local rate = (#t - 1) / (t[#t] - t[1])
    row(B, ("4 processes, one picwish key, emulator qps 2, %d s: creates/s together (limit 2; 2 %% margin)"):format(seconds),
        ("%.2f creates/s, %d × 429"):format(rate, state.qps_refused), "≥ 1.9/s, 0 × 429",
        verdict(rate >= 1.9 and state.qps_refused == 0))
  end)
  ping_conn:call("SHUTDOWN", "NOSAVE")
  if not ok then error(err, 0) end
end

return M
