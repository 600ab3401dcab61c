--- The registry of providers: the built-in ones load lazily from `ocr.providers.<name>`, and
-- `ocr.register` adds a user's own.
local M = {}

M.BUILTIN = { "compdf", "picwish", "tencent", "oldfish", "uapi", "tesseract" }

local registered = {}

local FUNCTION_FIELDS = { "recognize", "result", "validate", "init", "close" }
local TABLE_FIELDS = { "credentials", "options", "client_options", "defaults", "methods", "sources" }

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
  assert(def.endpoint == nil or type(def.endpoint) == "string", where .. ": definition.endpoint must be a string")
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
