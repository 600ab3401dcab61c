--- Linear-time helpers for strings that come from outside (servers, files, options).
-- A Lua pattern that is not anchored where it can backtrack ("%s+$", "([^/]*)$") retries at
-- every position: quadratic in a run of the characters it repeats, seconds of CPU for a 20 KB
-- header or name and hours for a few MB. These do the same jobs with byte loops.
local M = {}

local byte, find, sub = string.byte, string.find, string.sub

local function set_of(chars)
  local t = {}
  for i = 1, #chars do t[byte(chars, i)] = true end
  return t
end
M.set_of = set_of

M.SPACE = set_of(" \t\n\v\f\r")          -- what %s matches in the C locale
M.SLASHES = set_of("/\\")

--- `s` without the bytes of `set` at its end.
function M.rstrip(s, set)
  local j = #s
  while j > 0 and set[byte(s, j)] do j = j - 1 end
  return sub(s, 1, j)
end

--- `s` without leading and trailing whitespace.
function M.trim(s)
  local i = find(s, "%S")                 -- one class, no repetition: linear
  if not i then return "" end
  local j = #s
  while M.SPACE[byte(s, j)] do j = j - 1 end
  return sub(s, i, j)
end

--- The part of `s` after the last byte of `set` (all of `s` when it has none).
function M.after_last(s, set)
  local j = #s
  while j > 0 and not set[byte(s, j)] do j = j - 1 end
  return sub(s, j + 1)
end

--- `s` without a leading UTF-8 byte order mark (vendors' text files carry one; it is not text).
function M.strip_bom(s)
  if sub(s, 1, 3) == "\239\187\191" then return sub(s, 4) end
  return s
end

--- `v` when it is a non-empty string, else nil (an answer's optional text field).
function M.nonempty(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

--- JSON text without the `//` line comments some vendors' examples and answers carry (outside
-- strings; a string's escapes are kept as they are).
function M.strip_json_comments(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local j = find(s, '["/]', i)            -- the next string or comment candidate
    if not j then break end
    if byte(s, j) == 34 then                 -- '"': copy the string through its closing quote
      local k = j + 1
      while k <= n do
        local c = byte(s, k)
        if c == 92 then k = k + 2 elseif c == 34 then break else k = k + 1 end
      end
      out[#out + 1] = sub(s, i, k)
      i = k + 1
    elseif byte(s, j + 1) == 47 then         -- "//": drop up to the end of the line
      out[#out + 1] = sub(s, i, j - 1)
      i = find(s, "\n", j, true) or n + 1
    else
      out[#out + 1] = sub(s, i, j)
      i = j + 1
    end
  end
  out[#out + 1] = sub(s, i)
  return table.concat(out)
end

--- Whether `s` is a list of page ranges such as "1-3,6": page numbers from 1, ranges low-high,
-- separated by commas, no spaces.
function M.is_page_ranges(s)
  if type(s) ~= "string" then return false end
  for item in (s .. ","):gmatch("([^,]*),") do
    local a, b = item:match("^(%d+)%-(%d+)$")
    a = a or item:match("^(%d+)$")
    if not a then return false end
    a, b = tonumber(a), tonumber(b or a)
    if a < 1 or b < a then return false end
  end
  return true
end

--- "true"/"false" for a boolean option sent as text, nil when it is not set.
function M.bool(v)
  if v == nil then return nil end
  return v and "true" or "false"
end

--- The edit distance (Levenshtein) of two strings (bytes) or arrays: O(#a * #b) time, so for
-- short or bounded values only.
function M.distance(a, b)
  local at, bt = a, b
  if type(a) == "string" then at = { byte(a, 1, -1) } end
  if type(b) == "string" then bt = { byte(b, 1, -1) } end
  local prev = {}
  for j = 0, #bt do prev[j] = j end
  for i = 1, #at do
    local cur = { [0] = i }
    for j = 1, #bt do
      local cost = at[i] == bt[j] and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#bt]
end

return M
