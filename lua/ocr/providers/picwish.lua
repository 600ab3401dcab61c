--- PicWish OCR: an async task that is created, polled, and whose result
-- file must be downloaded within an hour.
--   POST /api/tasks/document/ocr   (multipart: image_file | image_url, language, password, format)
--   GET  /api/tasks/document/ocr/{task_id}   data.state: 1 done, < 0 failed, 0 or > 1 pending
local core = require "ocr.core"
local ocr = require "ocr"

local FORMATS = { "txt", "pdf", "docx", "xlsx", "pptx" }
local CREATE = "/api/tasks/document/ocr"

-- HTTP (or body) status -> kind, from the document's status table.
local STATUS_KINDS = { [400] = "invalid_input", [401] = "auth", [404] = "not_found",
                       [413] = "too_large", [429] = "rate_limited", [500] = "server" }

-- data.state < 0 -> kind, message, retryable (resubmitting may help).
local FAILED_STATES = {
  [-17] = { "task_failed", "the prompt is invalid" },
  [-16] = { "task_failed", "third-party review detected prohibited content" },
  [-15] = { "server", "insufficient resources", true },
  [-14] = { "invalid_input", "the input image content does not meet the requirements" },
  [-13] = { "task_failed", "the task was canceled due to an exception", true },
  [-11] = { "task_failed", "the result is empty" },
  [-10] = { "task_failed", "internal review detected prohibited content" },
  [-9]  = { "task_failed", "the internal program failed during loop processing", true },
  [-8]  = { "timeout", "processing timed out (the vendor's maximum is 180 s)", true },
  [-7]  = { "invalid_input", "invalid image file (corrupted or in an unsupported format)" },
  [-5]  = { "too_large", "the image_url image exceeds the 30 MB limit" },
  [-3]  = { "invalid_input", "the vendor failed to download image_url; check that it is reachable" },
  [-2]  = { "server", "processing completed but storing the result failed", true },
  [-1]  = { "task_failed", "processing failed", true },
}

-- Pending states -> progress stage.
local QUEUED = { [0] = true, [2] = true, [3] = true }

local function auth(ctx)
  return { ["X-API-KEY"] = ctx.credentials.api_key }
end

-- Maps an answer onto an error. The body's `status` wins over HTTP's: the document says HTTP 200
-- does not always mean success.
local function check(ctx, res)
  local body = res.json
  local status = res.status
  if body and tonumber(body.status) and tonumber(body.status) ~= 200 then status = tonumber(body.status) end
  local message = body and type(body.message) == "string" and body.message or nil
  if status ~= 200 then
    local kind = STATUS_KINDS[status] or ocr.errors.kind_for_status(status)
    local said = status ~= res.status and ("status %s in the answer"):format(ocr.errors.integral(status))
    return ctx:error{ kind = kind, status = res.status, code = status,
                      message = message or said or ("HTTP " .. res.status) }
  end
  if not body then
    return ctx:error{ kind = "protocol", status = res.status,
                      message = "answer is not JSON: " .. tostring(res.decode_error) }
  end
  if type(body.data) ~= "table" then
    return ctx:error{ kind = "protocol", status = res.status, message = "answer has no data object" }
  end
end

-- The result file's URL is valid for this long (ctx:download explains an expired link with it).
local VALIDITY = "1 hour"

local function utf8_length(s)
  return #(s:gsub("[\128-\191]", ""))
end

local function validate(input)
  if input.url then   -- (an absolute http(s) URL: the client checked it)
    local u = ocr.url.parse(input.url, { allow_spaces = true })
    local port = u and ocr.url.port(u)
    if port and port ~= 80 and port ~= 443 then
      return ("image_url must not use port %s: PicWish only fetches from ports 80 and 443"):format(port)
    end
  end
  if input.password and utf8_length(input.password) > 32 then
    return "password is longer than PicWish's 32 characters"
  end
  local format = input.format or "txt"
  return ocr.files.check_output(input, "format", format, format == "txt")
end

local function source_part(input)
  if input.url then return { name = "image_url", value = input.url } end
  return ocr.files.part("image_file", input, "image")
end

