--- The registry of providers: the built-in ones load lazily from `ocr.providers.<name>`, and
-- `ocr.register` adds a user's own.
local schema = require "ocr.schema"
local language = require "ocr.language"

local M = {}

M.BUILTIN = { "compdf", "picwish", "tencent", "oldfish", "uapi", "tesseract" }

local registered = {}

-- What each field of a definition must be (an ocr.schema spec). Any other field is refused, so
-- that a misspelt one (`source`, `max_filesize`) is not silently ignored; fields whose name
-- starts with "_" are the provider's own.
local FIELDS = {
  recognize = "function", result = "function", validate = "function", init = "function",
  close = "function", warm = "function",
  credentials = "table", options = "table", client_options = "table", defaults = "table",
  methods = "table", sources = "table", languages = "table",
  endpoint = "string", max_file_size = "positive", rate = "table_or_false", rate_key = "string",
  offline = "boolean",
}

--- Checks a provider definition; raises with a message naming the bad field.
function M.check_definition(name, def)
  local where = ("ocr.register(%q)"):format(tostring(name))
  assert(type(name) == "string" and name:match("^[%w_%-]+$"), where .. ": name must be [A-Za-z0-9_-]+")
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
  for _, src in ipairs(def.sources or {}) do
    assert(src == "file" or src == "data" or src == "url" or src == "key",
           where .. ": unknown source " .. tostring(src))
  end
end

function M.register(name, def)
  M.check_definition(name, def)
  registered[name] = def
  return def
end

--- The definition of `name`, loading a built-in provider on first use; nil if unknown.
function M.get(name)
  if registered[name] then return registered[name] end
  for _, b in ipairs(M.BUILTIN) do
    if b == name then
      local ok, def = pcall(require, "ocr.providers." .. name)
      if not ok then error(("provider %q failed to load: %s"):format(name, def), 0) end
      M.check_definition(name, def)
      registered[name] = def
      return def
    end
  end
  return nil
end

--- The names of every provider, built-in and registered, sorted.
function M.names()
  local seen, out = {}, {}
  for _, b in ipairs(M.BUILTIN) do seen[b] = true end
  for n in pairs(registered) do seen[n] = true end
  for n in pairs(seen) do out[#out + 1] = n end
  table.sort(out)
  return out
end

return M
