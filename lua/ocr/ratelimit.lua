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
-- The store is pluggable (`set_store`) so that a deployment can share buckets across processes
-- (an nginx shared dict, Redis): a store is an object with `take(key, per_second, burst, now)
-- -> seconds to wait`.
local core = require "ocr.core"

local M = {}

--- Process-local store.
local Memory = {}
Memory.__index = Memory

function M.memory_store()
  return setmetatable({ buckets = {} }, Memory)
end

function Memory:take(key, per_second, burst, now)
  local b = self.buckets[key]
  if not b then
    b = { tokens = burst, at = now }
    self.buckets[key] = b
  end
  b.tokens = math.min(burst, b.tokens + (now - b.at) * per_second)
  b.at = now
  b.tokens = b.tokens - 1
  if b.tokens >= 0 then return 0 end
  return -b.tokens / per_second
end

local store = M.memory_store()

function M.set_store(s)
  assert(type(s) == "table" and type(s.take) == "function", "ratelimit.set_store: object with take() expected")
  store = s
end

function M.get_store() return store end

local Limiter = {}
Limiter.__index = Limiter

local went = {}   -- key -> when the last caller of that key in this process went ahead

--- A limiter for `key` (already free of secrets). rate = {per_second=, burst=, margin=}:
-- `margin` (default 0.02) slows the rate slightly so that clock and network jitter never push
-- two requests into the vendor's same one-second window.
function M.limiter(key, rate)
  assert(type(rate.per_second) == "number" and rate.per_second > 0, "rate.per_second must be > 0")
  local margin = rate.margin or 0.02
  local l = setmetatable({ key = key, per_second = rate.per_second * (1 - margin),
                           burst = rate.burst or 1 }, Limiter)
  -- go() again, for the transport to call when the request actually leaves: a job's request
  -- may wait for the next step, and the next caller must be spaced from the real departure.
  l.on_start = function() l:go() end
  return l
end

--- Waits until a caller may send, with `sleep(seconds)` (the runtime's: a timer inside a job):
-- for its token, then, if it waited (with burst 1, always), until 1/rate after the last
-- departure. `on_wait(seconds)`, if given, hears a wait for a token. Records the departure;
-- pass `self.on_start` to the transport for when the request really leaves.
function Limiter:acquire(sleep, on_wait)
  local wait = self:wait()
  if wait > 0 then
    if on_wait then on_wait(wait) end
    sleep(wait)
  end
  if wait > 0 or self.burst <= 1 then   -- (callers of a burst, tokens to spare, go together)
    local late = self:spacing()
    if late > 0 then sleep(late) end
  end
  self:go()
end

--- Takes a token; returns the seconds to wait before using it (0 = now).
function Limiter:wait(now)
  return store:take(self.key, self.per_second, self.burst, now or core.monotime())
end

--- After waiting for its token: the seconds still to wait so as to go 1/rate after the last
-- caller that went.
function Limiter:spacing(now)
  local last = went[self.key]
  if not last then return 0 end
  return math.max(0, last + 1 / self.per_second - (now or core.monotime()))
end

--- Records that a caller goes ahead (sends) now.
function Limiter:go(now)
  went[self.key] = now or core.monotime()
end

--- A key for a provider and credential that does not contain the credential itself.
function M.key(provider, credential)
  return provider .. ":" .. core.hex(core.sha1(credential or "")):sub(1, 16)
end

return M
