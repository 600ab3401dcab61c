-- The result model's helpers (lua/ocr/result.lua): what every provider's text turns into, and
-- the error model's guarantees (lua/ocr/errors.lua) for whatever a vendor's answer held.
local result = require "ocr.result"
local errors = require "ocr.errors"

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

  it("splits in C (ocr.core.split_lines): bytes kept as they are, page on every line, a clear refusal", function()
    local core = require "ocr.core"
    assert.equal(core.split_lines, result.lines_from_text)
    assert.same({ "a\0b", "\r", "" }, texts(core.split_lines("a\0b\r\n\r\r\n\n")))
    assert.equal("\r", core.split_lines("\r\r\n")[1].text)   -- one CR dropped, not all
    local many = core.split_lines(("line\n"):rep(10000))
    assert.equal(10000, #many)
    assert.equal("line", many[10000].text)
    local paged = core.split_lines("p\nq\n", "2")
    assert.same({ { text = "p", page = "2" }, { text = "q", page = "2" } }, paged)
    assert.same({ { text = "p" } }, core.split_lines("p", nil))
    for _, bad in ipairs{ 42, {}, false } do
      assert.has_error(function() core.split_lines(bad) end,
                       ("bad argument #1 to 'split_lines' (string expected, got %s)"):format(type(bad)))
    end
  end)

  it("builds text from lines and lines from text", function()
    local r = result.new{ text = "one\ntwo" }
    assert.same({ "one", "two" }, texts(r.lines))
    assert.same({}, r.files)
    assert.equal("one\ntwo", tostring(r))
    r = result.new{ lines = { { text = "x" }, { text = "y" } } }
    assert.equal("x\ny", r.text)
  end)

  -- What a provider maps from a damaged answer (found by spec/provider_fuzz_spec.lua): the
  -- result still follows the model, keeping every text and leaving out broken geometry.
  it("keeps the model whatever a provider mapped: texts are strings, broken geometry is left out", function()
    local nan = 0 / 0
    local r = result.new{ lines = {
      { text = 42, confidence = 1.5, box = { x = 1, y = 2, w = 3 } },                -- h missing
      "not a line",
      { text = { "table" }, confidence = -0.2, polygon = { { x = 1, y = 2 }, { x = 3 } } },
      { text = "ok", confidence = nan, box = { x = 0, y = 0, w = 1 / 0, h = 1 }, page = nan,
        words = { { text = "ok", polygon = { { x = 0, y = 0 }, { x = 2, y = 1 } },
                    box = { x = 0, y = 0, w = 2, h = 1 } }, 7 } },
    }, angle = nan, pages = "2" }
    assert.equal(3, #r.lines)
    assert.same({ "42", "", "ok" }, texts(r.lines))
    assert.equal("42\n\nok", r.text)
    assert.equal(1, r.lines[1].confidence)                  -- clamped into 0..1
    assert.equal(0, r.lines[2].confidence)
    assert.is_nil(r.lines[3].confidence)                    -- NaN: no confidence
    assert.is_nil(r.lines[1].box)
    assert.is_nil(r.lines[2].polygon)
    assert.is_nil(r.lines[3].box)                           -- infinite width
    assert.is_nil(r.lines[3].page)
    assert.equal(1, #r.lines[3].words)                      -- the 7 is no word
    assert.same({ x = 0, y = 0, w = 2, h = 1 }, r.lines[3].words[1].box)
    assert.equal(2, #r.lines[3].words[1].polygon)
    assert.is_nil(r.angle)
    assert.is_nil(r.pages)
    assert.equal("7", result.new{ text = 7 }.text)
    assert.same({}, result.new{ text = "a", files = "x" }.files)
    local ids = result.new{ text = "a", request_id = { "nested" }, task_id = 12, language = { Odd = "en" } }
    assert.is_nil(ids.request_id)
    assert.equal(12, ids.task_id)
    assert.is_nil(ids.language)
  end)

  it("reads a vendor's number: strings and floats, whole values as integers", function()
    assert.equal(3, result.number("3"))
    assert.equal(2.5, result.number(2.5))
    assert.is_nil(result.number({}))
    assert.is_nil(result.number(nil))
    if math.type then assert.equal("integer", math.type(result.number(640.0))) end
  end)

  it("derives a box from a polygon only when every point is a pair of finite numbers", function()
    assert.same({ x = 1, y = 2, w = 4, h = 6 }, result.box_from_polygon{ { x = 1, y = 8 }, { x = 5, y = 2 } })
    assert.is_nil(result.box_from_polygon{ { x = 1, y = 8 }, { x = 5 } })
    assert.is_nil(result.box_from_polygon{ { x = 1, y = 0 / 0 } })
    assert.is_nil(result.box_from_polygon{ "1,2" })
    assert.is_nil(result.box_from_polygon{})
    assert.is_nil(result.box_from_polygon(nil))
  end)

  it("gives a result the confidence of its lines, weighted by their length in characters", function()
    local near = function(a, b) return math.abs(a - b) < 1e-12 end
    -- "ab" at 0.5 and "你好世界" (4 characters, 12 bytes) at 1: (2 * 0.5 + 4 * 1) / 6
    local r = result.new{ lines = { { text = "ab", confidence = 0.5 }, { text = "你好世界", confidence = 1 } } }
    assert.is_true(near(5 / 6, r.confidence), r.confidence)
    -- a line without a confidence does not count; nor does a damaged one (NaN: left out)
    r = result.new{ lines = { { text = "abc", confidence = 0.9 }, { text = "zzzzzz" }, { text = "q", confidence = 0 / 0 } } }
    assert.is_true(near(0.9, r.confidence))
    -- no line has one: the words' (across lines)
    r = result.new{ lines = { { text = "a bb", words = { { text = "a", confidence = 0.3 }, { text = "bb", confidence = 0.6 } } },
                              { text = "c", words = { { text = "c", confidence = 0.9 } } } } }
    assert.is_true(near((0.3 + 1.2 + 0.9) / 4, r.confidence))
    -- none at all, or only text: nil
    assert.is_nil(result.new{ text = "plain\ntext" }.confidence)
    assert.is_nil(result.new{ lines = {} }.confidence)
    -- only empty lines with confidences: their plain mean
    r = result.new{ lines = { { text = "", confidence = 0.2 }, { text = "", confidence = 0.4 } } }
    assert.is_true(near(0.3, r.confidence))
    -- a provider's own confidence wins, held to 0..1 like a line's
    assert.equal(0.42, result.new{ text = "x", confidence = 0.42, lines = { { text = "x", confidence = 1 } } }.confidence)
    assert.equal(1, result.new{ text = "x", confidence = 97 }.confidence)
    assert.is_nil(result.new{ text = "x", confidence = 0 / 0 }.confidence)
  end)

  it("gives every error a message, string or number ids and codes, integral codes without a fraction", function()
    assert.equal("not found", errors.new{ kind = "not_found", message = "" }.message)
    assert.equal("rate limited", errors.new{ kind = "rate_limited", message = { "odd" } }.message)
    assert.equal("404", errors.new{ kind = "not_found", message = 404 }.message)
    local e = errors.new{ provider = "p", kind = "auth", message = "no", status = 401, code = 401.0 }
    assert.equal(401, e.code)
    assert.equal("p: auth: no status=401 code=401", tostring(e))
    assert.equal(2.5, errors.new{ kind = "server", code = 2.5 }.code)
    assert.equal("E42", errors.new{ kind = "server", code = "E42" }.code)
    local odd = errors.new{ kind = "server", code = {}, task_id = { "t" }, request_id = true }
    assert.is_nil(odd.code)
    assert.is_nil(odd.task_id)
    assert.is_nil(odd.request_id)
    assert.equal("ocr: server: server", tostring(odd))
  end)

  it("prints a pipeline's attempts (a list) as the members tried and how each ended", function()
    local e = errors.new{ provider = "b", kind = "server", message = "down",
                          attempts = { { provider = "a", kind = "quota" }, { provider = "b", kind = "server" } } }
    assert.equal("b: server: down attempts=a:quota,b:server", tostring(e))
    assert.equal("b: server: down attempts=3", tostring(errors.new{ provider = "b", kind = "server",
                                                                     message = "down", attempts = 3 }))
  end)
end)
