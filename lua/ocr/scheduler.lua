--- The job scheduler: many OCR jobs at once over one curl multi handle, without blocking.
--
-- Each job is a coroutine running the provider's straight-line workflow. When the workflow sends
-- a request, the curl transport hands it to the multi handle and the job yields; when it sleeps
-- (polling, backoff, rate limits), the job yields a timer. `step()` performs the transfers,
-- resumes the jobs whose transfers finished or whose timers are due, and returns. Nothing here
-- blocks unless the caller asked `step` to wait, and no Lua callback is ever called from C.
local core = require "ocr.core"
local errors = require "ocr.errors"

local M = {}

local jobs = {}          -- in flight, in submission order
local by_co = {}         -- coroutine -> job
local transfers = {}     -- multi transfer id -> job
local watched = {}       -- transfer id -> report(progress): transfers whose progress someone wants
local timers = {}        -- job -> due time (monotonic)
-- First-in first-out queues of 4-value records kept in one flat array (no table per record).
local function fifo() return { head = 1, tail = 0 } end

local function push(q, a, b, c, d)
  local t = q.tail
  q[t + 1], q[t + 2], q[t + 3], q[t + 4] = a, b, c, d
  q.tail = t + 4
end

local function empty(q) return q.head > q.tail end

local function pop(q)
  local h = q.head
  local a, b, c, d = q[h], q[h + 1], q[h + 2], q[h + 3]
  q[h], q[h + 1], q[h + 2], q[h + 3] = nil, nil, nil, nil
  if h + 4 > q.tail then q.head, q.tail = 1, 0 else q.head = h + 4 end   -- drained: start over
  return a, b, c, d
end

-- Jobs ready to resume: job, value count, value 1, value 2. A job waits on one thing at a time,
-- so it is queued at most once.
local ready = fifo()
local awaiting = {}      -- event source -> {[id] = job}: work done outside curl (OCR threads)
-- Requests waiting to be started: job, request, report, on_start. Starting one sends it at once
-- (see start_requests), so how many start per step is budgeted.
local to_start = fifo()
local multi              -- created on first use
local next_id = 0

local SLEEP, HTTP, AWAIT, PAUSE = {}, {}, {}, {}  -- yield tags

local function make_ready(job, n, a, b) push(ready, job, n, a, b) end

local Job = require("ocr.host").job_class()

--- `res, err` once done; `nil, nil` while in flight.
function Job:result()
  if self.status ~= "done" then return nil, nil end
  return self.res, self.err
end

--- Cancels the job: its transfer is aborted, its timers dropped, and its result becomes a
-- `cancelled` error. Work the vendor already accepted is not undone (the error keeps task_id).
function Job:cancel()
  if self.status == "done" then return false end
  if self.xfer then
    multi:remove(self.xfer)
    transfers[self.xfer] = nil
    watched[self.xfer] = nil
    self.xfer = nil
  end
  timers[self] = nil   -- (if it was queued to resume, the queue skips finished jobs)
  if self.awaiting then
    local source, id = self.awaiting[1], self.awaiting[2]
    awaiting[source][id] = nil
    if source.cancel then source:cancel(id) end
    self.awaiting = nil
  end
  require("ocr.host").cancel_hooks(self)   -- (before finishing: a hook may read the job)
  local err = errors.new{ provider = self.client.provider, kind = "cancelled",
                         task_id = self.task_id, message = "cancelled by the caller" }
  if self.client._cancelled then self.client:_cancelled(self, err) end   -- (budgets, stats)
  M._finish(self, nil, err)
  return true
end

local function get_multi()
  if not multi then multi = require("ocr.curl").multi{} end
  return multi
end

--- The job running now, if the caller is inside one.
function M.current()
  local co = coroutine.running()
  return co and by_co[co]
end

function M._finish(job, res, err)
  job.status = "done"
  job.res, job.err = res, err
  if job.co then by_co[job.co] = nil end
  job.co = nil
  for i, j in ipairs(jobs) do
    if j == job then table.remove(jobs, i) break end
  end
  if job.on_done then job.on_done(job, res, err) end
  local watchers = job.watchers   -- jobs paused in wait_any until this one is done
  if watchers then
    job.watchers = nil
    for w in pairs(watchers) do M.wake(w) end
  end
end

--- Creates a job that runs `fn(job, arg)` in a coroutine; it starts at the next step.
function M.submit(client, fn, arg)
  next_id = next_id + 1
  -- The fields every job gets are named here, so its table is sized once (the rarer on_done,
  -- on_progress, err and awaiting may grow it).
  local job = setmetatable({ id = next_id, client = client, status = "pending", co = nil,
                             ctx = nil, xfer = nil, res = nil, input = nil }, Job)
  jobs[#jobs + 1] = job
  make_ready(job, 0, fn, arg)   -- (its first resume starts fn(job, arg) on a worker)
  return job
end

-- Jobs run on worker coroutines that are reused: a coroutine, its stack and its call frames
-- cost about 2 KB to build, which a game would otherwise hand to the collector with every job.
-- A worker's box carries a job in ([1] = fn, [2] = job, [3] = arg) and its results out ([4],
-- [5]); the worker keeps nothing in locals, so an idle one holds on to nothing of its last job
-- (whose input may be megabytes). One whose job raised is dead, and one whose job was cancelled
-- mid-way is dropped (resuming it would continue the cancelled workflow): only workers that
-- finished cleanly come back.
local DONE = {}
local idle = {}          -- boxes of idle workers (a stack)
local MAX_IDLE = 64

