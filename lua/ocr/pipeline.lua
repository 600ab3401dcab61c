--- Pipelines: clients made of clients. `ocr.fallback`, `ocr.race` and `ocr.cascade` each return
-- an object with the client API (`recognize`, `submit`, `recognize_all`, `provider`, `close`),
-- so that pipelines nest and run unchanged in every host (ocr.host): the hosts run a pipeline
-- as they run a client, through its `_recognize_now(input)`.
--
--   fallback  tries the members in order while their error is one the next member may not have
--   race      starts the first member, then the next every `hedge_after` seconds (or at once
--             when one fails); the first success wins, the others are cancelled
--   cascade   tries the members in order until `accept(res)` says yes; else the best result
--
-- Every result and final error carries `attempts`: one entry per member tried, in the order
-- they finished, `{provider=, kind= (nil: a result), message=, task_id=, cost=, confidence=,
-- attempts= (a nested pipeline's)}`. A member's workflow is never wrapped in pcall here: on PUC
-- Lua 5.1 a job could not yield through it.
local errors = require "ocr.errors"
local host = require "ocr.host"
local client = require "ocr.client"
local budget = require "ocr.budget"

local M = {}

--- The kinds after which the next member is tried by default: what another vendor (or this one
--- later) may not fail with. invalid_input and too_large, which every vendor would refuse, and
--- a cancel stop at once.
M.FALL_THROUGH = { "quota", "rate_limited", "server", "network", "timeout", "unsupported", "auth" }

local Pipeline = {}
Pipeline.__index = Pipeline
M.Pipeline = Pipeline

local function set_of(list)
  local set = {}
  for _, k in ipairs(list) do set[k] = true end
  return set
end

-- ---- construction ---------------------------------------------------------------------------

local OPTIONS = {
  fallback = { on = "kinds", budget = "table" },
  race = { on = "kinds", hedge_after = "seconds", budget = "table" },
  cascade = { on = "kinds", accept = "function", budget = "table" },
}

local function check_option(what, k, v, spec)
  local bad
  if spec == "kinds" then
    if type(v) ~= "table" then
      bad = "must be a list of error kinds"
    else
      for _, kind in ipairs(v) do
        if errors.KINDS[kind] == nil then bad = ("names an unknown error kind %q"):format(tostring(kind)) end
      end
    end
  elseif spec == "seconds" then
    if type(v) ~= "number" or not (v >= 0) or v == math.huge then bad = "must be a number of seconds >= 0" end
  elseif type(v) ~= spec then
    bad = "must be a " .. spec
  end
  if bad then error(("ocr.%s: option '%s' %s"):format(what, k, bad), 4) end
end

local function new(what, spec)
  if type(spec) ~= "table" then error(("ocr.%s: a table of clients expected"):format(what), 3) end
  local n = #spec
  if n < 1 then error(("ocr.%s: at least one client expected"):format(what), 3) end
  local opts = OPTIONS[what]
  for k, v in pairs(spec) do
    if type(k) == "number" then
      if k ~= math.floor(k) or k < 1 or k > n then
        error(("ocr.%s: a hole in the list of clients (at %s)"):format(what, tostring(k)), 3)
      end
    elseif opts[k] then
      check_option(what, k, v, opts[k])
    else
      error(("ocr.%s: unknown option '%s'"):format(what, tostring(k)), 3)
    end
  end
  local members, names = {}, {}
  for i = 1, n do
    local m = spec[i]
    if type(m) ~= "table" or type(m.recognize) ~= "function" or type(m.submit) ~= "function" then
      error(("ocr.%s: member %d is not a client (no recognize and submit methods)"):format(what, i), 3)
    end
    members[i] = m
    names[i] = tostring(m.provider)
  end
  local spending
  if spec.budget then
    local ok, b = pcall(budget.new, spec.budget, ("ocr.%s: option 'budget'"):format(what))
    if not ok then error(tostring(b), 3) end
    spending = b
  end
  if what == "cascade" and spec.accept == nil then
    error("ocr.cascade: option 'accept' (function(res) -> boolean) is required", 3)
  end
  return setmetatable({
    kind = what,
    provider = ("%s(%s)"):format(what, table.concat(names, ",")),
    members = members,
    falls_through = set_of(spec.on or M.FALL_THROUGH),
    hedge_after = spec.hedge_after or 0,
    accept = spec.accept,
    budget = spending,   -- (every billed request of every member counts against it)
    -- What the hosts read of a client they run (ocr.hosts.*): options (on_progress), secrets.
    options = {},
    secrets = {},
  }, Pipeline)
end

-- ---- attempts and errors --------------------------------------------------------------------

-- A member's failure as an ocr.error, whatever it returned (a custom member may be sloppy).
local function as_error(member, err)
  if errors.is_error(err) then return err end
  if type(err) == "table" and errors.KINDS[err.kind] ~= nil then
    local ok, e = pcall(errors.new, err)
    if ok then return e end
  end
  return errors.new{ provider = tostring(member.provider), kind = "protocol",
                     message = err == nil and "returned neither result nor error" or tostring(err) }
end

