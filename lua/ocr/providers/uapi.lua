--- UAPI "Universal OCR": one synchronous, billed multipart POST.
--   POST /api/v1/image/ocr   file | url | image_base64, image_name, need_location,
--                            return_markdown, enable_cls   ->  {text, plain_text, markdown?,
--                            words_result[] {words, score?, location?, vertexes_location?}, ...}
-- The key is optional: with `api_key` the call is charged to the account (Authorization: Bearer),
-- without it to the anonymous visitor quota.
local core = require "ocr.core"
local null = require("cjson.safe").null
local ocr = require "ocr"
local result, files = ocr.result, ocr.files

local PATH = "/api/v1/image/ocr"
local MAX_FILE_SIZE = 10 * 1024 * 1024 -- 10485760 bytes, the SDK's 413 message

-- The documented statuses (doc: 400 413 415 502 503; public SDK: 401 402 429).
local STATUS_KINDS = {
  [400] = "invalid_input", [401] = "auth", [402] = "quota", [413] = "too_large",
  [415] = "unsupported", [429] = "rate_limited", [502] = "server", [503] = "server",
}

-- Body codes that say more than their status (public SDK): the visitor quota is monthly, so its
-- 429 is an exhausted quota, not a "try again in a second".
local CODE_KINDS = { VISITOR_MONTHLY_QUOTA_EXHAUSTED = "quota", INSUFFICIENT_CREDITS = "quota" }

local bool = ocr.strings.bool

local function header(res, name)
  local v = res.headers and res.headers[name]
  if type(v) == "string" and v ~= "" then return v end
end

-- Maps an answer onto an error: the status picks the kind, a more specific body code wins,
-- and the body's {code, message} are kept.
local function check(ctx, res)
  local body = res.json
  if body then
    -- JSON null means absent (e.g. no text found): never index or iterate it.
    for k, v in pairs(body) do if v == null then body[k] = nil end end
  end
  if res.status >= 200 and res.status < 300 then
    if not body then
      return ctx:error{ kind = "protocol", status = res.status, request_id = header(res, "x-request-id"),
                        message = "answer is not JSON: " .. tostring(res.decode_error) }
    end
    if body.words_result ~= nil and type(body.words_result) ~= "table" then
      return ctx:error{ kind = "protocol", status = res.status, request_id = header(res, "x-request-id"),
                        message = "words_result is not an array" }
    end
    if type(body.text) ~= "string" and type(body.plain_text) ~= "string" and body.words_result == nil then
      return ctx:error{ kind = "protocol", status = res.status, request_id = header(res, "x-request-id"),
                        message = "answer has neither text, plain_text nor words_result" }
    end
    return nil
  end
  local code = body and (type(body.code) == "string" or type(body.code) == "number") and body.code or nil
  local message = body and type(body.message) == "string" and body.message ~= "" and body.message
                  or ("HTTP " .. res.status)
  local kind = CODE_KINDS[code] or STATUS_KINDS[res.status] or ocr.errors.kind_for_status(res.status)
  local err = ctx:error{ kind = kind, status = res.status, code = code, message = message,
                         request_id = header(res, "x-request-id") }
  -- 503 "temporarily unavailable" means the service refused the call before recognising
  -- anything, so re-sending it cannot bill twice (README: uapi, retry_unavailable).
  if res.status == 503 and ctx.options.retry_unavailable then err.vendor_busy = true end
  -- 502 "recognition processing failed": the engine ran, and the call is charged (inferred).
  if res.status == 502 then err.billed = true end
  return err
end

local number = result.number

local function polygon(list)
  if type(list) ~= "table" then return nil end
  local out = {}
  for i, p in ipairs(list) do
    if type(p) ~= "table" or not number(p.x) or not number(p.y) then return nil end
    out[i] = { x = number(p.x), y = number(p.y) }
  end
  return #out > 0 and out or nil
end

local function map_lines(body, geometry, scale)
  local lines = {}
  for i, w in ipairs(body.words_result or {}) do
    if type(w) ~= "table" then return nil, "words_result[" .. i .. "] is not an object" end
    local line = { text = type(w.words) == "string" and w.words or "",
                   confidence = result.confidence(w.score, scale) }
    if geometry then
      line.polygon = polygon(w.vertexes_location)
      line.box = result.box_of(w.location) or result.box_from_polygon(line.polygon)
    end
    lines[i] = line
  end
  return lines
