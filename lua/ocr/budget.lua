--- Budgets: at most `credits` spent per day, hour or run, counted in a store so that processes
-- sharing the store share the count.
--
--   local budget = require "ocr.budget"
--   local b = budget.new{ credits = 100, per = "day", store = require("ocr.store").dir("/var/lib/ocr") }
--   local r, err = b:reserve(scope, 4)      -- before sending a billed request
--   ...                                     -- r:release() when it turned out not billed
--
-- A client with `budget = {...}` reserves each billed request's credits before it is sent and
-- gives them back when the request was not billed (never sent, refused with 429...): the count
-- only ever grows through an atomic `incr`, so two jobs racing for the last credits cannot both
-- spend them. A pipeline applies its own budget to every billed request its clients make while
-- it runs with `budget.within(b, fn, ...)`.
--
-- A store is ocr.store's interface: `get(key)`, `set(key, value[, ttl])`, `add(key, value[,
-- ttl])` (set if absent), `incr(key, by[, init[, ttl]]) -> new value` (absent: init + by, or
-- nil, "not found" without init) and `delete(key)`; budgets use get and incr. Without one, a
-- process-wide in-memory store is used.
local core = require "ocr.core"

local M = {}

-- The default store: this process's memory (ocr.store's LRU: a budget keeps a few keys, one
-- per provider, credential and period, far under its bound).
M.default_store = require("ocr.store").memory()

-- Periods: the UTC day or hour (the store key's suffix; its ttl outlives it), or this budget's run.
local PERIODS = {
  day = { format = "!%Y-%m-%d", ttl = 2 * 86400 },
  hour = { format = "!%Y-%m-%dT%H", ttl = 2 * 3600 },
  run = {},
}

local Budget = {}
Budget.__index = Budget
M.Budget = Budget

local STORE_METHODS = { "get", "incr" }
local FIELDS = { credits = true, per = true, store = true, key = true }

-- The same spec table gives the same budget (a "run" is the budget's, so clients handed one
-- spec share it).
local made = setmetatable({}, { __mode = "k" })
local runs = 0

--- A budget from `spec` = {credits = N, per = "day"|"hour"|"run", store = s, key = name}: `key`
--- counts under that name instead of the scope a caller reserves in (one count for clients of
--- several credentials). Raises on a bad spec. A Budget passes through.
function M.new(spec, where)
  where = where or "budget"
  if getmetatable(spec) == Budget then return spec end
  assert(type(spec) == "table", where .. ": a table {credits = N, per = \"day\"|\"hour\"|\"run\"} expected")
  if made[spec] then return made[spec] end
  for k in pairs(spec) do
    assert(FIELDS[k], ("%s: unknown field '%s' (credits, per, store, key)"):format(where, tostring(k)))
  end
  assert(type(spec.credits) == "number" and spec.credits >= 0 and spec.credits < math.huge,
         where .. ": credits must be a number >= 0")
  assert(PERIODS[spec.per], where .. ': per must be "day", "hour" or "run"')
  local store = spec.store or M.default_store
  for _, m in ipairs(STORE_METHODS) do
    assert((type(store) == "table" or type(store) == "userdata") and type(store[m]) == "function",
           ("%s: store must have get and incr (no %s)"):format(where, m))
  end
  assert(spec.key == nil or (type(spec.key) == "string" and spec.key ~= "" and #spec.key <= 200),
         where .. ": key must be a non-empty string")
  runs = runs + 1
  local b = setmetatable({ credits = spec.credits, per = spec.per, store = store, name = spec.key,
    -- (a run is this budget's: its own id, unique across processes sharing a store)
    run = core.hex(core.sha1(("%s|%d|%s|%s"):format(tostring(os.time()), runs, tostring(spec),
                                                    tostring(math.random())))):sub(1, 16),
  }, Budget)
  made[spec] = b
  return b
end

--- The store key for `scope` now, and its ttl.
function Budget:key(scope, now)
  local p = PERIODS[self.per]
  local period = p.format and os.date(p.format, now or os.time()) or ("run-" .. self.run)
  return ("ocr:budget:%s:%s"):format(self.name or scope, period), p.ttl
end

--- Credits spent so far in this period for `scope`.
function Budget:spent(scope)
  return tonumber((self.store:get((self:key(scope))))) or 0   -- (one value: a dir store also gives its expiry)
end

-- A refusal, as the fields of an ocr.error (the caller adds its provider and ids).
local function refusal(self, credits, spent)
  return { kind = "quota", budget = true, retryable = false, sent = false,
           message = ("budget of %s credits per %s would be exceeded (%s spent, this request costs %s): nothing sent")
                     :format(self.credits, self.per, spent, credits) }
end

--- Whether `credits` more would fit now (no reservation: reserve decides): nil, or the refusal.
function Budget:check(scope, credits)
  local spent = self:spent(scope)
  if spent + credits > self.credits then return refusal(self, credits, spent) end
  return nil
end

local Reservation = {}
Reservation.__index = Reservation

--- Reserves `credits` for `scope`: returns a reservation (keep it: the credits stay spent; or
--- `release()` it), or nil and the refusal's fields (kind quota, budget = true, retryable
--- false, sent false; kind server when the store itself failed). The count grows by `incr`
--- first and shrinks back on refusal, so racing callers never spend more than the budget
--- between them.
function Budget:reserve(scope, credits)
  local key, ttl = self:key(scope)
  if credits <= 0 then return setmetatable({ credits = 0 }, Reservation) end
  local n, err = self.store:incr(key, credits, 0, ttl)
  local total = tonumber(n)
  if n == nil then   -- (the store failed: nothing is known to be left, so nothing is sent)
    return nil, { kind = "server", retryable = false, sent = false, budget = true,
                  message = "budget: " .. tostring(err or "the store failed") .. ": nothing sent" }
  end
  if not total or total > self.credits then
    if total then self.store:incr(key, -credits, 0, ttl) end
    return nil, refusal(self, credits, total and total - credits or "?")
  end
  return setmetatable({ store = self.store, key = key, ttl = ttl, credits = credits }, Reservation)
end

--- Gives the credits back (once).
function Reservation:release()
  if self.credits > 0 and self.store then self.store:incr(self.key, -self.credits, 0, self.ttl) end
  self.credits = 0
end

-- Budgets in force for the code running on a coroutine (budget.within), and for jobs it starts.
local active = setmetatable({}, { __mode = "k" })
local MAIN = {}

local function current_co() return coroutine.running() or MAIN end

--- The budgets `within` applies here, or nil: on this coroutine, and those `job` (the job
--- running here, if any) inherited from the code that submitted it.
function M.here(job)
  local mine, inherited = active[current_co()], job and job.budgets
  if not (mine and inherited) then return mine or inherited end
  local all = {}
  for _, e in ipairs(mine) do all[#all + 1] = e end
  for _, e in ipairs(inherited) do all[#all + 1] = e end
  return all
end

-- Lua 5.1 (not LuaJIT) cannot yield across pcall: there `within` calls fn plainly.
local PCALL_YIELDS = _VERSION ~= "Lua 5.1" or rawget(_G, "jit") ~= nil
local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end

--- Runs fn(...) with budget `b` (a spec or a Budget) applied, besides each client's own, to
--- every billed request made meanwhile on this coroutine or by the jobs it submits, counted
--- under `scope` (default: b's key, else "pipeline"). Returns what fn returns; re-raises.
function M.within(b, scope, fn, ...)
  if type(scope) == "function" then return M.within(b, nil, scope, fn, ...) end
  b = M.new(b, "budget.within")
  local co = current_co()
  local prev = active[co]
  local list = { { budget = b, scope = scope or b.name or "pipeline" } }
  for _, e in ipairs(prev or {}) do list[#list + 1] = e end
  active[co] = list
  local out
  if PCALL_YIELDS then out = pack(pcall(fn, ...)) else out = pack(true, fn(...)) end
  active[co] = prev
  if not out[1] then error(out[2], 0) end
  return unpack(out, 2, out.n)
end

return M
