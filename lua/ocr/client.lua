--- A client: one provider, its credentials and options, and a transport.
-- `client:recognize(input)` checks the input (nothing is sent for bad input), then runs the
-- provider's workflow in a fresh context and returns `res` or `nil, err`.
local errors = require "ocr.errors"
local schema = require "ocr.schema"
local files = require "ocr.files"
local context = require "ocr.context"
local retry = require "ocr.retry"
local core = require "ocr.core"
local ratelimit = require "ocr.ratelimit"
local host = require "ocr.host"
local language = require "ocr.language"
local url = require "ocr.url"
local cost = require "ocr.cost"
local budget = require "ocr.budget"
local runtime = require "ocr.runtime"

local M = {}

--- Options every client accepts. Providers add credentials and their own client options.
M.COMMON_OPTIONS = {
  endpoint = "string", timeout = "number", connect_timeout = "number", retries = "integer",
  poll_interval = "number", min_poll_interval = "number", poll_timeout = "number", ca_file = "string", insecure = "boolean",
  proxy = "string", user_agent = "string", transport = "object", on_progress = "function",
  log = "function", backoff = "table", max_response_size = "number", rate = "table_or_false",
  retry_budget = "integer", keepalive_timeout = "positive", keepalive_pool = "integer",
  shared_dict = "string", budget = "table", cost = "table", store = "object",
}

--- Keys of `recognize`'s input that are not vendor options.
M.SOURCES = { "file", "data", "url", "key" }
local SOURCES = M.SOURCES
M.INPUT_OPTIONS = { file = "string", data = "string", url = "string", key = "string",
                    filename = "string", output = "string", on_progress = "function",
                    on_task = "function" }

-- The one `language` option (ocr.language), for every provider whose definition declares
-- `languages`: a client's default and any input's own.
local LANGUAGE_OPTION = { language = "string_or_table" }

-- min_poll_interval: the floor under every poll interval. A provider whose vendor asks for no
-- faster polls declares it in its `defaults`; a caller lowers it explicitly (a local mock).
local DEFAULTS = { timeout = 60, connect_timeout = 10, retries = 3, poll_interval = 1,
                   min_poll_interval = 0, poll_timeout = 120 }

local Client = {}
Client.__index = Client
M.Client = Client

-- An input URL is handed on to the vendor, who encodes it (a space in its path is theirs to
-- take); control characters and a malformed host or port are refused here.
local INPUT_URL = { allow_spaces = true }

-- accepted_sources.url for a provider whose `url` inputs the client fetches itself.
local FETCHED = "fetched"

-- A provider with extras (its `methods`, e.g. a client:quota()) gets its own class on top of Client,
-- made once per definition; each extra runs in a context like recognize does.
local classes = setmetatable({}, { __mode = "k" })
local function class_for(def)
  if not def.methods then return Client end
  local class = classes[def]
  if class then return class end
  class = setmetatable({}, { __index = Client })
  class.__index = class
  for name, fn in pairs(def.methods) do
    if Client[name] == nil then
      class[name] = function(client, ...)
        return client:_run(function(ctx, ...) return fn(ctx, ...) end, nil, ...)
      end
    end
  end
  classes[def] = class
  return class
end

local function env_name(provider, key)
  return ("OCR_%s_%s"):format(provider:upper():gsub("[^%w]", "_"), key:upper())
end
M.env_name = env_name

