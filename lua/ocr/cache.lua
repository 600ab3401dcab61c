--- ocr.cache(inner, {store=, ttl=}): a client that answers from a store what `inner` (a client,
-- or anything with the client API: a pipeline, another cache) already recognised, and resumes
-- the vendor tasks a killed run left pending instead of paying for them again.
--
-- Key: SHA-256 over the input's bytes (a file streamed from disk; a URL input: the URL string;
-- an object key: the key), the provider, `language` and the options that change the result
-- (the provider definition's `cache_key`; an object without a definition answers
-- `cache_key_of(input)`, else its provider name and language count).
-- Entries (JSON): {"v":1,"state":"done","res":{...}} or {"v":1,"state":"pending","task_id":...}.
-- A hit returns a fresh result with res.cached = true and sends nothing; errors are never kept.
-- A pending entry is written from the input's `on_task` (ctx:take_task_id), before polling
-- starts; a hit on it asks inner:result(task_id, input) (res.resumed = true) and, when the
-- vendor no longer knows the task (not_found), creates it anew.
-- Claims: before creating, a worker takes "<key>:claim" with store:add (one of several
-- processes or jobs wins); the others wait, reading the store, for the entry the winner writes
-- (then they resume or hit it) or for the claim to go (the winner failed: they claim it), so
-- that one input read by many workers at once is created, and billed, once.
local core = require "ocr.core"
local errors = require "ocr.errors"
local result = require "ocr.result"
local client = require "ocr.client"
local runtime = require "ocr.runtime"

