--- Helpers of the benchmark driver: servers started and stopped on 127.0.0.1, their control
-- routes, the C baseline, statistics and the machine's description.
local core = require "ocr.core"
local curl = require "ocr.curl"
local cjson = require "cjson"

local M = {}

M.ROOT, M.TOOLS = ".", "build/bench"   -- the checkout, and where make puts the C tools

local started = {}   -- servers to stop at exit

local function log(fmt, ...)
  io.stderr:write(("[bench] " .. fmt .. "\n"):format(...))
  io.stderr:flush()
end
M.log = log

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.sh_quote = sh_quote

-- A process that prints "READY <port> <pid>" once it listens (fast_server and the emulators).
local function spawn(name, cmd)
  local pipe = assert(io.popen("exec " .. cmd, "r"))
  local line = pipe:read("*l")
  local port, pid = tostring(line):match("^READY (%d+) (%d+)$")
  if not port then
    pipe:close()
    error(name .. " did not start: " .. tostring(line), 0)
  end
  local s = { name = name, pipe = pipe, pid = tonumber(pid), port = tonumber(port),
              url = "http://127.0.0.1:" .. port }
  started[#started + 1] = s
  return s
end

-- One blocking session for control requests, apart from the scheduler under test.
local control_session
local function control(method, url, payload)
  control_session = control_session or curl.session{}
  local req = { method = method, url = url, timeout = 30 }
  if payload ~= nil then
    req.body = cjson.encode(payload)
    req.headers = { ["Content-Type"] = "application/json" }
  end
  local res, err = control_session:request(req)
  if not res then error(("control %s %s failed: %s"):format(method, url, tostring(err and err.message)), 0) end
  if res.status ~= 200 then error(("control %s %s: HTTP %d"):format(method, url, res.status), 0) end
  return res.body
end

--- bench/fast_server: {url, port, pid, stats(), reset(), last()}.
function M.fast_server()
  local s = spawn("fast_server", sh_quote(M.TOOLS .. "/fast_server") .. " --port 0")
  function s.stats() return cjson.decode(control("GET", s.url .. "/_stats")) end
  function s.reset() return control("GET", s.url .. "/_reset") end
  function s.last() return control("GET", s.url .. "/_last") end
  return s
end

--- A vendor emulator from spec/emulators (Python): {url, config(t), log(), state(), reset()}.
function M.emulator(name)
  local s = spawn(name, "python3 " .. sh_quote(M.ROOT .. "/spec/emulators/" .. name .. ".py") .. " --port 0")
  function s.config(t) return control("POST", s.url .. "/_emu/config", t) end
  function s.reset() return control("POST", s.url .. "/_emu/reset", {}) end
  function s.log() return cjson.decode(control("GET", s.url .. "/_emu/log")) end
  function s.state() return cjson.decode(control("GET", s.url .. "/_emu/state")) end
  return s
end

local tmpdirs = {}     -- directories to remove at exit

--- A new empty directory (mktemp -d), removed with everything in it by stop_all().
function M.tmpdir()
  local p = assert(io.popen("mktemp -d 2>/dev/null", "r"))
  local dir = p:read("*l")
  p:close()
  if not dir or dir == "" then error("mktemp -d failed", 0) end
  tmpdirs[#tmpdirs + 1] = dir
  return dir
end

--- Stops every server started here and removes the temporary directories (called at exit,
-- also after an error).
function M.stop_all()
  if control_session then control_session:close() control_session = nil end
  for i = #tmpdirs, 1, -1 do
    os.execute("rm -rf " .. sh_quote(tmpdirs[i]))
    tmpdirs[i] = nil
  end
  for i = #started, 1, -1 do
    local s = started[i]
    os.execute("kill " .. s.pid .. " 2>/dev/null")
    s.pipe:close()
    started[i] = nil
  end
end

--- Runs bench/curl_loop; returns {requests=, failed=, seconds=, rps=, cpu= (its CPU seconds)}.
function M.curl_loop(args)
  local cmd = { sh_quote(M.TOOLS .. "/curl_loop"), "--url", sh_quote(args.url),
                "--requests", tostring(args.requests), "--concurrency", tostring(args.concurrency or 1) }
  if args.form then cmd[#cmd + 1] = "--form " .. sh_quote(args.form) end
  if args.user_agent then cmd[#cmd + 1] = "--user-agent " .. sh_quote(args.user_agent) end
  if args.prebuilt then cmd[#cmd + 1] = "--prebuilt" end
  local p = assert(io.popen(table.concat(cmd, " "), "r"))
  local out = p:read("*a")
  p:close()
  local n, failed, secs, rps, cpu = out:match("requests=(%d+) failed=(%d+) seconds=([%d.]+) rps=([%d.]+) cpu=([%d.]+)")
  if not n then error("curl_loop failed: " .. out, 0) end
  if tonumber(failed) > 0 then error("curl_loop: " .. failed .. " requests failed", 0) end
  return { requests = tonumber(n), failed = tonumber(failed), seconds = tonumber(secs), rps = tonumber(rps),
           cpu = tonumber(cpu) }
end

--- Runs curl_loop's 60 Hz frame mode (benchmark 3 without Lua); returns its percentiles (s).
function M.curl_frames(args)
  local cmd = ("%s --url %s --frames %d --concurrency %d --form %s --seconds %g --ms %s --interval-ms %s")
    :format(sh_quote(M.TOOLS .. "/curl_loop"), sh_quote(args.url), args.hz, args.jobs, sh_quote(args.form),
            args.seconds, args.ms, args.interval_ms)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  local ok = p:close()
  local r = {}
  for k, v in out:gmatch("(%w+)=([%d.]+)") do r[k] = tonumber(v) end
  if not r.p99 or not ok then error("curl_loop --frames failed: " .. out, 0) end
  return r
end

-- statistics -------------------------------------------------------------------------------

function M.median(xs)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) / 2] end
  return (s[n / 2] + s[n / 2 + 1]) / 2
end

--- The p-th percentile by nearest rank (p in 0..100): a value that was actually observed.
function M.percentile(xs, p)
  local s = {}
  for i, v in ipairs(xs) do s[i] = v end
  table.sort(s)
  if #s == 0 then return nil end
  local rank = math.max(1, math.ceil(p / 100 * #s))
  return s[rank]
end

function M.max(xs)
  local m
  for _, v in ipairs(xs) do if not m or v > m then m = v end end
  return m
end

function M.now() return core.monotime() end

-- the machine ------------------------------------------------------------------------------

local function read_cmd(cmd)
  local p = io.popen(cmd .. " 2>/dev/null", "r")
  if not p then return nil end
  local s = p:read("*a")
  p:close()
  s = s and s:gsub("%s+$", "")
  return s ~= "" and s or nil
end

--- The 1-minute load average: other work on a shared machine shows up here.
function M.loadavg()
  local f = io.open("/proc/loadavg", "r")
  if not f then return nil end
  local s = f:read("*l")
  f:close()
  return tonumber(s:match("^(%S+)"))
end

function M.machine()
  local model
  local f = io.open("/proc/cpuinfo", "r")
  if f then
    for line in f:lines() do
      model = line:match("^model name%s*:%s*(.-)%s*$")
      if model then break end
    end
    f:close()
  end
  return {
    date = os.date("!%Y-%m-%d %H:%M UTC"),
    nproc = read_cmd("nproc") or "?",
    cpu = model or "unknown CPU",
    kernel = read_cmd("uname -sr") or "?",
    lua = _VERSION,
    curl = (curl._CURL_VERSION or "?"):match("^(libcurl/%S+)") or curl._CURL_VERSION,
    ocr = curl._VERSION,
  }
end

--- A file of n bytes that every magic-number check accepts as PNG; returns path, bytes.
function M.payload(n)
  local head = "\137PNG\r\n\26\n"
  local body = {}
  for i = 1, n - #head do body[i] = string.char(32 + (i * 7) % 90) end
  local data = head .. table.concat(body)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path, data
end

return M
