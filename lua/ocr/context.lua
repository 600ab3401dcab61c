--- The context a provider's workflow runs in: the public helpers of `ocr.register`.
--
-- One context is made per call (`recognize`, `result`, a provider method). It owns the machinery
-- every vendor needs once: building URLs, sending requests through the client's transport with
-- retries, decoding JSON/XML, polling, downloading result files, progress and log events, and
-- error objects that carry the provider name and ids and never a secret.
local cjson = require "cjson.safe"
local core = require "ocr.core"
local errors = require "ocr.errors"
local retry = require "ocr.retry"
local runtime = require "ocr.runtime"
local schema = require "ocr.schema"
local files = require "ocr.files"
local host = require "ocr.host"
local strings = require "ocr.strings"
local url_lib = require "ocr.url"
local cost = require "ocr.cost"
local budget = require "ocr.budget"
local SLASH = strings.set_of("/")

local Context = {}
Context.__index = Context

local M = {}

-- The job (a scheduler coroutine, an nginx light thread) whose workflow runs now, if any.
local function current_job() return host.current().current_job() end

-- What every context of a client shares (provider, options, credentials, endpoint) sits in a
-- class made once per client and endpoint, between the context and Context: a context then
-- holds only its own few fields (one small table per call instead of one twice its size).
local function class_of(client)
  local class = client.ctx_class
  if class and class.endpoint == client.endpoint then return class end
  class = setmetatable({ provider = client.provider, options = client.options,
                         credentials = client.credentials, endpoint = client.endpoint }, Context)
  class.__index = class
  client.ctx_class = class
  return class
end

function M.new(client, input)
  local job = current_job()
  local ctx = setmetatable({
    client = client,
    input = input or {},
    task_id = nil,
    request_id = nil,
    job = job,
    -- budgets a pipeline applies (ocr.budget.within) besides the client's own
    budgets = budget.here(job),
  }, class_of(client))
  -- The job shows the vendor's task id as soon as the workflow learns it (job.task_id).
  if ctx.job then ctx.job.ctx = ctx end
  return ctx
end

--- An ocr.error with this call's provider, task id and request id filled in (and secrets removed).
function Context:error(fields)
  local f = {}
  for k, v in pairs(fields) do f[k] = v end
  f.provider = f.provider or self.provider
  f.task_id = f.task_id or self.task_id
  f.request_id = f.request_id or self.request_id
  return errors.scrub(errors.new(f), self.secrets or self.client.secrets)
end

-- What carries a credential in a request is a secret too: a server that echoes a header
-- back (whole, or base64-encoded: "Bearer key" is not "key" in base64) must not put it into
-- our errors. The credentials, plus, for this context's last requests (a few: retries
-- re-sign), the Authorization value a `sign` hook set and the signature in it, and every
-- header value that contains a credential.
local function carries_secret(self, value)
  for _, secret in ipairs(self.client.secrets or {}) do
    if type(secret) == "string" and #secret >= 4 and value:find(secret, 1, true) then return true end
  end
  return false
end