local function worker(box)
  while true do
    box[4], box[5] = box[1](box[2], box[3])
    box[1], box[2], box[3] = nil, nil, nil
    coroutine.yield(DONE, box)
  end
end

-- Puts `job` on a worker (an idle one, or a new one) and returns what its first resume returns.
local function start(job, fn, arg)
  local n = #idle
  local box = idle[n]
  if box then idle[n] = nil else box = { co = coroutine.create(worker) } end
  box[1], box[2], box[3] = fn, job, arg
  job.co = box.co
  by_co[box.co] = job
  return coroutine.resume(box.co, box)   -- (a new worker's argument; an idle one ignores it)
end

local function retire(box)
  if #idle < MAX_IDLE then idle[#idle + 1] = box end
end

local function resume(job, n, v1, v2)
  job.status = "running"
  local co = job.co
  local ok, tag, a, b, c
  if not co then ok, tag, a, b, c = start(job, v1, v2)   -- v1, v2: the function and its argument
  elseif n == 0 then ok, tag, a, b, c = coroutine.resume(co)
  else ok, tag, a, b, c = coroutine.resume(co, v1, v2) end
  if ok and tag == DONE then
    local res, err = a[4], a[5]
    a[4], a[5] = nil, nil
    retire(a)
    -- (a job cancelled from inside its own run, say by a progress callback, keeps that result)
    if job.status ~= "done" then M._finish(job, res, err) end
    return
  end
  if job.status == "done" then return end   -- cancelled from inside: the rest is dropped
  if not ok then
    return M._finish(job, nil, job.client:provider_failed(job.ctx, tag))
  end
  if tag == SLEEP then
    timers[job] = a
  elseif tag == PAUSE then
    job.paused = true
    timers[job] = a   -- (nil: until woken)
  elseif tag == AWAIT then
    awaiting[a] = awaiting[a] or {}
    awaiting[a][b] = job
    job.awaiting = { a, b, c }
  elseif tag == HTTP then
    push(to_start, job, a, b, c)
  else
    M._finish(job, nil, errors.new{ provider = job.client.provider, kind = "protocol",
                                    message = "job yielded outside the scheduler" })
  end
end

-- Reports curl's transfer counters for the transfers someone watches.
local function report_progress()
  for id, report in pairs(watched) do report(multi:progress(id)) end
end

-- Starts queued requests until `deadline` (at least one, so requests always make progress):
-- each is added to the multi handle and sent by a perform right away, so that its cost (on
-- loopback the kernel delivers the bytes in our time) counts against the step's budget.
local function start_requests(deadline)
  local m
  local first = true
  while not empty(to_start) and (first or core.monotime() < deadline) do
    first = false
    local job, req, report, on_start = pop(to_start)
    if job.status ~= "done" then   -- (a job cancelled while queued is skipped)
      m = m or get_multi()
      local id, err = m:add(req)
      if not id then
        make_ready(job, 2, nil, err)
      else
        job.xfer = id
        transfers[id] = job
        watched[id] = report
        m:perform(0)   -- sends it; answers that arrived meanwhile wait for collect
        if on_start then on_start() end
      end
    end
  end
end

-- Moves finished transfers, finished external work and due timers onto the ready queue.
local function collect(deadline)
  start_requests(deadline)
  if multi and next(transfers) then
    multi:perform(math.max(0, deadline - core.monotime()))
    while true do
      local id, res, err = multi:info_read()
      if not id then break end
      local job = transfers[id]
      transfers[id], watched[id] = nil, nil
      if job then
        job.xfer = nil
        make_ready(job, 2, res, err)
      end
    end
    report_progress()
  end
  for source, waiters in pairs(awaiting) do
    if next(waiters) then
      for _, item in ipairs(source:poll()) do
        local job = waiters[item.id]
        if job then
          waiters[item.id] = nil
          job.awaiting = nil
          make_ready(job, 2, item.res, item.err)
        end
      end
      if source.progress then
        for id, job in pairs(waiters) do
          local report = job.awaiting and job.awaiting[3]
          if report then report(source:progress(id)) end
        end
      end
    else
      awaiting[source] = nil
    end
  end
  local now = core.monotime()
  for job, due in pairs(timers) do
    if due <= now then
      timers[job] = nil
      job.paused = nil   -- (woken by its timer: a wake() now must not queue it twice)
      make_ready(job, 0)
    end
  end
end

--- Seconds of job resumptions one step may spend before leaving the rest of the ready jobs for
-- the next step (a game calls step(0) every frame: a burst of answers is spread over frames
-- instead of stalling one). `ocr.step_budget(seconds)` changes it; math.huge turns it off.
M.budget = 0.0005

-- Resumes ready jobs in the order they became ready, until the queue is empty or `deadline`
-- passes; returns whether any ran.
local function resume_ready(deadline)
  local resumed = false
  while not empty(ready) do
    if resumed and core.monotime() > deadline then return resumed end
    local job, n, v1, v2 = pop(ready)
    if job.status ~= "done" then
      resume(job, n, v1, v2)
      resumed = true
    end
  end
  return resumed
end

-- Non-blocking passes until one resumes nothing: a job resumed in a pass has its new request
-- sent by the next pass's perform at once (not a step later), and whatever that perform already
-- finished is collected before the caller may sleep in poll(). Returns how many jobs finished.
local function advance()
  local before = #jobs
  local deadline = core.monotime() + M.budget
  repeat
    collect(deadline)
  until not resume_ready(deadline) or core.monotime() > deadline
  return before - #jobs
end

local function next_timer()
  local t
  for _, due in pairs(timers) do
    if not t or due < t then t = due end
  end
  return t
end

--- Seconds between progress reports of work awaited outside curl (an OCR thread says nothing
-- until it finishes, so a step that would sleep longer wakes up to ask it).
M.progress_interval = 0.1

local function progress_watched()
  for source, waiters in pairs(awaiting) do
    if source.progress then
      for _, job in pairs(waiters) do
        if job.awaiting and job.awaiting[3] then return true end
      end
    end
  end
  return false
end

--- Advances every job without blocking longer than `timeout` seconds (default 0); returns as
-- soon as a job finished, or when the time is up. Returns the number of jobs still in flight.
function M.step(timeout)
  timeout = timeout or 0
  local deadline = core.monotime() + timeout
  while true do
    local finished = advance()
    if #jobs == 0 or finished > 0 then return #jobs end
    local now = core.monotime()
    local wait = deadline - now
    if wait <= 0 then return #jobs end
    local t = next_timer()
    if t then wait = math.min(wait, math.max(0, t - now)) end
    if wait > M.progress_interval and progress_watched() then wait = M.progress_interval end
    if empty(ready) and empty(to_start) and wait > 0 then
      local fds = {}
      for source in pairs(awaiting) do
        if source.fd then fds[#fds + 1] = source:fd() end
      end
      if #fds > 0 or (multi and next(transfers)) then
        get_multi():poll(math.max(1, math.ceil(wait * 1000)), fds)
      else
        core.sleep(wait)
      end
    end
  end
end

--- Steps until no job is in flight.
function M.run()
  while M.step(3600) > 0 do end
end

--- Steps until `job` is done, then returns its result.
function M.wait(job)
  while job.status ~= "done" do M.step(3600) end
  return job.res, job.err
end

function M.in_flight() return #jobs end

-- The hooks the jobs host (ocr.hosts.jobs) and the curl transport call from inside a job.

function M.sleep(seconds)
  coroutine.yield(SLEEP, core.monotime() + math.max(0, seconds))
end

--- Resumes a job paused in wait_any (at once, before its timer); nothing for any other job.
function M.wake(job)
  if job.paused and job.status ~= "done" then
    job.paused = nil
    timers[job] = nil
    make_ready(job, 0)
  end
end

--- Inside a job: pauses it until one of `others` (jobs of this scheduler) is done, or `seconds`
-- pass (nil: no limit). Returns whether one is done. Other jobs go on meanwhile.
function M.wait_any(others, seconds)
  local function any_done()
    for i = 1, #others do
      if others[i].status == "done" then return true end
    end
    return false
  end
  if any_done() then return true end
  if seconds and seconds <= 0 then return false end
  local me = M.current()
  for i = 1, #others do
    local o = others[i]
    o.watchers = o.watchers or {}
    o.watchers[me] = true
  end
  coroutine.yield(PAUSE, seconds and core.monotime() + seconds)
  for i = 1, #others do
    if others[i].watchers then others[i].watchers[me] = nil end
  end
  return any_done()
end

--- Waits for work done outside curl: `source` has `poll() -> { {id=, res=} | {id=, err=}, ... }`
-- (never blocking), optionally `fd()` (readable when something finished), `cancel(id)` and
-- `progress(id) -> ...`: with `report`, report(source:progress(id)) is called after every step
-- while the item runs, at least every `progress_interval` seconds. Returns the item's res, err.
function M.await(source, id, report)
  return coroutine.yield(AWAIT, source, id, report)
end

--- Sends `req` (an ocr.curl request) through the multi handle. With `report`, it is called with
-- the transfer's counters ({ulnow=, ultotal=, dlnow=, dltotal=}) after every step while it runs;
-- `on_start()` is called when the request is actually sent, which may be a step later when the
-- step's budget ran out (the rate limiter spaces requests from that moment).
function M.http(req, report, on_start)
  return coroutine.yield(HTTP, req, report, on_start)
end

return M
