-- The result model's helpers (lua/ocr/result.lua): what every provider's text turns into.
local result = require "ocr.result"

local function texts(lines)
  local out = {}
  for i, l in ipairs(lines) do out[i] = l.text end
  return out
end

describe("ocr.result", function()
  it("splits text into lines: CRs dropped, one trailing empty line dropped, inner ones kept", function()
    local cases = {
      { "", {} }, { "a", { "a" } }, { "a\n", { "a" } }, { "a\nb", { "a", "b" } },
      { "a\r\nb\r\n", { "a", "b" } }, { "a\n\n", { "a", "" } }, { "\n", { "" } },
      { "\r", {} }, { "a\rb", { "a\rb" } }, { "\n\nc", { "", "", "c" } },
    }
    for _, c in ipairs(cases) do
      assert.same(c[2], texts(result.lines_from_text(c[1])), ("%q"):format(c[1]))
    end
    assert.equal(3, result.lines_from_text("x\ny", 3)[2].page)
  end)

  it("builds text from lines and lines from text", function()
    local r = result.new{ text = "one\ntwo" }
    assert.same({ "one", "two" }, texts(r.lines))
    assert.same({}, r.files)
    assert.equal("one\ntwo", tostring(r))
    r = result.new{ lines = { { text = "x" }, { text = "y" } } }
    assert.equal("x\ny", r.text)
  end)
end)
