--- The "OCR assistant" Code.ashx API (ocr.oldfish.cn). Every request carries
-- `app=api&token=…` in its query string, so the token travels in URLs: ctx:log and ctx:error
-- redact it (it is a credential, hence in the client's secrets list).
--   POST /Code.ashx?op=code&type=N[&left=1…]   multipart: file part | url | code (base64); billed
--   POST /Code.ashx?op=idcode                   body `id=…` (form): JSON array, or plain `no`
--   POST /Code.ashx?op=imgUpload                multipart file part: plain-text URL, or `no`
--   GET  /Code.aspx?op=count                    {Account, TodayCount, LimitCount} (note .aspx)
-- `state`: 0 pending (poll idcode), 2 success, 3 failed (retryable), 4 timeout, 6 busy, 7
-- unsupported. The quota answer has processName "Tips" and no state: it is an error, never text.
local core = require "ocr.core"
local cjson = require "cjson.safe"
local ocr = require "ocr"

local HANDLER = "/Code.ashx"
local COUNT = "/Code.aspx"
local TYPE_NAMES = { text = 0, vertical = 1, table = 2, formula = 3 }
local FLAGS = { "left", "top", "autodirection", "half", "space", "symbol", "duplicate" }
local FILE_FORMATS = { "pdf", "docx", "pptx", "xlsx", "txt", "md" } -- fileType 1..6

-- state -> kind, default message, extra fields (doc: "state enumeration").
local STATE_ERRORS = {
  [3] = { "task_failed", "the engine failed to process the image", { retryable = true } },
  [4] = { "timeout", "the engine did not answer within its validity period", {} },
  [6] = { "rate_limited", "too many concurrent requests (concurrency limit)", { vendor_busy = true } },
  [7] = { "unsupported", "the recognition type or file format is not supported", {} },
}

local function str(v)
  return type(v) == "string" and v or nil
end

local num = ocr.result.number

local function trim(s)
  return ocr.strings.trim(tostring(s or ""))
end

local function query(ctx, op, extra)
  local q = { op = op, app = "api", token = ctx.credentials.token }
  for k, v in pairs(extra or {}) do q[k] = v end
  return q
end

-- The quota answer: processName "Tips" and no state; its text is in result.autoText.
local function is_tips(a)
  return a.processName == "Tips" and a.state == nil
end

local function tips_error(ctx, a)
  local r = type(a.result) == "table" and a.result or {}
  local text = str(r.autoText) or str(r.spiltText) or str(a.message) or "quota exhausted"
  return ctx:error{ kind = "quota", message = text, tips = true }
end

-- Non-2xx answers are ctx:http_error's (a short plain-text reason goes into the message).
local function check_code(ctx, res)
  local e = ctx:http_error(res)
  if e then return e end
  local a = res.json
  if type(a) ~= "table" or a[1] ~= nil then
    return ctx:error{ kind = "protocol", message = "recognition answer is not a JSON object: "
                      .. tostring(res.decode_error or "an array") }
  end
  if is_tips(a) then return tips_error(ctx, a) end
  -- Only "busy" is worth re-sending a billed request for (ocr.retry: vendor_busy).
  if tonumber(a.state) == 6 then
    local s = STATE_ERRORS[6]
    return ctx:error{ kind = s[1], code = 6, vendor_busy = true, message = str(a.message) or s[2] }
  end
end

local function check_poll(ctx, res)
  local e = ctx:http_error(res)
  if e then return e end
  if trim(res.body) == "no" then
    return ctx:error{ kind = "not_found", retryable = false,
                      message = "the vendor has no result for this id (unknown, or expired and cleared)" }
  end
  if type(res.json) ~= "table" then
    return ctx:error{ kind = "protocol", message = "poll answer is not JSON: " .. tostring(res.decode_error) }
  end
end

local function count(ctx)
  local res, err = ctx:request{ method = "GET", path = COUNT, query = query(ctx, "count"), check = ctx.http_error }
  if not res then return nil, err end
  -- (JSON, with // comments as in the document's example)
  local v = cjson.decode(res.body or "")
  if type(v) ~= "table" and #(res.body or "") <= 65536 then
    v = cjson.decode(ocr.strings.strip_json_comments(res.body or ""))
  end
  if type(v) ~= "table" then
    return nil, ctx:error{ kind = "protocol", status = res.status, message = "count answer is not JSON" }
  end
  local today, limit = num(v.TodayCount), num(v.LimitCount)
  if not today or not limit then
    return nil, ctx:error{ kind = "protocol", status = res.status, message = "count answer lacks TodayCount/LimitCount" }
  end
  return { account = str(v.Account), today = today, limit = limit }
end

-- A "Tips" answer is the quota answer, but an invalid token may look the same. op=count tells
-- them apart: all zeros means an invalid token (doc). Free, and only on this failure path.
local function confirm_tips(ctx, err)
  err.tips = nil
  if ctx.options.tips_check == false then return err end
  local q = count(ctx)
  if q and q.today == 0 and q.limit == 0 then
    return ctx:error{ kind = "auth", status = err.status,
                      message = "the token is invalid (count answers all zeros); the vendor said: " .. err.message }
  end
  return err
end

local function type_number(t)
  if t == nil then return 0 end
  return TYPE_NAMES[t] or t
end

local function source_part(ctx, input)
  if input.url then return { name = "url", value = input.url } end
  if input.file or ctx.options.data_as == "file" then
    return ocr.files.part(ctx.options.file_field or "file", input, "image")
  end
  return { name = "code", value = core.base64_encode(input.data) }
end

-- verticalText is a JSON string inside the JSON answer: [{words, trans, pageIndex, location}].
local function vertical_lines(ctx, vt)
  local cells = ctx:json_field(vt, "verticalText")
  if not cells then return nil end
  local lines, pages = {}, nil
  for _, c in ipairs(cells) do
    if type(c) == "table" then
      local page = num(c.pageIndex) and math.floor(num(c.pageIndex)) + 1 or nil
      if page and (not pages or page > pages) then pages = page end
      lines[#lines + 1] = { text = str(c.words) or "", translation = str(c.trans), page = page,
                            box = ocr.result.box_of(c.location) }
    end
  end
  return lines[1] and lines, pages
end

local function result_files(r)
  local out = {}
  if type(r.files) ~= "table" then return out end
  for _, f in ipairs(r.files) do
    if type(f) == "table" and str(f.url) then
      local ft = num(f.fileType)
      out[#out + 1] = { url = f.url, format = ft and FILE_FORMATS[ft] or nil, file_type = ft,
                        desc = str(f.desc), param = str(f.param) ~= "" and str(f.param) or nil }
    end
  end
  return out
end

local function build(ctx, a, input)
  local r = a.result
  if type(r) ~= "table" then
    return nil, ctx:error{ kind = "protocol", message = "success answer without a result object" }
  end
  local lines, pages = vertical_lines(ctx, r.verticalText)
  local table_mode = tonumber(a.ocrType) == 2 or tonumber(r.resultType) == 2
  -- The text: autoText, else the lines' (result.new joins them), else spiltText but in table mode.
  local text = str(r.autoText)
  if not text and not lines then text = not table_mode and str(r.spiltText) or "" end
  local fields = { raw = a, text = text, lines = lines, pages = pages, language = str(r.lang),
                   view_url = str(r.viewUrl), files = result_files(r) }
  if table_mode then fields.table = ctx:json_field(r.spiltText, "spiltText") end
  -- The files (exports of the text) are saved when `output` is given.
  local ok, err = ctx:fetch_files(fields.files, input, { read_text = false })
  if not ok then return nil, err end
  return ocr.result.new(fields)
end

-- One answer (from op=code or an idcode element) -> "done", res | "pending" | nil, err.
local function interpret(ctx, a, input)
  if is_tips(a) then return nil, confirm_tips(ctx, tips_error(ctx, a)) end
  local state = num(a.state)
  if state == 0 then return "pending" end
  if state == 2 then
    local res, err = build(ctx, a, input)
    if not res then return nil, err end
    return "done", res
  end
  local s = state and STATE_ERRORS[state]
  if not s then
    return nil, ctx:error{ kind = "protocol", code = state,
                           message = ("answer has %s"):format(state and ("undocumented state " .. state) or "no state")
                                     .. (str(a.message) and (": " .. a.message) or "") }
  end
  local f = { kind = s[1], code = state, message = str(a.message) or s[2] }
  for k, v in pairs(s[3]) do f[k] = v end
  return nil, ctx:error(f)
end

-- The idcode answer is an array; we take the element whose id is ours, else the first one (the
-- document shows one element). A bare object is accepted as the answer itself.
local function pick(ctx, answer, id)
  if answer[1] == nil then
    if next(answer) == nil then return nil, ctx:error{ kind = "protocol", message = "empty poll answer" } end
    return answer
  end
  for _, a in ipairs(answer) do
    if type(a) == "table" and a.id == id then return a end
  end
  if type(answer[1]) ~= "table" then return nil, ctx:error{ kind = "protocol", message = "malformed poll answer" } end
  return answer[1]
end

local function fetch(ctx, id, input)
  ctx.task_id = id
  return ctx:poll{ step = function(c)
    local res, err = c:request{ method = "POST", path = HANDLER, query = query(c, "idcode"),
                                body = "id=" .. core.url_encode(id),
                                headers = { ["Content-Type"] = "application/x-www-form-urlencoded" },
                                decode = "json", check = check_poll }
    if not res then return nil, err end
    local a, perr = pick(c, res.json, id)
    if not a then return nil, perr end
    local state, value = interpret(c, a, input)
    if state == "pending" then c:progress("queued", nil, { state = 0 }) end
    return state, value
  end }
end

local function upload_image(ctx, path)
  if type(path) ~= "string" then
    return nil, ctx:error{ kind = "invalid_input", message = "upload_image: a file path is required" }
  end
  local size, msg = ocr.files.check_input(path)
  if not size then return nil, ctx:error{ kind = "invalid_input", message = msg } end
  ctx:progress("upload", 0)
  local res, err = ctx:request{ method = "POST", path = HANDLER, query = query(ctx, "imgUpload"),
                                form = { ocr.files.part(ctx.options.file_field or "file", { file = path }) },
                                check = ctx.http_error }
  if not res then return nil, err end
  local body = trim(res.body)
  if body == "no" then
    return nil, ctx:error{ kind = "server", status = res.status, message =
      "the image bed answered \"no\": the file was not received, the upload failed, or the token is invalid" }
  end
  if not ocr.url.is_http(body) then
    return nil, ctx:error{ kind = "protocol", status = res.status, message = "image bed answer is not a URL" }
  end
  return setmetatable({ url = body }, { __tostring = function(t) return t.url end })
end

local function validate(input)
  if input.filename and input.url then return "filename applies to file and data sources, not url" end
end

local options = { type = { 0, 1, 2, 3, "text", "vertical", "table", "formula" } }
for _, f in ipairs(FLAGS) do options[f] = "boolean" end

return {
  endpoint = "https://ocr.oldfish.cn",
  credentials = { token = { required = true } },
  sources = { "file", "data", "url" },
  languages = { detects = true },   -- (no parameter: the engine detects it and reports `lang`)
  options = options,
  cache_key = { "type", "left", "top", "autodirection", "half", "space", "symbol", "duplicate" },
  client_options = { file_field = "string", data_as = { "code", "file" }, tips_check = "boolean" },
  defaults = { file_field = "file", data_as = "code", tips_check = true },
  -- Each recognition counts one against the daily quota the count query shows (inferred: its
  -- TodayCount goes up by one); polls, uploads and the count do not. The quota answer and the
  -- busy state are refusals, not counted.
  cost = { credits = 1, unit = "call", per = "recognition", when = "success" },
  validate = validate,

  recognize = function(ctx, input)
    local q = query(ctx, "code", { type = type_number(input.type) })
    for _, f in ipairs(FLAGS) do
      if input[f] ~= nil then q[f] = input[f] and 1 or 0 end
    end
    ctx:progress("upload", 0)
    local res, err = ctx:request{ method = "POST", path = HANDLER, query = q, form = { source_part(ctx, input) },
                                  decode = "json", check = check_code, billed = true }
    if not res then
      if err.tips then return nil, confirm_tips(ctx, err) end
      return nil, err
    end
    local a = res.json
    if ocr.strings.nonempty(a.id) then
      local id, ierr = ctx:take_task_id(a.id, "id")
      if not id then return nil, ierr end
    end
    local state, value = interpret(ctx, a, input)
    if state == "done" then return value end
    if state == nil then return nil, value end
    if not ctx.task_id then
      return nil, ctx:error{ kind = "protocol", message = "pending answer without an id to poll" }
    end
    ctx:progress("queued", nil, { state = 0 })
    ctx:sleep(ctx.options.poll_interval)
    return fetch(ctx, ctx.task_id, input)
  end,

  result = function(ctx, task_id, input)
    return fetch(ctx, task_id, input)
  end,

  methods = {
    --- client:quota() -> {account=, today=, limit=} (limit: what remains); all zeros -> auth.
    quota = function(ctx)
      local q, err = count(ctx)
      if not q then return nil, err end
      if q.today == 0 and q.limit == 0 then
        return nil, ctx:error{ kind = "auth", message = "the token is invalid (count answers all zeros)" }
      end
      return q
    end,
    --- client:upload_image(path) -> {url=} (tostring gives the URL) on the vendor's image bed.
    upload_image = upload_image,
  },
}
