--- Option checking shared by `ocr.new` (programmer mistakes: raise) and `recognize` (bad input:
-- an invalid_input error before anything is sent).
--
-- A spec is a type name ("string", "number", "integer", "boolean", "function", "table",
-- "object" = a table or userdata, "table_or_false", "string_or_table", "table_or_function",
-- "positive" = a number > 0)
-- or an array of
-- allowed values (an enumeration).
local M = {}

local function describe(spec)
  if type(spec) == "table" then
    local vals = {}
    for i, v in ipairs(spec) do vals[i] = ("%q"):format(tostring(v)) end
    return "one of " .. table.concat(vals, ", ")
  end
  if spec == "table_or_false" then return "a table or false" end
  if spec == "string_or_table" then return "a string or a table" end
  if spec == "table_or_function" then return "a table or a function" end
  if spec == "positive" then return "a number > 0" end
  return spec == "integer" and "an integer" or ("a " .. spec)
end
M.describe = describe

--- Checks one value; returns true or nil, message.
function M.check(name, value, spec)
  if type(spec) == "table" then
    for _, allowed in ipairs(spec) do
      if value == allowed then return true end
    end
    return nil, ("option '%s' must be %s, got %q"):format(name, describe(spec), tostring(value))
  end
  local t = type(value)
  local ok
  if spec == "integer" then
    ok = t == "number" and value == math.floor(value) and value > -2^53 and value < 2^53
  elseif spec == "object" then
    ok = t == "table" or t == "userdata"
  elseif spec == "table_or_false" then
    ok = t == "table" or value == false
  elseif spec == "string_or_table" then
    ok = t == "string" or t == "table"
  elseif spec == "table_or_function" then
    ok = t == "table" or t == "function"
  elseif spec == "positive" then
    ok = t == "number" and value > 0
  else
    ok = t == spec
  end
  if ok then return true end
  return nil, ("option '%s' must be %s, got %s"):format(name, describe(spec), t)
end

--- Checks every key of `tbl` against the merged `specs` tables; unknown keys are mistakes too,
-- except, with `private_ok`, names starting with "_" (the caller's own fields of an input).
function M.check_table(tbl, specs, what, private_ok)
  for k, v in pairs(tbl) do
    local spec
    for i = 1, #specs do
      spec = specs[i][k]
      if spec ~= nil then break end
    end
    if spec == nil and private_ok and type(k) == "string" and k:sub(1, 1) == "_" then
      spec = type(v)
    end
    if spec == nil then
      return nil, ("unknown option '%s' for %s"):format(tostring(k), what)
    end
    if type(v) ~= spec then   -- a plain type name that matches needs no further look
      local ok, err = M.check(k, v, spec)
      if not ok then return nil, err end
    end
  end
  return true
end

--- The first key of `tbl` that `known` (a set) lacks, or nil. Names starting with "_" are left
-- alone: a provider keeps fields of its own under them (in its definition, in its requests).
function M.unknown_field(tbl, known)
  for k in pairs(tbl) do
    if known[k] == nil and not (type(k) == "string" and k:sub(1, 1) == "_") then return k end
  end
  return nil
end

return M
