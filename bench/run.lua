--- lua-ocr benchmarks (issue 5): `make bench`, or from the checkout's root
--   lua5.4 bench/run.lua [--cpath build/lua5.4] [--tools build/bench] [--quick] [--only N]
--                        [--lua DIR] [--tess-mixed]
-- --quick: fewer runs and jobs (a smoke test); --only N: one benchmark; --lua DIR: the Lua layer
-- from DIR instead of the checkout's lua/ (to measure a prototype, A/B); --tess-mixed:
-- benchmark 5 alternates the English and the Chinese sample with `eng+chi_sim` on every side
-- (about twice as long).
--
-- Starts its servers on 127.0.0.1 (bench/fast_server for benchmarks 1, 3 and 4, the Python
-- PicWish emulator for benchmark 2), runs the benchmarks (5, local OCR, in bench/tesseract.lua;
-- skipped in one line without ocr.tesseract or the tesseract command), stops the servers, and prints a
-- markdown table with the machine and the date (also written to build/bench/results.md).
-- Progress goes to stderr. Times are medians over several runs; comparisons with the C baseline
-- are measured in alternation (C, Lua, C, Lua, ...) in the same run. Nothing here asserts a
-- time: a missed target is printed as such.
local function script_root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/bench/run%.lua$")
  return dir or "."
end

local ROOT = script_root()
local opts = { cpath = ROOT .. "/build/lua" .. _VERSION:match("%d+%.%d+"), tools = ROOT .. "/build/bench",
               quick = false, only = nil }
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--cpath" then opts.cpath = arg[i + 1]; i = i + 1
    elseif a == "--tools" then opts.tools = arg[i + 1]; i = i + 1
    elseif a == "--lua" then opts.lua = arg[i + 1]; i = i + 1
    elseif a == "--quick" then opts.quick = true
    elseif a == "--tess-mixed" then opts.tess_mixed = true
    elseif a == "--only" then opts.only = tonumber(arg[i + 1]); i = i + 1
    else
      io.stderr:write("usage: bench/run.lua [--cpath DIR] [--tools DIR] [--lua DIR] [--quick] [--only 1-8] [--tess-mixed]\n")
      os.exit(2)
    end
    i = i + 1
  end
end

-- --lua DIR runs the benchmarks on another copy of the Lua layer (a prototype under /tmp).
local LUA_DIR = opts.lua or (ROOT .. "/lua")
package.path = LUA_DIR .. "/?.lua;" .. LUA_DIR .. "/?/init.lua;" .. ROOT .. "/bench/?.lua;"
               .. ROOT .. "/spec/?.lua;" .. package.path   -- spec/helpers/tiff.lua builds benchmark 5's fax
package.cpath = opts.cpath .. "/?.so;" .. package.cpath

local ocr = require "ocr"
local core = require "ocr.core"
local lib = require "lib"
local providers = require "providers"
local tesseract_bench = require "tesseract"
local openresty_bench = require "openresty"
local cache_bench = require "cache"
local fleet_bench = require "fleet"
local pdf_bench = require "pdf"

lib.ROOT, lib.TOOLS = ROOT, opts.tools
providers.register()

local Q = opts.quick
local log, median, now = lib.log, lib.median, lib.now
local rows = {}          -- table rows: {bench, what, result, target, verdict}
local notes = {}

