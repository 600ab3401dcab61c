--- The default transport: `ocr.curl`, loaded only when a client actually needs it, so an embedder
-- that passes its own `transport` (OpenResty cosockets, a test double for offline demos) never
-- loads libcurl. A transport is any object with `request(self, req) -> res | nil, err` where req
-- and res are shaped as in `ocr.curl`'s session:request.
local runtime = require "ocr.runtime"

local M = {}

local Curl = {}
Curl.__index = Curl

--- Inside a scheduler job the request goes to the shared multi handle and the job yields;
-- elsewhere it blocks on this transport's keep-alive session. With `opts.stage`
-- ("upload"|"download") and `opts.on_bytes(now, total)`, transfer progress is reported.
function Curl:request(req, opts)
  local stage, on_bytes = opts and opts.stage, opts and opts.on_bytes
  local scheduler = runtime.job_scheduler()
  if scheduler then return scheduler.http(req, stage, on_bytes) end
  if stage and on_bytes then
    local last
    req.on_progress = function(ev)
      local now, total = ev.dlnow, ev.dltotal
      if stage == "upload" then now, total = ev.ulnow, ev.ultotal end
      if now ~= last then
        last = now
        on_bytes(now, total)
      end
    end
  end
  return self.session:request(req)
end

function Curl:close()
  if self.session then self.session:close() end
end

--- A curl transport with its own keep-alive session. `opts` are ocr.curl session options.
function M.curl(opts)
  local curl = require "ocr.curl"
  return setmetatable({ session = curl.session(opts or {}), curl = curl }, Curl)
end

return M
