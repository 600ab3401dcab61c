--- Tencent Cloud Infinite OCR on COS: a signed, synchronous GET on an object
-- in a bucket, answering XML.
--   key  -> GET /<key>?ci-process=OCR&...
--   url  -> GET /?ci-process=OCR&detect-url=<url>&...
--   file/data -> signed PUT /<upload_prefix><random>.<ext>, the GET above, then DELETE (unless
--   keep_upload). Every request carries a q-sign Authorization (ocr.core.cos_sign).
local core = require "ocr.core"
local ocr = require "ocr"

local TYPES = { "general", "accurate", "efficient", "fast", "handwriting" }
-- `language-type` (one value, only with type=general; every model reads English alongside, so
-- English alone is the default Chinese-English `zh`).
local LANGUAGES = {
  codes = { en = "zh", ["zh-Hans"] = "zh", ["zh-Hant"] = "zh_rare", und = "auto", ja = "jap",
            ko = "kor", es = "spa", fr = "fre", de = "ger", pt = "por", vi = "vie", ms = "may",
            ru = "rus", it = "ita", nl = "hol", sv = "swe", fi = "fin", da = "dan", no = "nor",
            nb = "nor", hu = "hun", th = "tha", hi = "hi", ar = "ara" },
  native = { "zh", "zh_rare", "auto", "mix", "jap", "kor", "spa", "fre", "ger", "por", "vie",
             "may", "rus", "ita", "hol", "swe", "fin", "dan", "nor", "hun", "tha", "hi", "ara" },
}
local XML_ARRAYS = { TextDetections = true, Polygon = true, Words = true, WordCoordinate = true,
                     WordPolygon = true }

-- COS error codes -> kind (the COS error reference); anything else falls back on the HTTP status.
local CODE_KINDS = {
  AccessDenied = "auth", InvalidAccessKeyId = "auth", SignatureDoesNotMatch = "auth",
  RequestTimeTooSkewed = "auth", InvalidArgument = "invalid_input", MissingContent = "invalid_input",
  InvalidContent = "invalid_input", ResourceDownloadFailed = "invalid_input",
  MissingContentLength = "invalid_input", ResourceNotFound = "not_found", NoSuchKey = "not_found",
  NoSuchBucket = "not_found", EntityTooLarge = "too_large", InternalError = "server",
  SlowDown = "rate_limited", ServiceUnavailable = "server",
}

local function check(ctx, res)
  ctx.request_id = ctx.request_id or res.headers["x-cos-request-id"]
  if res.status >= 200 and res.status < 300 then return nil end
  local doc = res.body and res.body ~= "" and core.xml_decode(res.body)
  local e = type(doc) == "table" and type(doc.Error) == "table" and doc.Error or {}
  local code = type(e.Code) == "string" and e.Code or nil
  local kind = CODE_KINDS[code] or ocr.errors.kind_for_status(res.status)
  return ctx:error{ kind = kind, status = res.status, code = code,
                    message = type(e.Message) == "string" and e.Message or ("HTTP " .. res.status),
                    request_id = (type(e.RequestId) == "string" and e.RequestId) or res.headers["x-cos-request-id"] }
end

-- The object key as a URL path (each segment percent-encoded, slashes kept) and as COS signs it
-- (the raw path).
local function key_path(key)
  local raw = "/" .. key:gsub("^/+", "")
  return (raw:gsub("[^/]+", core.url_encode)), raw
end

-- The Host header (signed, so it must be the one sent): the endpoint's host and port.
local function authority(endpoint)
  return ocr.url.host_port(assert(ocr.url.parse_http(endpoint)))
end

-- Signs `req` just before each attempt, so a retry never carries a stale signature.
local function sign(ctx, req)
  local now = os.time()
  local signed = { host = req.headers.Host }
  for k, v in pairs(req.headers) do
    local lk = k:lower()
    if lk:match("^x%-cos%-") or lk:match("^x%-ci%-") then signed[k] = v end
  end
  req.headers.Authorization = core.cos_sign{
    secret_id = ctx.credentials.secret_id, secret_key = ctx.credentials.secret_key,
    method = req.method, path = req._sign_path, params = req.query or {}, headers = signed,
    start = now - 60, expire = now + (ctx.options.sign_expires or 900),
  }
