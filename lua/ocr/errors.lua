--- The one error model of lua-ocr.
-- Every failure a caller sees is an `ocr.error`: a table with a stable `kind` to branch on, the
-- vendor's own `code`, the HTTP `status`, ids to quote to support, and whether a retry can help.
-- `tostring(err)` is one readable line. Secrets never appear in it: see `redact`.
local M = {}

--- The kinds, each with whether it is worth retrying by default.
M.KINDS = {
  invalid_input = false, -- the request is wrong; fix the input
  auth          = false, -- credentials missing, wrong or not allowed
  quota         = false, -- out of credits / daily limit
  rate_limited  = true,  -- too many requests now; retry later
  too_large     = false, -- input or answer over a size limit
  unsupported   = false, -- the vendor cannot do this (format, type)
  not_found     = false, -- unknown task, object or id (or expired)
  timeout       = true,  -- no answer in time (request or polling)
  network       = true,  -- connection refused, dropped, DNS, TLS
  server        = true,  -- the vendor failed (5xx, internal error)
  task_failed   = false, -- the vendor accepted the job and then failed it
  protocol      = false, -- the answer did not follow the vendor's contract
  cancelled     = false, -- the caller cancelled the job (job:cancel())
}

local Error = {}
Error.__index = Error
M.Error = Error

local FIELD_ORDER = { "status", "code", "task_id", "request_id" }

function Error:__tostring()
  local parts = { ("%s: %s: %s"):format(self.provider or "ocr", self.kind, self.message or "") }
  for _, k in ipairs(FIELD_ORDER) do
    if self[k] ~= nil and self[k] ~= "" then parts[#parts + 1] = ("%s=%s"):format(k, tostring(self[k])) end
  end
  if self.retry_after then parts[#parts + 1] = ("retry_after=%gs"):format(self.retry_after) end
  local attempts = self.attempts
  if type(attempts) == "table" then   -- a pipeline's: every member tried, "picked:kind,..."
    local tried = {}
    for i, a in ipairs(attempts) do
      tried[i] = tostring(a.provider) .. ":" .. tostring(a.kind or "ok")
    end
    parts[#parts + 1] = "attempts=" .. table.concat(tried, ",")
  elseif type(attempts) == "number" and attempts > 1 then
    parts[#parts + 1] = ("attempts=%d"):format(attempts)
  end
  return table.concat(parts, " ")
end

--- `v` when it is a string or a number, else nil: what ids, codes and languages may be.
--- A number that is not finite (NaN, an infinity: what a damaged JSON answer can decode to)
--- becomes its string, so that every error can be printed and encoded.
function M.scalar(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
    return v
  end
  return nil
end

--- `v` as an integer when it is a float with an integral value (Lua 5.3+), else `v` itself.
local tointeger = math.tointeger
function M.integral(v)
  if tointeger and type(v) == "number" then return tointeger(v) or v end
  return v
end

--- Creates an error. `fields.kind` must be one of `KINDS`; `retryable` defaults by kind.
function M.new(fields)
  assert(type(fields) == "table", "ocr.error: fields table expected")
  local kind = fields.kind
  assert(M.KINDS[kind] ~= nil, "ocr.error: unknown kind " .. tostring(kind))
  local e = {}
  for k, v in pairs(fields) do e[k] = v end
  if e.retryable == nil then e.retryable = M.KINDS[kind] end
  -- A vendor's empty or odd message field still leaves a message to read.
  local m = e.message
  if type(m) == "number" then e.message = tostring(m)
  elseif type(m) ~= "string" or m == "" then e.message = (kind:gsub("_", " ")) end
  -- Ids and codes are strings or numbers (a damaged answer's table is dropped); JSON numbers
  -- decode as floats on Lua 5.3+: code 401, not 401.0.
  e.code = M.integral(M.scalar(e.code))
  e.task_id, e.request_id = M.scalar(e.task_id), M.scalar(e.request_id)
  return setmetatable(e, Error)
end

function M.is_error(v)
  return getmetatable(v) == Error
end

--- Default mapping of an HTTP status onto a kind, for vendors that do not say better.
function M.kind_for_status(status)
  if status == 400 or status == 405 or status == 411 or status == 422 then return "invalid_input" end
  if status == 401 or status == 403 then return "auth" end
  if status == 402 then return "quota" end
  if status == 404 or status == 410 then return "not_found" end
  if status == 408 or status == 504 then return "timeout" end
  if status == 413 then return "too_large" end
  if status == 415 or status == 501 then return "unsupported" end
  if status == 429 then return "rate_limited" end
  if status >= 500 then return "server" end
  return "protocol"
end

--- Parses a Retry-After value (delta seconds or an HTTP-date) into seconds from `now`.
function M.parse_retry_after(value, now)
  -- (bounded: the patterns below would backtrack over a long run of letters or spaces)
  if type(value) ~= "string" or #value > 64 then return nil end
  local secs = tonumber(value:match("^%s*(%d+)%s*$"))
  if secs then return secs end
  -- IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  local d, mon, y, h, mi, s = value:match("^%s*%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT%s*$")
  local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                   Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
  if not (d and months[mon]) then return nil end
  -- os.time reads a local time; compute the UTC offset once to turn it into UTC.
  local t = { year = tonumber(y), month = months[mon], day = tonumber(d),
              hour = tonumber(h), min = tonumber(mi), sec = tonumber(s), isdst = false }
  local utc_now = os.time(os.date("!*t", 0))
  local when = os.time(t) - utc_now
  local delta = when - (now or os.time())
  return delta > 0 and delta or 0
end

local function escape_pattern(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- The forms a secret takes on its way through URLs, forms, JSON and headers: as is,
-- percent-encoded (upper- or lower-case hex, "+" or "%20" for a space), JSON-escaped (with
-- or without "\/") and base64 (Basic auth).
local function encodings(secret)
  local forms, seen = {}, {}
  local function add(f) if not seen[f] then seen[f] = true forms[#forms + 1] = f end end
  add(secret)
  for _, hex in ipairs{ "%%%02X", "%%%02x" } do
    local pct = secret:gsub("[^%w%-%._~]", function(c) return hex:format(c:byte()) end)
    add(pct)
    add((pct:gsub(hex:format(32):gsub("%%", "%%%%"), "+")))
  end
  local ok, json = pcall(require("cjson").encode, secret)
  if ok then
    json = json:sub(2, -2)
    add(json)
    add((json:gsub("\\/", "/")))
  end
  local core = package.loaded["ocr.core"] or require("ocr.core")
  add(core.base64_encode(secret))
  return forms
end

--- Replaces every occurrence of each secret, in each of its encodings, in `s` by "***".
function M.redact(s, secrets)
  if type(s) ~= "string" or not secrets then return s end
  for _, secret in ipairs(secrets) do
    if type(secret) == "string" and #secret >= 4 then
      for _, form in ipairs(encodings(secret)) do
        if s:find(form, 1, true) then s = s:gsub(escape_pattern(form), "***") end
      end
    end
  end
  return s
end

--- Redacts every string field of an error in place and returns it.
function M.scrub(err, secrets)
  if not secrets or #secrets == 0 then return err end
  for k, v in pairs(err) do
    if type(v) == "string" then err[k] = M.redact(v, secrets) end
  end
  return err
end

return M