local last_bench
local function row(bench, what, result, target, verdict)
  if bench == "" or bench == last_bench then bench = "" else last_bench = bench end
  rows[#rows + 1] = { bench, what, result, target or "", verdict or "" }
end

local function verdict(ok) return ok and "met" or "**missed**" end

local function ms(s) return ("%.2f ms"):format(s * 1000) end

-- A result or an error naming what failed (assert would want a string message on Lua 5.1).
local function must(what, res, err)
  if res == nil then error(what .. ": " .. tostring(err), 0) end
  return res
end

-- Every answer must be a result: a benchmark that silently counts errors measures nothing.
local function check_all(out, n, what)
  assert(#out == n, what .. ": " .. #out .. " answers for " .. n .. " inputs")
  for i = 1, n do
    if not (out[i] and out[i].res) then
      error(("%s: input %d failed: %s"):format(what, i, tostring(out[i] and out[i].err)), 0)
    end
  end
end

local function cpu_share(server, before, wall)
  local after = server.stats()
  return (after.cpu - before.cpu) / wall, after
end

--------------------------------------------------------------------------------------------------
-- 1. recognize_all at concurrency 1, 8, 32 against a 200 ms vendor
--------------------------------------------------------------------------------------------------
local function bench1(fs)
  local LAT = 0.2
  local client = ocr.new("bench_get", { endpoint = fs.url })
  local c_url = fs.url .. "/job?ms=200"
  local configs = Q and { { c = 1, jobs = 10, runs = 1 }, { c = 8, jobs = 80, runs = 1 }, { c = 32, jobs = 200, runs = 2 } }
                  or { { c = 1, jobs = 50, runs = 3 }, { c = 8, jobs = 200, runs = 3 }, { c = 32, jobs = 200, runs = 5 } }
  -- Connections are opened once, as a long-running program would have them.
  check_all(client:recognize_all({ { data = "w", ms = 0 } }, { concurrency = 1 }), 1, "warm-up")
  local c32_lua, c32_c, c32_cpu = {}, {}, {}
  for _, cfg in ipairs(configs) do
    local inputs = {}
    for i = 1, cfg.jobs do inputs[i] = { data = "job " .. i, ms = 200 } end
    local ideal = math.ceil(cfg.jobs / cfg.c) * LAT
    local times, cpus = {}, {}
    for r = 1, cfg.runs do
      if cfg.c == 32 then
        -- The bare libcurl multi loop, same requests, alternating with the Lua runs.
        local res = lib.curl_loop{ url = c_url, requests = cfg.jobs, concurrency = cfg.c }
        c32_c[#c32_c + 1] = res.seconds
      end
      local before = fs.stats()
      local cpu0 = os.clock()
      local t0 = now()
      local out = client:recognize_all(inputs, { concurrency = cfg.c })
      local dt = now() - t0
      cpus[#cpus + 1] = (os.clock() - cpu0) / cfg.jobs
      check_all(out, cfg.jobs, "benchmark 1")
      times[#times + 1] = dt
      if cfg.c == 32 then
        c32_lua[#c32_lua + 1] = dt
        c32_cpu[#c32_cpu + 1] = cpu_share(fs, before, dt)
      end
      log("1: c=%d jobs=%d run %d: %.3f s (ideal %.1f s)", cfg.c, cfg.jobs, r, dt, ideal)
    end
    local t = median(times)
    local what = ("c = %d, %d jobs%s"):format(cfg.c, cfg.jobs,
      (cfg.jobs ~= 200) and " (fewer than 200 to keep the run short)" or "")
    row("1. `recognize_all`, 200 ms vendor latency", what,
        ("%.3f s = **%.3f×** ideal %.1f s (median of %d; client CPU %.0f µs/job)")
          :format(t, t / ideal, ideal, cfg.runs, median(cpus) * 1e6),
        cfg.c == 32 and "≤ 1.15× ideal" or "", cfg.c == 32 and verdict(t / ideal <= 1.15) or "")
  end
  -- The server's side of the same runs, and its capacity for hundreds of delayed connections.
  local ideal32 = math.ceil(200 / 32) * LAT
  if #c32_c > 0 then
    local t = median(c32_c)
    row("", "baseline: C libcurl-multi loop, c = 32, 200 requests (alternated with the Lua runs)",
        ("%.3f s = %.3f× ideal; Lua/C = %.3f"):format(t, t / ideal32, median(c32_lua) / t))
  end
  local big = {}
  local nbig, cbig = 1024, 256
  for r = 1, Q and 1 or 3 do
    big[r] = lib.curl_loop{ url = c_url, requests = nbig, concurrency = cbig }.seconds
    log("1: server capacity c=%d run %d: %.3f s", cbig, r, big[r])
  end
  local ideal_big = math.ceil(nbig / cbig) * LAT
  local st = fs.stats()
  row("", ("server capacity: C multi loop, c = %d, %d requests of 200 ms"):format(cbig, nbig),
      ("%.3f s = %.3f× ideal %.1f s (peak %d open connections); server CPU %.1f%% during the Lua c = 32 runs")
        :format(median(big), median(big) / ideal_big, ideal_big, st.conns_max, median(c32_cpu) * 100))
end

--------------------------------------------------------------------------------------------------
-- 2. picwish's 2 creates/s, default rate limit, 40 jobs
--------------------------------------------------------------------------------------------------
local function bench2()
  local pic = lib.emulator("picwish")
  local KEY = "test-picwish-key"
  local N = Q and 10 or 40
  pic.config{ qps = 2, script = { { state = 1, progress = 100 } } }
  local client_429, waits = 0, 0
  -- The provider's defaults (rate = {per_second = 2, burst = 1}, margin 2%, retries 3), a fast
  -- poll so creates are what paces the run.
  local client = ocr.new("picwish", { api_key = KEY, endpoint = pic.url, poll_interval = 0.05,
    log = function(ev)
      if ev.event == "response" and ev.status == 429 then client_429 = client_429 + 1 end
      if ev.event == "rate_limit_wait" then waits = waits + 1 end
    end })
  local inputs = {}
  for i = 1, N do inputs[i] = { data = "\137PNG\r\n\26\npage " .. i, filename = "p" .. i .. ".png" } end
  local t0 = now()
  local out = client:recognize_all(inputs)   -- default concurrency (8)
  local wall = now() - t0
  check_all(out, N, "benchmark 2")
  local creates = {}
  for _, e in ipairs(pic.log()) do
    if e.method == "POST" and e.path == "/api/tasks/document/ocr" then creates[#creates + 1] = e.t end
  end
  table.sort(creates)
  local tasks = 0
  for _ in pairs(pic.state().tasks) do tasks = tasks + 1 end
  local refused = #creates - tasks              -- every create the emulator did not turn into a task
  local span = creates[#creates] - creates[1]
  local rate = (#creates - 1) / span
  local gaps = {}
  for i = 2, #creates do gaps[#gaps + 1] = creates[i] - creates[i - 1] end
  table.sort(gaps)
  log("2: %d creates in %.2f s (%.3f/s), %d refused, min gap %.3f s, wall %.2f s, %d waited for a token",
      #creates, span, rate, refused, gaps[1], wall, waits)
  row("2. PicWish 2 creates/s (emulator qps = 2), default rate limit", ("%d jobs, concurrency 8, 1 run"):format(N),
      ("**%.3f creates/s** ((n−1)/span at the emulator; %d/%.1f s wall = %.2f/s); **%d × 429** at the emulator, %d seen by the client; closest creates %.3f s apart")
        :format(rate, N, wall, N / wall, refused, client_429, gaps[1]),
      "≥ 1.9 creates/s, 0 × 429", verdict(rate >= 1.9 and refused == 0 and client_429 == 0))
  -- Control: the same emulator with the limiter off, so "0 × 429" above means something.
  pic.reset()
  pic.config{ qps = 2, script = { { state = 1, progress = 100 } } }
  local off = ocr.new("picwish", { api_key = KEY, endpoint = pic.url, poll_interval = 0.05, rate = false,
                                   retries = 0 })
  local ctl_inputs = {}
  for i = 1, 10 do ctl_inputs[i] = inputs[i] end
  local ctl = off:recognize_all(ctl_inputs)
  local ctl_429 = 0
  for i = 1, #ctl do
    if ctl[i].err and ctl[i].err.kind == "rate_limited" then ctl_429 = ctl_429 + 1 end
  end
  log("2: control without the limiter: %d of 10 creates refused with 429", ctl_429)
  row("2. PicWish 2 creates/s (emulator qps = 2), default rate limit",
      "control: limiter off (`rate = false`, `retries = 0`), 10 jobs at once",
      ("%d of 10 creates refused with 429: the emulator's limit is live"):format(ctl_429))
  notes[#notes + 1] = ("Benchmark 2: the default limit is 2/s × (1 − 2%% margin) = 1.96/s, one token every %.1f ms; the emulator refuses a third create inside any 1 s window.")
    :format(1000 / 1.96)
end

--------------------------------------------------------------------------------------------------
-- 3. a 60 Hz loop with 50 jobs in flight: time inside ocr.step(0)
--------------------------------------------------------------------------------------------------
-- One 60 Hz loop: keep IN_FLIGHT jobs submitted, time every ocr.step(0), sleep the rest of the
-- frame. `input_of()` gives each new job its latencies.
local function frame_loop(client, seconds, input_of)
  local IN_FLIGHT, HZ = 50, 60
  local live, done, failed = {}, 0, 0
  local samples, missed = {}, 0
  local swept, kept = {}, {}     -- step times with and without the collector sweeping inside
  local frame = 1 / HZ
  local frames = math.floor(seconds * HZ)
  local t_start = now()
  local next_frame = t_start
  for f = 1, frames do
    -- The game's own work: collect finished jobs, keep 50 in flight (not timed).
    for i = #live, 1, -1 do
      local job = live[i]
      if job:done() then
        if job:result() then done = done + 1 else failed = failed + 1 end
        table.remove(live, i)
      end
    end
    while #live < IN_FLIGHT do live[#live + 1] = client:submit(input_of()) end
    local k0 = collectgarbage("count")
    local t0 = now()
    ocr.step(0)
    samples[f] = now() - t0
    -- The heap shrank across the step: the collector swept inside it (Lua's own cost, not ours).
    if collectgarbage("count") < k0 then swept[#swept + 1] = samples[f] else kept[#kept + 1] = samples[f] end
    next_frame = next_frame + frame
    local rest = next_frame - now()
    if rest > 0 then core.sleep(rest) else missed = missed + 1; next_frame = now() end
  end
  local elapsed = now() - t_start
  for _, job in ipairs(live) do job:cancel() end
  ocr.run()
  if failed > 0 then error(("benchmark 3: %d jobs failed"):format(failed), 0) end
  local steady = {}
  for f = HZ + 1, #samples do steady[#steady + 1] = samples[f] end   -- after the first second
  return { samples = samples, steady = steady, done = done, elapsed = elapsed, missed = missed,
           p50 = lib.percentile(samples, 50), p90 = lib.percentile(samples, 90),
           p99 = lib.percentile(samples, 99), max = lib.max(samples), steady_max = lib.max(steady),
           swept = #swept, swept_p50 = #swept > 0 and lib.percentile(swept, 50) or 0,
           kept_p99 = lib.percentile(kept, 99) }
end

local function bench3(fs)
  local seconds = Q and 3 or 10   -- 600 frames: p99 is the 6th slowest step, not the 4th
  local client = ocr.new("bench_task", { endpoint = fs.url })
  local path, payload = lib.payload(1024)
  math.randomseed(5)
  local function spread(lo, hi) return math.random(lo, hi) end
  -- Each job: a multipart create answered after a latency, a timer, a poll answered after a
  -- latency (three scheduler transitions, two HTTP requests). Each mode runs twice: the C floor
  -- (bench/curl_loop.c --frames: the same traffic driven by plain libcurl, timed the same way),
  -- then lua-ocr.
  local modes = {
    { name = "vendor-like", lo = 150, hi = 250,
      what = "create, timer and poll each 150–250 ms (bench 1's 200 ms vendor, spread)" },
    { name = "stress", lo = 25, hi = 75,
      what = "create, timer and poll each 25–75 ms (about 7 HTTP requests per frame)" },
    { name = "lockstep (worst case)", lo = 50, hi = 50,
      what = "create, timer and poll each exactly 50 ms: all 50 jobs move together" },
  }
  local B = "3. 60 Hz loop, 50 jobs in flight"
  for _, mode in ipairs(modes) do
    local lo, hi = mode.lo, mode.hi
    local cf = lib.curl_frames{ url = fs.url, hz = 60, jobs = 50, form = path, seconds = seconds,
                                ms = lo .. "-" .. hi, interval_ms = lo .. "-" .. hi }
    local r = frame_loop(client, seconds, function()
      return { data = payload, create_ms = spread(lo, hi), poll_ms = spread(lo, hi), interval = spread(lo, hi) / 1000 }
    end)
    log("3: %s: %d frames, step p50 %s p90 %s p99 %s max %s (after 1 s: max %s), %d jobs done; GC swept in %d steps (p50 %s), p99 of the others %s; C floor p50 %s p99 %s max %s",
        mode.name, #r.samples, ms(r.p50), ms(r.p90), ms(r.p99), ms(r.max), ms(r.steady_max), r.done,
        r.swept, ms(r.swept_p50), ms(r.kept_p99), ms(cf.p50), ms(cf.p99), ms(cf.max))
    row(B, ("%s: %s; %.0f jobs/s done"):format(mode.name, mode.what, r.done / r.elapsed),
        ("`ocr.step(0)`: **p99 %s, max %s** (p50 %s, p90 %s; max after the first second %s); Lua's collector swept inside %d of %d steps (their median %s; p99 of the other steps %s) — C floor: p99 %s, max %s (p50 %s; after the first second %s)")
          :format(ms(r.p99), ms(r.max), ms(r.p50), ms(r.p90), ms(r.steady_max),
                  r.swept, #r.samples, ms(r.swept_p50), ms(r.kept_p99),
                  ms(cf.p99), ms(cf.max), ms(cf.p50), ms(cf.smax)),
        "p99 < 1 ms, max < 5 ms", verdict(r.p99 < 0.001 and r.max < 0.005))
  end
  os.remove(path)
end

--------------------------------------------------------------------------------------------------
-- 4. sequential client:recognize vs a plain libcurl loop, zero latency, keep-alive
--------------------------------------------------------------------------------------------------
local function bench4(fs)
  -- Many short rounds, C and Lua back to back: on a shared machine a paired ratio survives
  -- a neighbour's burst that would ruin one long run.
  local N = Q and 1000 or 1500
  local ROUNDS = Q and 3 or 11
  local path, payload = lib.payload(1024)
  local client = ocr.new("bench_form", { endpoint = fs.url })
  local url = fs.url .. "/recognize"
  local input = { data = payload }
  local c_args = { url = url, requests = N, form = path, user_agent = client.user_agent }
  local pre_args = { url = url, requests = N, form = path, user_agent = client.user_agent, prebuilt = true }

  -- Same bytes: one request each, the server's view of them compared (boundaries differ).
  fs.reset()
  must("benchmark 4", client:recognize(input))
  local lua_bytes, lua_head = fs.stats().bytes, fs.last()
  fs.reset()
  lib.curl_loop{ url = url, requests = 1, form = path, user_agent = client.user_agent }
  local c_bytes, c_head = fs.stats().bytes, fs.last()
  -- Header order is not compared: libcurl puts a form's Content-Type after Content-Length,
  -- lua-ocr (which encodes in-memory forms itself) before it.
  local function norm(h)
    h = h:gsub("boundary=%-*%w+", "boundary=B"):gsub("Host: [^\r\n]*", "Host")
    local lines = {}
    for line in h:gmatch("[^\r\n]+") do lines[#lines + 1] = line end
    local request_line = table.remove(lines, 1)
    table.sort(lines)
    return request_line .. "\n" .. table.concat(lines, "\n")
  end
  local same = norm(lua_head) == norm(c_head)
  if not same then log("4: request heads differ:\n--- lua\n%s\n--- C\n%s", lua_head, c_head) end

  -- Warm-up (connections, caches), then C, Lua, C, Lua, ...
  lib.curl_loop{ url = url, requests = 300, form = path, user_agent = client.user_agent }
  for _ = 1, 300 do must("benchmark 4", client:recognize(input)) end
  local c_rps, lua_rps, ratios, c_cpu, lua_cpu, cpu_ratios, srv_cpu = {}, {}, {}, {}, {}, {}, {}
  local pre_rps, pre_ratios = {}, {}
  for r = 1, ROUNDS do
    local before = fs.stats()
    local res = lib.curl_loop(c_args)
    c_rps[r], c_cpu[r] = res.rps, res.cpu / N
    srv_cpu[r] = cpu_share(fs, before, res.seconds)
    local t0, cpu0 = now(), os.clock()
    for _ = 1, N do must("benchmark 4", client:recognize(input)) end
    lua_rps[r], lua_cpu[r] = N / (now() - t0), (os.clock() - cpu0) / N
    ratios[r] = lua_rps[r] / c_rps[r]
    pre_rps[r] = lib.curl_loop(pre_args).rps
    pre_ratios[r] = lua_rps[r] / pre_rps[r]
    cpu_ratios[r] = c_cpu[r] / lua_cpu[r]
    log("4: round %d: C %.0f req/s (%.1f µs CPU), Lua %.0f req/s (%.1f µs CPU), ratio %.3f",
        r, c_rps[r], c_cpu[r] * 1e6, lua_rps[r], lua_cpu[r] * 1e6, ratios[r])
  end
  -- The server's capacity: as many requests as a multi loop can send it, zero latency.
  local cap = {}
  for r = 1, Q and 1 or 3 do
    cap[r] = lib.curl_loop{ url = url, requests = Q and 5000 or 20000, concurrency = 32, form = path,
                            user_agent = client.user_agent }.rps
  end
  os.remove(path)
  local cm, lm = median(c_rps), median(lua_rps)
  local ratio = median(ratios)
  local B = "4. sequential keep-alive multipart POST, zero latency"
  row(B, ("C libcurl easy loop (`bench/curl_loop.c`), %d requests × %d rounds"):format(N, ROUNDS),
      ("%.0f req/s = %.1f µs/request (%.1f µs CPU); fast_server busy %.0f%% of that time")
        :format(cm, 1e6 / cm, median(c_cpu) * 1e6, median(srv_cpu) * 100))
  row(B, "`client:recognize` (provider `bench_form`), each round right after C's",
      ("%.0f req/s = %.1f µs/request (%.1f µs CPU)"):format(lm, 1e6 / lm, median(lua_cpu) * 1e6))
  row(B, "ratio Lua / C: median of the per-round throughput ratios (and of CPU time per request)",
      ("**%.3f×** (CPU: %.3f×)"):format(ratio, median(cpu_ratios)), "≥ 0.8×", verdict(ratio >= 0.8))
  row(B, "for reference: C loop with the form encoded once into one buffer (`--prebuilt`, CURLOPT_POSTFIELDS), as lua-ocr sends in-memory forms; right after each Lua round",
      ("%.0f req/s = %.1f µs/request; Lua / this: %.3f×"):format(median(pre_rps), 1e6 / median(pre_rps), median(pre_ratios)))
  row(B, "same bytes on the wire",
      ("%s: %d bytes/request from Lua, %d from C; request heads %s")
        :format((same and lua_bytes == c_bytes) and "yes" or "**no**", lua_bytes, c_bytes,
                same and "identical but for the boundary and the order of two headers" or "differ (see stderr)"))
  row(B, "server capacity: C multi loop, c = 32, zero latency", ("%.0f req/s"):format(median(cap)))
end

--------------------------------------------------------------------------------------------------

local function print_table(machine, elapsed, load0, load1)
  local out = {}
  local function p(s) out[#out + 1] = s end
  p(("Benchmarks (`make bench`%s), %s: %s (nproc %s), %s, %s, %s, lua-ocr %s. Servers on 127.0.0.1; total run %.0f s; load average %s at the start, %s at the end.%s")
    :format(Q and " --quick: NOT FOR PUBLISHING" or "", machine.date, machine.cpu, machine.nproc,
            machine.kernel, machine.lua, machine.curl, machine.ocr, elapsed, tostring(load0), tostring(load1),
            opts.lua and (" Lua layer from " .. opts.lua .. ", not the checkout.") or ""))
  p("")
  p("| Benchmark | Configuration | Result | Target | |")
  p("|---|---|---|---|---|")
  for _, r in ipairs(rows) do p("| " .. table.concat(r, " | ") .. " |") end
  if #notes > 0 then
    p("")
    for _, n in ipairs(notes) do p(n) end
  end
  local text = table.concat(out, "\n") .. "\n"
  io.stdout:write("\n", text)
  local f = io.open(opts.tools .. "/results.md", "w")
  if f then f:write(text) f:close() end
end

local function main()
  local machine = lib.machine()
  local load0 = lib.loadavg()
  local t0 = now()
  local fs
  local function want(n) return opts.only == nil or opts.only == n end
  if want(1) or want(3) or want(4) or want(6) then
    fs = lib.fast_server()
    log("fast_server on %s", fs.url)
  end
  if want(1) then bench1(fs) end
  if want(2) then bench2() end
  if want(3) then bench3(fs) end
  if want(4) then bench4(fs) end
  if want(5) then
    tesseract_bench.run{ ocr = ocr, lib = lib, row = row, verdict = verdict, notes = notes,
                         check_all = check_all, quick = Q, mixed = opts.tess_mixed }
  end
  if want(6) then
    openresty_bench.run{ lib = lib, row = row, verdict = verdict, quick = Q, fast_server = fs }
  end
  if want(7) then
    cache_bench.run{ ocr = ocr, lib = lib, row = row, verdict = verdict, quick = Q }
  end
  if want(8) then
    fleet_bench.run{ ocr = ocr, lib = lib, row = row, verdict = verdict, quick = Q, cpath = opts.cpath }
  end
  if want(9) then   -- (bench/pdf.lua: a scanned PDF to a searchable PDF, vs ocrmypdf)
    pdf_bench.run{ lib = lib, row = row, verdict = verdict, quick = Q, cpath = opts.cpath,
                   lua = arg[-1] or "lua5.4" }
  end
  print_table(machine, now() - t0, load0, lib.loadavg())
end

local ok, err = xpcall(main, debug.traceback)
lib.stop_all()
if not ok then
  io.stderr:write("bench failed: ", tostring(err), "\n")
  os.exit(1)
end
