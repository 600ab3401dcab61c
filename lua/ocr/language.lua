--- The one `language` option: BCP 47 codes (`en`, `zh-Hans`, `pt-BR`), lists (`{"en","ja"}` or
-- `"en,ja"`) and `und` (the engine's own choice: its detection, or its default), mapped onto
-- each provider's own names by the table its definition declares:
--
--   languages = {
--     codes  = { en = "English", ["zh-Hans"] = "ChinesePRC", ... },  -- BCP 47 -> native
--     native = function(name) ... end | { "zh", "auto", ... },       -- native names accepted as is
--     join   = "," | "+" | nil,   -- how a list is sent; nil: the vendor takes one language
--     max    = 10,                -- the most languages in one value (with join)
--     detects = true,             -- no parameter: the vendor detects the language itself,
--   }                             -- so a valid code is accepted and not sent
--
-- A code neither table knows is an error naming the closest codes the provider does know.
local strings = require "ocr.strings"
local distance, trim = strings.distance, strings.trim

local M = {}

-- Bounds on foreign input: a language value is short.
local MAX_VALUE = 512
local MAX_ITEMS = 32
local SUGGESTIONS = 3

-- The items of a value: a string split on ",", or an array of strings.
local function items(value)
  local list = {}
  if type(value) == "string" then
    if #value > MAX_VALUE then return nil, ("is over %d bytes"):format(MAX_VALUE) end
    for part in (value .. ","):gmatch("([^,]*),") do list[#list + 1] = trim(part) end
  elseif type(value) == "table" then
    for i, v in ipairs(value) do
      if type(v) ~= "string" or #v > 64 then return nil, ("item %d must be a short string"):format(i) end
      list[#list + 1] = trim(v)
    end
  else
    return nil, "must be a string or an array of strings, got " .. type(value)
  end
  if #list == 0 or #list > MAX_ITEMS then return nil, ("must name 1 to %d languages"):format(MAX_ITEMS) end
  for i, v in ipairs(list) do
    if v == "" then return nil, ("item %d is empty"):format(i) end
  end
  return list
end

-- BCP 47's canonical case ("ZH-hant-tw" -> "zh-Hant-TW"), "_" read as "-"; nil for a value that
-- is not shaped like a tag (language, then optional script and region subtags).
local function canonical(tag)
  if #tag > 35 or not tag:match("^[%a%d_%-]+$") then return nil end
  local out = {}
  for sub in (tag:gsub("_", "-") .. "-"):gmatch("([^%-]*)%-") do
    local n = #out
    if sub == "" then return nil end
    if n == 0 then
      if not sub:match("^%a%a%a?$") then return nil end
      out[1] = sub:lower()
    elseif #sub == 4 and sub:match("^%a+$") then
      out[n + 1] = sub:sub(1, 1):upper() .. sub:sub(2):lower()
    elseif #sub == 2 and sub:match("^%a+$") then
      out[n + 1] = sub:upper()
    else
      out[n + 1] = sub:lower()
    end
  end
  return table.concat(out, "-"), out
end

-- Chinese is written in two scripts, and a region names the one meant.
local ZH_SCRIPT = { CN = "Hans", SG = "Hans", MY = "Hans", TW = "Hant", HK = "Hant", MO = "Hant" }

-- The tags to look up for a code, most specific first: never from a named script to another.
local function candidates(tag, subtags)
  local list = { tag }
  local lang, second, third = subtags[1], subtags[2], subtags[3]
  local script = second and #second == 4 and second or nil
  local region = script and third or (second and #second ~= 4 and second) or nil
  if script and region then list[#list + 1] = lang .. "-" .. script end
  if lang == "zh" and not script and region and ZH_SCRIPT[region] then
    list[#list + 1] = "zh-" .. ZH_SCRIPT[region]
  end
  if not script then list[#list + 1] = lang end
  if lang == "zh" and not script then list[#list + 1] = "zh-Hans" end
  return list
end

local function is_native(spec, name)
  local native = spec.native
  if type(native) == "function" then return native(name) == true end
  if type(native) == "table" then
    for _, v in ipairs(native) do if v == name then return true end end
  end
  return false
end

--- The codes (and the native names) closest to `wanted`, at most three, nearest first.
function M.closest(spec, wanted)
  local pool, seen = {}, {}
  local function add(name)
    if not seen[name] then seen[name] = true; pool[#pool + 1] = name end
  end
  for code, native in pairs(spec.codes or {}) do add(code); add(native) end
  if type(spec.native) == "table" then for _, v in ipairs(spec.native) do add(v) end end
  local w = wanted:sub(1, 64):lower()
  table.sort(pool, function(x, y)
    local dx, dy = distance(w, x:lower()), distance(w, y:lower())
    if dx ~= dy then return dx < dy end
    return x < y
  end)
  local out = {}
  for i = 1, math.min(SUGGESTIONS, #pool) do out[i] = pool[i] end
  return out
end

-- One item: its native name, or nil, message.
local function resolve_one(spec, item, provider)
  local tag, subtags = canonical(item)
  if tag then
    -- `und` (undetermined) with no name of its own: nothing sent, the engine's default reads.
    if tag == "und" and not (spec.codes and spec.codes.und) then return false end
    for _, t in ipairs(candidates(tag, subtags)) do
      local v = spec.codes and spec.codes[t]
      if v ~= nil then return v end
    end
  end
  if is_native(spec, item) then return item end
  if tag and spec.detects then return false end   -- (a hint the vendor does not take)
  local near = M.closest(spec, item)
  return nil, ("language %q is not one %s reads%s"):format(item:sub(1, 64), provider,
    #near > 0 and (" (closest: " .. table.concat(near, ", ") .. ")") or "")
end

--- Resolves a `language` value for a provider's `spec` (its definition's `languages`).
-- Returns the native value to send (a string), false when nothing is to be sent (a vendor that
-- detects the language), or nil, message.
function M.resolve(spec, value, provider)
  provider = provider or "this provider"
  local list, why = items(value)
  if not list then return nil, "option 'language' " .. why end
  local out, seen = {}, {}
  for _, item in ipairs(list) do
    local native, err = resolve_one(spec, item, provider)
    if native == nil then return nil, err end
    if native and not seen[native] then seen[native] = true; out[#out + 1] = native end
  end
  if #out == 0 then return false end
  if #out > 1 and not spec.join then
    return nil, ("%s reads one language at a time, got %d (%s)"):format(provider, #out, table.concat(out, ", "))
  end
  if spec.max and #out > spec.max then
    return nil, ("%s reads at most %d languages at a time, got %d"):format(provider, spec.max, #out)
  end
  return table.concat(out, spec.join or "")
end

--- Checks a definition's `languages` field; raises with a message naming what is wrong.
function M.check_spec(where, spec)
  assert(type(spec) == "table", where .. ": definition.languages must be a table")
  for k in pairs(spec) do
    assert(k == "codes" or k == "native" or k == "join" or k == "max" or k == "detects" or k == "default",
           where .. ": unknown field languages." .. tostring(k))
  end
  assert(spec.codes == nil or type(spec.codes) == "table", where .. ": languages.codes must be a table")
  for code, v in pairs(spec.codes or {}) do
    assert(type(code) == "string" and canonical(code) == code and type(v) == "string",
           where .. ": languages.codes must map canonical BCP 47 codes to names, got " .. tostring(code))
  end
  local nt = type(spec.native)
  assert(nt == "nil" or nt == "function" or nt == "table", where .. ": languages.native must be a function or a list")
  assert(spec.join == nil or type(spec.join) == "string", where .. ": languages.join must be a string")
  assert(spec.max == nil or (type(spec.max) == "number" and spec.max >= 1), where .. ": languages.max must be >= 1")
  assert(spec.default == nil or type(spec.default) == "string", where .. ": languages.default must be a string")
end

return M
