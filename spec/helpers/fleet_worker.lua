-- One worker of a fleet, in its own Lua process (spec/fleet_spec.lua): picwish recognitions
-- against an emulator, on one API key, until `seconds` have passed or `inputs` are done; the
-- rate limit in Redis (`redis` = a redis:// URL) or in this process only. Prints one JSON line:
-- {done=, errors={kind=n}, outcomes={[i]="res"|"err:kind"}, events={...}, script_loads=, outages=}.
--   lua spec/helpers/fleet_worker.lua '<json config>'
-- config: endpoint, api_key, cpath, redis, seconds | inputs (a list of image texts), offset (seconds
-- added to this process's clock: the skew spec), retries, cache (true: an ocr.cache on the store),
-- margin (the rate limit's, default 2%).
package.path = "lua/?.lua;spec/?.lua;" .. package.path
local cjson = require "cjson"
local cfg = cjson.decode(arg[1])
package.cpath = cfg.cpath .. ";" .. package.cpath
local core = require "ocr.core"
if cfg.offset then   -- (everything reads the clock through the module table)
  local real = core.monotime
  core.monotime = function() return real() + cfg.offset end
end
local ocr = require "ocr"

local out = { done = 0, errors = {}, outcomes = {}, events = {} }
local store = cfg.redis and ocr.store.redis{ url = cfg.redis, timeout = 0.25, retry_after = 0.2,
  log = function(e) out.events[#out.events + 1] = e.event end }
local client = ocr.new("picwish", { api_key = cfg.api_key, endpoint = cfg.endpoint, store = store,
  poll_interval = 0.02, min_poll_interval = 0, poll_timeout = 30, retries = cfg.retries or 0,
  retry_budget = 1000, backoff = { base = 0.2, cap = 0.5 },
  rate = { per_second = 2, burst = 1, margin = cfg.margin } })
local target = cfg.cache and ocr.cache(client, { store = store, ttl = 3600 }) or client
if cfg.cache then   -- (the on_task callback is what lets another worker resume a pending task)
  io.stdout:write("READY\n")
  io.stdout:flush()
end

local function one(i, text)
  local res, err = target:recognize{ data = "\137PNG\r\n\26\nTEXT:" .. text, filename = "p" .. i .. ".png" }
  if res then
    out.done = out.done + 1
    out.outcomes[i] = res.cached and "cached" or res.resumed and "resumed" or "res"
  else
    out.errors[err.kind] = (out.errors[err.kind] or 0) + 1
    out.outcomes[i] = "err:" .. err.kind
  end
end

if cfg.inputs then
  for i, text in ipairs(cfg.inputs) do one(i, text) end
else
  local deadline = core.monotime() + cfg.seconds
  local i = 0
  while core.monotime() < deadline do
    i = i + 1
    one(i, "fleet " .. i)
  end
end
out.script_loads = store and store.script_loads or 0
out.outages = store and store.outages or 0
out.outcomes = cfg.inputs and out.outcomes or nil
io.stdout:write(cjson.encode(out), "\n")
