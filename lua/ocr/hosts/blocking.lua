--- The blocking host: plain Lua scripts and batch jobs. Each client sends on its own libcurl
-- keep-alive session (loaded on the first request, so a local engine never loads libcurl), and
-- waiting blocks the thread. `client:submit` still starts a job on the scheduler (the jobs
-- host), and `client:recognize` while jobs are in flight becomes one of them, so they go on.
local core = require "ocr.core"
local host = require "ocr.host"

local M = { name = "blocking", blocks = true, now = core.monotime, random = math.random }

function M.sleep(seconds)
  if seconds > 0 then core.sleep(seconds) end
end

--- The client's own curl transport, made on its first request.
function M.transport(client)
  local t = client.own_transport
  if not t then
    t = require("ocr.transport").curl{ user_agent = client.user_agent }
    client.own_transport = t
  end
  return t
end

function M.check() return nil end

function M.await(_, source, id, report)
  return host.poll_source(M, source, id, report, require("ocr.scheduler").progress_interval)
end

--- Alone, a request runs right here (it blocks anyway); while jobs are in flight it is a job
--- among them and steps the scheduler until it is done, so the others keep advancing.
function M.recognize(client, input)
  local scheduler = require "ocr.scheduler"
  if scheduler.in_flight() == 0 then return client:_recognize_now(input) end
  return scheduler.wait(host.get("jobs").submit(client, input))
end

function M.submit(client, input) return host.get("jobs").submit(client, input) end
function M.recognize_all(...) return host.get("jobs").recognize_all(...) end
function M.rate_store() return nil end
function M.current_job() return nil end

--- Steps the scheduler until one of `jobs` (scheduler jobs) is done or `seconds` pass (nil: no
--- limit); the other jobs advance too. Returns whether one is done.
function M.wait_any(jobs, seconds)
  local scheduler = require "ocr.scheduler"
  local deadline = seconds and core.monotime() + seconds
  while true do
    for i = 1, #jobs do
      if jobs[i].status == "done" then return true end
    end
    local left = deadline and deadline - core.monotime() or 3600
    if left <= 0 then return false end
    scheduler.step(left)   -- (returns as soon as any job finished)
  end
end

return M
