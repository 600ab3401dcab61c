--- The one result model of lua-ocr, and helpers providers use to fill it.
--
--   res.provider, res.text, res.lines = { {text=, confidence=0..1|nil, box={x=,y=,w=,h=}|nil,
--   polygon={{x=,y=},...}|nil, words={...}|nil, page=|nil}, ... }, res.language, res.angle,
--   res.pages, res.files = { {url=, format=, path=}, ... }, res.request_id, res.task_id, res.raw,
--   res.confidence = 0..1|nil (the lines' confidences, weighted by their length)
local M = {}

local Result = {}
Result.__index = Result
M.Result = Result

function Result:__tostring()
  return self.text or ""
end

local core = require "ocr.core"
local errors = require "ocr.errors"
local huge = math.huge
local scalar = errors.scalar
local integral = errors.integral   -- (300.0 -> 300: whole coordinates print as integers on 5.3+)

local function finite(v) return type(v) == "number" and v == v and v ~= huge and v ~= -huge end

-- Text as the model promises it: a string (a vendor's number becomes its digits, anything else "").
local function text_of(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
  return ""
end

local function valid_box(b)
  return type(b) == "table" and finite(b.x) and finite(b.y) and finite(b.w) and finite(b.h)
end

local function valid_polygon(p)
  if type(p) ~= "table" or p[1] == nil then return false end
  for i = 1, #p do
    local q = p[i]
    if type(q) ~= "table" or not finite(q.x) or not finite(q.y) then return false end
  end
  return true
end

-- One line or word, fixed in place: geometry or a confidence the vendor sent damaged is left
-- out (nil) rather than passed on half-made; the text stays.
local function normalize_piece(piece)
  if type(piece.text) ~= "string" then piece.text = text_of(piece.text) end
  local c = piece.confidence
  if c ~= nil and not (finite(c) and c >= 0 and c <= 1) then
    piece.confidence = finite(c) and (c < 0 and 0 or 1) or nil
  end
  local box = piece.box
  if box ~= nil then
    if valid_box(box) then
      box.x, box.y, box.w, box.h = integral(box.x), integral(box.y), integral(box.w), integral(box.h)
    else
      piece.box = nil
    end
  end
  local poly = piece.polygon
  if poly ~= nil then
    if valid_polygon(poly) then
      for i = 1, #poly do poly[i].x, poly[i].y = integral(poly[i].x), integral(poly[i].y) end
    else
      piece.polygon = nil
    end
  end
  if piece.page ~= nil then piece.page = finite(piece.page) and integral(piece.page) or nil end
end

-- Keeps the pieces that are tables, in order, each normalized.
local function normalize_list(list)
  local n = 0
  for i = 1, #list do
    local piece = list[i]
    if type(piece) == "table" then
      normalize_piece(piece)
      if piece.words ~= nil then
        if type(piece.words) == "table" then piece.words = normalize_list(piece.words) else piece.words = nil end
      end
      n = n + 1
      list[n] = piece
    end
  end
  for i = #list, n + 1, -1 do list[i] = nil end
  return list
end

--- Builds a result: `text` defaults to the lines joined by newlines, `lines` to the text's lines.
-- The `fields` table itself becomes the result (pass a fresh table, as `result.new{...}` does).
-- Whatever a provider mapped from a vendor's answer, the result follows the model: texts are
-- strings, boxes, polygons and confidences are whole and finite or absent, ids and the language
-- are strings or numbers or absent.
function M.new(fields)
  local r = setmetatable(fields, Result)
  local text, lines = r.text, r.lines
  if text ~= nil and type(text) ~= "string" then text = text_of(text); r.text = text end
  if lines ~= nil then
    lines = type(lines) == "table" and normalize_list(lines) or nil
  end
  r.lines = lines or (text and M.lines_from_text(text)) or {}
  if type(r.files) ~= "table" then r.files = {} end
  if r.text == nil then
    local texts = {}
    for i, line in ipairs(r.lines) do texts[i] = line.text end
    r.text = table.concat(texts, "\n")
  end
  -- (Inline checks: a result is built per request, and these fields are mostly absent.)
  if r.request_id ~= nil then r.request_id = scalar(r.request_id) end
  if r.task_id ~= nil then r.task_id = scalar(r.task_id) end
  if r.language ~= nil then r.language = scalar(r.language) end
  if r.angle ~= nil then r.angle = finite(r.angle) and integral(r.angle) or nil end
  if r.pages ~= nil then r.pages = finite(r.pages) and integral(r.pages) or nil end
  local c = r.confidence
  if c == nil then
    r.confidence = M.mean_confidence(r.lines)
  elseif not (finite(c) and c >= 0 and c <= 1) then
    r.confidence = finite(c) and (c < 0 and 0 or 1) or nil
  end
  return r
end

-- Characters of a UTF-8 text: its bytes that do not continue a character.
local function chars(s)
  local n = #s
  for _ in s:gmatch("[\128-\191]") do n = n - 1 end
  return n
end

-- Over the pieces that have a confidence: the sum of confidence * characters, the characters,
-- how many, and the sum of their confidences.
local function weigh(pieces, sum, weight, count, plain)
  for i = 1, #pieces do
    local p = pieces[i]
    local c = p.confidence
    if c ~= nil then
      local n = chars(p.text)
      sum, weight, count, plain = sum + c * n, weight + n, count + 1, plain + c
    end
  end
  return sum, weight, count, plain
end

--- The confidence of a whole result: the mean of its lines' confidences weighted by each line's
--- length in characters, or of its words' when no line has one; nil when none has one. (When
--- every piece with a confidence is empty text: their plain mean.)
function M.mean_confidence(lines)
  local sum, weight, count, plain = weigh(lines, 0, 0, 0, 0)
  if count == 0 then
    for i = 1, #lines do
      local words = lines[i].words
      if words then sum, weight, count, plain = weigh(words, sum, weight, count, plain) end
    end
  end
  if count == 0 then return nil end
  local mean = weight > 0 and sum / weight or plain / count
  return mean > 1 and 1 or mean   -- (rounding)
end

--- Splits plain text into lines (no geometry), dropping a trailing empty line and CRs; each line
-- gets `page` when given. (ocr.core's C split: this runs once per text-only answer.)
M.lines_from_text = core.split_lines

--- The axis-aligned box around a polygon of {x=,y=} points; nil when there is none or a point
-- is not a pair of finite numbers.
function M.box_from_polygon(poly)
  if not valid_polygon(poly) then return nil end
  local x0, y0, x1, y1 = huge, huge, -huge, -huge
  for _, p in ipairs(poly) do
    x0, y0 = math.min(x0, p.x), math.min(y0, p.y)
    x1, y1 = math.max(x1, p.x), math.max(y1, p.y)
  end
  return { x = x0, y = y0, w = x1 - x0, h = y1 - y0 }
end

--- A number from a vendor's answer (a string or a number; nil otherwise). JSON numbers decode
-- as floats on Lua 5.3+: whole values (pixels, pages, states) become integers.
function M.number(v)
  return errors.integral(tonumber(v))
end

--- A box from the {left=, top=, width=, height=} table many vendors answer with (numbers or
-- numeric strings); nil when it is not a table or a value is missing.
function M.box_of(t)
  if type(t) ~= "table" then return nil end
  local x, y, w, h = M.number(t.left), M.number(t.top), M.number(t.width), M.number(t.height)
  if not (x and y and w and h) then return nil end
  return { x = x, y = y, w = w, h = h }
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
