--- ocr.store.redis: one Redis shared by every process and machine of a fleet, for rate limits,
-- budgets, the result cache and pending task ids. The store interface of ocr.store (get, set,
-- add, incr, delete with TTLs) plus the rate limiter's `take` and `go`.
--
--   local store = ocr.store.redis{ host = "10.0.0.5", port = 6379, password = os.getenv("REDIS_PASSWORD"),
--                                  db = 0, prefix = "ocr:", timeout = 0.25, on_store_error = "local" }
--   local store = ocr.store.redis("redis://:secret@10.0.0.5:6379/0")     -- the same, from a URL
--
-- Rate limits run in one server-side script per call (EVALSHA; loaded again after a restart or a
-- failover answers NOSCRIPT), on Redis's own clock (TIME): machines whose clocks disagree share
-- one bucket exactly. The bucket is ocr.ratelimit's: tokens in debt space waiting callers 1/rate
-- apart in arrival order, and every departure keeps 1/rate after the fleet's last one.
--
-- When Redis cannot be reached (every call is bounded by `timeout`; after a failure Redis is
-- tried again `retry_after` seconds later, not on every call):
--   on_store_error = "local"  (default) this process's memory stands in: its own bucket, its own
--                             keys; one `store_down` log event per outage, `store_up` after
--   on_store_error = "fail"   every call answers nil, err: billed requests fail (kind "server")
--                             before anything is sent
-- Nothing raises and nothing logged or returned carries the password.
local core = require "ocr.core"
local url = require "ocr.url"
local redis = require "ocr.redis"
local ratelimit = require "ocr.ratelimit"

local M = {}

local unpack = table.unpack or unpack

local Store = {}
Store.__index = Store
M.Store = Store

local OPTIONS = { host = "string", port = "number", path = "string", password = "string", user = "string",
                  db = "number", prefix = "string", timeout = "number", on_store_error = "string",
                  retry_after = "number", log = "function", max_reply = "number", pool_size = "number",
                  keepalive = "number", url = "string" }

-- The bucket: ocr.ratelimit.refill's arithmetic on Redis's clock, and the departure spacing.
-- Returns {wait, gap}: seconds to wait for the token, and (wait 0, burst 1) seconds still to keep
-- after the last departure; when both are 0 the departure is recorded now.
local TAKE = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'went')
local tokens, at, went = tonumber(b[1]), tonumber(b[2]), tonumber(b[3])
if not tokens then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate) - 1
local wait, gap = 0, 0
if tokens < 0 then wait = -tokens / rate end
if wait == 0 and burst <= 1 and went then gap = math.max(0, went + 1 / rate - now) end
if wait == 0 and gap == 0 then went = now end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now),
           'went', string.format('%.6f', went or 0))
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 1 / rate + 60) * 1000))
return { string.format('%.6f', wait), string.format('%.6f', gap) }
]]

-- A departure: 0 and recorded now when 1/rate has passed since the last one (or ARGV[2] == "1":
-- recorded anyway, for the moment a request really leaves), else the seconds still to keep.
local GO = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate = tonumber(ARGV[1])
local went = tonumber(redis.call('HGET', KEYS[1], 'went'))
if ARGV[2] ~= '1' and went then
  local gap = went + 1 / rate - now
  if gap > 0 then return string.format('%.6f', gap) end
end
if not went or now > went then
  redis.call('HSET', KEYS[1], 'went', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((1 / rate + 60) * 1000))
end
return '0'
]]

-- incr with ocr.store's meaning: an absent key starts at `init` (and gets the ttl), or is "not found".
local INCR = [[
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[2] == '' then return false end
  redis.call('SET', KEYS[1], ARGV[2])
  if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
return redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
]]

local SCRIPTS = { take = TAKE, go = GO, incr = INCR }
local SHA = {}
for name, body in pairs(SCRIPTS) do SHA[name] = core.hex(core.sha1(body)) end

local function default_log(event)
  local line = ("ocr: %s: %s"):format(event.event, event.message)
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.log then ngx.log(ngx.WARN, line) else io.stderr:write(line, "\n") end
end

