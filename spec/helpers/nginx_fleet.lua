-- nginx's part of a fleet (spec/fleet_spec.lua): POST /fleet stores {endpoint, api_key, redis,
-- seconds, file, margin} in the shared dict `ocr`; each worker's timer (init_worker_by_lua:
-- ngx.timer.every(0.05, fleet.tick)) sees it once and recognises in a loop for `seconds` over
-- cosockets, the rate limit in Redis; GET /fleet-result gives {workers = {{pid=, done=, errors=}}}.
local cjson = require "cjson.safe"

local M = {}

function M.start()
  ngx.req.read_body()
  local dict = ngx.shared.ocr
  dict:flush_all()
  dict:set("fleet", ngx.req.get_body_data())
  ngx.say('{"ok":true}')
end

function M.tick(premature)
  local dict = ngx.shared.ocr
  local cfg = not premature and cjson.decode(dict:get("fleet") or "")
  local key = "fleet:" .. ngx.worker.pid()
  if type(cfg) ~= "table" or not dict:add(key, "running") then return end
  local ocr = require "ocr"
  local store = ocr.store.redis{ url = cfg.redis, timeout = 0.25 }
  local client = ocr.new("picwish", { api_key = cfg.api_key, endpoint = cfg.endpoint, store = store,
    poll_interval = 0.02, min_poll_interval = 0, retries = 0,
    rate = { per_second = 2, burst = 1, margin = cfg.margin } })
  local out = { pid = ngx.worker.pid(), done = 0, errors = {} }
  local deadline = ngx.now() + cfg.seconds
  while ngx.now() < deadline do
    ngx.update_time()
    local res, err = client:recognize{ file = cfg.file }
    if res then out.done = out.done + 1
    else out.errors[err.kind] = (out.errors[err.kind] or 0) + 1 end
    ngx.update_time()
  end
  dict:set(key, cjson.encode(out))
end

function M.result()
  local dict = ngx.shared.ocr
  local workers = {}
  for _, key in ipairs(dict:get_keys(0)) do
    local v = key:match("^fleet:") and dict:get(key)
    if v and v ~= "running" then workers[#workers + 1] = cjson.decode(v) end
  end
  ngx.say(cjson.encode{ workers = workers })
end

return M
