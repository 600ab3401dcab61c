-- OCR a file (or an http(s) URL) with the OCR assistant's Code.ashx API, or show the quota.
--   OCR_OLDFISH_TOKEN=... [OCR_OLDFISH_ENDPOINT=...] lua5.4 examples/oldfish.lua [--type=text|vertical|table|formula] FILE|URL
--   OCR_OLDFISH_TOKEN=... lua5.4 examples/oldfish.lua --quota
-- Prints the recognised text (table mode: one row per line, cells separated by tabs).
dofile((arg[0]:match("^(.*)/[^/]+$") or ".") .. "/setup.lua")
local ocr = require "ocr"

local source, quota, kind = nil, false, "text"
for _, a in ipairs(arg) do
  if a == "--quota" then quota = true
  elseif a:match("^%-%-type=") then kind = a:match("^%-%-type=(.*)$")
  else source = source or a end
end
if not quota and not source then
  io.stderr:write("usage: examples/oldfish.lua [--type=text|vertical|table|formula] FILE|URL\n"
                  .. "       examples/oldfish.lua --quota\n")
  os.exit(2)
end

local client = ocr.new("oldfish") -- token and endpoint come from OCR_OLDFISH_TOKEN / OCR_OLDFISH_ENDPOINT

if quota then
  local q, err = client:quota()
  if not q then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  print(("used today: %d, remaining: %d"):format(q.today, q.limit))
  os.exit(0)
end

local input = { type = kind }
if source:match("^https?://") then input.url = source else input.file = source end
local res, err = client:recognize(input)
if not res and err.kind == "timeout" and err.task_id then
  io.stderr:write("still processing; asking for id " .. err.task_id .. " once more\n")
  res, err = client:result(err.task_id)
end
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
if res.table then
  local rows = 0
  for _, col in ipairs(res.table) do rows = math.max(rows, type(col) == "table" and #col or 0) end
  for r = 1, rows do
    local cells = {}
    for c, col in ipairs(res.table) do cells[c] = type(col) == "table" and tostring(col[r] or "") or "" end
    print(table.concat(cells, "\t"))
  end
else
  print(res.text)
end
for _, f in ipairs(res.files) do io.stderr:write(("file (%s): %s\n"):format(f.format or "?", f.url)) end
