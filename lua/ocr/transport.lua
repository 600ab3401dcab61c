--- The libcurl transport of the blocking and jobs hosts (ocr.hosts.*): `ocr.curl`, loaded only
-- when a client actually sends, so a client inside nginx (cosockets) or with its own `transport`
-- never loads libcurl. A transport is any object with `request(self, req) -> res | nil, err` where req
-- and res are shaped as in `ocr.curl`'s session:request.

local M = {}

local Curl = {}
Curl.__index = Curl

-- Turns curl's transfer counters ({ulnow=, ultotal=, dlnow=, dltotal=}, as ocr.curl reports them
-- to a session's on_progress and from a multi's progress(id)) into on_bytes(now, total) for one
-- direction, called only when `now` moved.
local function byte_reporter(stage, on_bytes)
  local last
  return function(p)
    local now, total = p.dlnow, p.dltotal
    if stage == "upload" then now, total = p.ulnow, p.ultotal end
    if now ~= last then
      last = now
      on_bytes(now, total)
    end
  end
end

--- Inside a scheduler job the request goes to the shared multi handle and the job yields;
-- elsewhere it blocks on this transport's keep-alive session. With `opts.stage`
-- ("upload"|"download") and `opts.on_bytes(now, total)`, transfer progress is reported;
-- `opts.on_start()` is called if the request leaves later than this call (a job's request
-- waits for the next step when the step's budget ran out).
function Curl:request(req, opts)
  local report = opts and opts.stage and opts.on_bytes and byte_reporter(opts.stage, opts.on_bytes)
    or nil
  local scheduler = package.loaded["ocr.scheduler"]   -- (not loaded: no job is running)
  if scheduler and scheduler.current() then return scheduler.http(req, report, opts and opts.on_start) end
  if report then req.on_progress = report end
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
