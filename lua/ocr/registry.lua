--- The registry of providers. A provider is the module `ocr.providers.<name>` (loaded on first
-- use, wherever package.path or a package searcher finds it), or a definition `ocr.register`
-- adds. Nothing here names a vendor: adding one is adding its module, one file.
local core = require "ocr.core"
local schema = require "ocr.schema"
local language = require "ocr.language"
local cost = require "ocr.cost"

local M = {}

--- What a provider's name may be: it becomes a module name and a path component.
M.MAX_NAME = 64
local function valid_name(name)
  return type(name) == "string" and #name > 0 and #name <= M.MAX_NAME and not name:find("[^%w_%-]")
end
M.valid_name = valid_name

local registered = {}   -- name -> definition, from ocr.register or a loaded module

-- What each field of a definition must be (an ocr.schema spec). Any other field is refused, so
-- that a misspelt one (`source`, `max_filesize`) is not silently ignored; fields whose name
-- starts with "_" are the provider's own.
local FIELDS = {
  recognize = "function", result = "function", validate = "function", init = "function",
  close = "function", warm = "function",
  credentials = "table", options = "table", client_options = "table", defaults = "table",
  methods = "table", sources = "table", languages = "table",
  endpoint = "string", max_file_size = "positive", rate = "table_or_false", rate_key = "string",
  offline = "boolean", default = "boolean", version = "function", cache_key = "table",
  cost = "table_or_function",   -- what a billed request costs (ocr.cost); absent: unknown
}

--- Checks a provider definition; raises with a message naming the bad field.
function M.check_definition(name, def)
  local where = ("ocr.register(%q)"):format(tostring(name))
  assert(valid_name(name), where .. ": name must be [A-Za-z0-9_-]+ (at most 64 characters)")
  assert(type(def) == "table", where .. ": definition table expected")
  assert(type(def.recognize) == "function", where .. ": definition.recognize must be a function")
  local unknown = schema.unknown_field(def, FIELDS)
  if unknown ~= nil then
    local names = {}
    for f in pairs(FIELDS) do names[#names + 1] = f end
    table.sort(names)
    error(("%s: unknown definition field '%s' (known: %s; a name starting with '_' is the provider's own)")
          :format(where, tostring(unknown), table.concat(names, ", ")), 0)
  end
  for k, v in pairs(def) do
    local spec = FIELDS[k]
    if spec and not schema.check(k, v, spec) then
      error(("%s: definition.%s must be %s"):format(where, k, schema.describe(spec)), 0)
    end
  end
  for key, spec in pairs(def.credentials or {}) do
    assert(type(key) == "string" and type(spec) == "table",
           where .. ": credentials are name = {required = bool} entries")
  end
  if def.languages then language.check_spec(where, def.languages) end
  if def.cost ~= nil then cost.check(where, def.cost) end
  for _, src in ipairs(def.sources or {}) do
    assert(src == "file" or src == "data" or src == "url" or src == "key",
           where .. ": unknown source " .. tostring(src))
  end
  for _, opt in ipairs(def.cache_key or {}) do   -- (ocr.cache: the options that change a result)
    assert(type(opt) == "string", where .. ": cache_key lists option names (strings)")
  end
end

function M.register(name, def)
  M.check_definition(name, def)
  registered[name] = def
  return def
end

local PREFIX = "ocr.providers."

-- Whether `err`, raised by require(mod), says only that no searcher found `mod` (the words are
-- the same on Lua 5.1, 5.4 and LuaJIT), not that the module failed while loading.
local function not_found(mod, err)
  return type(err) == "string" and err:find("module '" .. mod .. "' not found", 1, true) == 1
end

--- The definition of `name`: a registered one, else the module ocr.providers.<name>, loaded
--- and checked on first use. nil if there is no such provider; raises if its module fails.
function M.get(name)
  if registered[name] then return registered[name] end
  if not valid_name(name) then return nil end
  local mod = PREFIX .. name
  local ok, def = pcall(require, mod)
  if not ok then
    if not_found(mod, def) then return nil end
    error(("provider %q failed to load: %s"):format(name, tostring(def)), 0)
  end
  M.check_definition(name, def)
  registered[name] = def
  return def
end

-- The directories where package.path's templates would look for ocr.providers.<name>, with
-- the rest of the template: "lua/?.lua" -> "lua/ocr/providers/", ".lua".
local function provider_dirs(path)
  local out, seen = {}, {}
  local dir_sep = package.config:sub(1, 1)
  local tpl_sep = package.config:sub(3, 3)
  local mark = package.config:sub(5, 5)
  local sub = PREFIX:gsub("%.", dir_sep == "%" and "%%" or dir_sep)
  local i = 1
  while i <= #path do
    local j = path:find(tpl_sep, i, true) or #path + 1
    local tpl = path:sub(i, j - 1)
    local q = tpl:find(mark, 1, true)
    -- (one mark per template: a template that repeats it names the module twice, skipped)
    if q and not tpl:find(mark, q + 1, true) then
      local dir, rest = tpl:sub(1, q - 1) .. sub, tpl:sub(q + 1)
      local key = dir .. "\0" .. rest
      if not seen[key] then
        seen[key] = true
        out[#out + 1] = { dir = dir, rest = rest }
      end
    end
    i = j + 1
  end
  return out
end

local function is_file(path)
  local st = core.stat(path)
  return st ~= nil and st.type == "file"
end

--- The names of the provider modules found on `path` (default package.path), sorted: each
--- ocr/providers/<name>.lua (or <name>/init.lua, as the path's templates say) whose name is a
--- valid provider name.
function M.scan(path)
  local found, out = {}, {}
  for _, d in ipairs(provider_dirs(path or package.path)) do
    local entries = core.list_dir(d.dir)
    for _, entry in ipairs(entries or {}) do
      local name
      local sep = d.rest:find("[/\\]")
      if sep == 1 then
        -- "?/init.lua": the entry is a directory holding the rest
        if valid_name(entry) and is_file(d.dir .. entry .. d.rest) then name = entry end
      elseif not sep and #entry > #d.rest and entry:sub(-#d.rest) == d.rest then
        name = entry:sub(1, #entry - #d.rest)
      end
      if name and valid_name(name) and not found[name] then
        found[name] = true
        out[#out + 1] = name
      end
    end
  end
  table.sort(out)
  return out
end

--- The names of every provider, sorted: registered ones, the modules ocr.providers.<name>
--- already loaded or preloaded, and those found on package.path.
--- The provider the command uses without -p: the first, by name, whose definition says
-- `default = true` (the local engine); nil when none does.
function M.default_name()
  for _, n in ipairs(M.names()) do
    local ok, def = pcall(M.get, n)
    if ok and def and def.default then return n end
  end
  return nil
end

function M.names()
  local seen, out = {}, {}
  for n in pairs(registered) do seen[n] = true end
  for _, t in ipairs{ package.loaded, package.preload } do
    for mod in pairs(t) do
      if type(mod) == "string" and mod:sub(1, #PREFIX) == PREFIX and valid_name(mod:sub(#PREFIX + 1)) then
        seen[mod:sub(#PREFIX + 1)] = true
      end
    end
  end
  for _, n in ipairs(M.scan()) do seen[n] = true end
  for n in pairs(seen) do out[#out + 1] = n end
  table.sort(out)
  return out
end

return M