local function resolve_credentials(name, def, opts)
  local creds, secrets = {}, {}
  for key, spec in pairs(def.credentials or {}) do
    local v = opts[key]
    if v == nil then
      v = os.getenv(env_name(name, key))
      if v == "" then v = nil end
    end
    if v ~= nil then
      assert(type(v) == "string" and v ~= "",
             ("ocr.new(%q): credential '%s' must be a non-empty string"):format(name, key))
      creds[key] = v
      if spec.secret ~= false then secrets[#secrets + 1] = v end
    elseif spec.required then
      error(("ocr.new(%q): missing credential '%s' (pass it in the options or set %s)")
            :format(name, key, env_name(name, key)), 3)
    end
  end
  return creds, secrets
end

function M.new(name, def, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error(("ocr.new(%q): options must be a table"):format(name), 3) end
  local cred_specs = {}
  for key in pairs(def.credentials or {}) do cred_specs[key] = "string" end
  local lang_spec = def.languages and LANGUAGE_OPTION or {}
  local ok, err = schema.check_table(opts, { M.COMMON_OPTIONS, cred_specs, lang_spec, def.client_options or {} },
                                     "provider " .. name)
  if not ok then error(("ocr.new(%q): %s"):format(name, err), 3) end
  if opts.transport ~= nil and type(opts.transport.request) ~= "function" then
    error(("ocr.new(%q): option 'transport' must have a request method"):format(name), 3)
  end

  local options = {}
  for k, v in pairs(DEFAULTS) do options[k] = v end
  for k, v in pairs(def.defaults or {}) do options[k] = v end
  for k, v in pairs(opts) do options[k] = v end
  for _, k in ipairs{ "timeout", "connect_timeout", "poll_interval", "poll_timeout" } do
    if options[k] <= 0 then error(("ocr.new(%q): option '%s' must be positive"):format(name, k), 3) end
  end
  if options.retries < 0 then error(("ocr.new(%q): option 'retries' must be >= 0"):format(name), 3) end
  if not (options.min_poll_interval >= 0) then
    error(("ocr.new(%q): option 'min_poll_interval' must be >= 0"):format(name), 3)
  end
  if options.user_agent and options.user_agent:find("[%z\1-\8\10-\31\127]") then   -- a header
    error(("ocr.new(%q): option 'user_agent' contains CR, LF or control characters"):format(name), 3)
  end

  local creds, secrets = resolve_credentials(name, def, opts)
  local price = def.cost
  if opts.cost ~= nil then
    local okc, cerr = pcall(cost.check, "option 'cost'", opts.cost)
    if not okc then error(("ocr.new(%q): %s"):format(name, tostring(cerr):gsub("^.-:%d+: ", "")), 3) end
    price = opts.cost
  end
  if opts.store ~= nil and type(opts.store.take) ~= "function" then
    error(("ocr.new(%q): option 'store': a store with take() for rate limits expected (ocr.store.redis{...})")
          :format(name), 3)
  end
  local spending
  if opts.budget ~= nil then
    if price == nil then
      error(("ocr.new(%q): option 'budget': what %s's calls cost is unknown; declare it with the option cost = {credits = n}")
            :format(name, name), 3)
    end
    local bspec = opts.budget
    if type(bspec) == "table" and bspec.store == nil and opts.store ~= nil then   -- (one store for both)
      bspec = {}
      for k, v in pairs(opts.budget) do bspec[k] = v end
      bspec.store = opts.store
    end
    local okb, b = pcall(budget.new, bspec, "option 'budget'")
    if not okb then error(("ocr.new(%q): %s"):format(name, tostring(b):gsub("^.-:%d+: ", "")), 3) end
    spending = b
  end
  local self = setmetatable({
    provider = name, def = def, options = options, credentials = creds, secrets = secrets,
    user_agent = options.user_agent or ("lua-ocr/" .. core._VERSION),
    retry_budget = retry.budget(options.retry_budget or 20, 1),
    input_specs = { M.INPUT_OPTIONS, lang_spec, def.options or {} },
    input_what = "provider " .. name,
    url_memo = {}, url_memo_size = 0,   -- ctx:url's memo (see context.lua)
    accepted_sources = {},
    cost_spec = price, budget = spending, scope = M.scope(name, creds), counters = cost.stats(),
  }, class_for(def))
  for _, src in ipairs(def.sources or {}) do self.accepted_sources[src] = true end
  if def.languages then
    local native, lerr = def.languages.default, nil
    if options.language ~= nil then native, lerr = language.resolve(def.languages, options.language, name) end
    if native == nil and lerr then error(("ocr.new(%q): %s"):format(name, lerr), 3) end
    self.language = native or nil   -- (false: nothing to send)
  end
  -- A vendor that takes bytes but no URL still gets `url`: the client fetches it (see
  -- fetch_then_recognize). Marked here once, so that checking and running agree.
  if self.accepted_sources.data and not self.accepted_sources.url then
    self.accepted_sources.url = FETCHED
  end
  if options.endpoint == nil and (os.getenv(env_name(name, "endpoint")) or "") ~= "" then
    options.endpoint = os.getenv(env_name(name, "endpoint"))
  end
  if def.init then
    local ok2, ierr = pcall(def.init, self)
    if not ok2 then error(("ocr.new(%q): %s"):format(name, tostring(ierr):gsub("^.-:%d+: ", "")), 3) end
  end
  if def.offline then
    -- A local engine (`offline`): no endpoint, and libcurl is never loaded for it.
    if options.endpoint then error(("ocr.new(%q): a local provider takes no endpoint"):format(name), 3) end
    return self
  end
  self.endpoint = options.endpoint or self.endpoint or def.endpoint
  if not url.is_http(self.endpoint) then
    error(("ocr.new(%q): endpoint must be an http(s) URL, got %s"):format(name, tostring(self.endpoint)), 3)
  end
  -- The caller's transport, or none: then each request uses the host's (ocr.host), so a client
  -- made in nginx's init_by_lua sends over cosockets, and one in a script loads libcurl only
  -- when it first sends.
  self.transport = options.transport
  if options.shared_dict ~= nil then
    local ngx = rawget(_G, "ngx")
    if ngx and ngx.shared and not ngx.shared[options.shared_dict] then
      error(("ocr.new(%q): option 'shared_dict': nginx.conf has no 'lua_shared_dict %s'")
            :format(name, options.shared_dict), 3)
    end
  end
  local rate = options.rate
  if rate == nil then rate = def.rate end
  if rate and rate.per_second then
    if type(rate.per_second) ~= "number" or rate.per_second <= 0 then
      error(("ocr.new(%q): rate.per_second must be a positive number"):format(name), 3)
    end
    -- Shared by every client of the same provider and credential in this process.
    local first_secret = def.rate_key and creds[def.rate_key] or secrets[1]
    self.limiter = ratelimit.limiter(ratelimit.key(name, first_secret), rate)
  end
  return self
end

--- The name a client's budget counts under: the provider and a hash of its credentials (all of
--- them, sorted: the same in every process), never a credential itself.
function M.scope(name, creds)
  local keys, parts = {}, {}
  for k in pairs(creds) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do parts[i] = k .. "=" .. creds[k] end
  return name .. ":" .. core.hex(core.sha1(table.concat(parts, "\0"))):sub(1, 16)
end

--- Checks an input table the way every provider needs; the provider's own `validate` follows.
function Client:check_input(input)
  local def = self.def
  if type(input) ~= "table" then return "input must be a table" end
  local ok, err = schema.check_table(input, self.input_specs, self.input_what, true)
  if not ok then return err end
  if input.language ~= nil and def.languages then   -- (else a provider's own option)
    local native, lerr = language.resolve(def.languages, input.language, self.provider)
    if native == nil then return lerr end
  end
  local src, count = nil, 0
  for i = 1, #SOURCES do
    if input[SOURCES[i]] ~= nil then src, count = src or SOURCES[i], count + 1 end
  end
  if count ~= 1 then
    local given = {}
    for _, s in ipairs(SOURCES) do
      if input[s] ~= nil then given[#given + 1] = s end
    end
    local list = table.concat(def.sources or {}, ", ")
    return count == 0 and ("one source is required: " .. list)
        or ("exactly one source is allowed, got " .. table.concat(given, " and "))
  end
  if not self.accepted_sources[src] then
    return ("provider %s does not accept the source '%s' (it takes %s)")
           :format(self.provider, src, table.concat(def.sources or {}, ", "))
  end
  local size
  if src == "file" then
    size, err = files.check_input(input.file)
    if not size then return err end
  elseif src == "data" then
    if #input.data == 0 then return "data is empty" end
    size = #input.data
  elseif src == "url" and not url.is_http(input.url, INPUT_URL) then
    return "url must be an absolute http(s) URL"
  end
  if size and def.max_file_size and size > def.max_file_size then
    return ("input is %d bytes, over %s's limit of %d bytes"):format(size, self.provider, def.max_file_size),
           "too_large"
  end
  if input.output ~= nil then
    ok, err = files.check_dir(input.output)
    if not ok then return err end
  end
  if def.validate then
    local msg, kind = def.validate(input, self)
    if msg then return msg, kind end
  end
  return nil
end

-- Runs `fn(ctx, ...)` in a fresh context. An error raised inside a provider (a vendor answer that
-- breaks its assumptions) becomes a `protocol` error instead of crashing the caller.
-- Lua 5.2+ and LuaJIT let a coroutine yield through pcall; PUC Lua 5.1 does not. Known from the
-- VM, not probed with a coroutine: under nginx a resume inside `require` would yield the
-- request's own coroutine across a C call and abort it.
local PCALL_YIELDS = _VERSION ~= "Lua 5.1" or rawget(_G, "jit") ~= nil

--- The error for a provider that raised (a vendor answer that broke its assumptions).
function Client:provider_failed(ctx_or_nil, message)
  local fields = { kind = "protocol", retryable = false,
                   message = "provider failed on the vendor's answer: " .. tostring(message) }
  if ctx_or_nil then return ctx_or_nil:error(fields) end
  fields.provider = self.provider
  return errors.scrub(errors.new(fields), self.secrets)
end

-- Runs `fn(ctx, input, ...)`; a `counted` call (recognize, result) is priced (res.cost,
-- err.cost) and recorded in the client's stats, and a recognition first asks the budgets
-- whether one billed request still fits (nothing is sent when none does).
local function run(self, counted, fn, input, ...)
  local started = counted and runtime.now()
  local refused = host.current().check(self)   -- (nginx: a phase without cosockets)
  if refused then
    local err = errors.scrub(errors.new{ provider = self.provider, kind = "invalid_input",
                                         message = refused }, self.secrets)
    if counted then return self:_account(nil, started, nil, err) end
    return nil, err
  end
  local ctx = context.new(self, input)
  local ok, res, err
  local over = counted == "recognize" and ctx:budget_check()
  if over then
    ok, res, err = true, nil, ctx:error(over)
  elseif ctx.job and not PCALL_YIELDS then
    -- A job on Lua 5.1: no pcall to yield through; the scheduler catches a raise instead.
    ok, res, err = true, fn(ctx, input, ...)
  else
    ok, res, err = pcall(fn, ctx, input, ...)
  end
  if not ok then
    res, err = nil, self:provider_failed(ctx, res)
  elseif res == nil and err == nil then
    err = ctx:error{ kind = "protocol", message = "provider returned neither result nor error" }
  elseif res ~= nil then
    res.provider = res.provider or self.provider
    res.task_id = res.task_id or ctx.task_id
    res.request_id = res.request_id or ctx.request_id
    ctx:progress("done", 100)
  elseif type(err) == "table" and errors.is_error(err) then
    err.task_id = err.task_id or ctx.task_id
  end
  if counted then return self:_account(ctx, started, res, err) end
  return res, err
end

function Client:_run(fn, input, ...)
  return run(self, false, function(ctx, _, ...) return fn(ctx, ...) end, input, ...)
end

--- Prices a finished call (res.cost or err.cost: the context's credits; 0 when it never got
--- to run and the price is known) and records it in the client's stats. Returns res, err.
function Client:_account(ctx, started, res, err)
  local spent
  if ctx then spent = ctx:cost() elseif self.cost_spec ~= nil then spent = 0 end
  if res ~= nil then
    if type(res) == "table" then res.cost = spent end
  elseif type(err) == "table" then
    err.cost = spent
  end
  self.counters:record(res == nil and (err or true) or nil, spent,
                       res ~= nil and started and runtime.now() - started or nil)
  return res, err
end

--- A job of this client was cancelled (its host calls this): a billed request still waiting
--- gives its budget back, and the call is priced and counted.
function Client:_cancelled(job, err)
  local ctx = rawget(job, "ctx")
  if ctx and ctx.client == self then ctx:abandon() else ctx = nil end
  if rawget(job, "input") == nil then return end   -- (not a recognition: a warm-up)
  self:_account(ctx, nil, nil, err)
end

-- An input URL's host answered: its failures are the input's, not the vendor's (a 401 from an
-- image host says nothing about the OCR credentials); 429, 5xx and 408 are retried.
local function input_url_check(ctx, res)
  local s = res.status
  if s >= 200 and s < 300 then return nil end
  local kind = s == 429 and "rate_limited" or s >= 500 and "server" or s == 408 and "timeout"
               or "invalid_input"
  return ctx:error{ kind = kind, status = s, message = ("the input URL answered HTTP %d"):format(s) }
end

-- A provider that takes bytes but not URLs (sources without "url") still reads `url`: the client
-- fetches it (an unbilled GET, retried like any, bounded by the provider's max_file_size or the
-- transport's max_response_size) and hands the provider `data` named after the URL, checked as
-- the caller's own data would be.
local function fetch_then_recognize(ctx, input)
  local client = ctx.client
  local res, err = ctx:request{ method = "GET", url = input.url, stage = "download",
                                check = input_url_check, max_response_size = client.def.max_file_size }
  if not res then return nil, err end
  local fetched = {}
  for k, v in pairs(input) do fetched[k] = v end
  fetched.url, fetched.data = nil, res.body or ""
  fetched.filename = files.name_for(input, "input")
  local msg, kind = client:check_input(fetched)
  if msg then
    return nil, ctx:error{ kind = kind or "invalid_input", message = "fetched from the input URL: " .. msg }
  end
  return client.def.recognize(ctx, fetched)
end

-- Recognizes one input in the caller's thread or job: check the input, then run the workflow.
function Client:_recognize_now(input)
  if type(input) == "string" then input = { file = input } end   -- recognize("scan.png")
  local msg, kind = self:check_input(input)
  if msg then
    return self:_account(nil, nil, nil, errors.scrub(errors.new{ provider = self.provider,
      kind = kind or "invalid_input", message = msg }, self.secrets))
  end
  if input.url and self.accepted_sources.url == FETCHED then
    return run(self, "recognize", fetch_then_recognize, input)
  end
  return run(self, "recognize", self.def.recognize, input)
end

-- `client.recognize(input)` (a dot for the colon) passes the input as the client: say so rather
-- than fail somewhere inside.
local function check_self(self, method)
  if type(self) ~= "table" or rawget(self, "def") == nil then
    error(("client:%s: call it with a colon, client:%s(...)"):format(method, method), 3)
  end
end

--- This client's totals since it was made: `requests` (calls of recognize and result),
--- `successes`, `failures` by kind, `credits` spent (nil when a price was unknown), `unit`,
--- and `latency` {p50=, p95=} in seconds over its last successful calls; with a budget,
--- `budget` {credits=, per=, spent=}.
function Client:stats()
  check_self(self, "stats")
  local spec = type(self.cost_spec) == "table" and self.cost_spec or nil
  local out = self.counters:snapshot(spec and (spec.unit or "credit") or nil)
  if self.budget then
    local b = self.budget
    out.budget = { credits = b.credits, per = b.per, spent = b:spent(self.scope) }
  end
  return out
end

--- The native language value to send for `input` (its own `language`, else the client's,
-- else the provider's default), or nil when none is to be sent.
function Client:language_for(input)
  local spec = self.def.languages
  if not spec then return nil end
  if input and input.language ~= nil then
    return language.resolve(spec, input.language, self.provider) or nil   -- (checked before)
  end
  return self.language
end

-- recognize_all's options, checked like ocr.new's: a misspelt one would otherwise be ignored
-- silently (concurrency 8 instead of the one meant).
local RECOGNIZE_ALL_OPTIONS = { { concurrency = "integer", on_result = "function", on_progress = "function" } }

--- The client API over a `_recognize_now(input)` that the hosts run (ocr.host), given to
-- `class` (clients, and what behaves as one: pipelines, caches); `is(self)` tells its objects
-- from a call made with a dot, `what` names them in that error:
--   recognize(input) -> res | nil, err: in a script right here (on the client's keep-alive
--     session), as a job among the others while jobs are in flight, inside nginx over cosockets;
--   submit(input) -> job: a scheduler job that ocr.step() advances, or inside nginx a light
--     thread (job:result() waits for it);
--   recognize_all(inputs, opts) -> out, out[i] = {input=, res=, err=} with exactly one of
--     res/err, at most opts.concurrency (8) jobs in flight; opts.on_result(i, res, err) as each
--     finishes, opts.on_progress(event) with `index = i`.
function M.install_api(class, what, is)
  local function check(self, method)
    if not is(self) then error(("%s:%s: call it with a colon, %s:%s(...)"):format(what, method, what, method), 3) end
  end
  function class:recognize(input)
    check(self, "recognize")
    return host.current().recognize(self, input)
  end
  function class:submit(input)
    check(self, "submit")
    return host.current().submit(self, input)
  end
  function class:recognize_all(inputs, opts)
    check(self, "recognize_all")
    return M.recognize_all(self, inputs, opts, 3)
  end
end
M.install_api(Client, "client", function(self) return type(self) == "table" and rawget(self, "def") ~= nil end)

--- recognize_all for any object a host can run as a client (a client, a pipeline): checks the
--- arguments (raising at `level` on a mistake), then hands them to the host.
function M.recognize_all(runner, inputs, opts, level)
  if type(inputs) ~= "table" then error("recognize_all: an array of inputs expected", level) end
  opts = opts or {}
  if type(opts) ~= "table" then error("recognize_all: options must be a table", level) end
  local ok, msg = schema.check_table(opts, RECOGNIZE_ALL_OPTIONS, "recognize_all")
  if not ok then error("recognize_all: " .. msg, level) end
  local concurrency = opts.concurrency or 8
  if concurrency < 1 then error("recognize_all: concurrency must be >= 1", level) end
  return host.current().recognize_all(runner, inputs, opts, concurrency)
end

--- Fetches the result of a task created earlier (e.g. after a poll timeout). Providers without
-- tasks answer `unsupported`.
function Client:result(task_id, input)
  check_self(self, "result")
  input = input or {}
  if not self.def.result then
    return nil, errors.new{ provider = self.provider, kind = "unsupported",
                            message = self.provider .. " has no tasks to fetch later" }
  end
  if type(task_id) ~= "string" or task_id == "" then
    return nil, errors.new{ provider = self.provider, kind = "invalid_input", message = "task_id must be a non-empty string" }
  end
  if input.output ~= nil then
    local ok, err = files.check_dir(input.output)
    if not ok then return nil, errors.new{ provider = self.provider, kind = "invalid_input", message = err } end
  end
  return run(self, "result", function(ctx)
    ctx.task_id = task_id
    return self.def.result(ctx, task_id, input)
  end, input)
end

--- Loads now what a first recognition would, so that it does not stall the caller: a local
-- engine's models, on its worker threads, never on the caller's thread. Returns at
-- once, unless `opts.wait` (true, or seconds) asks to return only once loaded. `opts.language`:
-- what to load (default: the client's `language`). Returns true, or nil, err: invalid_input for
-- a language the provider cannot read, or (waiting) a model that cannot load; timeout.
-- A cloud client's warm-up: one HEAD to its endpoint (unbilled; any answer will do) leaves a
-- connection, TCP and TLS done, in the pool its first request takes: the client's session in a
-- script that waits for it, the jobs' multi handle when it does not (a game's ocr.step drives it
-- and its jobs then find the connection), nginx's cosocket pool inside nginx.
local function head_endpoint(client)
  local ctx = context.new(client, nil)
  local req = { method = "HEAD", url = client.endpoint, check = function() return nil end }
  local ok, res, err = true, nil, nil
  if PCALL_YIELDS or not ctx.job then ok, res, err = pcall(ctx.request, ctx, req)
  else res, err = ctx:request(req) end   -- (a job on Lua 5.1: the scheduler catches a raise)
  if not ok then return nil, client:provider_failed(ctx, res) end
  if not res then return nil, err end
  return true
end

function Client:_warm_connection(wait)
  local h = host.current()
  local refused = h.check(self)
  if refused then return nil, errors.scrub(errors.new{ provider = self.provider, kind = "invalid_input",
                                                       message = refused }, self.secrets) end
  if h.name == "blocking" and not wait then
    require("ocr.scheduler").submit(self, function(job) return head_endpoint(job.client) end)
    return true
  end
  return head_endpoint(self)
end

function Client:warm(opts)
  check_self(self, "warm")
  opts = opts or {}
  local function fail(kind, message)
    return nil, errors.scrub(errors.new{ provider = self.provider, kind = kind, message = message }, self.secrets)
  end
  -- (checked like ocr.new's: a misspelt option would otherwise be ignored)
  assert(type(opts) == "table", "warm: options must be a table")
  for k, v in pairs(opts) do
    if k == "language" then
      assert(type(v) == "string" or type(v) == "table", "warm: option 'language' must be a string or a table")
    elseif k == "wait" then
      assert(type(v) == "boolean" or (type(v) == "number" and v >= 0), "warm: option 'wait' must be true or seconds (>= 0)")
    else
      error(("warm: unknown option '%s'"):format(tostring(k)), 2)
    end
  end
  local def = self.def
  local native = self.language
  if opts.language ~= nil then
    if not def.languages then return fail("invalid_input", self.provider .. " takes no language") end
    local lerr
    native, lerr = language.resolve(def.languages, opts.language, self.provider)
    if native == nil then return fail("invalid_input", lerr) end
  end
  if not def.warm then
    if def.offline then return true end   -- (a local engine without a warm hook: nothing to load)
    return self:_warm_connection(opts.wait)
  end
  local called, res, err = pcall(def.warm, self, { language = native or nil, wait = opts.wait })
  if not called then return nil, self:provider_failed(nil, res) end
  if res then return true end
  err = type(err) == "table" and err or { message = tostring(err) }
  return fail(err.kind or "server", err.message or "warm-up failed")
end

function Client:close()
  if self.own_transport then self.own_transport:close() end
  if self.def.close then self.def.close(self) end
end

return M