-- One entry of `attempts`: which member, and what came of it.
local function attempt(member, res, err)
  local from = res or err
  local nested = from.attempts
  return { provider = member.provider, kind = err and err.kind, message = err and err.message,
           task_id = from.task_id, cost = from.cost, confidence = res and res.confidence,
           attempts = type(nested) == "table" and nested or nil }
end

-- The pipeline's final error: the deciding member's error, with every attempt listed (a copy:
-- the member's own error stays as it was).
local function final_error(err, attempts)
  local e = {}
  for k, v in pairs(err) do e[k] = v end
  e.attempts = attempts
  return setmetatable(e, getmetatable(err))
end

-- ---- the workflows --------------------------------------------------------------------------

local run = {}

-- A fallback is a cascade that takes the first result it gets.
local function any() return true end
function run.fallback(self, input) return run.cascade(self, input, any) end

function run.cascade(self, input, accept)
  accept = accept or self.accept
  local attempts, best, best_c, last = {}, nil, nil, nil
  for _, member in ipairs(self.members) do
    local res, err = member:recognize(input)
    if res then
      attempts[#attempts + 1] = attempt(member, res, nil)
      if accept(res) then
        res.attempts = attempts
        if accept ~= any then res.accepted = true end
        return res
      end
      local c = res.confidence or -1   -- (none: below any; ties keep the earlier)
      if not best or c > best_c then best, best_c = res, c end
    else
      err = as_error(member, err)
      attempts[#attempts + 1] = attempt(member, nil, err)
      last = err
      if not self.falls_through[err.kind] then break end
    end
  end
  if best then
    best.accepted, best.attempts = false, attempts
    return best
  end
  return nil, final_error(last, attempts)
end

-- Race: members run as jobs of the current host; this waits on them with the host's wait_any
-- (a script steps the scheduler, a job pauses, nginx sleeps) and cancels the losers.
function run.race(self, input)
  local h = host.current()
  local members, n = self.members, #self.members
  local jobs, seen, attempts = {}, {}, {}
  local started, last_start, winner, last = 0, 0, nil, nil
  local me = h.current_job()
  local progress = me and me.on_progress

  local function start()
    started = started + 1
    local job = members[started]:submit(input)
    if progress and job.on_progress == nil then job.on_progress = progress end
    jobs[started] = job
    last_start = h.now()
  end
  local function cancel_rest()
    for i = 1, started do
      if not seen[i] then
        seen[i] = true
        jobs[i]:cancel()
        local _, err = jobs[i]:result()
        attempts[#attempts + 1] = attempt(members[i], nil, as_error(members[i], err))
      end
    end
  end
  -- The race's own job cancelled: so are the members' jobs.
  if me then me:on_cancel(cancel_rest) end

  start()
  while true do
    local stop = false
    for i = 1, started do
      if not seen[i] and jobs[i]:done() then
        seen[i] = true
        local res, err = jobs[i]:result()
        if res then
          attempts[#attempts + 1] = attempt(members[i], res, nil)
          winner = res
          break
        end
        err = as_error(members[i], err)
        attempts[#attempts + 1] = attempt(members[i], nil, err)
        last = err
        if not self.falls_through[err.kind] then stop = true break end
        if started < n then start() end   -- a failure hedges at once
      end
    end
    if winner or stop then break end
    local pending = {}
    for i = 1, started do
      if not seen[i] then pending[#pending + 1] = jobs[i] end
    end
    if #pending == 0 and started == n then break end   -- every member failed
    local wait
    if started < n then wait = math.max(0, last_start + self.hedge_after - h.now()) end
    if #pending == 0 then
      start()
    elseif not h.wait_any(pending, wait) and started < n then
      start()
    end
  end
  cancel_rest()
  if me then me:on_cancel(cancel_rest, false) end
  if winner then
    winner.attempts = attempts
    return winner
  end
  return nil, final_error(last, attempts)
end

-- ---- the client API -------------------------------------------------------------------------

-- What the hosts call to run the pipeline here (in a script, a job, a light thread).
function Pipeline:_recognize_now(input)
  if type(input) == "string" then input = { file = input } end   -- recognize("scan.png")
  if type(input) ~= "table" then
    return nil, errors.new{ provider = self.provider, kind = "invalid_input", message = "input must be a table" }
  end
  if self.budget then return budget.within(self.budget, self.provider, run[self.kind], self, input) end
  return run[self.kind](self, input)
end

--- The error for a pipeline job that raised (an accept function, a member that raised).
function Pipeline:provider_failed(_, message)
  return errors.new{ provider = self.provider, kind = "protocol", retryable = false,
                     message = "pipeline failed: " .. tostring(message) }
end

-- recognize (res or nil, err, each with `attempts`), submit and recognize_all, as a client's.
client.install_api(Pipeline, "pipeline", function(self) return getmetatable(self) == Pipeline end)

--- Closes every member.
function Pipeline:close()
  for _, m in ipairs(self.members) do
    if type(m.close) == "function" then m:close() end
  end
end

-- (Not tail calls: new() raises at the level of the caller of these.)
function M.fallback(spec) local p = new("fallback", spec) return p end
function M.race(spec) local p = new("race", spec) return p end
function M.cascade(spec) local p = new("cascade", spec) return p end

return M
