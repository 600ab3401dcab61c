-- "Acme OCR", a made-up vendor, as a provider of your own: the README's "Write a provider" guide.
-- Acme takes a JSON job (the image in base64), answers a job id, and is polled until done.
local ocr = require "ocr"
local core = require "ocr.core"

-- Acme's error codes onto our kinds; anything else falls back on the HTTP status.
local KINDS = { BAD_IMAGE = "invalid_input", NO_CREDIT = "quota", BUSY = "rate_limited" }

-- Turns an answer into an error (or nil when it is a success).
local function check(ctx, res)
  local body = res.json
  if res.status == 200 and body then return nil end
  local e = body and body.error or {}
  return ctx:error{ kind = KINDS[e.code] or ocr.errors.kind_for_status(res.status),
                    status = res.status, code = e.code, message = e.message or res.decode_error }
end

ocr.register("acme", {
  endpoint = "https://api.acme.example",
  credentials = { api_key = { required = true } },      -- also read from OCR_ACME_API_KEY
  sources = { "file", "data" },
  options = { lang = { "en", "zh" } },                    -- checked before anything is sent
  max_file_size = 5 * 1024 * 1024,

  recognize = function(ctx, input)
    local image, ierr = ctx:input_bytes(input)          -- data, or the file's bytes
    if not image then return nil, ierr end
    local auth = { Authorization = "Token " .. ctx.credentials.api_key }
    local res, err = ctx:request{ method = "POST", path = "/v1/jobs", headers = auth, decode = "json",
      json = { image = core.base64_encode(image), lang = input.lang or "en" },
      check = check, billed = true }                    -- billed: never re-sent blindly
    if not res then return nil, err end
    local id, ierr = ctx:take_task_id(res.json.id, "id") -- foreign: bounded, no dot segments
    if not id then return nil, ierr end                 -- (kept: errors and results carry it)

    local job, perr = ctx:poll{ step = function(c)         -- every poll_interval, up to poll_timeout
      local r, e = c:request{ method = "GET", path = "/v1/jobs/" .. c:segment(id), headers = auth,
                              decode = "json", check = check }
      if not r then return nil, e end
      if r.json.status == "done" then return "done", r.json end
      if r.json.status == "failed" then return nil, check(c, { status = 422, json = r.json }) end
      c:progress("processing", r.json.progress)
      return "pending"
    end }
    if not job then return nil, perr end

    return ctx:map(function()                          -- a malformed answer: protocol error
      local lines = {}
      for i, b in ipairs(job.blocks) do
        lines[i] = { text = b.text, confidence = b.conf,
                     box = { x = b.bbox[1], y = b.bbox[2], w = b.bbox[3], h = b.bbox[4] } }
      end
      return ocr.result.new{ lines = lines, raw = job }
    end)
  end,
})
