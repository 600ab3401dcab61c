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
local result = require "ocr.result"
local files = require "ocr.files"
local errors = require "ocr.errors"
local url = require "ocr.url"
local strings = require "ocr.strings"

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
local OPTION_ORDER = { "pageRanges", "enableOcr", "ocrRecognitionLang", "ocrOption",
                       "isOutputDocumentPerPage" }
-- The vendor asks for no poll faster than every 3 s: the client's min_poll_interval defaults to
-- it (a caller polling a local mock lowers it explicitly).
local MIN_POLL = 3
-- Result types whose file is text: downloaded into res.text instead of needing `output`.
local TEXT_TYPES = { txt = true, text = true, md = true, markdown = true, html = true, htm = true,
                     json = true, xml = true, csv = true, tsv = true }

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

local FAILED = { failed = true, fail = true, failure = true, error = true }
local PENDING = { processing = true, waiting = true, pending = true, queued = true, running = true }

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

local function text_or_nil(v)
  return type(v) == "string" and v ~= "" and v or nil
end

-- An ocr.error for a ComPDF business code (from a body or a file's failureCode).
local function code_error(ctx, code, vendor_msg, status)
  local m = CODES[code]
  local kind, msg, retryable
  if m then
    kind, msg, retryable = m[1], m[2], m[3]
    if code == "02201" then
      msg = ctx.input.password
            and "the document is encrypted and the password given is wrong; check the 'password' option"
            or "the document is encrypted; pass its password with the 'password' option"
    end
  else
    local n = tonumber(code)
    if n and #code == 3 and n >= 400 and n < 600 then
      kind = errors.kind_for_status(n) -- e.g. "401", "429": HTTP statuses echoed as codes
    elseif status then
      kind = errors.kind_for_status(status)
    else
      kind = "task_failed"
    end
    msg = "ComPDF error " .. code
  end
  if vendor_msg then
    -- The vendor may echo the document's password back; it never reaches an error.
    msg = msg .. " (ComPDF: " .. errors.redact(vendor_msg, { ctx.input.password }) .. ")"
  end
  return ctx:error{ kind = kind, code = code, status = status, message = msg, retryable = retryable }
end

-- Maps an API answer onto an error: the body's code wins over HTTP's status (HTTP 200 is not
-- success by itself), and a success must carry a data object.
local function check(ctx, res)
  local body = res.json
  local code = body and norm_code(body.code)
  local vendor_msg = body and text_or_nil(body.msg)
  if code and code ~= "200" then return code_error(ctx, code, vendor_msg, res.status) end
  if res.status < 200 or res.status >= 300 then
    return ctx:error{ kind = errors.kind_for_status(res.status), status = res.status,
                      message = vendor_msg or ("HTTP " .. res.status) }
  end
  if not body then
    return ctx:error{ kind = "protocol", status = res.status,
                      message = "answer is not JSON: " .. tostring(res.decode_error) }
  end
  if code == nil then
    return ctx:error{ kind = "protocol", status = res.status, message = "answer has no code" }
  end
  if type(body.data) ~= "table" then
    return ctx:error{ kind = "protocol", status = res.status, message = "answer has no data object" }
  end
end

-- Pre-signed storage answers S3-style XML errors.
local function storage_detail(res)
  local code = res.body and res.body:match("<Code>([^<]*)</Code>")
  local msg = res.body and res.body:match("<Message>([^<]*)</Message>")
  return code, msg
end

local function check_upload(ctx, res)
  if res.status >= 200 and res.status < 300 then return nil end
  local code, msg = storage_detail(res)
  local why = res.status == 403 and " (expired, already used or altered)" or ""
  return ctx:error{ kind = errors.kind_for_status(res.status), status = res.status, code = code,
                    message = ("the pre-signed upload URL was refused%s: HTTP %d%s")
                              :format(why, res.status, msg and (" " .. msg) or "") }
end

-- Result URLs are valid this long (ctx:download explains an expired link with it).
local VALIDITY = "24 hours"

local function message_language(input)
  local v = input.message_language
  return (v == 2 or v == "zh") and "2" or "1"
end

local function mode_of(input, options)
  return input.mode or options.mode or "sync"
end

-- The upload's name: the caller's, the file's, or "document.<ext>" sniffed from in-memory bytes
-- (the vendor goes by the extension).
local function upload_name(input)
  return files.name_for(input, "document")
end

local function option_fields(ctx, input)
  local o = {}
  o.pageRanges = input.pages
  if input.ocr ~= nil then o.enableOcr = input.ocr and "1" or "0" end
  o.ocrRecognitionLang = ctx:language(input)
  o.ocrOption = input.strategy
  if input.per_page ~= nil then o.isOutputDocumentPerPage = input.per_page and "1" or "0" end
  return o
end

-- The multipart fields every create carries after its source part: top-level option fields, or
-- with legacy_parameter the options as one JSON object in `parameter`. password, language and
-- callbackUrl stay top-level in both styles (inferred, as in ComPDF's older upload API).
local function form_for(ctx, input, first)
  local form = { first, { name = "language", value = message_language(input) } }
  if input.password then form[#form + 1] = { name = "password", value = input.password } end
  if input.callback_url then form[#form + 1] = { name = "callbackUrl", value = input.callback_url } end
  local opts = option_fields(ctx, input)
  if ctx.options.legacy_parameter then
    local json = next(opts) and cjson.encode(opts) or "{}"
    form[#form + 1] = { name = "parameter", value = json }
  else
    for _, k in ipairs(OPTION_ORDER) do
      if opts[k] ~= nil then form[#form + 1] = { name = k, value = opts[k] } end
    end
  end
  return form
end

local function file_part(input)
  local name = upload_name(input)
  local part = { name = "file", filename = name, content_type = files.mime_type(name) }
  if input.file then part.file = input.file else part.data = input.data end
  return part
end

local function protocol(ctx, fmt, ...)
  return nil, ctx:error{ kind = "protocol", message = fmt:format(...) }
end

-- The error for a file ComPDF failed: its failureCode's kind when documented, else task_failed.
local function file_error(ctx, f)
  local code = norm_code(f.failureCode)
  local reason = text_or_nil(f.failureReason)
  if code and CODES[code] then return code_error(ctx, code, reason, nil) end
  return ctx:error{ kind = "task_failed", code = code,
                    message = "ComPDF failed the file" .. (reason and (": " .. reason) or "") }
end

local function status_of(f)
  return type(f.status) == "string" and f.status:lower() or nil
end

local DOT = strings.set_of(".")

-- The extension of a file name ("a.b.TXT" -> "TXT"), or nil.
local function extension(name)
  local ext = strings.after_last(name, DOT)
  if ext == name or not ext:match("^%w+$") then return nil end
  return ext
end

-- A file's result type: targetType, else the extension of downFileName or of the URL's path.
local function type_of(f)
  local t = type(f.targetType) == "string" and f.targetType:lower():match("^%.?(%w+)$")
  if t then return t end
  t = type(f.downFileName) == "string" and extension(f.downFileName)
  local u = not t and url.parse(f.downloadUrl)
  if u then t = extension(strings.after_last(u.path, strings.SLASHES)) end
  return t and t:lower() or "bin"
end

-- Writes a text result into `dir` too, under a name that never escapes it nor overwrites.
-- Turns the finished file objects (sync data, or fileInfoDTOList) into a result: every file must
-- have succeeded; text-like files fill res.text (several files, one per page, are joined by
-- "\f" and their lines carry `page`), others are saved into input.output.
local function deliver(ctx, entries, input, raw)
  if #entries == 0 then return protocol(ctx, "the finished task lists no result files") end
  local list = {}
  for i, f in ipairs(entries) do
    if type(f) ~= "table" then return protocol(ctx, "result file %d is not an object", i) end
    local st = status_of(f)
    if st and FAILED[st] then return nil, file_error(ctx, f) end
    if st ~= "success" then
      return protocol(ctx, "result file %d has status %s after the task finished", i, tostring(f.status))
    end
    if not url.is_http(f.downloadUrl) then
      return protocol(ctx, "result file %d has no downloadUrl", i)
    end
    local format = type_of(f)
    local fallback = ("%s_%d.%s"):format(ctx.task_id or "result", i, format)
    list[i] = { url = f.downloadUrl, format = format,
                name = files.sanitize_name(text_or_nil(f.downFileName), fallback) }
  end
  local download = input.download ~= false
  -- Refuse before downloading anything: a file result needs a place to go.
  for _, entry in ipairs(list) do
    if download and not TEXT_TYPES[entry.format] and not input.output then
      return nil, ctx:error{ kind = "unsupported", files = list, retryable = false,
        message = ("ComPDF produced a '%s' file, not text: pass output = dir to save it; "
                   .. "within 24 hours client:result(task_id, { output = dir }) fetches it without paying again")
                  :format(entry.format) }
    end
  end
  local texts, lines, several = {}, {}, #list > 1
  for i, entry in ipairs(list) do
    if download and TEXT_TYPES[entry.format] then
      local body, res = ctx:download_text(entry.url, { validity = VALIDITY })
      if not body then return nil, res end
      if input.output then
        local path, serr = files.write_new(input.output, entry.name, res.body or "")
        if not path then return nil, ctx:error{ kind = "invalid_input", message = serr } end
        entry.path = path
      end
      texts[#texts + 1] = body
      if entry.format == "json" then
        -- A JSON result's structure is not documented: it stays whole, decoded, and no lines
        -- are guessed from it.
        local doc, jerr = cjson.decode(body)
        if doc == nil then return protocol(ctx, "result file %d is not JSON: %s", i, tostring(jerr)) end
        entry.json = doc
      else
        for _, line in ipairs(result.lines_from_text(body, several and i or nil)) do
          lines[#lines + 1] = line
        end
      end
    elseif download then
      local res, err = ctx:download(entry.url, { output = input.output, filename = entry.name,
                                                 validity = VALIDITY })
      if not res then return nil, err end
      entry.path = res.path
    end
  end
  return result.new{
    text = table.concat(texts, "\f"), lines = lines, files = list, raw = raw,
    json = (#list == 1 and list[1].json) or nil, pages = several and #list or nil,
  }
end

-- Polls taskInfo until TaskFinish, then delivers its files.
local function fetch(ctx, task_id, input)
  ctx.task_id = task_id
  local data, err = ctx:poll{ step = function(c)
    local res, rerr = c:request{ method = "GET", path = PATHS.info, headers = auth(c),
                                 query = { taskId = task_id, language = message_language(input) },
                                 decode = "json", check = check }
    if not res then return nil, rerr end
    local d = res.json.data
    local st = d.taskStatus
    if st == "TaskFinish" then return "done", d end
    if st == "TaskStart" or st == "TaskWaiting" then
      c:progress("queued", nil, { state = st })
      return "pending"
    end
    if st == "TaskProcessing" then
      c:progress("processing", nil, { state = st })
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

local function task_id_of(ctx, data, what)
  local id, err = ctx:answer_id(data.taskId, what .. "'s data.taskId")
  if not id then return nil, err end
  ctx.task_id = id
  return id
end

-- The billed multipart create of the sync and async modes: the file and the options in one form.
local function create(ctx, input, path)
  ctx:progress("upload", 0)
  return ctx:request{ method = "POST", path = path, headers = auth(ctx),
                      form = form_for(ctx, input, file_part(input)), decode = "json",
                      check = check, billed = true }
end

local function run_sync(ctx, input)
  local res, err = create(ctx, input, PATHS.sync)
  if not res then return nil, err end
  local d = res.json.data
  if type(d.taskId) == "string" and d.taskId ~= "" then
    local id, err = ctx:answer_id(d.taskId, "data.taskId")
    if not id then return nil, err end
    ctx.task_id = id
  end
  local st = status_of(d)
  if st == "success" or (st and FAILED[st]) then return deliver(ctx, { d }, input, d) end
  if st and PENDING[st] then
    -- A big file may outlive the sync call: it finishes like an async task.
    if not ctx.task_id then return protocol(ctx, "unfinished sync answer without data.taskId") end
    return fetch(ctx, ctx.task_id, input)
  end
  return protocol(ctx, "unknown data.status %s", tostring(d.status))
end

local function run_async(ctx, input)
  local res, err = create(ctx, input, PATHS.async)
  if not res then return nil, err end
  local id, ierr = task_id_of(ctx, res.json.data, "processAsync")
  if not id then return nil, ierr end
  ctx:progress("queued", 0)
  return fetch(ctx, id, input)
end

local function run_presigned(ctx, input)
  local name = upload_name(input)
  -- Creating the upload URL costs nothing (the processing starts with execute/start), so it is
  -- retried like a read.
  local res, err = ctx:request{ method = "POST", path = PATHS.presigned, headers = auth(ctx),
                                form = form_for(ctx, input, { name = "fileName", value = name }),
                                decode = "json", check = check }
  if not res then return nil, err end
  local d = res.json.data
  local id, ierr = task_id_of(ctx, d, "presignedUrl")
  if not id then return nil, ierr end
  if not url.is_http(d.presignedUrl) then
    return protocol(ctx, "presignedUrl answered without an upload URL")
  end
  ctx:progress("upload", 0)
  -- The upload goes to object storage: no API key there.
  local put = { method = "PUT", url = d.presignedUrl, check = check_upload,
                headers = { ["Content-Type"] = files.mime_type(name) } }
  if input.file then put.upload_file = input.file else put.body = input.data end
  local up, uerr = ctx:request(put)
  if not up then return nil, uerr end
  local st, serr = ctx:request{ method = "GET", path = PATHS.start, headers = auth(ctx),
                                query = { taskId = id, language = message_language(input) },
                                decode = "json", check = check, billed = true }
  if not st then return nil, serr end
  ctx:progress("queued", 0)
  return fetch(ctx, id, input)
end

local RUN = { sync = run_sync, async = run_async, presigned = run_presigned }

local function valid_pages(s)
  for item in (s .. ","):gmatch("([^,]*),") do
    local a, b = item:match("^(%d+)%-(%d+)$")
    a = a or item:match("^(%d+)$")
    if not a then return false end
    a, b = tonumber(a), tonumber(b or a)
    if a < 1 or b < a then return false end
  end
  return true
end

local function validate(input)
  if input.pages ~= nil and not valid_pages(input.pages) then
    return ("pages %q must look like 1-3,6 (page numbers from 1, ranges low-high; omit it for all pages)")
           :format(input.pages)
  end
  if input.callback_url ~= nil and not url.is_http(input.callback_url) then
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
  defaults = { poll_interval = MIN_POLL, min_poll_interval = MIN_POLL, poll_timeout = 300 },
  validate = validate,

  recognize = function(ctx, input)
    return RUN[mode_of(input, ctx.options)](ctx, input)
  end,

  result = function(ctx, task_id, input)
    return fetch(ctx, task_id, input or {})
  end,
}
