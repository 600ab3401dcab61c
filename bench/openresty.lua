--- Benchmark 6: lua-ocr inside nginx (Debian's nginx with libnginx-mod-http-lua, started here
-- on 127.0.0.1 with one worker and the 5.1-ABI modules of build/lua5.1), beside nginx's own C
-- client (`proxy_pass` to the same bench/fast_server, upstream keep-alive on) as the floor:
--   (a) 100 concurrent OCR requests (bench_get, the vendor answering after 200 ms) sent to the
--       worker at once: the wall time until the last answer, against the ideal 0.2 s and against
--       the same 100 requests through proxy_pass; meanwhile a static location is asked again and
--       again, one request at a time, and its latencies' p99 is the worker's responsiveness.
--   (b) sequential keep-alive requests/s, one request to nginx and one from nginx to the server
--       each: the cosocket transport (`ocr.cosocket`) vs proxy_pass, rounds alternated, ratio =
--       median of the per-round ratios; a reference row through a whole client:recognize.
--   (c) one 200 MB file uploaded as a multipart part (bench_upload): the worker's peak RSS
--       (VmHWM, reset through /proc/PID/clear_refs before) minus its RSS before.
-- Requests to nginx come from this process through ocr.curl's multi interface (a), and from
-- bench/curl_loop (b): clients, not the code under test.
local M = {}

local UPLOAD_BYTES = 200 * 1024 * 1024