end

local function cos_request(ctx, req)
  req.headers = req.headers or {}
  req.headers.Host = authority(ctx.endpoint)
  if ctx.credentials.security_token then
    req.headers["x-cos-security-token"] = ctx.credentials.security_token
  end
  req.url = ctx:url(req.path, req.query)
  req.sign = sign
  req.check = req.check or check
  return ctx:request(req)
end

local bool = ocr.strings.bool

local function ocr_query(ctx, input)
  return {
    ["ci-process"] = "OCR",
    ["detect-url"] = input.url,
    ["type"] = input.type,
    ["language-type"] = (input.type or "general") == "general" and ctx:language(input) or nil,
    ["ispdf"] = bool(input.ispdf),
    ["pdf-pagenumber"] = input.pdf_pagenumber and tostring(input.pdf_pagenumber),
    ["isword"] = bool(input.isword),
    ["enable-word-polygon"] = bool(input.enable_word_polygon),
  }
end

local function point(p)
  return { x = tonumber(p.X), y = tonumber(p.Y) }
end

local function points(list)
  if type(list) ~= "table" then return nil end
  local out = {}
  for i, p in ipairs(list) do out[i] = point(p) end
  return #out > 0 and out or nil
end

local function map_words(det)
  local words = {}
  for i, w in ipairs(det.Words or {}) do
    local coords = type(w.WordCoordPoint) == "table" and w.WordCoordPoint.WordCoordinate
    local poly = points(coords)
    words[i] = { text = w.Character, confidence = ocr.result.confidence(w.Confidence, 100),
                 polygon = poly, box = ocr.result.box_from_polygon(poly) }
  end
  for i, wp in ipairs(det.WordPolygon or {}) do
    if type(wp) == "table" and wp.LeftTop then
      local poly = { point(wp.LeftTop), point(wp.RightTop), point(wp.RightBottom), point(wp.LeftBottom) }
      words[i] = words[i] or {}
      words[i].polygon, words[i].box = poly, ocr.result.box_from_polygon(poly)
    end
  end
  return #words > 0 and words or nil
end

local function map_response(doc, res)
  local r = type(doc.Response) == "table" and doc.Response
  if not r then return nil, "answer has no <Response>" end
  local lines = {}
  for i, det in ipairs(r.TextDetections or {}) do
    if type(det) ~= "table" then return nil, "malformed <TextDetections>" end
    local poly = points(det.Polygon)
    local item = type(det.ItemPolygon) == "table" and det.ItemPolygon
    lines[i] = {
      text = type(det.DetectedText) == "string" and det.DetectedText or "",
      confidence = ocr.result.confidence(det.Confidence, 100),
      polygon = poly,
      box = item and { x = tonumber(item.X), y = tonumber(item.Y), w = tonumber(item.Width),
                       h = tonumber(item.Height) } or ocr.result.box_from_polygon(poly),
      words = map_words(det),
    }
  end
  return ocr.result.new{
    lines = lines, raw = r, language = r.Language ~= "" and r.Language or nil,
    angle = tonumber(r.Angel), pages = tonumber(r.PdfPageSize),
    request_id = (r.RequestId ~= "" and r.RequestId) or res.headers["x-cos-request-id"],
  }
end

local function recognize_object(ctx, path, raw_path, input)
  ctx:progress("processing", nil)
  -- A GET, but the one call Tencent bills: never sent again once it may have arrived.
  local res, err = cos_request(ctx, { method = "GET", path = path, _sign_path = raw_path, query = ocr_query(ctx, input),
                                      decode = "xml", xml_arrays = XML_ARRAYS, billed = true })
  if not res then return nil, err end
  if not res.xml then
    return nil, ctx:error{ kind = "protocol", status = res.status, message = "answer is not XML: " .. tostring(res.decode_error) }
  end
  local r, merr = ctx:map(map_response, res.xml, res)
  if not r then
    merr.status = res.status
    return nil, merr
  end
  return r
