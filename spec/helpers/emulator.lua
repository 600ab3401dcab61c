-- Starts an emulator (spec/emulators/NAME.py) as a real HTTP server on 127.0.0.1 and talks to its
-- control API. The control channel uses LuaSocket, not ocr.curl, so a broken transport under test
-- cannot hide behind its own test harness.
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local shell = require "helpers.shell"

local M = {}
local Emu = {}
Emu.__index = Emu

local function control(self, method, op, payload)
  local body = payload and cjson.encode(payload) or ""
  local chunks = {}
  local ok, status = http.request{
    url = (self.control_url or self.url) .. "/_emu/" .. op,
    method = method,
    headers = { ["content-type"] = "application/json", ["content-length"] = #body },
    source = ltn12.source.string(body),
    sink = ltn12.sink.table(chunks),
  }
  assert(ok and status == 200, ("emulator control %s failed: %s"):format(op, tostring(status)))
  return cjson.decode(table.concat(chunks))
end

--- Starts `spec/emulators/<name>.py` (`args`: more command-line arguments, e.g. --tls-cert);
--- returns an object with `url`, `port`, `pid`. `M.start_script(path, args)` starts another
--- server that speaks the same READY line and control API (spec/hostile/server.py).
function M.start(name, args)
  return M.start_script("spec/emulators/" .. name .. ".py", args, name)
end

function M.start_script(path, args, name)
  name = name or path
  local cmd = ("exec %spython3 %s --port 0 %s"):format(shell.CLEAN_ENV, path, args or "")
  local pipe = assert(io.popen(cmd, "r"))
  local line = pipe:read("*l")
  local port, pid, control = tostring(line):match("^READY (%d+) (%d+) ?(%d*)$")
  assert(port, "emulator " .. name .. " did not start: " .. tostring(line))
  -- With --tls-cert the emulator serves HTTPS, and its control API also plain HTTP on a port
  -- of its own (LuaSocket speaks no TLS).
  local tls = control ~= ""
  return setmetatable({ name = name, pipe = pipe, port = tonumber(port), pid = tonumber(pid),
                        url = (tls and "https" or "http") .. "://127.0.0.1:" .. port,
                        control_url = tls and ("http://127.0.0.1:" .. control) or nil }, Emu)
end

function Emu:stop()
  if self.pipe then
    shell.execute("kill " .. self.pid .. " 2>/dev/null")
    self.pipe:close()
    self.pipe = nil
  end
end

function Emu:reset() return control(self, "POST", "reset") end
function Emu:log() return control(self, "GET", "log") end
function Emu:state() return control(self, "GET", "state") end
function Emu:config(settings) return control(self, "POST", "config", settings) end

--- Queues a fault: {action = "status"|"drop"|"reset"|"slow"|"truncate"|"malformed"|"slow_body"|"raw",
--- path = prefix, method =, times = 1, skip = 0, status =, body =, headers = {}, delay = s};
--- "raw" writes `body` (or base64 `body_b64`) as the whole answer, then closes.
function Emu:fault(f) return control(self, "POST", "fault", f) end

--- Log entries whose path starts with `prefix` (and method, if given).
function Emu:requests(prefix, method)
  local out = {}
  for _, e in ipairs(self:log()) do
    if (not prefix or e.path:sub(1, #prefix) == prefix) and (not method or e.method == method) then
      out[#out + 1] = e
    end
  end
  return out
end

--- A port on 127.0.0.1 where nothing listens (bound then closed), for "connection refused".
function M.closed_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

return M
