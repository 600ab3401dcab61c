--- The jobs host: code running inside a `client:submit` job (a game's frame loop, a batch).
-- Jobs are coroutines over one curl multi handle (ocr.scheduler); a request hands its transfer
-- to the multi handle and yields, a sleep yields a timer, waiting for the OCR threads yields on
-- their pool. `ocr.step` advances them all without blocking.
local core = require "ocr.core"
local host = require "ocr.host"
local scheduler = require "ocr.scheduler"
local budget = require "ocr.budget"

local M = { name = "jobs", blocks = false, now = core.monotime, random = math.random,
            sleep = scheduler.sleep, current_job = scheduler.current,
            wait_any = scheduler.wait_any }

--- The client's curl transport: inside a job its requests go to the multi handle.
function M.transport(client) return host.get("blocking").transport(client) end

function M.check() return nil end

function M.await(_, source, id, report) return scheduler.await(source, id, report) end

function M.recognize(client, input) return client:_recognize_now(input) end

function M.rate_store() return nil end

local function recognize_job(job, input) return job.client:_recognize_now(input) end

--- Starts recognizing `input` as a job and returns it at once; `ocr.step()` advances it.
function M.submit(client, input)
  local job = scheduler.submit(client, recognize_job, input)
  job.input = input
  job.budgets = budget.here(scheduler.current())   -- (a pipeline's: ocr.budget.within)
  job.on_progress = type(input) == "table" and input.on_progress or client.options.on_progress
  return job
end

--- Every input as a job, at most `opts.concurrency` in flight, stepping until all are done.
function M.recognize_all(client, inputs, opts, concurrency)
  assert(not scheduler.current(), "recognize_all: not from inside a job (use submit there)")
  local out, n, launched, active = {}, #inputs, 0, 0
  local launch
  local function finished(i, res, err)
    active = active - 1
    out[i] = { input = inputs[i], res = res, err = err }
    if opts.on_result then opts.on_result(i, res, err) end
    launch()
  end
  function launch()
    while active < concurrency and launched < n do
      launched = launched + 1
      local i = launched
      local job = M.submit(client, inputs[i])
      active = active + 1
      if opts.on_progress then
        job.on_progress = function(ev) ev.index = i; opts.on_progress(ev) end
      end
      job.on_done = function(_, res, err) finished(i, res, err) end
    end
  end
  launch()
  while active > 0 do scheduler.step(3600) end
  return out
end

return M
