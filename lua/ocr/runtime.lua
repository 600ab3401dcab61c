--- The runtime: how the Lua layer waits. Provider workflows are straight-line code that calls
-- `runtime.sleep(s)` and `runtime.now()`; a runtime decides what waiting means. The default one
-- blocks the calling thread (fine for scripts). A scheduler (jobs as coroutines) or OpenResty
-- (`ngx.sleep`) installs its own with `runtime.set`, and every provider runs unchanged on it.
local core = require "ocr.core"

local M = {}

local blocking = {
  name = "blocking",
  now = core.monotime,
  sleep = function(seconds) if seconds > 0 then core.sleep(seconds) end end,
  -- A random number in [0, 1) for backoff jitter.
  random = math.random,
}

local current = blocking
local scheduler -- set by ocr.scheduler when it loads

--- Installs a runtime: a table with `now()`, `sleep(s)` and optionally `random()`.
function M.set(rt)
  assert(type(rt) == "table" and type(rt.now) == "function" and type(rt.sleep) == "function",
         "runtime.set: a table with now() and sleep(seconds) expected")
  rt.random = rt.random or math.random
  current = rt
end

function M.get() return current end
--- Whether waiting blocks the thread (the default runtime): then work done elsewhere may be
-- waited for by blocking too; an embedder's runtime must be given its sleeps instead.
function M.is_default() return current == blocking end
function M.reset() current = blocking end
function M.now() return current.now() end
function M.random() return current.random() end

--- Waits `seconds`: inside a scheduler job the job yields a timer; elsewhere the runtime waits.
function M.sleep(seconds)
  if scheduler and scheduler.current() then return scheduler.sleep(seconds) end
  return current.sleep(seconds)
end

--- Called by ocr.scheduler so that sleeps inside jobs become timers.
function M.set_scheduler(s) scheduler = s end

--- The scheduler, when a job is running now (nil otherwise).
function M.job_scheduler()
  return scheduler and scheduler.current() and scheduler or nil
end

return M
