--- Key-value stores with TTLs: where ocr.cache keeps results and pending task ids. A store is
-- any object with these methods (keys are strings, values strings or, for incr, numbers; `ttl`
-- is seconds, nil or 0 for none), so that other stores (an nginx shared dict, Redis) plug in:
--
--   store:get(key)                      -> value | nil (absent or expired)
--   store:set(key, value[, ttl])        -> true | nil, err
--   store:add(key, value[, ttl])        -> true | false, "exists" | nil, err   (set if absent)
--   store:incr(key, by[, init[, ttl]])  -> new number | nil, err  (absent: init + by, or nil, "not found")
--   store:delete(key)                   -> true
--
-- M.memory{max_items=} keeps them in this Lua state (least recently used let go first);
-- M.dir(path) keeps one file per key, shared by every process that opens the same directory;
-- M.redis{...} keeps them in Redis, shared by a fleet (ocr.redis_store, loaded when used).
local core = require "ocr.core"
local files = require "ocr.files"

local M = {}

--- A store on Redis: see ocr.redis_store.
function M.redis(opts) return require("ocr.redis_store").new(opts) end

local function check_ttl(ttl)
  assert(ttl == nil or (type(ttl) == "number" and ttl >= 0), "store: ttl must be seconds >= 0 or nil")
  return ttl ~= nil and ttl > 0 and ttl or nil
end

local function check_key(key)
  assert(type(key) == "string" and key ~= "", "store: key must be a non-empty string")
end

local function check_value(value)
  local t = type(value)
  assert(t == "string" or t == "number", "store: value must be a string or a number")
end

---------------------------------------------------------------------------------------------
-- memory: a hash of nodes on a doubly linked list, most recently used first.

local Memory = {}
Memory.__index = Memory

function M.memory(opts)
  opts = opts or {}
  assert(type(opts) == "table", "ocr.store.memory: options must be a table")
  for k in pairs(opts) do
    assert(k == "max_items", "ocr.store.memory: unknown option '" .. tostring(k) .. "'")
  end
  local max = opts.max_items or 10000
  assert(type(max) == "number" and max >= 1 and max % 1 == 0, "ocr.store.memory: max_items must be an integer >= 1")
  local head = {}
  head.prev, head.next = head, head
  return setmetatable({ max_items = max, count = 0, nodes = {}, head = head, now = core.monotime }, Memory)
end

local function unlink(node)
  node.prev.next, node.next.prev = node.next, node.prev
end

local function push_front(head, node)
  node.prev, node.next = head, head.next
  head.next.prev = node
  head.next = node
end

-- The live node of `key` (an expired one is removed), moved to the front.
local function live(self, key)
  local node = self.nodes[key]
  if not node then return nil end
  if node.expires and node.expires <= self.now() then
    unlink(node)
    self.nodes[key] = nil
    self.count = self.count - 1
    return nil
  end
  unlink(node)
  push_front(self.head, node)
  return node
end

function Memory:get(key)
  local node = live(self, key)
  return node and node.value
end

function Memory:set(key, value, ttl)
  check_key(key)
  check_value(value)
  ttl = check_ttl(ttl)
  local expires = ttl and self.now() + ttl or nil
  local node = self.nodes[key]
  if node then
    node.value, node.expires = value, expires
    unlink(node)
    push_front(self.head, node)
    return true
  end
  node = { key = key, value = value, expires = expires }
  self.nodes[key] = node
  push_front(self.head, node)
  self.count = self.count + 1
  while self.count > self.max_items do   -- the least recently used goes
    local last = self.head.prev
    unlink(last)
    self.nodes[last.key] = nil
    self.count = self.count - 1
  end
  return true
end

function Memory:add(key, value, ttl)
  check_key(key)
  if live(self, key) then return false, "exists" end
  return self:set(key, value, ttl)
end

function Memory:incr(key, by, init, ttl)
  check_key(key)
  assert(type(by) == "number", "store: incr needs a number")
  local node = live(self, key)
  if not node then
    if init == nil then return nil, "not found" end
    assert(type(init) == "number", "store: init must be a number")
    self:set(key, init + by, ttl)
    return init + by
  end
  local n = tonumber(node.value)
  if not n then return nil, "not a number" end
  node.value = n + by
  return n + by
end

function Memory:delete(key)
  local node = self.nodes[key]
  if node then
    unlink(node)
    self.nodes[key] = nil
    self.count = self.count - 1
  end
  return true
end

---------------------------------------------------------------------------------------------
-- dir: one file per key. An entry is a header line and the value:
--   "ocr-store 1 <s|n> <expires: unix seconds, 0 none> <length> <sha256 of the value, hex>\n" value
-- It is written whole under a temporary name, fsynced, and renamed over the key's name (rename
-- is atomic: a reader sees the old entry or the new one); add links it instead (link fails
-- when the name exists: one of several processes wins). An entry that does not parse, whose
-- length or checksum is wrong (a disk or a copy that lost its tail), or expired, reads as absent
-- and is replaced by the next set; it is never returned.

local Dir = {}
Dir.__index = Dir

local MAGIC = "ocr-store 1 "
local LOCK_STALE = 10     -- seconds after which an incr lock left by a killed process is broken
local LOCK_WAIT = 5       -- seconds incr waits for a lock

local function expand(path)
  if path:sub(1, 2) == "~/" or path == "~" then
    local home = os.getenv("HOME")
    assert(home and home ~= "", "ocr.store.dir: ~ given but HOME is not set")
    path = home .. path:sub(2)
  end
  return path
end

