--- The nginx host (OpenResty, or Debian's nginx with libnginx-mod-http-lua): a worker is never
-- blocked. Requests go over cosockets (ocr.cosocket), waits are ngx.sleep, jobs are light
-- threads (ngx.thread.spawn), and rate-limit buckets live in a lua_shared_dict that every
-- worker of the node shares. Chosen with no configuration whenever a global `ngx` exists.
--
-- Cosockets and ngx.sleep exist only in some phases. Elsewhere (init, init_worker, set,
-- header/body filters, log, balancer) a request fails at once with an invalid_input error that
-- names the phase and the way out (ngx.timer.at), never by silently blocking in libcurl.
local host = require "ocr.host"
local errors = require "ocr.errors"
local ratelimit = require "ocr.ratelimit"
local budget = require "ocr.budget"

local M = { name = "nginx", blocks = false, random = math.random }

function M.now() return ngx.now() end

function M.sleep(seconds)
  if seconds > 0 then ngx.sleep(seconds) end
end

-- The phases in which cosockets and ngx.sleep work.
M.YIELDING_PHASES = { rewrite = true, server_rewrite = true, access = true, content = true,
                      timer = true, ssl_cert = true, ssl_session_fetch = true,
                      ssl_client_hello = true }

--- Why `client` cannot send or wait in this phase, or nil. An explicit transport together with
--- an embedder's runtime (runtime.set) is the caller's own business and always goes.
function M.check(client)
  local phase = ngx.get_phase()
  if M.YIELDING_PHASES[phase] then return nil end
  if host.has_runtime() and (client.options.transport or (client.def and client.def.offline)) then
    return nil
  end
  return ("cannot run in nginx's %s phase: cosockets and ngx.sleep are disabled there; call it " ..
          "from a rewrite, access or content handler, or start it from here with " ..
          "ngx.timer.at(0, fn)"):format(tostring(phase))
end

local function phase_error(client, msg)
  return errors.scrub(errors.new{ provider = client.provider, kind = "invalid_input", message = msg },
                      client.secrets)
end

--- One cosocket transport per client, made on its first request (keep-alive lives in nginx's
--- connection pools, which every request of the worker shares).
function M.transport(client)
  local t = client.nginx_transport
  if not t then
    t = require("ocr.cosocket").new{ keepalive_timeout = client.options.keepalive_timeout,
                                     keepalive_pool = client.options.keepalive_pool }
    client.nginx_transport = t
  end
  return t
end

function M.await(_, source, id, report)
  return host.poll_source(M, source, id, report)
end

-- ---- jobs on light threads ------------------------------------------------------------------

local by_co = setmetatable({}, { __mode = "k" })   -- light thread -> the job it runs
local next_id = 0

function M.current_job() return by_co[coroutine.running()] end

local Job = host.job_class()

local function finish(job, res, err)
  if job.status == "done" then return end
  job.status, job.res, job.err = "done", res, err
  if job.on_done then job.on_done(job, res, err) end
end

-- Runs the workflow for `job` in the calling light thread; a raise becomes the job's error.
local function run(job, input)
  local co = coroutine.running()
  by_co[co] = job
  job.status = "running"
  local ok, res, err = pcall(job.client._recognize_now, job.client, input)
  by_co[co] = nil
  if not ok then res, err = nil, job.client:provider_failed(job.ctx, res) end
  return res, err
end

local function new_job(client, input)
  next_id = next_id + 1
  return setmetatable({ id = next_id, client = client, status = "pending", input = input,
                        on_progress = type(input) == "table" and input.on_progress or client.options.on_progress,
                        budgets = budget.here(M.current_job()) },   -- (a pipeline's: ocr.budget.within)
                      Job)
end

--- `res, err`, waiting for the job without blocking the worker (the light thread's parent
--- waits on it; any other thread polls it with ngx.sleep).
function Job:result()
  if self.status ~= "done" and self.thread then
    local ok = pcall(ngx.thread.wait, self.thread)
    while not ok and self.status ~= "done" do ngx.sleep(0.005) end
  end
  return self.res, self.err
end

--- Cancels the job: its light thread is killed (its cosocket closed) and its result becomes a
--- `cancelled` error. Work the vendor already accepted is not undone (the error keeps task_id).
function Job:cancel()
  if self.status == "done" then return false end
  host.cancel_hooks(self)   -- (first: the jobs it started itself)
  if self.thread then pcall(ngx.thread.kill, self.thread) end
  local err = errors.new{ provider = self.client.provider, kind = "cancelled",
                         task_id = self.task_id, message = "cancelled by the caller" }
  if self.client._cancelled then self.client:_cancelled(self, err) end   -- (budgets, stats)
  finish(self, nil, err)
  return true
end

--- Sleeps (ngx.sleep, 1 ms doubling to 20 ms) until one of `jobs` (light-thread jobs) is done or
--- `seconds` pass (nil: no limit); the worker serves others meanwhile. Returns whether one is.
function M.wait_any(jobs, seconds)
  local deadline = seconds and ngx.now() + seconds
  local pause = 0.001
  while true do
    for i = 1, #jobs do
      if jobs[i].status == "done" then return true end
    end
    local left = deadline and deadline - ngx.now() or pause
    -- (under a millisecond counts as none: ngx.sleep would round it to 0, which does not
    -- advance ngx.now's cached clock, and the loop would spin the worker)
    if left < 0.001 then return false end
    ngx.sleep(math.min(pause, left))
    pause = math.min(pause * 2, 0.02)
  end
end

--- A job on its own light thread, started at once.
function M.submit(client, input)
  local job = new_job(client, input)
  local msg = M.check(client)
  if msg then
    finish(job, nil, phase_error(client, msg))
    return job
  end
  job.thread = ngx.thread.spawn(function()
    local res, err = run(job, input)
    finish(job, res, err)
  end)
  return job
end

function M.recognize(client, input)
  local msg = M.check(client)
  if msg then return nil, phase_error(client, msg) end
  return client:_recognize_now(input)
end

--- `concurrency` light threads take the inputs in order; every input gets one res or err.
function M.recognize_all(client, inputs, opts, concurrency)
  local out, n, taken = {}, #inputs, 0
  local msg = M.check(client)
  if msg then
    for i = 1, n do
      out[i] = { input = inputs[i], err = phase_error(client, msg) }
      if opts.on_result then opts.on_result(i, nil, out[i].err) end
    end
    return out
  end
  local budgets = budget.here(M.current_job())   -- (the caller's, for the workers' jobs)
  local function worker()
    while taken < n do
      taken = taken + 1
      local i = taken
      local job = new_job(client, inputs[i])
      job.budgets = budgets
      if opts.on_progress then
        job.on_progress = function(ev) ev.index = i; opts.on_progress(ev) end
      end
      local res, err = run(job, inputs[i])
      out[i] = { input = inputs[i], res = res, err = err }
      if opts.on_result then opts.on_result(i, res, err) end
    end
  end
  local threads = {}
  for t = 1, math.min(concurrency, n) do threads[t] = ngx.thread.spawn(worker) end
  local failure
  for _, th in ipairs(threads) do
    local ok, werr = ngx.thread.wait(th)
    if not ok and not failure then failure = werr end
  end
  if failure then error(failure, 0) end   -- (a caller's on_result raised)
  return out
end

-- ---- rate limits in a lua_shared_dict --------------------------------------------------------

local Shared = {}
Shared.__index = Shared

-- The bucket is read and written under a lock taken with dict:add (atomic across workers).
-- Nothing between add and delete yields, so the lock is held for microseconds; its expiry
-- frees it if a worker died holding it.
local function lock(dict, key)
  for i = 1, 10000 do
    local ok, err = dict:add(key, true, 0.05)
    if ok then return true end
    if err ~= "exists" then return false end
    if i % 50 == 0 then ngx.sleep(0.001) end
  end
  return false
end

--- A rate-limit store over `dict` (an ngx.shared.DICT): the same buckets as
--- ratelimit.memory_store, shared by every worker of the node.
function M.shared_store(dict)
  return setmetatable({ dict = dict, fallback = ratelimit.memory_store() }, Shared)
end

function Shared:take(key, per_second, burst, now)
  local dict = self.dict
  local k = "ocr|rate|" .. key
  if not lock(dict, k .. "|lock") then   -- (a full dict: this worker's own bucket still spaces)
    return self.fallback:take(key, per_second, burst, now)
  end
  local tokens, at = dict:get(k .. "|tokens"), dict:get(k .. "|at")
  if not (tokens and at) then tokens, at = burst, now end
  local wait
  tokens, wait = ratelimit.refill(tokens, at, per_second, burst, now)
  -- Kept until the bucket would be full again; a vanished bucket is a full one.
  local ttl = math.max(1, (burst - tokens) / per_second + 1)
  dict:set(k .. "|tokens", tokens, ttl)
  dict:set(k .. "|at", now, ttl)
  dict:delete(k .. "|lock")
  return wait
end

function Shared:last(key)
  return self.dict:get("ocr|rate|" .. key .. "|went")
end

function Shared:mark(key, now)
  self.dict:set("ocr|rate|" .. key .. "|went", now, 3600)
end

local stores = {}

--- The store for `client`: its `shared_dict` option, else the dict named "ocr" when nginx.conf
--- has one (lua_shared_dict ocr 10m;), else nil (this worker only).
function M.rate_store(client)
  local name = client.options.shared_dict or "ocr"
  local dict = ngx.shared and ngx.shared[name]
  if not dict then return nil end
  local s = stores[name]
  if not s then
    s = M.shared_store(dict)
    stores[name] = s
  end
  return s
end

return M
