--- Where lua-ocr is running, and so how a client sends requests and waits. Provider workflows
-- are straight-line code; a host decides what sending and waiting mean. There is one
-- implementation per host, side by side in lua/ocr/hosts/:
--
--   blocking   scripts and batch jobs: a libcurl keep-alive session per client, sleeps block
--   jobs       inside a `client:submit` job (games, batches): coroutines over one curl multi
--              handle (ocr.scheduler), every wait a timer, `ocr.step` drives them
--   nginx      OpenResty: HTTP over cosockets, ngx.sleep, light threads, lua_shared_dict
--
-- `host.current()` answers for the code running now: inside a scheduler job, the jobs host;
-- inside nginx (a global `ngx` with `get_phase`), the nginx host; else the blocking host.
-- `host.set_runtime{now=, sleep=}` lays an embedder's own waiting over the detected host (its
-- event loop, not ours); an explicit client `transport` always wins over the host's.
--
-- A host is a table with:
--   name, blocks (whether sleep blocks the thread)
--   now(), sleep(seconds), random()
--   transport(client)             the transport for a client that brought none
--   check(client) -> nil | msg     why a request cannot be made here now (nginx's phases)
--   await(ctx, source, id, report) waits for item `id` of an event source (a thread pool)
--   submit(client, input) -> job;  recognize_all(client, inputs, opts) -> out
--   rate_store(client) -> store | nil   where rate-limit buckets live (nil: this process)
--   current_job() -> job | nil     the job whose workflow runs now
--   wait_any(jobs, seconds) -> bool  waits until one of `jobs` (this host's) is done or
--                                  `seconds` pass (nil: no limit); the others go on meanwhile
local M = {}

local hosts = {}
local function load(name)
  local h = hosts[name]
  if not h then
    h = require("ocr.hosts." .. name)
    hosts[name] = h
  end
  return h
end

local overlay        -- set_runtime's table over the detected host, or nil
local overlays = setmetatable({}, { __mode = "k" })   -- base host -> its overlay

local function in_job()
  local scheduler = package.loaded["ocr.scheduler"]   -- (not loaded: no job can be running)
  return scheduler and scheduler.current() ~= nil
end

--- The host the calling code runs on, before any runtime overlay.
function M.detect()
  if in_job() then return load("jobs") end
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" then return load("nginx") end
  return load("blocking")
end

--- The host for the calling code: detected, with set_runtime's waiting laid over it (inside a
--- scheduler job waits stay the scheduler's timers).
function M.current()
  local base = M.detect()
  if not overlay or base.name == "jobs" then return base end
  local o = overlays[base]
  if not o then
    o = setmetatable({ now = overlay.now, sleep = overlay.sleep, random = overlay.random,
                       blocks = false, name = base.name }, { __index = base })
    -- Waiting for worker threads is the embedder's sleeps too.
    o.await = function(_, source, id, report) return M.poll_source(o, source, id, report) end
    overlays[base] = o
  end
  return o
end

--- Installs an embedder's waiting: a table with `now()`, `sleep(s)` and optionally `random()`.
function M.set_runtime(rt)
  assert(type(rt) == "table" and type(rt.now) == "function" and type(rt.sleep) == "function",
         "runtime.set: a table with now() and sleep(seconds) expected")
  overlay = { now = rt.now, sleep = rt.sleep, random = rt.random or math.random }
  overlays = setmetatable({}, { __mode = "k" })
end

--- Back to each host's own waiting.
function M.reset_runtime()
  overlay = nil
  overlays = setmetatable({}, { __mode = "k" })
end

--- Whether an embedder's runtime is installed.
function M.has_runtime() return overlay ~= nil end

--- A new class for a host's jobs: `job.task_id` is read from the job's running context (a
--- provider sets it as it learns it) and `job:done()` from its status; the host adds
--- `result` and `cancel`.
function M.job_class()
  local Job = {}
  Job.__index = function(self, k)
    if k == "task_id" then
      local ctx = rawget(self, "ctx")
      return ctx and ctx.task_id
    end
    return Job[k]
  end
  function Job:done() return self.status == "done" end
  --- Calls `fn(job)` if the job is cancelled (before its result becomes `cancelled`), e.g. to
  --- cancel the jobs it started itself; `job:on_cancel(fn, false)` takes it back.
  function Job:on_cancel(fn, keep)
    local hooks = rawget(self, "cancel_hooks")
    if not hooks then
      if keep == false then return end
      hooks = {}
      self.cancel_hooks = hooks
    end
    if keep == false then hooks[fn] = nil else hooks[fn] = true end
  end
  return Job
end

--- Runs the on_cancel hooks of `job` (each once); the hosts' job:cancel() calls it.
function M.cancel_hooks(job)
  local hooks = rawget(job, "cancel_hooks")
  if not hooks then return end
  job.cancel_hooks = nil
  for fn in pairs(hooks) do fn(job) end
end

--- A host by name ("blocking", "jobs", "nginx"), for tests and embedders that must choose.
M.get = load

--- Waiting for an event source outside a scheduler job, for any host whose sleep does not
--- block: the source is asked between sleeps (5 ms doubling to 50 ms); with `report`, it hears
--- source:progress(id) between them. A blocking host passes `blocks = true`: then the source's
--- own wait blocks, waking every `interval` seconds only to report progress.
function M.poll_source(host, source, id, report, interval)
  if not source.progress then report = nil end
  if host.blocks and not report then return source:wait(id) end
  local pause = 0.005
  while true do   -- (source:wait's own timeout says `pending`: the item still runs)
    local res, err = source:wait(id, host.blocks and interval or 0)
    if res or not (err and err.pending) then return res, err end
    if report then report(source:progress(id)) end
    if not host.blocks then
      host.sleep(pause)
      pause = math.min(pause * 2, 0.05)
    end
  end
end

return M