local json = require("cjson.safe").new()   -- (its own settings: the caller's cjson is left alone)
json.encode_number_precision(14)           -- (the most this lua-cjson takes)

local M = {}

local Cache = {}
Cache.__index = Cache
M.Cache = Cache

local VERSION = 1
local PENDING_TTL = 86400   -- vendors keep a task's result for about a day
local NOT_KEPT = { raw = true, cached = true, resumed = true }
local CLAIM_TTL = 120       -- the longest a create may take before a waiting worker claims it
local CLAIM_POLL = 0.1      -- how often a waiting worker reads the store

local function is_store(s)
  return type(s) == "table" and type(s.get) == "function" and type(s.set) == "function"
         and type(s.delete) == "function"
end

--- Wraps `inner` (anything with recognize, submit and recognize_all; optionally result and
--- provider) in a cache over `opts.store` (ocr.store.memory{}, ocr.store.dir(path) or your own).
function M.new(inner, opts)
  if type(inner) ~= "table" or type(inner.recognize) ~= "function" then
    error("ocr.cache: a client (or an object with the client API) expected", 2)
  end
  if type(opts) ~= "table" then error("ocr.cache: options {store=, ttl=} expected", 2) end
  for k in pairs(opts) do
    if k ~= "store" and k ~= "ttl" and k ~= "pending_ttl" and k ~= "claim_ttl" then
      error(("ocr.cache: unknown option '%s'"):format(tostring(k)), 2)
    end
  end
  if not is_store(opts.store) then
    error("ocr.cache: option 'store' must be a store (get, set, delete): ocr.store.memory{} or ocr.store.dir(path)", 2)
  end
  for _, k in ipairs{ "ttl", "pending_ttl", "claim_ttl" } do
    local v = opts[k]
    if v ~= nil and not (type(v) == "number" and v > 0) then
      error(("ocr.cache: option '%s' must be seconds > 0"):format(k), 2)
    end
  end
  local pending_ttl = opts.pending_ttl or math.min(opts.ttl or PENDING_TTL, PENDING_TTL)
  return setmetatable({
    inner = inner, store = opts.store, ttl = opts.ttl, pending_ttl = pending_ttl,
    claim_ttl = opts.claim_ttl or CLAIM_TTL,
    provider = inner.provider,
    -- What the hosts read of a client running its jobs (ocr.hosts.*): progress callbacks, an
    -- explicit transport, a local engine, secrets to scrub.
    options = type(inner.options) == "table" and inner.options or {},
    def = { offline = type(inner.def) == "table" and inner.def.offline or nil },
    secrets = type(inner.secrets) == "table" and inner.secrets or {},
    memo = {}, memo_n = 0,
  }, Cache)
end

-- A deterministic text of an option's value (tables by sorted keys).
local function serial(v, depth)
  local t = type(v)
  if t == "string" then return "s" .. #v .. ":" .. v end
  if t == "number" then return "n" .. string.format("%.17g", v) end
  if t == "boolean" then return v and "T" or "F" end
  if t == "table" and (depth or 0) < 8 then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local out = {}
    for i, k in ipairs(keys) do out[i] = serial(k, 9) .. "=" .. serial(v[k], (depth or 0) + 1) end
    return "{" .. table.concat(out, ",") .. "}"
  end
  return "-"
end

-- The digest of what `input` reads, or nil when it cannot be had (a missing file: the inner
-- client's own check then refuses the input).
local function source_digest(input)
  if type(input.file) == "string" then
    local d = core.sha256_file(input.file)
    return d and "bytes:" .. d
  elseif type(input.data) == "string" then return "bytes:" .. core.sha256(input.data)
  elseif type(input.url) == "string" then return "url:" .. core.sha256(input.url)
  elseif type(input.key) == "string" then return "key:" .. core.sha256(input.key)
  end
  return nil
end

--- What besides the bytes makes this input's result: the inner's own `cache_key_of`, else its
--- definition's `cache_key` options (the input's, else the client's) and the native language.
function Cache:options_key(input)
  local inner = self.inner
  if type(inner.cache_key_of) == "function" then return serial(inner:cache_key_of(input)) end
  local def = type(inner.def) == "table" and inner.def or nil
  if not (def and def.recognize) then
    return "language=" .. serial(input.language)
  end
  local parts = {}
  if inner.language_for then parts[1] = "language=" .. serial(inner:language_for(input)) end
  local names = {}
  for i, name in ipairs(def.cache_key or {}) do names[i] = name end
  table.sort(names)
  local client_opts = type(inner.options) == "table" and inner.options or {}
  for _, name in ipairs(names) do
    local v = input[name]
    if v == nil then v = client_opts[name] end
    parts[#parts + 1] = name .. "=" .. serial(v)
  end
  return table.concat(parts, "\0")
end

--- The store key of `input` (hex SHA-256), or nil when its bytes cannot be read.
function Cache:key_of(input)
  if type(input) == "string" then input = { file = input } end
  if type(input) ~= "table" then return nil end
  local digest = source_digest(input)
  if not digest then return nil end
  local material = table.concat({ "lua-ocr-cache/" .. VERSION, tostring(self.provider), digest,
                                  self:options_key(input) }, "\0")
  return core.hex(core.sha256(material))
end

-- The stored form of a result: the model's fields, without `raw`.
local function encode_result(res)
  local keep = {}
  for k, v in pairs(res) do
    if type(k) == "string" and not NOT_KEPT[k] then keep[k] = v end
  end
  return json.encode{ v = VERSION, state = "done", res = keep }
end

-- Decoded entries by key, with the string they came from: a hit whose store answers the same
-- bytes again (the memory store: the very same string) skips decoding. Bounded: emptied past
-- MEMO_MAX entries.
local MEMO_MAX = 512

local function decoded(self, key, s)
  local m = self.memo[key]
  if m and m.s == s then return m.e end
  local e = json.decode(s)
  if type(e) ~= "table" then return nil end
  if self.memo_n >= MEMO_MAX then self.memo, self.memo_n = {}, 0 end
  if not m then self.memo_n = self.memo_n + 1 end
  self.memo[key] = { s = s, e = e }
  return e
end

local function read_entry(self, key)
  local s = self.store:get(key)
  if type(s) ~= "string" then return nil end
  local e = decoded(self, key, s)
  if type(e) ~= "table" or e.v ~= VERSION then return nil end
  if e.state == "done" and type(e.res) == "table" then return e end
  if e.state == "pending" and type(e.task_id) == "string" and e.task_id ~= "" then return e end
  return nil
end

local function keep(self, key, res)
  local s = encode_result(res)
  if s then self.store:set(key, s, self.ttl) end   -- (a result JSON cannot carry is not kept)
end

-- A hit: a fresh result table over the stored fields. What it holds (lines, files) is shared
-- with the other hits of the entry in this process, as decoding it again for every hit would
-- cost more than the hash of the input (README: treat a cached result's tables as read-only).
-- The entry was a result when it was kept, so it follows the model already.
local Result = result.Result
local function from_entry(e)
  local res = {}
  for k, v in pairs(e.res) do res[k] = v end
  if type(res.lines) ~= "table" then res.lines = {} end
  if type(res.files) ~= "table" then res.files = {} end
  if type(res.text) ~= "string" then res.text = "" end
  res.cached = true
  return setmetatable(res, Result)
end

-- The input handed to the inner client: the caller's, with an on_task that writes the pending
-- entry first and then calls the caller's own.
local function with_on_task(self, key, input)
  local copy = {}
  for k, v in pairs(input) do copy[k] = v end
  local theirs = input.on_task
  copy.on_task = function(task_id)
    self.store:set(key, json.encode{ v = VERSION, state = "pending", task_id = task_id,
                                     provider = self.provider }, self.pending_ttl)
    if theirs then theirs(task_id) end
  end
  return copy
end

-- A task paid for earlier: fetched (res.resumed). Returns res | nil, err | false when the
-- vendor no longer knows it (then it is to be created anew).
local function resume(self, key, e, input)
  local res, err = self.inner:result(e.task_id, input)
  if res then
    keep(self, key, res)
    res.resumed = true
    return res
  end
  if type(err) == "table" and err.kind == "not_found" then
    self.store:delete(key)
    return false
  end
  if not (type(err) == "table" and err.retryable) then self.store:delete(key) end
  return nil, err
end

-- Claims the right to create `key`'s task: true, or the entry another worker wrote meanwhile.
-- A store without `add` (or one that fails) cannot arbitrate: the worker goes ahead.
local function claim(self, key)
  local store = self.store
  if type(store.add) ~= "function" then return true end
  local deadline = runtime.now() + self.claim_ttl   -- (a store that never lets a claim expire)
  while runtime.now() < deadline do
    local ok = store:add(key .. ":claim", "claimed", self.claim_ttl)
    if ok ~= false then return true end            -- (true, or nil: the store failed)
    runtime.sleep(CLAIM_POLL)
    local e = read_entry(self, key)
    if e then return false, e end
  end
  return true
end

--- Recognises one input in the caller's thread or job (the hosts call this, as for a client).
function Cache:_recognize_now(input)
  if type(input) == "string" then input = { file = input } end
  local inner = self.inner
  local key = self:key_of(input)
  if not key then return inner:recognize(input) end   -- (it explains what is wrong with input)
  local can_resume = type(inner.result) == "function"
  while true do
    local e = read_entry(self, key)
    if e and e.state == "done" then return from_entry(e) end
    if e and can_resume then
      local res, err = resume(self, key, e, input)
      if res ~= false then return res, err end
    end
    local mine, other = claim(self, key)
    if mine then break end
    if other.state == "done" then return from_entry(other) end
    if not can_resume then break end               -- (nothing to fetch a task with: create)
  end
  local res, err = inner:recognize(with_on_task(self, key, input))
  self.store:delete(key .. ":claim")
  if res then
    keep(self, key, res)
    return res
  end
  -- A task left pending by a retryable failure (a poll timeout) stays to be resumed.
  if not (type(err) == "table" and err.task_id and err.retryable) then self.store:delete(key) end
  return nil, err
end

--- The error for an inner that raised inside a job (the scheduler asks the job's client).
function Cache:provider_failed(ctx, message)
  if type(self.inner.provider_failed) == "function" then return self.inner:provider_failed(ctx, message) end
  return errors.new{ provider = self.provider, kind = "protocol", retryable = false,
                     message = "failed: " .. tostring(message) }
end

local function check_self(self, method)
  if getmetatable(self) ~= Cache then
    error(("cache:%s: call it with a colon, cache:%s(...)"):format(method, method), 3)
  end
end

-- recognize (the stored result, a resumed task's, or the inner client's), submit and
-- recognize_all, as a client's.
client.install_api(Cache, "cache", function(self) return getmetatable(self) == Cache end)

--- The inner client's result(task_id, input), kept in the store when `input` names the source.
function Cache:result(task_id, input)
  check_self(self, "result")
  if type(self.inner.result) ~= "function" then
    return nil, errors.new{ provider = self.provider, kind = "unsupported", message = "no tasks to fetch later" }
  end
  local res, err = self.inner:result(task_id, input)
  local key = res and input and self:key_of(input)
  if key then keep(self, key, res) end
  return res, err
end

--- Its own key material, so that a cache over this cache keys alike.
function Cache:cache_key_of(input)
  return self:options_key(input)
end

function Cache:language_for(input)
  if type(self.inner.language_for) == "function" then return self.inner:language_for(input) end
  return input and input.language
end

function Cache:warm(opts)
  if type(self.inner.warm) == "function" then return self.inner:warm(opts) end
  return true
end

function Cache:close()
  if type(self.inner.close) == "function" then return self.inner:close() end
end

return M
