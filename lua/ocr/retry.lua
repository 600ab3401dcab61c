--- When to send a request again, and how long to wait first.
--
-- The rule that matters most: a *billed* request (one that creates work the vendor charges for) is
-- re-sent only when the vendor cannot have processed it — it said so (429, or a documented busy
-- code), or not one byte of the request left this machine. After a billed request was sent and its
-- answer lost, we fail with a retryable error instead of paying twice behind the user's back.
local runtime = require "ocr.runtime"

local M = {}

M.DEFAULTS = { retries = 3, base = 0.5, cap = 20, retry_after_cap = 60 }

--- Whether `err` (an ocr.error) may be retried for a request that is `billed` or not.
function M.should_retry(err, billed)
  if not err.retryable then return false end
  if not billed then return true end
  if err.sent == false then return true end
  return err.kind == "rate_limited" or err.vendor_busy == true
end

--- Seconds to wait before attempt `attempt + 1` (attempt >= 1): exponential backoff with full
-- jitter, or the server's Retry-After when it gave one (capped).
function M.delay(attempt, err, policy)
  policy = policy or M.DEFAULTS
  if err and err.retry_after then
    return math.min(err.retry_after, policy.retry_after_cap or M.DEFAULTS.retry_after_cap)
  end
  local base, cap = policy.base or M.DEFAULTS.base, policy.cap or M.DEFAULTS.cap
  local ceiling = math.min(cap, base * 2 ^ (attempt - 1))
  return ceiling * runtime.random()
end

--- A token bucket that bounds how many retries a client makes over time, so a failing vendor is
-- not hammered: each retry takes a token; tokens come back at `refill` per second up to `size`.
local Budget = {}
Budget.__index = Budget

function M.budget(size, refill)
  return setmetatable({ size = size or 20, refill = refill or 1, tokens = size or 20,
                        at = runtime.now() }, Budget)
end

function Budget:take()
  local now = runtime.now()
  self.tokens = math.min(self.size, self.tokens + (now - self.at) * self.refill)
  self.at = now
  if self.tokens >= 1 then
    self.tokens = self.tokens - 1
    return true
  end
  return false
end

return M
