-- Starts a real redis-server (Debian's) for the Redis store's specs: its own temporary directory,
-- 127.0.0.1 on a free port, no persistence, stopped after. Never a system service: every spec
-- that needs one starts its own here.
local shell = require "helpers.shell"
local F = require "helpers.files"
local emulator = require "helpers.emulator"
local core = require "ocr.core"

local M = {}

M.BINARY = "/usr/bin/redis-server"

--- Why Redis cannot run here (nil when it can).
function M.missing()
  if not F.exists(M.BINARY) then return "redis-server is not installed (.ci/packages: redis-server)" end
  local ok = pcall(require, "ocr.hiredis")
  if not ok then return "ocr.hiredis is not built (libhiredis-dev)" end
  return nil
end

-- A PING answered: Redis is up.
local function ping(port, password)
  local h = require "ocr.hiredis"
  local c = h.connect{ host = "127.0.0.1", port = port, timeout = 0.2 }
  if not c then return false end
  if password then c:call("AUTH", password) end
  local v = c:call("PING")
  c:close()
  return v == "PONG"
end

--- Starts redis-server; `opts.password` sets requirepass, `opts.port` reuses a port (a
--- restart). Returns a handle: port, dir, url(db), conn() (an ocr.hiredis connection),
--- stop(), kill() (SIGKILL, as a crash), start() again on the same port, log().
function M.start(opts)
  opts = opts or {}
  local self = { port = opts.port or emulator.closed_port(), dir = opts.dir or F.tmpdir(),
                 password = opts.password }
  function self.start()
    local cmd = ("%s --port %d --bind 127.0.0.1 --dir %s --save '' --appendonly no --daemonize yes " ..
                 "--pidfile %s/redis.pid --logfile %s/redis.log%s"):format(M.BINARY, self.port, self.dir,
                 self.dir, self.dir, self.password and (" --requirepass " .. self.password) or "")
    -- (descriptors 3-9 closed: a daemon must not keep a lock its starter held, such as the
    -- flock around a test run, should the spec die before stopping it)
    shell.execute("exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; " .. cmd)
    for _ = 1, 200 do
      if ping(self.port, self.password) then return self end
      core.sleep(0.02)
    end
    error("redis-server did not start: " .. (F.read(self.dir .. "/redis.log") or ""))
  end
  function self.pid()
    local pid = F.read(self.dir .. "/redis.pid")
    return pid and tonumber(pid:match("%d+"))
  end
  local function signal(sig)
    local pid = self.pid()
    if not pid then return end
    shell.execute(("kill -%s %d 2>/dev/null"):format(sig, pid))
    for _ = 1, 200 do
      if not F.exists("/proc/" .. pid) or not ping(self.port, self.password) then break end
      core.sleep(0.01)
    end
    os.remove(self.dir .. "/redis.pid")
  end
  function self.kill() signal("KILL") end
  function self.stop()
    signal("TERM")
    if not opts.dir then F.rmdir(self.dir) end
  end
  function self.url(db)
    return ("redis://%s127.0.0.1:%d/%d"):format(self.password and (":" .. self.password .. "@") or "",
                                                 self.port, db or 0)
  end
  function self.conn()
    local c = assert(require("ocr.hiredis").connect{ host = "127.0.0.1", port = self.port, timeout = 1 })
    if self.password then assert(c:call("AUTH", self.password)) end
    return c
  end
  function self.log() return F.read(self.dir .. "/redis.log") or "" end
  return self.start()
end

return M
