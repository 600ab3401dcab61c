--- The one result model of lua-ocr, and helpers providers use to fill it.
--
--   res.provider, res.text, res.lines = { {text=, confidence=0..1|nil, box={x=,y=,w=,h=}|nil,
--   polygon={{x=,y=},...}|nil, words={...}|nil, page=|nil}, ... }, res.language, res.angle,
--   res.pages, res.files = { {url=, format=, path=}, ... }, res.request_id, res.task_id, res.raw
local M = {}

local Result = {}
Result.__index = Result
M.Result = Result

function Result:__tostring()
  return self.text or ""
end

--- Builds a result: `text` defaults to the lines joined by newlines, `lines` to the text's lines.
-- The `fields` table itself becomes the result (pass a fresh table, as `result.new{...}` does).
function M.new(fields)
  local r = setmetatable(fields, Result)
  r.lines = r.lines or (r.text and M.lines_from_text(r.text)) or {}
  r.files = r.files or {}
  if r.text == nil then
    local texts = {}
    for i, line in ipairs(r.lines) do texts[i] = line.text end
    r.text = table.concat(texts, "\n")
  end
  return r
end

--- Splits plain text into lines (no geometry), dropping a trailing empty line and CRs.
function M.lines_from_text(text, page)
  local lines, n, pos = {}, 0, 1
  local find, sub, byte = string.find, string.sub, string.byte
  while true do
    local nl = find(text, "\n", pos, true)
    local line = sub(text, pos, (nl or #text + 1) - 1)
    if byte(line, -1) == 13 then line = sub(line, 1, -2) end   -- CR
    n = n + 1
    lines[n] = { text = line, page = page }
    if not nl then break end
    pos = nl + 1
  end
  if lines[n].text == "" then lines[n] = nil end
  return lines
end

--- The axis-aligned box around a polygon of {x=,y=} points.
function M.box_from_polygon(poly)
  if not poly or #poly == 0 then return nil end
  local x0, y0, x1, y1 = math.huge, math.huge, -math.huge, -math.huge
  for _, p in ipairs(poly) do
    x0, y0 = math.min(x0, p.x), math.min(y0, p.y)
    x1, y1 = math.max(x1, p.x), math.max(y1, p.y)
  end
  return { x = x0, y = y0, w = x1 - x0, h = y1 - y0 }
end

--- A confidence on a 0..`scale` scale turned into 0..1 (nil stays nil).
function M.confidence(value, scale)
  local n = tonumber(value)
  if not n then return nil end
  n = n / (scale or 1)
  if n < 0 then n = 0 elseif n > 1 then n = 1 end
  return n
end

return M
