--- What a call costs, and a client's running totals (client:stats()).
--
-- A provider declares what its billed requests (ctx:request{billed = true}) cost in its own unit:
--   cost = { credits = n, unit = "credit", per = "create", when = "success" | "answered" }
-- or a function `cost(ctx, req) -> that table | nil` (a price that depends on the request), or
-- no `cost` at all when the price is unknown (then res.cost is nil). `when` says which attempts
-- are billed:
--   "success"   the vendor accepted the request (an answer its check passed);
--   "answered"  every answer, failures too, except refusals (below).
-- Under both, an attempt that never left this machine costs nothing, nor does an answer that
-- refused the request before any work (rate limited, the vendor busy, credentials refused, out
-- of credits: what ocr.retry re-sends a billed request after, plus auth and quota); an attempt
-- sent whose answer was lost counts, as it may have been billed. A provider's check that knows
-- better marks its error `billed = true` (a failure the vendor charges) or `billed = false`.
local M = {}

M.WHEN = { success = true, answered = true }

--- Checks a cost declaration (a provider's `cost`, a client's `cost` option); raises naming
--- `where`. Returns the declaration.
function M.check(where, spec)
  if type(spec) == "function" then return spec end
  assert(type(spec) == "table", where .. ": cost must be a table or a function")
  for k in pairs(spec) do
    assert(k == "credits" or k == "unit" or k == "per" or k == "when",
           ("%s: unknown cost field '%s' (credits, unit, per, when)"):format(where, tostring(k)))
  end
  assert(type(spec.credits) == "number" and spec.credits >= 0 and spec.credits < math.huge,
         where .. ": cost.credits must be a number >= 0")
  assert(spec.unit == nil or type(spec.unit) == "string", where .. ": cost.unit must be a string")
  assert(spec.per == nil or type(spec.per) == "string", where .. ": cost.per must be a string")
  assert(spec.when == nil or M.WHEN[spec.when], where .. ': cost.when must be "success" or "answered"')
  return spec
end

--- The declaration that prices `req` for `ctx`: the table, or what the function returns (a
--- malformed one is treated as unknown). nil: unknown.
function M.price(spec, ctx, req)
  if type(spec) == "function" then
    local ok, t = pcall(spec, ctx, req)
    if not (ok and type(t) == "table" and type(t.credits) == "number" and t.credits >= 0) then return nil end
    return t
  end
  return spec
end

-- Answers that refused a billed request before any work was done.
local REFUSED = { rate_limited = true, auth = true, quota = true }

--- Whether one attempt of a billed request was billed under `price`: `answered` (an answer
--- came back), `err` (nil when the provider's check passed).
function M.billed(price, answered, err)
  if not err then return true end
  if err.sent == false then return false end
  if err.billed ~= nil then return err.billed == true end   -- (the provider's check knows)
  if not answered then return true end      -- sent, answer lost: it may have been billed
  if REFUSED[err.kind] or err.vendor_busy then return false end
  return (price.when or "success") == "answered"
end

--- A client's running totals: calls, successes, failures by kind, credits, and the latency of
--- its successful calls over the last `window` of them (bounded memory).
local Stats = {}
Stats.__index = Stats

M.WINDOW = 512

function M.stats()
  return setmetatable({ requests = 0, successes = 0, failures = {}, credits = 0, unknown = false,
                        ring = {}, at = 0 }, Stats)
end

--- Records a finished call: `err` (nil on success), `credits` (nil: unknown), `latency` (s,
--- successes only).
function Stats:record(err, credits, latency)
  self.requests = self.requests + 1
  if err then
    local kind = type(err) == "table" and err.kind or "protocol"
    self.failures[kind] = (self.failures[kind] or 0) + 1
  else
    self.successes = self.successes + 1
    if latency then
      self.at = self.at % M.WINDOW + 1
      self.ring[self.at] = latency
    end
  end
  if credits then self.credits = self.credits + credits else self.unknown = true end
end

-- The nearest-rank percentile p (0..1) of a sorted list.
local function percentile(sorted, p)
  local n = #sorted
  if n == 0 then return nil end
  return sorted[math.max(1, math.ceil(p * n))]
end

--- A snapshot (a fresh table the caller may keep).
function Stats:snapshot(unit)
  local failures, sorted = {}, {}
  for k, v in pairs(self.failures) do failures[k] = v end
  for i, v in ipairs(self.ring) do sorted[i] = v end
  table.sort(sorted)
  return {
    requests = self.requests, successes = self.successes, failures = failures,
    credits = not self.unknown and self.credits or nil, unit = unit,
    latency = { p50 = percentile(sorted, 0.5), p95 = percentile(sorted, 0.95), samples = #sorted },
  }
end

return M
