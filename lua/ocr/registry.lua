--- The registry of providers: the built-in ones load lazily from `ocr.providers.<name>`, and
-- `ocr.register` adds a user's own.
local M = {}

M.BUILTIN = { "compdf", "picwish", "tencent", "oldfish", "uapi", "tesseract" }

local registered = {}

local FUNCTION_FIELDS = { "recognize", "result", "validate", "init", "close" }
local TABLE_FIELDS = { "credentials", "options", "client_options", "defaults", "methods", "sources" }
-- The other fields, with a check of their value. A field not named here is refused, so that a
-- misspelt one (`source`, `max_filesize`) is not silently ignored; fields whose name starts with
-- "_" are the provider's own.
local OTHER_FIELDS = {
  endpoint = function(v) return type(v) == "string" end,
  max_file_size = function(v) return type(v) == "number" and v > 0 end,
  rate = function(v) return type(v) == "table" or v == false end,
  rate_key = function(v) return type(v) == "string" end,
  offline = function(v) return type(v) == "boolean" end,
}
local OTHER_WHAT = { endpoint = "a string", max_file_size = "a number > 0", rate = "a table or false",
                     rate_key = "a string", offline = "a boolean" }

local KNOWN = {}
for _, f in ipairs(FUNCTION_FIELDS) do KNOWN[f] = true end
for _, f in ipairs(TABLE_FIELDS) do KNOWN[f] = true end
for f in pairs(OTHER_FIELDS) do KNOWN[f] = true end

--- Checks a provider definition; raises with a message naming the bad field.
function M.check_definition(name, def)
  local where = ("ocr.register(%q)"):format(tostring(name))
  assert(type(name) == "string" and name:match("^[%w_%-]+$"), where .. ": name must be [A-Za-z0-9_-]+")
  assert(type(def) == "table", where .. ": definition table expected")
  assert(type(def.recognize) == "function", where .. ": definition.recognize must be a function")
  for _, f in ipairs(FUNCTION_FIELDS) do
    assert(def[f] == nil or type(def[f]) == "function", where .. ": definition." .. f .. " must be a function")
  end
  for _, f in ipairs(TABLE_FIELDS) do
    assert(def[f] == nil or type(def[f]) == "table", where .. ": definition." .. f .. " must be a table")
  end
  for k, v in pairs(def) do
    if type(k) ~= "string" or not (KNOWN[k] or k:sub(1, 1) == "_") then
      local names = {}
      for f in pairs(KNOWN) do names[#names + 1] = f end
      table.sort(names)
      error(("%s: unknown definition field '%s' (known: %s; a name starting with '_' is the provider's own)")
            :format(where, tostring(k), table.concat(names, ", ")), 0)
    end
    local check = OTHER_FIELDS[k]
    assert(not check or check(v), where .. ": definition." .. tostring(k) .. " must be " .. tostring(OTHER_WHAT[k]))
  end
  for key, spec in pairs(def.credentials or {}) do
    assert(type(key) == "string" and type(spec) == "table",
           where .. ": credentials are name = {required = bool} entries")
  end
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