local function keep_request_secrets(self, headers, signed)
  if type(headers) ~= "table" then return end
  local list = {}
  for _, value in pairs(headers) do
    if type(value) == "string" and #value >= 8 then
      local auth = signed and (value == headers.Authorization or value == headers.authorization)
      if auth or carries_secret(self, value) then
        list[#list + 1] = value
        local sig = auth and value:match("[Ss]ignature=([^&,%s]+)")   -- (any "...signature=" part)
        if sig and #sig >= 8 then list[#list + 1] = sig end
      end
    end
  end
  if #list == 0 then return end
  local kept = self.signed or {}
  for i = #list, 1, -1 do table.insert(kept, 1, list[i]) end   -- (the whole value first)
  while #kept > 8 do kept[#kept] = nil end
  self.signed = kept
  local all = {}   -- (whole values before the credentials inside them)
  for _, v in ipairs(kept) do all[#all + 1] = v end
  for _, v in ipairs(self.client.secrets or {}) do all[#all + 1] = v end
  self.secrets = all
end

M.MAX_ID = 512
M.MAX_URL = 16384   -- a result URL from an answer (pre-signed ones run to a few KB)

--- Runs a provider's mapping of an answer, `fn(...) -> value | nil, message`, so that an answer
--- which breaks its assumptions becomes a protocol error here, inside the workflow, and the
--- workflow's next steps (a cleanup DELETE) still run. Mappings do no I/O, so pcall suits them
--- on every VM (a yield across it is never needed).
function Context:map(fn, ...)
  local ok, value, message = pcall(fn, ...)
  if ok and value ~= nil then return value end
  local why = ok and tostring(message or "no result") or tostring(value)
  return nil, self:error{ kind = "protocol", message = "cannot read the vendor's answer: " .. why }
end

--- An id taken from a vendor's answer (a task id, a file id), checked before anything keeps it
--- or puts it in a URL: a non-empty string of at most MAX_ID bytes, no control characters, not
--- "." or "..". Anything else is a protocol error naming `what`.
function Context:answer_id(value, what)
  local bad
  if type(value) ~= "string" or value == "" then bad = "is missing or not a string"
  elseif #value > M.MAX_ID then bad = ("is %d bytes long (at most %d)"):format(#value, M.MAX_ID)
  elseif value:find("[%z\1-\31\127]") then bad = "contains control characters"
  elseif value == "." or value == ".." then bad = "is a dot segment"
  end
  if bad then return nil, self:error{ kind = "protocol", message = ("the answer's %s %s"):format(what, bad) } end
  return value
end

--- answer_id's check, and the id kept as this call's task id (errors and results carry it, and a
--- job shows it): returns the id, or nil and the protocol error. A new id is handed to the input's
--- `on_task(task_id)` at once, before any poll: the vendor has accepted (and billed) the task, and
--- whoever keeps the id (ocr.cache) can resume it in a later run instead of paying for it again.
--- A raise in on_task is logged (`on_task_failed`), never the workflow's failure.
function Context:take_task_id(value, what)
  local id, err = self:answer_id(value, what)
  if not id then return nil, err end
  if self.task_id == id then return id end   -- (a poll loop taking the id again: told once)
  self.task_id = id
  local hook = self.input.on_task
  if hook then
    local ok, herr = pcall(hook, id)
    if not ok then self:log{ event = "on_task_failed", task_id = id, message = tostring(herr) } end
  end
  return id
end

--- `id` as one URL path segment: percent-encoded (a "/" or "%2F" in it stays inside the
--- segment), and never "." or "..", which would move the request to another path. A bad id
--- (one a caller gave: ids from answers pass answer_id first) is invalid_input.
function Context:segment(id)
  if type(id) == "number" then id = tostring(id) end
  if type(id) ~= "string" or id == "" or id == "." or id == ".." or #id > M.MAX_ID then
    return nil, self:error{ kind = "invalid_input",
                            message = ("not a usable id: %s"):format(type(id) == "string" and
                              ("%q"):format(id:sub(1, 64)) or type(id)) }
  end
  return url_lib.escape(id)
end

--- The endpoint joined with `path`, plus `query` (a table; keys sorted, values RFC 3986-encoded).
function Context:url(path, query, base)
  base = base or self.endpoint
  path = path or ""
  -- The endpoint's own URLs are remembered per client (without their query): a provider asks
  -- for the same few paths again and again.
  local memo = base == self.endpoint and self.client.url_memo
  local url = memo and memo[path]
  if not url then
    if base:byte(-1) == 47 then base = strings.rstrip(base, SLASH) end      -- "/"
    local rel = path
    if rel:byte(1) == 47 then rel = rel:gsub("^/+", "") end
    url = base .. "/" .. rel
    -- (at most 64 paths of at most 512 bytes: a path may carry an id from an answer)
    if memo and #path <= 512 and self.client.url_memo_size < 64 then
      memo[path] = url
      self.client.url_memo_size = self.client.url_memo_size + 1
    end
  end
  if query == nil then return url end
  local q = url_lib.build_query(query)
  if q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
  return url
end

function Context:now() return runtime.now() end
function Context:sleep(seconds) return runtime.sleep(seconds) end

function Context:json_decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  return cjson.decode(s)
end

--- A JSON document that an answer carries as a string in its field `name` (`value`), decoded:
-- an object or array, else nil (a `decode_failed` log event names the field; an empty or
-- absent value is no event). For what a result can go without.
function Context:json_field(value, name)
  if type(value) ~= "string" or value == "" then return nil end
  local doc, err = cjson.decode(value)
  if type(doc) == "table" then return doc end
  self:log{ event = "decode_failed", field = name, message = tostring(err or "not an object or array") }
  return nil
end


--- The input's bytes, for a vendor that wants the image inline (base64 in JSON): `data` as it
-- is, or the file read whole (the client checked its size against max_file_size); nil, err
-- when the file cannot be read.
function Context:input_bytes(input)
  if input.data then return input.data end
  local data, err = files.read(input.file or "")
  if not data then return nil, self:error{ kind = "invalid_input", message = "cannot read " .. tostring(err) } end
  return data
end

--- The native `language` value to send for `input` (ocr.language), or nil when none is to be sent.
function Context:language(input) return self.client:language_for(input) end

function Context:xml_decode(s, opts) return core.xml_decode(s, opts) end

--- Sends a log event to the client's `log` option (if any). Strings are scrubbed of secrets.
function Context:log(event)
  local sink = self.client.options.log
  if not sink then return end
  event.provider = self.provider
  for k, v in pairs(event) do
    if type(v) == "string" then event[k] = errors.redact(v, self.secrets or self.client.secrets) end
  end
  sink(event)
end

function Context:progress_wanted()
  return (self.job and self.job.on_progress) or self.input.on_progress or self.client.options.on_progress
end

--- Reports progress: stage is "upload"|"queued"|"processing"|"download"|"done".
function Context:progress(stage, percent, extra)
  local cb = self:progress_wanted()
  if not cb then return end
  percent = errors.integral(tonumber(percent))
  local ev = { provider = self.provider, stage = stage, progress = percent, task_id = self.task_id,
               job = self.job }
  for k, v in pairs(extra or {}) do ev[k] = v end
  cb(ev)
end

-- What a transport is told besides the request, when nobody wants byte counts (read-only).
local PLAIN = { upload = { stage = "upload" }, download = { stage = "download" }, none = {} }

-- The request a transport sees: the request's own fields, the client's transport options
-- unless the request overrides them, and the client's User-Agent (ocr.curl's user_agent
-- option; a User-Agent in the request's headers wins). The request's headers table is passed
-- as is, never modified. `on_start` (the rate limiter's) is called when the request leaves.
local function transport_request(self, req, on_start)
  local client = self.client
  local opts = client.options
  local insecure = req.insecure
  if insecure == nil then insecure = opts.insecure end
  -- Built from what is set (a table constructor sizes itself for every key it names).
  local t = { method = req.method, url = req.url, headers = req.headers,
              user_agent = client.user_agent,
              timeout = req.timeout or opts.timeout,
              connect_timeout = req.connect_timeout or opts.connect_timeout }
  if req.body ~= nil then t.body = req.body end
  if req.form ~= nil then t.form = req.form end
  if req.upload_file ~= nil then t.upload_file = req.upload_file end
  if req.save_to ~= nil then t.save_to = req.save_to end
  -- (the client's option reaches the transport; a request's own, e.g. a fetch's, wins)
  local max_size = req.max_response_size or opts.max_response_size
  if max_size ~= nil then t.max_response_size = max_size end
  local ca_file, proxy = req.ca_file or opts.ca_file, req.proxy or opts.proxy
  if ca_file ~= nil then t.ca_file = ca_file end
  if proxy ~= nil then t.proxy = proxy end
  if insecure ~= nil then t.insecure = insecure end
  -- A billed request goes on a new connection: on a reused one, libcurl silently re-sends a
  -- request whose connection died before any answer, and the vendor could bill it twice.
  if req.billed then t.fresh_connect = true end
  if req.json ~= nil then
    t.body = cjson.encode(req.json)
    local headers = {}
    for k, v in pairs(req.headers or {}) do headers[k] = v end
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
    t.headers = headers
  end
  local stage = req.stage or (req.form or req.upload_file or req.body) and "upload" or req.save_to and "download" or nil
  -- The client's own transport, else the host's (libcurl, or cosockets inside nginx).
  local transport = client.transport or host.current().transport(client)
  if not (stage and self:progress_wanted()) then
    if on_start then return transport:request(t, { stage = stage, on_start = on_start }) end
    return transport:request(t, PLAIN[stage or "none"])
  end
  local function on_bytes(now, total)
    self:progress(stage, total > 0 and math.floor(now * 100 / total) or nil,
                  { bytes = now, total = total > 0 and total or nil })
  end
  return transport:request(t, { stage = stage, on_bytes = on_bytes, on_start = on_start })
end

-- Decodes the body as the request asked; a body that does not decode stays undecoded
-- (`res.decode_error` says why) so the provider's `check` can call it a protocol error.
local function decode(self, req, res)
  if not req.decode or res.body == nil then return end
  local value, err
  if req.decode == "json" then
    value, err = self:json_decode(res.body)
    if value ~= nil and type(value) ~= "table" then value, err = nil, "JSON is not an object" end
  elseif req.decode == "xml" then
    value, err = self:xml_decode(res.body, { arrays = req.xml_arrays })
  end
  if value ~= nil then res[req.decode] = value else res.decode_error = err or "undecodable body" end
end

local function default_check(self, res)
  if res.status >= 200 and res.status < 300 then return nil end
  return self:error{ kind = errors.kind_for_status(res.status), status = res.status,
                     message = ("HTTP %d"):format(res.status) }
end

M.MAX_REASON = 200

--- nil for a 2xx answer, else an error whose kind follows the HTTP status; its message is
--- `message` when given, else "HTTP <status>" plus the body when that is a short plain-text
--- reason (at most MAX_REASON bytes, no markup: an HTML error page is left out). Usable as a
--- request's `check` as it is: `check = ctx.http_error`.
function Context:http_error(res, message)
  if res.status >= 200 and res.status < 300 then return nil end
  if not message then
    message = ("HTTP %d"):format(res.status)
    local body = type(res.body) == "string" and #res.body <= 4 * M.MAX_REASON and strings.trim(res.body) or ""
    if body ~= "" and #body <= M.MAX_REASON and not body:find("<", 1, true) then
      message = message .. ": " .. body
    end
  end
  return self:error{ kind = errors.kind_for_status(res.status), status = res.status, message = message }
end

-- The fields ctx:request, ctx:poll and ctx:download read. A provider's misspelt field would
-- otherwise be dropped silently (`decod = "json"`: no res.json, and no word why); raising makes
-- it a protocol error that names the field. Fields whose name starts with "_" are the
-- provider's own (say, for its `sign` hook): see ocr.schema.unknown_field.
local function known(list)
  local set = {}
  for _, k in ipairs(list) do set[k] = true end
  return set
end
local REQUEST_FIELDS = known{ "method", "url", "path", "query", "headers", "body", "form", "upload_file",
  "json", "save_to", "decode", "xml_arrays", "billed", "check", "sign", "retries", "stage", "timeout",
  "connect_timeout", "insecure", "ca_file", "proxy", "max_response_size" }
local POLL_FIELDS = known{ "step", "interval", "timeout" }
local DOWNLOAD_FIELDS = known{ "save_to", "output", "filename", "validity", "check", "max_response_size" }

local function check_fields(t, fields, what)
  if type(t) ~= "table" then error(("%s: a table expected, got %s"):format(what, type(t)), 3) end
  local unknown = schema.unknown_field(t, fields)
  if unknown ~= nil then error(("%s: unknown field '%s'"):format(what, tostring(unknown)), 3) end
end

--- The price of billed request `req` (ocr.cost: the client's `cost` option, else the
--- provider's), or nil when unknown.
function Context:price(req)
  local spec = self.client.cost_spec
  return spec and cost.price(spec, self, req)
end

--- Holds `credits` in the client's budget and every budget a pipeline applies: a list of
--- reservations, or nil and the refusal's fields (nothing held then).
function Context:reserve(credits)
  local held = {}
  local function hold(b, scope)
    local r, refused = b:reserve(scope, credits)
    if not r then
      for _, h in ipairs(held) do h:release() end
      return refused
    end
    held[#held + 1] = r
  end
  local client = self.client
  if client.budget then
    local refused = hold(client.budget, client.scope)
    if refused then return nil, refused end
  end
  for _, e in ipairs(self.budgets or {}) do
    local refused = hold(e.budget, e.scope)
    if refused then return nil, refused end
  end
  return held
end

--- After one attempt of a billed request: its credits count as spent (the budgets keep them)
--- when it was billed (ocr.cost.billed), else the budgets get them back.
function Context:settle(price, held, answered, err)
  self.held, self.pending = nil, nil
  if cost.billed(price, answered, err) then
    self.spent = (self.spent or 0) + price.credits
  elseif held then
    for _, h in ipairs(held) do h:release() end
  end
end

--- Before anything is sent: nil, or the refusal's fields when a budget has no room left for
--- one billed request at the client's declared price (a table: a priced function is only
--- asked per request).
function Context:budget_check()
  local spec = self.client.cost_spec
  if type(spec) ~= "table" or spec.credits <= 0 then return nil end
  local client = self.client
  if client.budget then
    local refused = client.budget:check(client.scope, spec.credits)
    if refused then return refused end
  end
  for _, e in ipairs(self.budgets or {}) do
    local refused = e.budget:check(e.scope, spec.credits)
    if refused then return refused end
  end
  return nil
end

--- What this call cost: credits in the provider's unit, 0 for a call that made no billed
--- request, nil when the price is unknown.
function Context:cost()
  if self.client.cost_spec == nil or self.cost_unknown then return nil end
  return self.spent or 0
end

--- The call was given up (a job cancelled): a billed request on its way counts as spent (it
--- may have left: its credits stay held); one still waiting to leave gives its credits back.
function Context:abandon()
  local held, price = self.held, self.pending
  self.held, self.pending = nil, nil
  if price and self.sending then
    self.spent = (self.spent or 0) + price.credits
  elseif held then
    for _, h in ipairs(held) do h:release() end
  end
end

--- Sends a request through the client's transport, with retries.
-- req: method, url (or path + query), headers, body | form | upload_file | json, save_to,
--   decode = "json"|"xml", xml_arrays, billed (a create that costs money: see ocr.retry),
--   check = function(ctx, res) -> nil | ocr.error (maps a vendor answer onto an error; the
--   default treats non-2xx as errors), sign = function(ctx, req) (called before every attempt,
--   e.g. to put a fresh signature into req.headers), retries (overrides the client's).
-- Returns the response (`status`, `headers`, `body`, and `json`/`xml` when decoded) or nil, err.
function Context:request(req)
  check_fields(req, REQUEST_FIELDS, "ctx:request")
  if not req.url then req.url = self:url(req.path, req.query) end
  local max_retries = req.retries or self.client.options.retries or retry.DEFAULTS.retries
  local policy = self.client.options.backoff
  local attempt = 0
  local logging = self.client.options.log ~= nil  -- build no event tables nobody reads
  while true do
    attempt = attempt + 1
    if req.sign then req.sign(self, req) end
    if req.headers then keep_request_secrets(self, req.headers, req.sign ~= nil) end
    -- A billed request's price, and the credits it may spend held in every budget first.
    local price, held = req.billed and self:price(req), nil
    if price and price.credits > 0 then
      local refused
      held, refused = self:reserve(price.credits)
      if not held then
        refused.attempts = attempt
        return nil, self:error(refused)
      end
    elseif req.billed and not price then
      self.cost_unknown = true
    end
    self.held, self.pending = held, price or nil   -- (ctx:abandon reads them)
    local limiter = req.billed and self.client.limiter
    if limiter then
      local went, lerr = limiter:acquire(runtime.sleep, logging and function(delay)
        self:log{ event = "rate_limit_wait", method = req.method or "GET", url = req.url, delay = delay }
      end or nil, host.current().rate_store(self.client), self.client.options.store)
      if not went then   -- (a shared store that is down, told to fail: nothing is sent)
        local err = self:error{ kind = "server", retryable = false, sent = false, attempts = attempt,
                                message = "rate limit: " .. tostring(lerr) }
        if price then self:settle(price, held, false, err) end   -- (unsent: the credits go back)
        return nil, err
      end
    end
    local started
    if logging then
      started = runtime.now()
      self:log{ event = "request", method = req.method or "GET", url = req.url, attempt = attempt }
    end
    self.sending = true
    local res, terr = transport_request(self, req, limiter and limiter.on_start or nil)
    self.sending = false
    local err
    if res then
      self.request_id = self.request_id or res.headers["x-request-id"]
      decode(self, req, res)
      if logging then
        self:log{ event = "response", method = req.method or "GET", url = req.url, status = res.status,
                  duration = runtime.now() - started, attempt = attempt }
      end
      err = (req.check or default_check)(self, res)
      if err == nil then
        if price then self:settle(price, held, true, nil) end
        return res
      end
      err.status = err.status or res.status
      err.sent = true
      if err.retry_after == nil and res.headers["retry-after"] then
        err.retry_after = errors.parse_retry_after(res.headers["retry-after"], os.time())
      end
    else
      terr = type(terr) == "table" and terr or { kind = "network", message = tostring(terr) }
      local kind = errors.KINDS[terr.kind] ~= nil and terr.kind or "network"
      err = self:error{ kind = kind, message = terr.message or kind, sent = terr.sent,
                        curl_code = terr.curl_code }
      if logging then
        self:log{ event = "transport_error", method = req.method or "GET", url = req.url,
                  kind = err.kind, message = err.message, attempt = attempt }
      end
    end
    if price then self:settle(price, held, res ~= nil, err) end
    err.attempts = attempt
    if attempt > max_retries or not retry.should_retry(err, req.billed)
       or not self.client.retry_budget:take() then
      return nil, err
    end
    local delay = retry.delay(attempt, err, policy)
    if logging then
      self:log{ event = "retry", method = req.method or "GET", url = req.url, kind = err.kind,
                delay = delay, attempt = attempt }
    end
    runtime.sleep(delay)
  end
end

--- Polls until `step()` says the work is done.
-- opts: interval (s; default the client's poll_interval), timeout (default poll_timeout),
--   step = function(ctx, n) -> "done", value | "pending" | nil, err.
-- No interval is shorter than the client's min_poll_interval (a provider's default: the
-- vendor's own floor). A poll timeout is a `timeout` error that keeps the task id, so nothing
-- paid for is lost.
function Context:poll(opts)
  check_fields(opts, POLL_FIELDS, "ctx:poll")
  local options = self.client.options
  local interval = math.max(opts.interval or options.poll_interval or 1, options.min_poll_interval or 0)
  local timeout = opts.timeout or self.client.options.poll_timeout or 120
  local deadline = runtime.now() + timeout
  local n = 0
  while true do
    n = n + 1
    local state, value = opts.step(self, n)
    if state == "done" then return value end
    if state == nil then return nil, value end
    if runtime.now() + interval > deadline then
      return nil, self:error{ kind = "timeout", retryable = true,
        message = ("task not finished after %gs of polling; fetch it later with client:result(task_id)")
                  :format(timeout) }
    end
    runtime.sleep(interval)
  end
end

--- Waits for item `id` of an event source (e.g. a pool of OCR worker threads; see
-- ocr.scheduler.await) as the host waits: inside a scheduler job the job yields; in a script
-- `source:wait(id)` blocks; inside nginx, or under an embedder's runtime, the thread is not ours
-- to block, so the source is asked between the runtime's sleeps (5 ms, doubling up to 50 ms).
-- With `report` (and a source that has `progress(id)`), report(source:progress(id)) is called
-- while the item runs, at least every `ocr.scheduler.progress_interval` seconds.
function Context:await(source, id, report)
  return host.current().await(self, source, id, report)
end

-- Object storage (S3, OSS, COS) explains a refusal in XML: its <Code> and <Message>.
local function storage_detail(res)
  local body = type(res.body) == "string" and res.body or ""
  return body:match("<Code>([^<]*)</Code>"), body:match("<Message>([^<]*)</Message>")
end

-- Result files sit on object storage behind pre-signed URLs: 403/404/410 there means the link
-- expired or the file was removed (`not_found`, the storage's S3/OSS-style <Code> in err.code).
local function result_file_check(validity)
  return function(ctx, res)
    if res.status >= 200 and res.status < 300 then return nil end
    local gone = res.status == 403 or res.status == 404 or res.status == 410
    local why = ""
    if gone then why = validity and ("; result URLs expire after " .. validity) or "; it expired or was removed" end
    return ctx:error{ kind = gone and "not_found" or errors.kind_for_status(res.status), status = res.status,
                      code = (storage_detail(res)),
                      message = ("result file unavailable (HTTP %d)%s"):format(res.status, why) }
  end
end

--- Downloads a text result file into memory: returns its text (without a byte order mark) and
-- the response, or nil, err. opts as ctx:download's (no output: the text is the result).
function Context:download_text(url, opts)
  local res, err = self:download(url, opts)
  if not res then return nil, err end
  return strings.strip_bom(res.body or ""), res
end

--- Downloads a result file. opts: save_to (a path) or output (a directory, with `filename`);
-- without either the body comes back in memory (bounded by max_response_size). `validity`
-- ("1 hour") explains an expired link; `check` replaces the result-file check entirely.
-- Returns the response (with `path` when saved) or nil, err.
function Context:download(url, opts)
  opts = opts or {}
  check_fields(opts, DOWNLOAD_FIELDS, "ctx:download")
  -- The URL comes from the vendor's answer: one that cannot be fetched is the vendor's fault
  -- (protocol), not the caller's input.
  local ok, why = url_lib.parse_http(url, { max_length = M.MAX_URL })
  if not ok then
    return nil, self:error{ kind = "protocol", message = "the vendor's result file URL is unusable: " .. why }
  end
  local save_to = opts.save_to
  if not save_to and opts.output then
    local path, err = files.safe_path(opts.output, opts.filename or "result")
    if not path then return nil, self:error{ kind = "invalid_input", message = err } end
    save_to = path
  end
  self:progress("download", nil, { url = nil })
  local res, err = self:request{ method = "GET", url = url, save_to = save_to, stage = "download",
                                 check = opts.check or result_file_check(opts.validity),
                                 max_response_size = opts.max_response_size }
  if not res then
    if save_to ~= opts.save_to then os.remove(save_to) end   -- the name safe_path reserved
    return nil, err
  end
  res.path = save_to
  return res
end

--- Fetches a finished task's result files, `list` = { {url=, format=, name=}, ... } (`name`,
-- already sanitised or not, is the file's name in `input.output`): files of a text format
-- (files.is_text) are read into the result's text, several joined by "\f" with their lines
-- numbered by `page` (a JSON one is decoded into entry.json, and no lines are guessed from it),
-- and written into input.output too when given; others are saved into input.output. Each saved
-- file's entry gets `path`. With input.download == false nothing is fetched. A file that needs
-- input.output without one is refused before anything is downloaded (`unsupported`, with
-- err.files = list; `opts.hint` ends its message). opts.validity as ctx:download's; with
-- opts.read_text == false no file is read, and every file is saved when input.output is given
-- (a result whose text came in the answer, the files being extras).
-- Returns the fields for ocr.result.new (text, lines, pages, files, json) or nil, err.
function Context:fetch_files(list, input, opts)
  opts = opts or {}
  local read = opts.read_text ~= false
  local output = input.output
  local download = input.download ~= false and (read or output ~= nil)
  for _, entry in ipairs(list) do
    if read and download and not output and not files.is_text(entry.format) then
      return nil, self:error{ kind = "unsupported", files = list, retryable = false,
        message = ("the task produced a '%s' file, not text: pass output = dir to save it%s")
                  :format(tostring(entry.format), opts.hint and ("; " .. opts.hint) or "") }
    end
  end
  local texts, lines, several = {}, {}, #list > 1
  for i, entry in ipairs(list) do
    local name = entry.name or files.url_name(entry.url,
      ("%s-%d.%s"):format(self.task_id or "result", i, entry.format or "bin"), entry.format)
    if read and download and files.is_text(entry.format) then
      local text, res = self:download_text(entry.url, { validity = opts.validity })
      if not text then return nil, res end
      if output then
        local path, werr = files.write_new(output, name, res.body or "")
        if not path then return nil, self:error{ kind = "invalid_input", message = werr } end
        entry.path = path
      end
      texts[#texts + 1] = text
      if entry.format == "json" then
        local doc, jerr = cjson.decode(text)
        if doc == nil then
          return nil, self:error{ kind = "protocol", message = ("result file %d is not JSON: %s"):format(i, tostring(jerr)) }
        end
        entry.json = doc
      else
        for _, line in ipairs(core.split_lines(text, several and i or nil)) do lines[#lines + 1] = line end
      end
    elseif download then
      local res, err = self:download(entry.url, { output = output, filename = name, validity = opts.validity })
      if not res then return nil, err end
      entry.path = res.path
    end
  end
  return { text = table.concat(texts, "\f"), lines = lines, files = list,
           json = #list == 1 and list[1].json or nil, pages = several and #list or nil }
end

-- A refused pre-signed upload: the storage's code and words; a 403 there is a URL that expired,
-- was used already or was altered.
local function upload_check(ctx, res)
  if res.status >= 200 and res.status < 300 then return nil end
  local code, msg = storage_detail(res)
  local why = res.status == 403 and " (expired, already used or altered)" or ""
  return ctx:error{ kind = errors.kind_for_status(res.status), status = res.status, code = code,
                    message = ("the pre-signed upload URL was refused%s: HTTP %d%s")
                              :format(why, res.status, msg and (" " .. msg) or "") }
end

--- PUTs the input's bytes (its file streamed, or its data) to a pre-signed object storage URL
-- from the vendor's answer; no credential goes there. opts: content_type, headers. A refusal is
-- an error with the storage's <Code> as err.code and its <Message> in the message. Returns the
-- response or nil, err.
function Context:upload(url, input, opts)
  opts = opts or {}
  local ok, why = url_lib.parse_http(url, { max_length = M.MAX_URL })
  if not ok then
    return nil, self:error{ kind = "protocol", message = "the vendor's upload URL is unusable: " .. why }
  end
  local headers = {}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if opts.content_type then headers["Content-Type"] = opts.content_type end
  return self:request{ method = "PUT", url = url, headers = headers, check = upload_check,
                       upload_file = input.file, body = not input.file and input.data or nil }
end

M.Context = Context
return M
