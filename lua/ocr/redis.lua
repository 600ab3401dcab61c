--- A Redis connection over the host's sockets, for ocr.store.redis. Commands are framed and
-- replies read by hiredis (the ocr.hiredis C module); the bytes travel over
--   * nginx's cosockets, in the phases that have them (rewrite, access, content, timer, ...):
--     non-blocking, each call takes a connection from the keep-alive pool named by what makes
--     one reusable (host, port or path, database, user and a hash of the password) and gives it
--     back;
--   * elsewhere (scripts, ocr.step jobs, nginx's init phase), one blocking connection kept by
--     this object, every call bounded by `timeout` as a whole.
-- Phases of nginx without cosockets (init_worker, set, log, header/body filters) must not
-- block a worker: a call there fails (kind "phase") and the store's on_store_error applies.
--
--   local conn = redis.new{ host=, port=, path=, password=, user=, db=, timeout=, max_reply= }
--   conn:call("GET", "k")   -> value | nil, err, kind ("reply": Redis answered an error;
--                              "io", "timeout", "protocol": the connection failed; "phase":
--                              nginx's phase allows no socket)
--   conn:close()
-- Values: strings, integers, tables for arrays, false for a nil. Errors never contain the
-- password.
local core = require "ocr.core"

local M = {}

local Conn = {}
Conn.__index = Conn

local COSOCKET_PHASES = { rewrite = true, access = true, content = true, timer = true,
                          ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
                          server_rewrite = true }

-- "cosocket", "blocking", or nil and why (an nginx phase where neither may be used).
local function transport_here()
  local ngx = rawget(_G, "ngx")
  if not (ngx and ngx.get_phase) then return "blocking" end
  local phase = ngx.get_phase()
  if COSOCKET_PHASES[phase] then return "cosocket" end
  if phase == "init" then return "blocking" end   -- (the master, before any request)
  return nil, ("nginx's %s phase has no cosockets and must not block"):format(phase)
end

local hiredis_module
local function hiredis()
  if hiredis_module == nil then
    local ok, m = pcall(require, "ocr.hiredis")
    hiredis_module = ok and m or false
  end
  return hiredis_module or nil
end

function M.available()
  if hiredis() then return true end
  return nil, "the ocr.hiredis module is not built (apt-get install libhiredis-dev, then make)"
end

function M.new(opts)
  local self = setmetatable({
    host = opts.host or "127.0.0.1", port = opts.port or 6379, path = opts.path,
    password = opts.password, user = opts.user, db = opts.db or 0,
    timeout = opts.timeout or 0.25, max_reply = opts.max_reply or 64 * 1024 * 1024,
    pool_size = opts.pool_size or 32, keepalive = opts.keepalive or 60,
  }, Conn)
  -- The keep-alive pool's name: what makes a connection reusable (never the password itself).
  self.pool = ("ocr-redis:%s:%s:%s:%s:%s"):format(self.path or self.host, self.path and "" or self.port,
    self.db, self.user or "", self.password and core.hex(core.sha256(self.password)):sub(1, 16) or "")
  return self
end

function Conn:where()
  if self.path then return ("unix:%s/%d"):format(self.path, self.db) end
  return ("%s:%d/%d"):format(self.host, self.port, self.db)
end

-- What a new connection says first: AUTH and SELECT.
local function hello(call)
  return function(self, c)
    if self.password then
      local ok, err, kind
      if self.user then ok, err, kind = call(c, "AUTH", self.user, self.password)
      else ok, err, kind = call(c, "AUTH", self.password) end
      if not ok then return nil, "AUTH: " .. tostring(err), kind end
    end
    if self.db ~= 0 then
      local ok, err, kind = call(c, "SELECT", self.db)
      if not ok then return nil, "SELECT: " .. tostring(err), kind end
    end
    return true
  end
end

-- A Redis error during the greeting means the connection is of no use: "auth" for the caller.
local function greeting_failed(err, kind)
  return nil, err, kind == "reply" and "auth" or kind
end

---------------------------------------------------------------------------------------------
-- blocking: ocr.hiredis's own connection.

local function blocking_call(c, ...) return c:call(...) end
local blocking_hello = hello(blocking_call)

function Conn:blocking(...)
  local h = hiredis()
  if not h then return nil, select(2, M.available()), "io" end
  if not self.c then
    local c, err, kind = h.connect{ host = self.host, port = self.port, path = self.path,
                                    timeout = self.timeout, max_reply = self.max_reply }
    if not c then return nil, err, kind or "io" end
    local ok, herr, hkind = blocking_hello(self, c)
    if not ok then
      c:close()
      return greeting_failed(herr, hkind)
    end
    self.c = c
  end
  local v, err, kind = self.c:call(...)
  if v == nil and kind ~= "reply" then self.c = nil end   -- (closed by the module: connect again)
  return v, err, kind
end

---------------------------------------------------------------------------------------------
-- cosocket: one pooled connection per call.

local function cosocket_call(c, ...)
  local h = hiredis()
  local ok, err = c.sock:send(h.encode(...))
  if not ok then return nil, err, err == "timeout" and "timeout" or "io" end
  local r = c.reader
  while true do
    local v, rerr, kind = r:get()
    if v ~= nil then return v end
    if rerr then return nil, rerr, kind end
    local data, serr = c.sock:receiveany(65536)
    if not data then return nil, serr, serr == "timeout" and "timeout" or "io" end
    local fed, ferr = r:feed(data)
    if not fed then return nil, ferr, "protocol" end
  end
end
local cosocket_hello = hello(cosocket_call)

function Conn:cosocket(...)
  local h = hiredis()
  if not h then return nil, select(2, M.available()), "io" end
  local ngx = rawget(_G, "ngx")
  local sock = ngx.socket.tcp()
  local ms = math.max(1, math.floor(self.timeout * 1000))
  sock:settimeouts(ms, ms, ms)
  local ok, err
  if self.path then ok, err = sock:connect("unix:" .. self.path, { pool = self.pool })
  else ok, err = sock:connect(self.host, self.port, { pool = self.pool }) end
  if not ok then return nil, "connect: " .. tostring(err), err == "timeout" and "timeout" or "io" end
  local c = { sock = sock, reader = h.reader(self.max_reply) }
  if (sock:getreusedtimes() or 0) == 0 then
    local hok, herr, hkind = cosocket_hello(self, c)
    if not hok then
      sock:close()
      return greeting_failed(herr, hkind)
    end
  end
  local v, cerr, kind = cosocket_call(c, ...)
  if v == nil and kind ~= "reply" then
    sock:close()
  else
    sock:setkeepalive(self.keepalive * 1000, self.pool_size)
  end
  return v, cerr, kind
end

---------------------------------------------------------------------------------------------

function Conn:call(...)
  local how, why = transport_here()
  if how == "cosocket" then return self:cosocket(...) end
  if how == "blocking" then return self:blocking(...) end
  return nil, why, "phase"
end

function Conn:close()
  if self.c then self.c:close() end
  self.c = nil
end

return M
