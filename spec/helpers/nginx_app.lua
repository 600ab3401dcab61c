-- The Lua that the OpenResty specs run inside nginx (content handlers of spec/helpers/nginx.lua's
-- servers): it reads a JSON call from the request body, makes it through the public API exactly
-- as a user's handler would, and answers JSON the spec asserts on. Nothing here replaces a part
-- of nginx or of the library.
local cjson = require "cjson.safe"

local M = {}

local function summary_res(res)
  if not res then return nil end
  local files = {}
  for i, f in ipairs(res.files or {}) do
    files[i] = { name = f.name, path = f.path, format = f.format }
  end
  return { text = res.text, provider = res.provider, task_id = res.task_id, lines = #(res.lines or {}),
           files = files, pages = res.pages, confidence = res.confidence, accepted = res.accepted,
           attempts = res.attempts, cached = res.cached }
end

local function summary_err(err)
  if err == nil then return nil end
  if type(err) ~= "table" then return { kind = "raised", message = tostring(err) } end
  return { kind = err.kind, message = err.message, status = err.status, sent = err.sent,
           attempts = err.attempts, task_id = err.task_id, retry_after = err.retry_after,
           text = tostring(err) }
end

M.summary_res, M.summary_err = summary_res, summary_err

local function reply(t)
  t.pid = ngx.worker.pid()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
end

--- POST {provider=, opts=, input=} | {..., inputs=, concurrency=} | {..., submit = input}
--- (`pipeline = {...}` instead of provider and opts: see M.pipeline):
--- answers {res=, err=} | {out = {{res=, err=}, ...}} | {job = {res=, err=, id=}}.
--- With `timer = true` the call is made in an ngx.timer.at callback (the handler waits for it
--- with ngx.sleep); with `counting_transport = true` the client gets its own transport, which
--- counts its requests and sends them over ocr.cosocket ({..., transport_requests = n}).
function M.run()
  ngx.req.read_body()
  local call = cjson.decode(ngx.req.get_body_data() or "")
  if type(call) ~= "table" then return reply{ error = "bad call" } end
  if call.timer then
    call.timer = nil
    local answer
    local ok, terr = ngx.timer.at(0, function()
      local made, a = pcall(M.make, call)
      answer = made and a or { error = tostring(a) }
    end)
    if not ok then return reply{ error = "timer: " .. tostring(terr) } end
    while not answer do ngx.sleep(0.005) end
    answer.in_timer = true
    return reply(answer)
  end
  return reply(M.make(call))
end

function M.make(call)
  local ocr = require "ocr"
  local opts, counted = call.opts or {}, 0
  if call.counting_transport then
    local cosocket = require("ocr.cosocket").new{}
    opts.transport = { request = function(_, req, o)
      counted = counted + 1
      return cosocket:request(req, o)
    end }
  end
  local client = call.pipeline and M.pipeline(call.pipeline) or ocr.new(call.provider, opts)
  if call.inputs then
    local out = client:recognize_all(call.inputs, { concurrency = call.concurrency })
    local list = {}
    for i, o in ipairs(out) do list[i] = { res = summary_res(o.res), err = summary_err(o.err) } end
    return { out = list }
  end
  if call.submit then
    local jobs = {}
    for i, input in ipairs(call.submit) do jobs[i] = client:submit(input) end
    local list = {}
    for i, job in ipairs(jobs) do
      local res, err = job:result()
      list[i] = { res = summary_res(res), err = summary_err(err), id = job.id, done = job:done() }
    end
    return { jobs = list }
  end
  local res, err = client:recognize(call.input)
  return { res = summary_res(res), err = summary_err(err), transport_requests = counted,
           phase = ngx.get_phase() }
end

--- A pipeline from its description: {kind = "fallback"|"race"|"cascade", members = {{provider=,
--- opts=} | {pipeline = {...}}, ...}, hedge_after=, on=, min_confidence= (cascade: accept a
--- result whose confidence reaches it), cache = DIR (the pipeline behind ocr.cache and a dir
--- store)}.
function M.pipeline(p)
  local ocr = require "ocr"
  local spec = { hedge_after = p.hedge_after, on = p.on }
  for i, m in ipairs(p.members) do
    spec[i] = m.pipeline and M.pipeline(m.pipeline) or ocr.new(m.provider, m.opts or {})
  end
  if p.kind == "cascade" then
    spec.accept = function(res) return (res.confidence or 0) >= (p.min_confidence or 0) end
  end
  if p.cache then return ocr.cache(ocr[p.kind](spec), { store = ocr.store.dir(p.cache) }) end
  return ocr[p.kind](spec)
end

--- POST a request for the cosocket transport itself: {req = ..., opts = {keepalive_*}} ->
--- {res = {status, headers, body, path, bytes_sent}, err=}.
function M.transport()
  ngx.req.read_body()
  local call = cjson.decode(ngx.req.get_body_data() or "")
  local t = require("ocr.cosocket").new(call.opts)
  local res, err = t:request(call.req)
  if res then res = { status = res.status, headers = res.headers, body = res.body, path = res.path,
                      bytes_sent = res.bytes_sent, saved = res.saved } end
  return reply{ res = res, err = err }
end

--- Makes every worker take part in a burst, whichever worker the kernel hands connections
--- to: POST /burst stores a call {provider=, opts=, input=, n=} in the shared dict `ocr`; each
--- worker's timer (init_worker_by_lua: `ngx.timer.every(0.02, app.burst_tick)`) sees it once,
--- makes `n` recognitions on light threads and stores its answers under its pid.
function M.burst_start()
  ngx.req.read_body()
  local dict = ngx.shared.ocr
  dict:flush_all()
  dict:set("burst", ngx.req.get_body_data())
  reply{ ok = true }
end

function M.burst_tick(premature)
  local dict = ngx.shared.ocr
  local call = not premature and cjson.decode(dict:get("burst") or "")
  local key = "burst:" .. ngx.worker.pid()
  if type(call) ~= "table" or not dict:add(key, "running") then return end
  local client = require("ocr").new(call.provider, call.opts or {})
  local threads, out = {}, {}
  for i = 1, call.n do
    threads[i] = ngx.thread.spawn(function() return client:recognize(call.input) end)
  end
  for i, th in ipairs(threads) do
    local _, res, err = ngx.thread.wait(th)
    out[i] = { res = summary_res(res), err = summary_err(err) }
  end
  dict:set(key, cjson.encode{ pid = ngx.worker.pid(), out = out })
end

--- GET /burst: {workers = {{pid=, out=}...}} for the workers that have finished.
function M.burst_result()
  local dict = ngx.shared.ocr
  local workers = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local v = key:match("^burst:") and dict:get(key)
    if v and v ~= "running" then workers[#workers + 1] = cjson.decode(v) end
  end
  reply{ workers = workers }
end

return M