local function status_kb(pid, field)
  local s = require("helpers.files").read("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match(field .. ":%s*(%d+) kB"))
end

local function conf(root, vendor)
  local nginx = require "helpers.nginx"
  local pre = nginx.preamble("$PREFIX", { workers = 1, log_level = "error" })
  return pre .. ([[
http {
  lua_package_path '%s/lua/?.lua;%s/bench/?.lua;;';
  lua_package_cpath '%s/build/lua5.1/?.so;;';
  access_log off;
  keepalive_requests 1000000;
  init_by_lua_block {
    local ocr = require "ocr"
    require("providers").register()
    VENDOR = "%s"
    OCR = ocr.new("bench_get", { endpoint = VENDOR, retries = 0 })
    UPLOAD = ocr.new("bench_upload", { endpoint = VENDOR, retries = 0, timeout = 600 })
    BUFFERED = ocr.new("bench_form", { endpoint = VENDOR, retries = 0, timeout = 600 })
    COSOCKET = require("ocr.cosocket").new{}
  }
  upstream vendor { server %s; keepalive 128; }
  server {
    listen 127.0.0.1:$PORT backlog=1024;
    location = /static { return 200 "ok\n"; }
    location = /ocr { content_by_lua_block {
      local res, err = OCR:recognize{ data = "page", ms = tonumber(ngx.var.arg_ms) or 0 }
      if not res then ngx.status = 502 end
      ngx.say(res and res.text or tostring(err))
    } }
    location = /cosocket { content_by_lua_block {
      local res, err = COSOCKET:request{ method = "GET", url = VENDOR .. "/job?ms=0" }
      if not res then ngx.status = 502 ngx.say(tostring(err and err.message)) return end
      ngx.print(res.body)
    } }
    location = /upload { content_by_lua_block {
      local res, err = UPLOAD:recognize{ file = ngx.var.arg_path }
      if not res then ngx.status = 502 end
      ngx.say(res and res.text or tostring(err))
    } }
    location = /upload-buffered { content_by_lua_block {
      local f = assert(io.open(ngx.var.arg_path, "rb"))
      local data = f:read("*a")
      f:close()
      local res, err = BUFFERED:recognize{ data = data }
      if not res then ngx.status = 502 end
      ngx.say(res and res.text or tostring(err))
    } }
    location = /proxy { proxy_pass http://vendor/job?ms=0; proxy_http_version 1.1;
                        proxy_set_header Connection ""; }
    location = /proxy200 { proxy_pass http://vendor/job?ms=200; proxy_http_version 1.1;
                           proxy_set_header Connection ""; }
  }
}
]]):format(root, root, root, vendor, vendor:match("^http://(.*)$"))
end

-- (a): n requests to `url` at once, and /static probed one at a time until they are all answered.
local function burst(curl, core, server, url, n, probe)
  local multi = require "helpers.multi"
  local m = curl.multi{}
  local left, failed = n, 0
  local t0 = core.monotime()
  local last = t0
  for _ = 1, n do assert(m:add{ method = "GET", url = url, timeout = 60 }) end
  local probes, probe_id, probe_t = {}, nil, 0
  local function add_probe()
    probe_id = assert(m:add{ method = "GET", url = server.url("/static"), timeout = 60 })
    probe_t = core.monotime()
  end
  if probe then add_probe() end
  while left > 0 do
    multi.round(m, 1, function(id, res, err)
      local t = core.monotime()
      if id == probe_id then
        if not res or res.status ~= 200 then error("static probe failed: " .. tostring(err and err.message), 0) end
        probes[#probes + 1] = t - probe_t
        if left > 0 then add_probe() else probe_id = nil end
      else
        if not res or res.status ~= 200 then failed = failed + 1 end
        left = left - 1
        last = t
      end
    end)
  end
  m:close()   -- (drops a last probe still in flight)
  if failed > 0 then error(("%d of %d requests to %s failed"):format(failed, n, url), 0) end
  return last - t0, probes
end

function M.run(env)
  local lib, row, verdict, Q = env.lib, env.row, env.verdict, env.quick
  local B = "6. OpenResty (one worker)"
  local ok_nginx, nginx = pcall(require, "helpers.nginx")
  local missing
  if ok_nginx then missing = nginx.missing() else missing = tostring(nginx) end
  if missing then
    row(B, "skipped", missing)
    return
  end
  local curl, core = require "ocr.curl", require "ocr.core"
  local fs = env.fast_server
  local server = nginx.start(conf(lib.ROOT, fs.url), { workers = 1 })
  local ok, err = pcall(function()
    local worker = assert(server.workers()[1], "no nginx worker")
    local log = lib.log

    -- (a) ---------------------------------------------------------------------------------
    local N, rounds = 100, Q and 2 or 7
    burst(curl, core, server, server.url("/ocr?ms=0"), N, false)         -- connections opened
    burst(curl, core, server, server.url("/proxy200"), N, false)
    local walls, floors, probes = {}, {}, {}
    for r = 1, rounds do
      local wall, p = burst(curl, core, server, server.url("/ocr?ms=200"), N, true)
      walls[#walls + 1] = wall
      for _, v in ipairs(p) do probes[#probes + 1] = v end
      floors[#floors + 1] = burst(curl, core, server, server.url("/proxy200"), N, false)
      log("6a: round %d: lua-ocr %.3f s, proxy_pass %.3f s, %d static probes", r, wall, floors[#floors], #p)
    end
    local wall, floor = lib.median(walls), lib.median(floors)
    row(B, ("(a) %d concurrent OCR requests, vendor latency 200 ms"):format(N),
        ("wall %.3f s (median of %d; ideal 0.200 s; proxy_pass floor %.3f s)"):format(wall, rounds, floor),
        "≤ 0.25 s", verdict(wall <= 0.25))
    local p99 = lib.percentile(probes, 99)
    row(B, "(a) a static location meanwhile, one request at a time",
        ("p99 %.2f ms, max %.2f ms over %d requests"):format(p99 * 1000, lib.percentile(probes, 100) * 1000, #probes),
        "p99 < 5 ms", verdict(p99 < 0.005))

    -- (b) ---------------------------------------------------------------------------------
    local reqs, brounds = Q and 500 or 3000, Q and 3 or 9
    for _, path in ipairs{ "/cosocket", "/proxy", "/ocr" } do
      lib.curl_loop{ url = server.url(path), requests = 200, concurrency = 1 }   -- warm
    end
    local ratios, client_ratios, cos, px, cl = {}, {}, {}, {}, {}
    for r = 1, brounds do
      local p = lib.curl_loop{ url = server.url("/proxy"), requests = reqs, concurrency = 1 }.rps
      local c = lib.curl_loop{ url = server.url("/cosocket"), requests = reqs, concurrency = 1 }.rps
      local o = lib.curl_loop{ url = server.url("/ocr"), requests = reqs, concurrency = 1 }.rps
      cos[r], px[r], cl[r] = c, p, o
      ratios[r], client_ratios[r] = c / p, o / p
      log("6b: round %d: proxy_pass %.0f req/s, cosocket %.0f, client:recognize %.0f", r, p, c, o)
    end
    local ratio = lib.median(ratios)
    table.sort(ratios)
    row(B, "(b) sequential keep-alive requests, cosocket transport vs proxy_pass",
        ("%.0f vs %.0f req/s = **%.2f×** (median of %d rounds, range %.2f–%.2f)")
          :format(lib.median(cos), lib.median(px), ratio, brounds, ratios[1], ratios[#ratios]),
        "≥ 0.6×", verdict(ratio >= 0.6))
    row(B, "(b) reference: a whole client:recognize (bench_get) vs proxy_pass",
        ("%.0f req/s = %.2f×"):format(lib.median(cl), lib.median(client_ratios)))
    row(B, "(b) reference: the server alone, curl_loop sequential",
        ("%.0f req/s"):format(lib.curl_loop{ url = fs.url .. "/job?ms=0", requests = reqs, concurrency = 1 }.rps))

    -- (c) ---------------------------------------------------------------------------------
    local dir = lib.tmpdir()
    local path = dir .. "/big.png"
    local f = assert(io.open(path, "wb"))
    f:write("\137PNG\r\n\26\n")
    f:close()
    assert(os.execute(("truncate -s %d %s"):format(UPLOAD_BYTES, lib.sh_quote(path))))
    os.execute("chmod 755 " .. lib.sh_quote(dir))
    local small = dir .. "/small.png"
    f = assert(io.open(small, "wb"))
    f:write("\137PNG\r\n\26\n", ("x"):rep(1000))
    f:close()
    local s = curl.session{}
    local warm = s:request{ url = server.url("/upload?path=" .. small), timeout = 60 }
    if not warm or warm.status ~= 200 then error("upload warm-up failed: " .. tostring(warm and warm.body), 0) end
    local function reset_peak()   -- VmHWM back to VmRSS (Linux >= 4.0; else the peak since start)
      local cr = io.open("/proc/" .. worker .. "/clear_refs", "w")
      return cr and cr:write("5") and cr:close()
    end
    local reset = reset_peak()
    local rss0 = status_kb(worker, "VmRSS")
    local bytes0 = fs.stats().bytes
    local t0 = core.monotime()
    local res, rerr = s:request{ url = server.url("/upload?path=" .. path), timeout = 600 }
    local dt = core.monotime() - t0
    s:close()
    if not res or res.status ~= 200 then
      error("200 MB upload failed: " .. tostring(res and res.body or rerr and rerr.message), 0)
    end
    local hwm = status_kb(worker, "VmHWM")
    local got = fs.stats().bytes - bytes0
    if got < UPLOAD_BYTES then error(("the server received %d bytes of a 200 MB upload"):format(got), 0) end
    local growth = (hwm - rss0) / 1024
    row(B, "(c) one 200 MB file as a multipart part",
        ("worker peak RSS %+.1f MB (RSS %.1f MB before, peak %.1f MB%s); %.0f MB/s")
          :format(growth, rss0 / 1024, hwm / 1024, reset and "" or ", peak not reset: an upper bound",
                  UPLOAD_BYTES / 1048576 / dt),
        "< 32 MB", verdict(growth < 32))
    -- The control shows the meter sees memory: the same file read into a string first.
    reset_peak()
    rss0 = status_kb(worker, "VmRSS")
    local s2 = curl.session{}
    res, rerr = s2:request{ url = server.url("/upload-buffered?path=" .. path), timeout = 600 }
    s2:close()
    if not res or res.status ~= 200 then
      error("200 MB buffered upload failed: " .. tostring(res and res.body or rerr and rerr.message), 0)
    end
    row(B, "(c) control: the same file read into memory, then sent as `data`",
        ("worker peak RSS %+.1f MB"):format((status_kb(worker, "VmHWM") - rss0) / 1024))
  end)
  server.stop()
  if not ok then error(err, 0) end
end

return M