--- Reads "redis://[user][:password@]host[:port][/db]" into options.
function M.parse_url(s)
  local u, err = url.parse(s)
  if not u then return nil, "bad Redis URL: " .. err end
  if u.scheme == "rediss" then return nil, "rediss:// (TLS) is not supported: use a TLS tunnel to Redis" end
  if u.scheme ~= "redis" then return nil, "a Redis URL starts with redis://" end
  if not u.host or u.host == "" then return nil, "the Redis URL names no host" end
  local o = { host = u.host, port = u.port or 6379 }
  if u.userinfo then
    local user, pass = u.userinfo:match("^([^:]*):(.*)$")
    if user then
      o.user = user ~= "" and url.unescape(user) or nil
      o.password = url.unescape(pass)
    else
      o.password = url.unescape(u.userinfo)
    end
  end
  local db = u.path:match("^/(%d+)$")
  if u.path ~= "" and u.path ~= "/" and not db then return nil, "the Redis URL's path must be a database number" end
  o.db = tonumber(db) or 0
  return o
end

local function check(opts)
  if type(opts) == "string" then
    local o, err = M.parse_url(opts)
    if not o then error("ocr.store.redis: " .. err, 3) end
    opts = o
  end
  if opts ~= nil and type(opts) ~= "table" then error("ocr.store.redis: options table or URL expected", 3) end
  local given = opts or {}
  opts = {}                              -- (a copy: the caller's table is never changed)
  for k, v in pairs(given) do opts[k] = v end
  for k, v in pairs(opts) do
    if not OPTIONS[k] then error(("ocr.store.redis: unknown option '%s'"):format(tostring(k)), 3) end
    if type(v) ~= OPTIONS[k] then
      error(("ocr.store.redis: option '%s' must be a %s"):format(k, OPTIONS[k]), 3)
    end
  end
  if opts.url then
    local o, err = M.parse_url(opts.url)
    if not o then error("ocr.store.redis: " .. err, 3) end
    for k, v in pairs(o) do if opts[k] == nil then opts[k] = v end end
  end
  local mode = opts.on_store_error or "local"
  if mode ~= "local" and mode ~= "fail" then
    error("ocr.store.redis: on_store_error must be \"local\" or \"fail\"", 3)
  end
  if opts.port and (opts.port < 1 or opts.port > 65535 or opts.port % 1 ~= 0) then
    error("ocr.store.redis: port must be 1..65535", 3)
  end
  if opts.db and (opts.db < 0 or opts.db % 1 ~= 0) then error("ocr.store.redis: db must be an integer >= 0", 3) end
  if opts.timeout and not (opts.timeout > 0 and opts.timeout <= 60) then
    error("ocr.store.redis: timeout must be seconds in (0, 60]", 3)
  end
  return opts, mode
end

--- A store on Redis (see above). Connects on first use, never here.
function M.new(opts)
  local mode
  opts, mode = check(opts)
  local ok, why = redis.available()
  if not ok then error("ocr.store.redis: " .. why, 2) end
  return setmetatable({
    conn = redis.new(opts), prefix = opts.prefix or "ocr:", on_store_error = mode,
    retry_after = opts.retry_after or 1, log = opts.log or default_log,
    memory = require("ocr.store").memory{ max_items = 10000 }, bucket = ratelimit.memory_store(),
    outages = 0, script_loads = 0, now = core.monotime,
  }, Store)
end

function Store:__tostring() return "ocr.store.redis(" .. self.conn:where() .. ")" end

-- An outage begins (logged once) or goes on; Redis is tried again after retry_after.
function Store:outage(err)
  self.retry_at = self.now() + self.retry_after
  if not self.down then
    self.down, self.down_since = true, self.now()
    self.outages = self.outages + 1
    self.log{ event = "store_down", store = "redis", where = self.conn:where(), error = err,
              fallback = self.on_store_error,
              message = ("Redis at %s unreachable (%s): %s"):format(self.conn:where(), err,
                self.on_store_error == "local" and "this process's own limits and memory until it is back"
                or "billed requests fail until it is back") }
  end
end

function Store:recovered()
  self.down = false
  local seconds = self.now() - (self.down_since or self.now())
  self.log{ event = "store_up", store = "redis", where = self.conn:where(), seconds = seconds,
            message = ("Redis at %s is back after %.1f s"):format(self.conn:where(), seconds) }
end

--- One command. nil, err, kind when Redis failed or refused; an outage is noted.
function Store:call(...)
  if self.down and self.now() < self.retry_at then return nil, "Redis unreachable", "down" end
  local v, err, kind = self.conn:call(...)
  if kind == "phase" then return nil, err, kind end   -- (not an outage: Redis was not asked)
  if v == nil and kind ~= "reply" then
    self:outage(err)
    return nil, err, kind
  end
  if self.down then self:recovered() end
  return v, err, kind
end

-- A script by its hash, loaded again (EVAL caches it) when Redis answers NOSCRIPT.
function Store:script(name, key, ...)
  local v, err, kind = self:call("EVALSHA", SHA[name], 1, key, ...)
  if v == nil and kind == "reply" and tostring(err):find("NOSCRIPT", 1, true) then
    self.script_loads = self.script_loads + 1
    v, err, kind = self:call("EVAL", SCRIPTS[name], 1, key, ...)
  end
  return v, err, kind
end

-- What a failed call answers: a Redis error is the caller's; an outage is the memory's answer
-- ("local") or nil, err ("fail").
function Store:failed(err, kind, fallback, ...)
  if kind == "reply" then return nil, "Redis: " .. tostring(err) end
  if self.on_store_error == "local" then return fallback(...) end
  return nil, "store unavailable: Redis at " .. self.conn:where() .. ": " .. tostring(err)
end

local function check_key(key)
  assert(type(key) == "string" and key ~= "", "store: key must be a non-empty string")
end

local function ms(ttl)
  assert(ttl == nil or (type(ttl) == "number" and ttl >= 0), "store: ttl must be seconds >= 0 or nil")
  return ttl and ttl > 0 and math.max(1, math.ceil(ttl * 1000)) or nil
end

local function num(s)
  return ("%.17g"):format(s)
end

function Store:get(key)
  check_key(key)
  local v, err, kind = self:call("GET", self.prefix .. key)
  if v == nil then return self:failed(err, kind, self.memory.get, self.memory, key) end
  return v or nil
end

-- SET, with NX for add; the ttl as PX milliseconds. Returns the reply, or what `failed` gives
-- (the memory's `method` during an outage).
local function set(self, method, key, value, ttl)
  check_key(key)
  assert(type(value) == "string" or type(value) == "number", "store: value must be a string or a number")
  local args = { "SET", self.prefix .. key, value }
  if method == "add" then args[#args + 1] = "NX" end
  local px = ms(ttl)
  if px then args[#args + 1], args[#args + 2] = "PX", px end
  local v, err, kind = self:call(unpack(args))
  if v == nil then return nil, self:failed(err, kind, self.memory[method], self.memory, key, value, ttl) end
  return v
end

function Store:set(key, value, ttl)
  local v, fallback, ferr = set(self, "set", key, value, ttl)
  if v == nil then return fallback, ferr end
  return true
end

function Store:add(key, value, ttl)
  local v, fallback, ferr = set(self, "add", key, value, ttl)
  if v == nil then return fallback, ferr end
  if v == false then return false, "exists" end
  return true
end

function Store:incr(key, by, init, ttl)
  check_key(key)
  assert(type(by) == "number", "store: incr needs a number")
  assert(init == nil or type(init) == "number", "store: init must be a number")
  local v, err, kind = self:script("incr", self.prefix .. key, num(by), init and num(init) or "", ms(ttl) or 0)
  if v == nil then return self:failed(err, kind, self.memory.incr, self.memory, key, by, init, ttl) end
  if v == false then return nil, "not found" end
  return tonumber(v)
end

function Store:delete(key)
  check_key(key)
  local v, err, kind = self:call("DEL", self.prefix .. key)
  if v == nil then return self:failed(err, kind, self.memory.delete, self.memory, key) end
  return true
end

---------------------------------------------------------------------------------------------
-- Rate limits (ocr.ratelimit's store interface): take, then go until it answers 0.

-- This process's stand-ins for the bucket and the last departure, during an outage.
local function local_take(self, key, per_second, burst)
  local wait = self.bucket:take(key, per_second, burst, core.monotime())
  return wait, false
end

local function local_go(self, key, per_second, force)
  return ratelimit.depart(self.bucket, key, per_second, force)
end

--- Takes a token: the seconds to wait for it, and whether the departure is already recorded
--- (then the caller goes once it has waited; else it calls `go`). `now` is not used: Redis's
--- clock is the fleet's.
function Store:take(key, per_second, burst)
  local v, err, kind = self:script("take", self.prefix .. "rate:" .. key, num(per_second), num(burst))
  if v == nil or type(v) ~= "table" then
    if v ~= nil then err, kind = "unexpected answer to the rate script", "reply" end
    return self:failed(err, kind, local_take, self, key, per_second, burst)
  end
  local wait, gap = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  return math.max(wait, gap), wait == 0 and gap == 0
end

--- A departure now: 0 (recorded) or the seconds still to wait. `force`: record it anyway.
function Store:go(key, per_second, force)
  local v, err, kind = self:script("go", self.prefix .. "rate:" .. key, num(per_second), force and "1" or "0")
  if v == nil then return self:failed(err, kind, local_go, self, key, per_second, force) end
  return tonumber(v) or 0
end

function Store:close() self.conn:close() end

return M
