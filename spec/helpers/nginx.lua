-- Starts a real nginx (Debian's, with libnginx-mod-http-lua) for the OpenResty specs: its own
-- prefix directory, 127.0.0.1 on a free port, a pid file, stopped after. Its Lua code loads this
-- checkout's lua/ and the 5.1-ABI modules from build/lua5.1 (`make LUA_VERSION=5.1`). Never a
-- stand-in: what runs here is what users run.
local shell = require "helpers.shell"
local F = require "helpers.files"
local emulator = require "helpers.emulator"

local M = {}

M.MODULES = "/usr/share/nginx/modules"
M.BINARY = "/usr/sbin/nginx"

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function cwd()
  local p = io.popen("pwd")
  local d = p:read("*l")
  p:close()
  return d
end

--- Why nginx cannot run here (nil when it can): the binary, the Lua module, the 5.1 build.
function M.missing()
  if not exists(M.BINARY) then return "nginx is not installed (.ci/packages: nginx)" end
  if not exists(M.MODULES .. "/ngx_http_lua_module.so") then
    return "libnginx-mod-http-lua is not installed"
  end
  if not exists("build/lua5.1/ocr/core.so") then return "build/lua5.1 is not built (make LUA_VERSION=5.1)" end
  return nil
end

--- The directives every spec's nginx.conf starts with: the modules, the prefix's logs, the
--- checkout's Lua paths. `worker_processes` is `opts.workers` (default 1).
function M.preamble(dir, opts)
  opts = opts or {}
  local root = cwd()
  local running_as_root = os.getenv("USER") == "root" or io.popen("id -u"):read("*l") == "0"
  return table.concat({
    "load_module " .. M.MODULES .. "/ndk_http_module.so;",
    "load_module " .. M.MODULES .. "/ngx_http_lua_module.so;",
    running_as_root and "user root root;" or "",
    "worker_processes " .. (opts.workers or 1) .. ";",
    "daemon on;",
    "pid " .. dir .. "/logs/nginx.pid;",
    "error_log " .. dir .. "/logs/error.log " .. (opts.log_level or "warn") .. ";",
    "events { worker_connections 1024; }",
  }, "\n") .. "\n", ("lua_package_path '%s/lua/?.lua;%s/lua/?/init.lua;%s/spec/?.lua;;';\n" ..
                     "lua_package_cpath '%s/build/lua5.1/?.so;;';\n"):format(root, root, root, root)
end

--- Starts nginx with `conf` (the whole nginx.conf) in the prefix directory `opts.dir` (default:
--- a new one). "$PREFIX" in it becomes that directory, and $PORT, $PORT2, ... free ports.
--- `opts.env` = {NAME = value} for nginx's environment. Returns a handle: dir, port, ports,
--- url(path[, port]), log(), pid(), workers(), stop() (which removes the directory).
function M.start(conf, opts)
  opts = opts or {}
  local dir = opts.dir or F.tmpdir()
  F.mkdir(dir .. "/logs")
  F.mkdir(dir .. "/conf")
  local ports = {}
  for name in conf:gmatch("%$(PORT%d*)") do
    if not ports[name] then ports[name] = emulator.closed_port() end
  end
  conf = conf:gsub("%$(PORT%d*)", function(name) return tostring(ports[name]) end)
  conf = conf:gsub("%$PREFIX", dir)
  F.write(dir .. "/conf/nginx.conf", conf)
  local env = shell.CLEAN_ENV ~= "" and shell.CLEAN_ENV or "env "
  local vars = ""
  for k, v in pairs(opts.env or {}) do vars = vars .. k .. "='" .. v .. "' " end
  -- (descriptors 3-9 closed: the daemon must not keep a lock its starter held, such as the
  -- flock around a test run, should the spec die before stopping it)
  local cmd = ("exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; %s%s%s -p %s -c %s/conf/nginx.conf 2>&1")
              :format(env, vars, M.BINARY, dir, dir)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  local self = { dir = dir, ports = ports, conf = conf, port = ports.PORT }
  function self.url(path, port) return ("http://127.0.0.1:%d%s"):format(port or self.port, path or "/") end
  function self.log() return F.read(dir .. "/logs/error.log") or "" end
  function self.pid()
    local pid = F.read(dir .. "/logs/nginx.pid")
    return pid and tonumber(pid:match("%d+"))
  end
  function self.workers()
    local pids = {}
    local ps = io.popen("pgrep -P " .. tostring(self.pid()))
    for line in ps:lines() do pids[#pids + 1] = tonumber(line) end
    ps:close()
    return pids
  end
  function self.stop()
    local pid = self.pid()
    if pid then
      -- TERM: a fast shutdown (QUIT would wait for idle keep-alive connections).
      shell.execute("kill -TERM " .. pid .. " 2>/dev/null")
      local socket = require "socket"
      for _ = 1, 200 do
        -- Gone, or a zombie left for init to reap: either way it has let go of its port.
        local stat = F.read("/proc/" .. pid .. "/stat")
        if not stat or stat:match("^%d+ %b() Z") then break end
        socket.sleep(0.02)
      end
      shell.execute("kill -9 " .. pid .. " 2>/dev/null")
    end
    if not opts.keep then F.rmdir(dir) end
  end
  -- daemon on: the command returns once the master forked; wait until it listens.
  local socket = require "socket"
  for _ = 1, 200 do
    local c = socket.tcp()
    c:settimeout(0.1)
    if self.port and c:connect("127.0.0.1", self.port) then c:close() return self end
    c:close()
    if not self.port and self.pid() then return self end
    socket.sleep(0.025)
  end
  local log = self.log()
  self.stop()
  error("nginx did not start: " .. out .. "\n" .. log)
end

return M
