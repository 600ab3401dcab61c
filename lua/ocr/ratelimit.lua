--- Rate limits: a token bucket per provider and credential, shared by every client of that
-- credential in the process, so that billed creates wait for a token instead of collecting 429s.
--
-- The bucket reserves: a caller that finds no token gets the time at which its token will exist,
-- and the bucket goes into debt, so N waiting callers are spaced exactly 1/rate apart in arrival
-- order. Reserved times are only as good as the wake-ups: a caller woken late (a loaded machine)
-- would be followed at once by the next, on time, and the vendor would see the two closer than
-- its limit. So a caller that waited (with burst 1, any caller: a token that refilled while the
-- caller before went late is no licence to follow it at once) also keeps 1/rate after the last
-- caller of its key in this process that actually went (`spacing`, `go`, and `on_start` when
-- the request really leaves).
-- The store is pluggable so that buckets can be shared across processes: the nginx host keeps
-- them in a lua_shared_dict (ocr.hosts.nginx), a client's `store` option or `set_store` installs
-- another (ocr.store.redis: a fleet). A store is an object with
--   take(key, per_second, burst, now) -> seconds to wait[, went]  | nil, err (the store failed)
-- and either `last(key)` / `mark(key, now)` (when the last caller went; without them, this
-- process's) or, for a store that keeps its own clock (Redis's), `go(key, per_second, force)`
-- -> 0 (departure recorded) | seconds still to wait | nil, err. `went` true: take recorded
-- the departure already.
local core = require "ocr.core"

local M = {}

--- Process-local store.
local Memory = {}
Memory.__index = Memory

function M.memory_store()
  return setmetatable({ buckets = {}, went = {} }, Memory)
end

--- The bucket's arithmetic, for every store: `tokens` left at time `at`, refilled at
--- `per_second` up to `burst` by `now`, less the one taken. Returns the tokens left (negative:
--- callers in debt) and the seconds the caller waits for its token (0 = now).
function M.refill(tokens, at, per_second, burst, now)
  tokens = math.min(burst, tokens + math.max(0, now - at) * per_second) - 1
  if tokens >= 0 then return tokens, 0 end
  return tokens, -tokens / per_second
end

function Memory:take(key, per_second, burst, now)
  local b = self.buckets[key]
  if not b then
    b = { tokens = burst, at = now }
    self.buckets[key] = b
  end
  local wait
  b.tokens, wait = M.refill(b.tokens, b.at, per_second, burst, now)
  b.at = now
  return wait
end

--- When the last caller of `key` went ahead (sent), and recording it: see Limiter:spacing.
function Memory:last(key) return self.went[key] end
function Memory:mark(key, now) self.went[key] = now end

local memory = M.memory_store()
local store         -- set_store's, which wins over the host's (an nginx shared dict)

--- Makes every limiter use `s` (nil: back to the host's store, else this process's memory).
function M.set_store(s)
  assert(s == nil or (type(s) == "table" and type(s.take) == "function"),
         "ratelimit.set_store: object with take() expected")
  store = s
end

--- The store in force: set_store's, else `host_store` (the host's, may be nil), else memory.
function M.get_store(host_store) return store or host_store or memory end

local Limiter = {}
Limiter.__index = Limiter

--- A limiter for `key` (already free of secrets). rate = {per_second=, burst=, margin=}:
-- `margin` (default 0.02) slows the rate slightly so that clock and network jitter never push
-- two requests into the vendor's same one-second window.
function M.limiter(key, rate)
  assert(type(rate.per_second) == "number" and rate.per_second > 0, "rate.per_second must be > 0")
  local margin = rate.margin or 0.02
  local l = setmetatable({ key = key, per_second = rate.per_second * (1 - margin),
                           burst = rate.burst or 1 }, Limiter)
  -- The departure recorded again, for the transport to call when the request actually leaves:
  -- a job's request may wait for the next step, and the next caller must be spaced from the
  -- real departure.
  l.on_start = function() l:depart(true) end
  return l
end

--- Waits until a caller may send, with `sleep(seconds)` (the runtime's: a timer inside a job):
-- for its token, then, unless it is one of a burst with tokens to spare, until 1/rate after
-- the last departure. `on_wait(seconds)`, if given, hears a wait for a token. Records the
-- departure; pass `self.on_start` to the transport for when the request really leaves.
-- `last`/`mark` of stores that do not share them (set_store's own) are this process's.
local function went_store(s) return s.mark and s or memory end

--- `host_store` is the host's (ocr.host: rate_store), used unless set_store installed one;
--- `own` (a client's `store` option) wins over both. Returns true, or nil and the store's error
--- (a shared store that is down and told to fail).
function Limiter:acquire(sleep, on_wait, host_store, own)
  self.store = own or M.get_store(host_store)
  local wait, went = self:wait()
  if wait == nil then return nil, went end
  if wait > 0 then
    if on_wait then on_wait(wait) end
    sleep(wait)
  end
  if went then return true end            -- (the store recorded the departure with the token)
  local together = wait == 0 and self.burst > 1   -- (callers of a burst, tokens to spare)
  while true do
    local late, err = self:depart(together)
    if late == nil then return nil, err end
    if late <= 0 then return true end
    sleep(late)
  end
end

--- A departure through `s`'s last/mark: 0 and recorded at `now` when 1/per_second has passed
--- since the last one (or `force`), else the seconds still to keep.
function M.depart(s, key, per_second, force, now)
  now = now or core.monotime()
  local last = s:last(key)
  if not force and last and last + 1 / per_second > now then return last + 1 / per_second - now end
  s:mark(key, now)
  return 0
end

--- A departure now (see M.depart): a store with a clock of its own (Redis's) decides with its
--- `go`; any other through its last/mark, or this process's when it has none.
function Limiter:depart(force)
  local s = self.store or M.get_store()
  if s.go then return s:go(self.key, self.per_second, force) end
  return M.depart(went_store(s), self.key, self.per_second, force)
end

--- Takes a token; returns the seconds to wait before using it (0 = now). The clock is the
--- system's monotonic one, which every process on the machine shares.
function Limiter:wait(now)
  local s = self.store or M.get_store()
  return s:take(self.key, self.per_second, self.burst, now or core.monotime())
end

--- After waiting for its token: the seconds still to wait so as to go 1/rate after the last
-- caller that went.
function Limiter:spacing(now)
  local last = went_store(self.store or M.get_store()):last(self.key)
  if not last then return 0 end
  return math.max(0, last + 1 / self.per_second - (now or core.monotime()))
end

--- Records that a caller goes ahead (sends) now.
function Limiter:go(now)
  went_store(self.store or M.get_store()):mark(self.key, now or core.monotime())
end

--- A key for a provider and credential that does not contain the credential itself.
function M.key(provider, credential)
  return provider .. ":" .. core.hex(core.sha1(credential or "")):sub(1, 16)
end

return M