-- mkdir -p
local function make_dirs(path)
  local st = core.stat(path)
  if st then return st.type == "directory" end
  local parent = path:match("^(.*)/[^/]+/*$")
  if parent and parent ~= "" and not core.stat(parent) then make_dirs(parent) end
  local ok, _, why = core.mkdir(path)
  return ok or why == "exists"
end

function M.dir(path, opts)
  assert(type(path) == "string" and path ~= "", "ocr.store.dir: a directory path expected")
  opts = opts or {}
  assert(type(opts) == "table", "ocr.store.dir: options must be a table")
  for k in pairs(opts) do
    assert(k == "sync", "ocr.store.dir: unknown option '" .. tostring(k) .. "'")
  end
  path = expand(path):gsub("/+$", "")
  if path == "" then path = "/" end
  if not make_dirs(path) then error("ocr.store.dir: cannot create the directory " .. path, 2) end
  return setmetatable({ path = path, sync = opts.sync ~= false, time = os.time }, Dir)
end

-- The file of `key`: the key itself when it is a plain name, else the hex SHA-256 of it.
function Dir:file(key)
  check_key(key)
  if #key <= 128 and key:find("^[%w_%-][%w_%-%.]*$") then return self.path .. "/k-" .. key end
  return self.path .. "/h-" .. core.hex(core.sha256(key))
end

local function encode(value, ttl, now)
  local kind = type(value) == "number" and "n" or "s"
  local s = kind == "n" and string.format("%.17g", value) or value
  local expires = ttl and now + math.ceil(ttl) or 0
  return ("%s%s %d %d %s\n%s"):format(MAGIC, kind, expires, #s, core.hex(core.sha256(s)), s)
end

-- The value of an entry's bytes, or nil when they are damaged or expired.
local function decode(s, now)
  if not s or s:sub(1, #MAGIC) ~= MAGIC then return nil end
  local kind, expires, len, sum, start = s:match("^([sn]) (%d+) (%d+) (%x+)\n()", #MAGIC + 1)
  if not kind or #s - start + 1 ~= tonumber(len) then return nil end
  local expires_at = tonumber(expires)
  if expires_at ~= 0 and expires_at <= now then return nil end
  local value = s:sub(start)
  if core.hex(core.sha256(value)) ~= sum then return nil end
  if kind == "n" then return tonumber(value), expires_at end
  return value, expires_at
end

local read = files.read

function Dir:get(key)
  return decode(read(self:file(key)), self.time())
end

-- Writes `value` whole under a fresh temporary name; returns that name or nil, err.
function Dir:_write_temp(value, ttl)
  check_value(value)
  ttl = check_ttl(ttl)
  local data = encode(value, ttl, self.time())
  for _ = 1, 5 do
    local tmp = self.path .. "/.tmp-" .. core.hex(core.random_bytes(8))
    local ok, err, why = core.write_new(tmp, data, self.sync)
    if ok then return tmp end
    if why ~= "exists" then return nil, err end
  end
  return nil, "cannot take a temporary name in " .. self.path
end

function Dir:_synced()
  if self.sync then core.fsync(self.path) end   -- (the new name survives a crash)
  return true
end

function Dir:set(key, value, ttl)
  local file = self:file(key)
  local tmp, err = self:_write_temp(value, ttl)
  if not tmp then return nil, err end
  local ok, rerr = os.rename(tmp, file)
  if not ok then
    os.remove(tmp)
    return nil, rerr
  end
  return self:_synced()
end

function Dir:add(key, value, ttl)
  local file = self:file(key)
  local tmp, err = self:_write_temp(value, ttl)
  if not tmp then return nil, err end
  local ok, lerr, why = core.link(tmp, file)
  if ok then
    os.remove(tmp)
    return self:_synced()
  end
  if why ~= "exists" or decode(read(file), self.time()) ~= nil then
    os.remove(tmp)
    if why == "exists" then return false, "exists" end
    return nil, lerr
  end
  -- The name holds an expired or damaged entry: absent, so this one replaces it.
  ok, lerr = os.rename(tmp, file)
  if not ok then
    os.remove(tmp)
    return nil, lerr
  end
  return self:_synced()
end

-- Runs fn() holding the key's lock file (created exclusively; one a killed process left behind
-- is broken after LOCK_STALE seconds).
function Dir:_locked(key, fn)
  local lock = self:file(key):gsub("/[kh]%-([^/]*)$", "/.lock-%1")
  local deadline = core.monotime() + LOCK_WAIT
  local pause = 0.0005
  while true do
    local ok, err, why = core.create_new(lock)
    if ok then break end
    if why ~= "exists" then return nil, err end
    local st = core.stat(lock)
    if st and st.mtime < os.time() - LOCK_STALE then os.remove(lock) end
    if core.monotime() > deadline then return nil, "store: the lock of " .. key .. " is busy" end
    core.sleep(pause)
    pause = math.min(pause * 2, 0.01)
  end
  local ok, a, b = pcall(fn)
  os.remove(lock)
  if not ok then error(a, 0) end
  return a, b
end

function Dir:incr(key, by, init, ttl)
  assert(type(by) == "number", "store: incr needs a number")
  assert(init == nil or type(init) == "number", "store: init must be a number")
  return self:_locked(key, function()
    local v, expires_at = self:get(key)
    if v == nil then
      if init == nil then return nil, "not found" end
      v = init
    elseif type(v) ~= "number" then
      return nil, "not a number"
    elseif expires_at ~= 0 then
      ttl = math.max(expires_at - self.time(), 1)   -- (an existing entry keeps its expiry)
    else
      ttl = nil
    end
    local ok, err = self:set(key, v + by, ttl)
    if not ok then return nil, err end
    return v + by
  end)
end

function Dir:delete(key)
  os.remove(self:file(key))
  return true
end

return M