-- Polls the task, then downloads its result file at once (its URL expires in an hour).
local function fetch(ctx, task_id, input)
  local data, err = ctx:poll{ step = function(c)
    local seg, serr = c:segment(task_id)
    if not seg then return nil, serr end
    local res, rerr = c:request{ method = "GET", path = CREATE .. "/" .. seg,
                                 headers = auth(c), decode = "json", check = check }
    if not res then return nil, rerr end
    local d = res.json.data
    local state = tonumber(d.state)
    if state == nil then return nil, c:error{ kind = "protocol", message = "answer has no data.state" } end
    if state == 1 then return "done", d end
    if state < 0 then
      local f = FAILED_STATES[state] or { "task_failed", "processing failed" }
      local msg = f[2]
      if type(res.json.message) == "string" and res.json.message ~= "" then
        msg = msg .. " (" .. res.json.message .. ")"
      end
      return nil, c:error{ kind = f[1], code = state, message = msg, retryable = f[3] or false }
    end
    c:progress(QUEUED[state] and "queued" or "processing", tonumber(d.progress), { state = state })
    return "pending"
  end }
  if not data then return nil, err end
  local file_url = ocr.url.parse_http(data.file)
  if not file_url then
    return nil, ctx:error{ kind = "protocol", message = "finished task has no result file URL" }
  end
  -- client:result() may not know the format the task was created with: the URL's extension says.
  local format = input.format or ocr.files.extension(file_url.path) or "txt"
  local file = { url = data.file, format = format }
  local fields = { raw = data, task_id = task_id, files = { file }, language = ctx:language(input) }
  if format == "txt" then
    local text, derr = ctx:download_text(data.file, { validity = VALIDITY })
    if not text then return nil, derr end
    fields.text = text
  elseif input.download ~= false then
    local res, derr = ctx:download(data.file, { output = input.output, filename = task_id .. "." .. format,
                                                validity = VALIDITY })
    if not res then return nil, derr end
    file.path = res.path
    fields.text = ""
  else
    fields.text = ""
  end
  return ocr.result.new(fields)
end

return {
  endpoint = "https://techhk.aoscdn.com",
  credentials = { api_key = { required = true } },
  sources = { "file", "data", "url" },
  max_file_size = 200 * 1024 * 1024,
  options = { password = "string", format = FORMATS, download = "boolean" },
  -- (ocr.cache: the options that change the result; `language` always counts)
  cache_key = { "format", "download" },
  -- Names are case-sensitive, comma-separated, at most 10; the vendor's default is
  -- ChinesePRC,English,Digits. Its own names (Capitalised, e.g. Digits) pass as they are.
  languages = {
    codes = { en = "English", ["zh-Hans"] = "ChinesePRC", ["zh-Hant"] = "ChineseTaiwan",
              ja = "Japanese", ko = "Korean", fr = "French", de = "German", es = "Spanish",
              it = "Italian", pt = "Portuguese", ["pt-BR"] = "PortugueseBrazilian", ru = "Russian",
              nl = "Dutch", sv = "Swedish", da = "Danish", fi = "Finnish", no = "Norwegian",
              nb = "NorwegianBokmal", nn = "NorwegianNynorsk", pl = "Polish", cs = "Czech",
              sk = "Slovak", sl = "Slovenian", hu = "Hungarian", ro = "Romanian", bg = "Bulgarian",
              hr = "Croatian", sr = "Serbian", uk = "Ukrainian", el = "Greek", tr = "Turkish",
              ar = "Arabic", he = "Hebrew", th = "Thai", vi = "Vietnamese", id = "Indonesian",
              ms = "Malay", la = "Latin", ca = "Catalan", et = "Estonian", lv = "Latvian",
              lt = "Lithuanian", ga = "Irish", is = "Icelandic" },
    native = function(name) return name:match("^%u%a*$") ~= nil and #name <= 40 end,
    join = ",", max = 10,
  },
  defaults = { poll_interval = 1, poll_timeout = 120 },
  -- The documented QPS limit per key: creates wait for a token instead of collecting 429s.
  rate = { per_second = 2, burst = 1 },
  -- The document: "Each successful call consumes 1 credit" (the create; polls and downloads
  -- are free, inferred from its wording).
  cost = { credits = 1, unit = "credit", per = "create", when = "success" },
  validate = validate,

  recognize = function(ctx, input)
    local form = { source_part(input), { name = "format", value = input.format or "txt" } }
    local language = ctx:language(input)
    if language then form[#form + 1] = { name = "language", value = language } end
    if input.password then form[#form + 1] = { name = "password", value = input.password } end
    ctx:progress("upload", 0)
    local res, err = ctx:request{ method = "POST", path = CREATE, headers = auth(ctx), form = form,
                                  decode = "json", check = check, billed = true }
    if not res then return nil, err end
    local task_id, terr = ctx:take_task_id(res.json.data.task_id, "data.task_id")
    if not task_id then return nil, terr end
    ctx:progress("queued", 0)
    return fetch(ctx, task_id, input)
  end,

  result = function(ctx, task_id, input)
    return fetch(ctx, task_id, input)
  end,
}