end

local function text_of(body)
  for _, k in ipairs{ "text", "plain_text" } do
    if type(body[k]) == "string" and body[k] ~= "" then return body[k] end
  end
end

local function map_response(ctx, res, input)
  local body = res.json
  -- need_location = false means no geometry, whatever the answer carries.
  local geometry = input.need_location ~= false and body.need_location ~= false
  local lines, merr = map_lines(body, geometry, ctx.options.score_scale)
  if not lines then return nil, ctx:error{ kind = "protocol", status = res.status, message = merr } end
  local text = text_of(body)
  if body.words_result == nil then lines = nil end -- result.new splits the text instead
  local r = result.new{ text = text, lines = lines, raw = body,
                        request_id = header(res, "x-request-id") }
  if type(body.markdown) == "string" then r.markdown = body.markdown end
  return r
end

local function control_free(s)
  return not s:find("[%z\1-\31\127]")
end

local function validate(input)
  for _, k in ipairs{ "image_name", "filename" } do
    local v = input[k]
    if v ~= nil and (v == "" or #v > 255 or not control_free(v)) then
      return ("%s must be 1 to 255 bytes without control characters"):format(k)
    end
  end
end

local function source_parts(ctx, input)
  local name = input.image_name or input.filename or (input.file and files.basename(input.file))
  local parts = {}
  if input.url then
    parts[1] = { name = "url", value = input.url }
  elseif ctx.options.data_as == "base64" and input.data then
    parts[1] = { name = "image_base64", value = core.base64_encode(input.data) }
    -- The document asks for a name with bare base64, "to infer the extension".
    local ext = not name and files.sniff_extension(input.data)
    if ext then name = "image." .. ext end
  else
    parts[1] = files.part("file", input, "image")
  end
  if name then parts[#parts + 1] = { name = "image_name", value = name } end
  return parts
end

return {
  endpoint = "https://uapis.cn",
  credentials = { api_key = { required = false } },
  sources = { "file", "data", "url" },
  max_file_size = MAX_FILE_SIZE,
  languages = { detects = true },   -- (no parameter: the engine detects the language)
  options = { image_name = "string", need_location = "boolean", markdown = "boolean",
              enable_cls = "boolean" },
  cache_key = { "need_location", "markdown", "enable_cls", "score_scale" },   -- (ocr.cache)
  client_options = { data_as = { "file", "base64" }, retry_unavailable = "boolean",
                     score_scale = "number" },
  defaults = { data_as = "file", retry_unavailable = true, score_scale = 1 },
  -- The document: "4 credits / call", a call the engine answered; a 502 too (its check marks
  -- it billed: the engine ran), not a refusal before recognition (inferred).
  cost = { credits = 4, unit = "credit", per = "call", when = "success" },
  validate = validate,

  init = function(client)
    local o = client.options
    assert(o.score_scale > 0, "score_scale must be positive")
    -- The SDK accepts a base URL ending in /api/v1; so do we.
    if o.endpoint then o.endpoint = ocr.strings.rstrip(o.endpoint, ocr.strings.set_of("/")):gsub("/api/v1$", "") end
  end,

  recognize = function(ctx, input)
    local form = source_parts(ctx, input)
    local flags = { need_location = bool(input.need_location), return_markdown = bool(input.markdown),
                    enable_cls = bool(input.enable_cls) }
    for _, k in ipairs{ "need_location", "return_markdown", "enable_cls" } do
      if flags[k] then form[#form + 1] = { name = k, value = flags[k] } end
    end
    local headers = { Accept = "application/json" }
    if ctx.credentials.api_key then headers.Authorization = "Bearer " .. ctx.credentials.api_key end
    ctx:progress("upload", 0)
    local res, err = ctx:request{ method = "POST", path = PATH, headers = headers, form = form,
                                  decode = "json", check = check, billed = true }
    if not res then return nil, err end
    return map_response(ctx, res, input)
  end,
}