end

local function upload_key(ctx, input)
  local name = ocr.files.name_for(input, "upload")
  local ext = name:match("(%.[%w]+)$") or ""
  local nonce = core.hex(core.sha1(table.concat({ tostring(os.time()), tostring(math.random()),
                                                  tostring(ctx.now()), name }, "|"))):sub(1, 24)
  return (ctx.options.upload_prefix or "ocr-uploads/") .. nonce .. ext:lower(), name
end

local function validate(input)
  if input.language ~= nil and (input.type or "general") ~= "general" then
    return ("language is read only with type general, not %q"):format(input.type)
  end
  if input.pdf_pagenumber ~= nil and input.pdf_pagenumber < 1 then
    return "pdf_pagenumber must be 1 or more"
  end
  if input.key ~= nil and input.key:gsub("^/+", "") == "" then return "key must name an object" end
  if input.key ~= nil and ("/" .. input.key .. "/"):find("/%.%.?/") then
    return "key must not have . or .. segments (they would name another path)"
  end
end

return {
  credentials = {
    secret_id = { required = true }, secret_key = { required = true }, security_token = {},
    bucket = { secret = false }, region = { secret = false },
  },
  client_options = { upload_prefix = "string", keep_upload = "boolean", sign_expires = "integer" },
  sources = { "key", "url", "file", "data" },
  max_file_size = 5 * 1024 * 1024 * 1024,
  languages = LANGUAGES,
  options = { type = TYPES, ispdf = "boolean", pdf_pagenumber = "integer",
              isword = "boolean", enable_word_polygon = "boolean" },
  cache_key = { "type", "ispdf", "pdf_pagenumber", "isword", "enable_word_polygon" },   -- (ocr.cache)
  validate = validate,
  -- Billed per OCR request (public: the vendor's billing pages; the price per call is by plan,
  -- so the unit is the call). The upload PUT and the DELETE are ordinary storage requests,
  -- left out. Only accepted requests count (inferred).
  cost = { credits = 1, unit = "call", per = "OCR request", when = "success" },

  init = function(client)
    if client.options.endpoint then return end
    local bucket, region = client.credentials.bucket, client.credentials.region
    assert(bucket and region, "missing credential 'bucket' and 'region' (or pass endpoint); env OCR_TENCENT_BUCKET, OCR_TENCENT_REGION")
    assert(bucket:match("^[a-z0-9%-]+%-%d+$"), "bucket must look like name-APPID, got " .. bucket)
    assert(region:match("^[a-z0-9%-]+$"), "region must look like ap-guangzhou, got " .. region)
    client.endpoint = ("https://%s.cos.%s.myqcloud.com"):format(bucket, region)
  end,

  recognize = function(ctx, input)
    if input.key then
      local path, raw = key_path(input.key)
      return recognize_object(ctx, path, raw, input)
    end
    if input.url then return recognize_object(ctx, "/", "/", input) end
    local key, name = upload_key(ctx, input)
    local path, raw = key_path(key)
    ctx:progress("upload", 0)
    local put = { method = "PUT", path = path, _sign_path = raw, headers = { ["Content-Type"] = ocr.files.mime_type(name) } }
    if input.file then put.upload_file = input.file else put.body = input.data end
    local ok, err = cos_request(ctx, put)
    if not ok then return nil, err end
    local res, rerr = recognize_object(ctx, path, raw, input)
    if not ctx.options.keep_upload then
      local del, derr = cos_request(ctx, { method = "DELETE", path = path, _sign_path = raw })
      if not del then ctx:log{ event = "cleanup_failed", key = key, message = tostring(derr) } end
    end
    if res then res.raw.UploadedKey = key end
    return res, rerr
  end,
}
