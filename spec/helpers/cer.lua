-- Character error rate for OCR specs: the Levenshtein distance over Unicode characters between
-- a reference and a hypothesis, divided by the reference length, after layout is normalised.
local M = {}

local function codepoints(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or 2
    local cp = len == 1 and c or c % (2 ^ (7 - len))
    for k = 1, len - 1 do cp = cp * 64 + (s:byte(i + k) or 0x80) % 64 end
    out[#out + 1] = cp
    i = i + len
  end
  return out
end

local function is_cjk(cp)
  return cp and ((cp >= 0x2E80 and cp <= 0x9FFF) or (cp >= 0xF900 and cp <= 0xFAFF)
    or (cp >= 0xFF00 and cp <= 0xFFEF))
end

-- Whitespace runs become one space (line breaks and paragraph gaps are layout, not text); a
-- space next to a CJK character is dropped, since Chinese writes no spaces and a line break
-- between two Han characters is no character of the text.
function M.normalise(s)
  local cps = codepoints((s:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")))
  local out = {}
  for i, cp in ipairs(cps) do
    if not (cp == 32 and (is_cjk(cps[i - 1]) or is_cjk(cps[i + 1]))) then out[#out + 1] = cp end
  end
  return out
end

M.levenshtein = require("ocr.strings").distance

function M.rate(reference, hypothesis)
  local ref, hyp = M.normalise(reference), M.normalise(hypothesis)
  return M.levenshtein(ref, hyp) / #ref
end

return M
