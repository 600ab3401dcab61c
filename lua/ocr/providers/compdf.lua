--- ComPDF document AI OCR. Three modes:
--   sync       POST v2/process/documentAI/ocr            -> data = one result file
--   async      POST v2/processAsync/documentAI/ocr       -> data.taskId, then poll taskInfo
--   presigned  POST v2/presignedUrl/documentAI/ocr (fileName) -> {taskId, presignedUrl};
--              PUT the bytes there; GET v2/execute/start; poll taskInfo
--   poll       GET v2/task/taskInfo?taskId=&language=    -> data.taskStatus, fileInfoDTOList[]
-- Success is code "200" AND a file status "success"; the result file at downloadUrl (valid 24 h)
-- is downloaded at once: text-like targets fill res.text, others are saved into `output` under
-- the server's downFileName, sanitised (ocr.files.safe_path) so it can never escape `output`.
local cjson = require "cjson.safe"
local ocr = require "ocr"

local PATHS = {
  sync = "v2/process/documentAI/ocr",
  async = "v2/processAsync/documentAI/ocr",
  presigned = "v2/presignedUrl/documentAI/ocr",
  info = "v2/task/taskInfo",
  start = "v2/execute/start",
}
local MODES = { "sync", "async", "presigned" }
-- ocrRecognitionLang: one script family a file (the vendor's default: AUTO).
local LANGS = {
  codes = { und = "AUTO", en = "ENGLISH", ["zh-Hans"] = "CHINESE", ["zh-Hant"] = "CHINESE_TRAD",
            ko = "KOREAN", ja = "JAPANESE", la = "LATIN", de = "LATIN", fr = "LATIN", es = "LATIN",
            it = "LATIN", pt = "LATIN", nl = "LATIN", pl = "LATIN", cs = "LATIN", sv = "LATIN",
            da = "LATIN", fi = "LATIN", tr = "LATIN", vi = "LATIN", id = "LATIN", hi = "DEVANAGARI",
            mr = "DEVANAGARI", ne = "DEVANAGARI", sa = "DEVANAGARI", ru = "CYRILLIC", uk = "CYRILLIC",
            be = "CYRILLIC", bg = "CYRILLIC", sr = "CYRILLIC", ar = "ARABIC", fa = "ARABIC",
            ur = "ARABIC", ta = "TAMIL", te = "TELUGU", kn = "KANNADA", th = "THAI", el = "GREEK" },
  native = { "AUTO", "CHINESE", "CHINESE_TRAD", "ENGLISH", "KOREAN", "JAPANESE", "LATIN",
             "DEVANAGARI", "CYRILLIC", "ARABIC", "TAMIL", "TELUGU", "KANNADA", "THAI", "GREEK",
             "ESLAV" },
}
local STRATEGIES = { "ALL", "SCAN_PAGE", "INVALID_CHARACTER", "INVALID_CHARACTER_AND_SCAN_PAGE" }
-- The vendor asks for no poll faster than every 3 s: the client's min_poll_interval defaults to
-- it (a caller polling a local mock lowers it explicitly).
local MIN_POLL = 3

-- Documented error codes -> kind, our explanation, retryable override.
local CODES = {
  ["01001"] = { "server", "ComPDF system error" },
  ["01002"] = { "server", "ComPDF system error" },
  ["01003"] = { "server", "ComPDF system error" },
  ["01004"] = { "server", "ComPDF system error" },
  ["01005"] = { "invalid_input", "the file is empty" },
  ["01006"] = { "invalid_input", "ComPDF refused the request's parameters" },
  ["02002"] = { "unsupported", "ComPDF does not support this file format" },
  ["02201"] = { "invalid_input" }, -- message depends on whether a password was given
  ["02209"] = { "too_large", "the file is over ComPDF's size limit" },
  ["05001"] = { "not_found", "ComPDF does not know this task" },
  ["05004"] = { "timeout", "the task expired on ComPDF's side; submit the file again", false },
  ["06001"] = { "quota", "the ComPDF account is out of credits" },
}

-- A file's status (lower-cased), and the task's taskStatus while it runs -> progress stage.
local FAILED = { failed = true, fail = true, failure = true, error = true }
local PENDING = { processing = true, waiting = true, pending = true, queued = true, running = true }
local RUNNING = { TaskStart = "queued", TaskWaiting = "queued", TaskProcessing = "processing" }
-- Result URLs are valid this long (ctx:download explains an expired link with it), and a file
-- result refused for want of `output` can be fetched again within it.
local VALIDITY = "24 hours"
local LATER = "within 24 hours client:result(task_id, { output = dir }) fetches it without paying again"

local function auth(ctx)
  return { ["x-api-key"] = ctx.credentials.api_key }
end

-- `code` is documented as a string ("200", "06001"); a JSON number is accepted too.
local function norm_code(v)
  if type(v) == "string" then return v ~= "" and v or nil end
  if type(v) == "number" and v == math.floor(v) and v >= 0 and v < 1e9 then
    local s = ("%d"):format(v)
    if #s == 4 then s = "0" .. s end -- 1001 was "01001" before a lossy encoder got it
    return s
  end
  return nil
end

-- An ocr.error for a ComPDF business code (from a body or a file's failureCode).
local function code_error(ctx, code, vendor_msg, status)
  local m = CODES[code] or {}
  local kind, msg = m[1], m[2] or ("ComPDF error " .. code)
  if code == "02201" then
    msg = ctx.input.password
          and "the document is encrypted and the password given is wrong; check the 'password' option"
          or "the document is encrypted; pass its password with the 'password' option"
  elseif not kind then
    local n = tonumber(code)
    -- (e.g. "401", "429": HTTP statuses echoed as codes)
    local as_status = n and #code == 3 and n >= 400 and n < 600 and n or status
    kind = as_status and ocr.errors.kind_for_status(as_status) or "task_failed"
  end
  if vendor_msg then
    -- The vendor may echo the document's password back; it never reaches an error.
    msg = msg .. " (ComPDF: " .. ocr.errors.redact(vendor_msg, { ctx.input.password }) .. ")"
  end
  return ctx:error{ kind = kind, code = code, status = status, message = msg, retryable = m[3] }
end

-- Maps an API answer onto an error: the body's code wins over HTTP's status (HTTP 200 is not
-- success by itself), and a success must carry a data object.
local function check(ctx, res)
  local body = res.json
  local code = body and norm_code(body.code)
  local vendor_msg = body and ocr.strings.nonempty(body.msg)
  if code and code ~= "200" then return code_error(ctx, code, vendor_msg, res.status) end
  local err = ctx:http_error(res, vendor_msg or ("HTTP " .. res.status))
  if err then return err end
  local why = not body and ("answer is not JSON: " .. tostring(res.decode_error))
              or code == nil and "answer has no code"
              or type(body.data) ~= "table" and "answer has no data object"
  if why then return ctx:error{ kind = "protocol", status = res.status, message = why } end
end

local function message_language(input)
  local v = input.message_language
  return (v == 2 or v == "zh") and "2" or "1"
end

local function flag(v)
  if v ~= nil then return v and "1" or "0" end
end

-- The multipart fields every create carries after its source part: top-level option fields, or
-- with legacy_parameter the options as one JSON object in `parameter`. password, language and
-- callbackUrl stay top-level in both styles (inferred, as in ComPDF's older upload API).
local function form_for(ctx, input, first)
  local form, legacy, opts = { first }, ctx.options.legacy_parameter, {}
  local function add(name, value)
    if value ~= nil then form[#form + 1] = { name = name, value = value } end
  end
  add("language", message_language(input))
  add("password", input.password)
  add("callbackUrl", input.callback_url)
  for _, o in ipairs{ { "pageRanges", input.pages }, { "enableOcr", flag(input.ocr) },
                      { "ocrRecognitionLang", ctx:language(input) }, { "ocrOption", input.strategy },
                      { "isOutputDocumentPerPage", flag(input.per_page) } } do
    if legacy then opts[o[1]] = o[2] else add(o[1], o[2]) end
  end
  if legacy then add("parameter", next(opts) and cjson.encode(opts) or "{}") end
  return form
end

local function protocol(ctx, fmt, ...)
  return nil, ctx:error{ kind = "protocol", message = fmt:format(...) }
end

-- The error for a file ComPDF failed: its failureCode's kind when documented, else task_failed.
local function file_error(ctx, f)
  local code = norm_code(f.failureCode)
  local reason = ocr.strings.nonempty(f.failureReason)
  if code and CODES[code] then return code_error(ctx, code, reason, nil) end
  return ctx:error{ kind = "task_failed", code = code,
                    message = "ComPDF failed the file" .. (reason and (": " .. reason) or "") }
end

local function status_of(f)
  return type(f.status) == "string" and f.status:lower() or nil
end

-- A file's result type: targetType, else the extension of downFileName or of the URL's path.
local function type_of(f)
  local t = type(f.targetType) == "string" and f.targetType:lower():match("^%.?(%w+)$")
  local u = not t and ocr.url.parse(f.downloadUrl)
  return t or ocr.files.extension(f.downFileName) or (u and ocr.files.extension(u.path)) or "bin"
end

-- Turns the finished file objects (sync data, or fileInfoDTOList) into a result: every file must
-- have succeeded; ctx:fetch_files reads text-like ones into res.text and saves the others into
-- input.output under the server's downFileName, sanitised.
local function deliver(ctx, entries, input, raw)
  if #entries == 0 then return protocol(ctx, "the finished task lists no result files") end
  local list = {}
  for i, f in ipairs(entries) do
    if type(f) ~= "table" then return protocol(ctx, "result file %d is not an object", i) end
    local st = status_of(f)
    if FAILED[st] then return nil, file_error(ctx, f) end
    if st ~= "success" then
      return protocol(ctx, "result file %d has status %s after the task finished", i, tostring(f.status))
    end
    if not ocr.url.is_http(f.downloadUrl) then return protocol(ctx, "result file %d has no downloadUrl", i) end
    local format = type_of(f)
    list[i] = { url = f.downloadUrl, format = format, name = ocr.files.sanitize_name(
      ocr.strings.nonempty(f.downFileName), ("%s_%d.%s"):format(ctx.task_id or "result", i, format)) }
  end
  local fields, err = ctx:fetch_files(list, input, { validity = VALIDITY, hint = LATER })
  if not fields then return nil, err end
  fields.raw = raw
  return ocr.result.new(fields)
end

-- Polls taskInfo until TaskFinish, then delivers its files.
local function fetch(ctx, task_id, input)
  ctx.task_id = task_id
  local data, err = ctx:poll{ step = function(c)
    local res, rerr = c:request{ method = "GET", path = PATHS.info, headers = auth(c),
                                 query = { taskId = task_id, language = message_language(input) },
                                 decode = "json", check = check }
    if not res then return nil, rerr end
    local st = res.json.data.taskStatus
    if st == "TaskFinish" then return "done", res.json.data end
    if RUNNING[st] then
      c:progress(RUNNING[st], nil, { state = st })
      return "pending"
    end
    if st == "TaskOverdue" then
      return nil, c:error{ kind = "timeout", code = "TaskOverdue", retryable = false,
                           message = "the task expired on ComPDF's side before finishing; submit the file again" }
    end
    return nil, c:error{ kind = "protocol", message = "unknown taskStatus " .. tostring(st) }
  end }
  if not data then return nil, err end
  if type(data.fileInfoDTOList) ~= "table" then
    return protocol(ctx, "the finished task has no fileInfoDTOList")
  end
  return deliver(ctx, data.fileInfoDTOList, input, data)
end

-- The billed multipart create of the sync and async modes: the file and the options in one form
-- (the vendor goes by the file name's extension: in-memory bytes are named "document.<ext>").
local function create(ctx, input, path)
  ctx:progress("upload", 0)
  return ctx:request{ method = "POST", path = path, headers = auth(ctx), decode = "json",
                      form = form_for(ctx, input, ocr.files.part("file", input, "document")),
                      check = check, billed = true }
end

local function run_sync(ctx, input)
  local res, err = create(ctx, input, PATHS.sync)
  if not res then return nil, err end
  local d = res.json.data
  if ocr.strings.nonempty(d.taskId) then
    local id, ierr = ctx:take_task_id(d.taskId, "data.taskId")
    if not id then return nil, ierr end
  end
  local st = status_of(d)
  if st == "success" or FAILED[st] then return deliver(ctx, { d }, input, d) end
  if PENDING[st] then
    -- A big file may outlive the sync call: it finishes like an async task.
    if not ctx.task_id then return protocol(ctx, "unfinished sync answer without data.taskId") end
    return fetch(ctx, ctx.task_id, input)
  end
  return protocol(ctx, "unknown data.status %s", tostring(d.status))
end

local function run_async(ctx, input)
  local res, err = create(ctx, input, PATHS.async)
  if not res then return nil, err end
  local id, ierr = ctx:take_task_id(res.json.data.taskId, "processAsync's data.taskId")
  if not id then return nil, ierr end
  ctx:progress("queued", 0)
  return fetch(ctx, id, input)
end

local function run_presigned(ctx, input)
  local name = ocr.files.name_for(input, "document")
  -- Creating the upload URL costs nothing (the processing starts with execute/start), so it is
  -- retried like a read.
  local res, err = ctx:request{ method = "POST", path = PATHS.presigned, headers = auth(ctx),
                                form = form_for(ctx, input, { name = "fileName", value = name }),
                                decode = "json", check = check }
  if not res then return nil, err end
  local d = res.json.data
  local id, ierr = ctx:take_task_id(d.taskId, "presignedUrl's data.taskId")
  if not id then return nil, ierr end
  ctx:progress("upload", 0)
  -- The upload goes to object storage: no API key there.
  local up, uerr = ctx:upload(d.presignedUrl, input, { content_type = ocr.files.mime_type(name) })
  if not up then return nil, uerr end
  local st, serr = ctx:request{ method = "GET", path = PATHS.start, headers = auth(ctx),
                                query = { taskId = id, language = message_language(input) },
                                decode = "json", check = check, billed = true }
  if not st then return nil, serr end
  ctx:progress("queued", 0)
  return fetch(ctx, id, input)
end

local RUN = { sync = run_sync, async = run_async, presigned = run_presigned }

local function validate(input)
  if input.pages ~= nil and not ocr.strings.is_page_ranges(input.pages) then
    return ("pages %q must look like 1-3,6 (page numbers from 1, ranges low-high; omit it for all pages)")
           :format(input.pages)
  end
  if input.callback_url ~= nil and not ocr.url.is_http(input.callback_url) then
    return "callback_url must be an absolute http(s) URL"
  end
end

return {
  endpoint = "https://api-server.compdf.com/server/",
  credentials = { api_key = { required = true } },
  sources = { "file", "data" },
  options = {
    mode = MODES, password = "string", pages = "string", ocr = "boolean",
    strategy = STRATEGIES, per_page = "boolean", message_language = { 1, 2, "en", "zh" },
    callback_url = "string", download = "boolean",
  },
  languages = LANGS,
  client_options = { mode = MODES, legacy_parameter = "boolean" },
  cache_key = { "pages", "ocr", "strategy", "per_page", "download" },   -- (ocr.cache)
  defaults = { poll_interval = MIN_POLL, min_poll_interval = MIN_POLL, poll_timeout = 300 },
  validate = validate,
  -- No `cost`: billed per processed file or page by plan (public), the price of a call is not
  -- stated, so res.cost is nil unless the client is given one (the option cost = {credits = n}).

  recognize = function(ctx, input)
    return RUN[input.mode or ctx.options.mode or "sync"](ctx, input)
  end,

  result = function(ctx, task_id, input)
    return fetch(ctx, task_id, input or {})
  end,
}
