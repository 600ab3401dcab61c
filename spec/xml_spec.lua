-- ocr.core.xml_decode: expat-backed XML -> Lua table decoding of COS / CI response bodies.
local core = require "ocr.core"
local decode = core.xml_decode

local function fixture(name)
  local f = assert(io.open("spec/fixtures/xml/" .. name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Asserts a refusal: nil plus a "line:col: " message, and returns the message.
local function refused(s, opts)
  local r, err = decode(s, opts)
  assert.is_nil(r)
  assert.is_string(err)
  assert.matches("^%d+:%d+: ", err)
  return err
end

local function nest(n, inner)
  return string.rep("<a>", n) .. (inner or "") .. string.rep("</a>", n)
end

local CHINESE = "\228\184\173\230\150\135"   -- "中文" in UTF-8 (U+4E2D U+6587)

describe("xml_decode", function()
  describe("Tencent CI OCR response (the vendor document's example)", function()
    local ARRAYS = { TextDetections = true, Words = true, Polygon = true, WordCoordinate = true }
    local doc = fixture("tencent_ocr.xml")

    it("keeps the root name and the top-level fields as strings", function()
      local r = assert(decode(doc, { arrays = ARRAYS }))
      local names = {}
      for name in pairs(r) do names[#names + 1] = name end
      assert.same({ "Response" }, names)
      local resp = r.Response
      assert.equal("359.99", resp.Angel)            -- sic: the vendor spells it Angel
      assert.equal("string", type(resp.Angel))
      assert.equal("mix", resp.Language)
      assert.equal("0", resp.PdfPageSize)
      assert.equal("NTk0MjdmODlfMjQ4OGY3XzYzYzhfMjc=", resp.RequestId)
    end)

    it("decodes TextDetections, Polygon, Words and WordCoordinate as arrays in order", function()
      local resp = assert(decode(doc, { arrays = ARRAYS })).Response
      local td = resp.TextDetections
      assert.equal(2, #td)
      assert.equal("Hello", td[1].DetectedText)
      assert.equal("Goodbye", td[2].DetectedText)
      assert.equal("99", td[1].Confidence)
      assert.same({ Height = "64", Width = "123", X = "140", Y = "167" }, td[1].ItemPolygon)
      assert.same({ Height = "43", Width = "245", X = "526", Y = "1444" }, td[2].ItemPolygon)
      assert.same({ { X = "140", Y = "167" }, { X = "263", Y = "167" },
                    { X = "263", Y = "231" }, { X = "140", Y = "231" } }, td[1].Polygon)
      assert.equal(4, #td[2].Polygon)
      assert.same({ X = "526", Y = "1487" }, td[2].Polygon[4])
      assert.equal(2, #td[1].Words)
      assert.equal("You", td[1].Words[1].Character)
      assert.equal("Good", td[1].Words[2].Character)
      assert.equal("Again", td[2].Words[1].Character)
      assert.equal("See", td[2].Words[2].Character)
      local wc = td[1].Words[2].WordCoordPoint.WordCoordinate
      assert.same({ { X = "341", Y = "167" }, { X = "263", Y = "167" },
                    { X = "263", Y = "231" }, { X = "341", Y = "230" } }, wc)
      assert.same({ X = "641", Y = "1444" }, td[2].Words[2].WordCoordPoint.WordCoordinate[2])
    end)

    it("drops the layout whitespace between elements", function()
      local resp = assert(decode(doc, { arrays = ARRAYS })).Response
      assert.is_nil(resp._text)
      assert.is_nil(resp.TextDetections[1]._text)
      assert.is_nil(resp.TextDetections[1].Words[1].WordCoordPoint._text)
    end)

    it("without arrays, repeated names still become arrays and single ones stay values", function()
      local resp = assert(decode(doc)).Response
      assert.equal(2, #resp.TextDetections)
      assert.equal(4, #resp.TextDetections[1].Polygon)
      assert.equal("Hello", resp.TextDetections[1].DetectedText)
      -- ItemPolygon occurs once per detection: a plain table, not a list.
      assert.equal("140", resp.TextDetections[1].ItemPolygon.X)
      assert.is_nil(resp.TextDetections[1].ItemPolygon[1])
    end)
  end)

  describe("arrays", function()
    local ONE = "<Response><TextDetections><DetectedText>only</DetectedText></TextDetections>"
             .. "<Angel>0</Angel></Response>"

    it("forces a single TextDetections into a list", function()
      local r = assert(decode(ONE, { arrays = { TextDetections = true } }))
      assert.same({ Response = { TextDetections = { { DetectedText = "only" } }, Angel = "0" } }, r)
    end)

    it("leaves a single child a plain value without the option", function()
      local r = assert(decode(ONE))
      assert.same({ Response = { TextDetections = { DetectedText = "only" }, Angel = "0" } }, r)
    end)

    it("turns the second occurrence into {first, second} and appends the third", function()
      assert.same({ r = { b = "1" } }, decode("<r><b>1</b></r>"))
      assert.same({ r = { b = { "1", "2" } } }, decode("<r><b>1</b><b>2</b></r>"))
      assert.same({ r = { b = { "1", "2", "3" }, c = "x" } },
                  decode("<r><b>1</b><c>x</c><b>2</b><b>3</b></r>"))
      -- Repeated table values too (the array marker must not depend on the value's type).
      assert.same({ r = { b = { { x = "1" }, { x = "2" }, { x = "3" } } } },
                  decode("<r><b><x>1</x></b><b><x>2</x></b><b><x>3</x></b></r>"))
    end)

    it("keeps array state per parent element", function()
      local r = assert(decode("<r><p><b>1</b><b>2</b></p><p><b>3</b></p></r>"))
      assert.same({ { b = { "1", "2" } }, { b = "3" } }, r.r.p)
    end)

    it("reads opts.arrays raw, never running its metamethods", function()
      local arrays = setmetatable({}, { __index = function() error("metamethod ran") end })
      assert.same({ r = { b = "1" } }, decode("<r><b>1</b></r>", { arrays = arrays }))
    end)

    it("applies to the root name and to forced names with several occurrences", function()
      assert.same({ r = { { b = { "1" } } } }, decode("<r><b>1</b></r>", { arrays = { r = true, b = true } }))
      assert.same({ r = { b = { "1", "2", "3" } } },
                  decode("<r><b>1</b><b>2</b><b>3</b></r>", { arrays = { b = true } }))
      -- a false value does not force
      assert.same({ r = { b = "1" } }, decode("<r><b>1</b></r>", { arrays = { b = false } }))
    end)
  end)

  it("decodes a COS error body with an XML declaration", function()
    local body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>NoSuchKey</Code>\n'
      .. "  <Message>The specified key does not exist.</Message>\n"
      .. "  <Resource>examplebucket-1250000000.cos.ap-beijing.myqcloud.com/doc/a.png</Resource>\n"
      .. "  <RequestId>NjQ3ZDQ2ZTFfOTBmYTUwNjRfZjQ2Yl8xMjM0NTY3</RequestId>\n"
      .. "  <TraceId>OGVmYzZiMmQzYjA2OWNhODk0NTRkMTBiOWVmMDAxODc0OWRkZjk0ZDM1NmI1M2E2MTRlY2MzZDhmNmI5MWI1OQ==</TraceId>\n"
      .. "</Error>\n"
    assert.same({ Error = {
      Code = "NoSuchKey",
      Message = "The specified key does not exist.",
      Resource = "examplebucket-1250000000.cos.ap-beijing.myqcloud.com/doc/a.png",
      RequestId = "NjQ3ZDQ2ZTFfOTBmYTUwNjRfZjQ2Yl8xMjM0NTY3",
      TraceId = "OGVmYzZiMmQzYjA2OWNhODk0NTRkMTBiOWVmMDAxODc0OWRkZjk0ZDM1NmI1M2E2MTRlY2MzZDhmNmI5MWI1OQ==",
    } }, decode(body))
  end)

  describe("content", function()
    it("keeps attributes under _attr and text under _text", function()
      assert.same({ a = { _attr = { x = "1", y = "two words" }, _text = "hi" } },
                  decode([[<a x="1" y='two words'>hi</a>]]))
      assert.same({ a = { _attr = { x = "1" } } }, decode([[<a x="1"/>]]))
      assert.same({ r = { b = { _attr = { id = "7" }, c = "v" } } },
                  decode([[<r><b id="7"><c>v</c></b></r>]]))
    end)

    it("decodes entities and character references in text and attributes", function()
      assert.same({ a = '& < > " \' ' .. "\228\184\173" .. "\228\184\173" .. "A" },
                  decode("<a>&amp; &lt; &gt; &quot; &apos; &#20013;&#x4E2D;&#65;</a>"))
      assert.same({ a = { _attr = { t = "<&>" }, _text = "x" } },
                  decode([[<a t="&lt;&amp;&gt;">x</a>]]))
    end)

    it("includes CDATA in the text, unparsed", function()
      assert.same({ a = "x<b>&amp;</b>y" }, decode("<a>x<![CDATA[<b>&amp;</b>]]>y</a>"))
      assert.same({ a = "" }, decode("<a><![CDATA[]]></a>"))
    end)

    it("passes UTF-8 (Chinese) through and converts a declared ISO-8859-1 document", function()
      assert.same({ ["文档"] = { ["名"] = CHINESE } },
                  decode("<文档><名>" .. CHINESE .. "</名></文档>"))
      assert.same({ a = "caf\195\169" },   -- é is U+00E9, UTF-8 C3 A9
                  decode('<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\233</a>'))
    end)

    it("decodes UTF-16 and lets decoded text outgrow the input (ISO-8859-1 at max_size)", function()
      -- "<a>中文</a>" as UTF-16 with a BOM, bytes from python3: '<a>中文</a>'.encode('utf-16')
      local utf16 = "\255\254\60\0\97\0\62\0\45\78\135\101\60\0\47\0\97\0\62\0"
      assert.same({ a = CHINESE }, decode(utf16))
      -- 300 bytes of e-acute become 600 bytes of UTF-8, in a document of under 400 bytes
      local doc = '<?xml version="1.0" encoding="ISO-8859-1"?><a>' .. string.rep("\233", 300) .. "</a>"
      assert.same({ a = string.rep("\195\169", 300) }, decode(doc, { max_size = #doc }))
    end)

    it("decodes empty elements as the empty string", function()
      assert.same({ r = { a = "", b = "", c = { "", "" } } },
                  decode("<r><a/><b></b><c/><c></c></r>"))
      assert.same({ r = "" }, decode("<r/>"))
    end)

    it("keeps text-only content exactly, dropping only whitespace between children", function()
      assert.same({ a = "  padded \n text  " }, decode("<a>  padded \n text  </a>"))
      assert.same({ a = "   " }, decode("<a>   </a>"))
      assert.same({ a = "x\ny" }, decode("<a>x\r\ny</a>"))   -- XML end-of-line normalisation
      assert.same({ a = { b = "1", c = "2" } }, decode("<a>\n\t<b>1</b>\n\t<c>2</c>\n</a>\n"))
      assert.same({ a = { _attr = { k = "v" }, _text = "  " } }, decode([[<a k="v">  </a>]]))
    end)

    it("puts the text of mixed content under _text", function()
      assert.same({ p = { _text = "Hello  world", b = "big" } },
                  decode("<p>Hello <b>big</b> world</p>"))
      assert.same({ p = { _text = "lead", b = { "1", "2" } } },
                  decode("<p>lead<b>1</b>\n  <b>2</b>\n</p>"))
      local r = assert(decode("<p>\n  lead\n  <b>1</b>\n</p>"))
      assert.equal("\n  lead\n  ", r.p._text)
    end)

    it("ignores comments and processing instructions", function()
      assert.same({ a = "xy" }, decode("<?pi data?><a>x<!-- note -->y<?pi2?></a><!-- end -->"))
    end)

    it("keeps prefixed names and xmlns attributes as written", function()
      assert.same({ ["s:a"] = { _attr = { ["xmlns:s"] = "urn:x" }, ["s:b"] = "1" } },
                  decode([[<s:a xmlns:s="urn:x"><s:b>1</s:b></s:a>]]))
    end)

    it("refuses element names that collide with the reserved keys", function()
      assert.matches("reserved element name _attr", refused("<r><_attr>1</_attr></r>"))
      assert.matches("reserved element name _text", refused("<r><_text/></r>"))
    end)
  end)

  describe("malformed input", function()
    -- Expected positions and messages were derived with python3's xml.parsers.expat
    -- (ExpatError.lineno, .offset + 1, ErrorString(code)), not with this module.
    it("reports line:col and expat's message", function()
      assert.equal("1:1: no element found", refused(""))
      assert.equal("1:4: no element found", refused("<a>"))
      assert.equal("1:6: mismatched tag", refused("<a></b>"))
      assert.equal("2:8: mismatched tag", refused("<a>\n  <b></c>\n</a>"))
      assert.equal("1:5: junk after document element", refused("<a/>junk"))
      assert.equal("2:1: junk after document element", refused("<a/>\n<b/>"))
      assert.equal("1:1: syntax error", refused("hello"))
      assert.equal("1:4: undefined entity", refused("<a>&e;</a>"))
      assert.equal("2:10: duplicate attribute", refused("<a>\n<b x='1' x='2'/></a>"))
    end)

    it("refuses an unclosed tag deep in a valid prefix", function()
      refused("<Response><TextDetections><X>1</X>")
      refused(fixture("tencent_ocr.xml"):sub(1, -20))
    end)
  end)

  describe("security", function()
    it("refuses a billion-laughs document at its DOCTYPE, before any expansion", function()
      local lines = { '<?xml version="1.0"?>', "<!DOCTYPE lolz [", ' <!ENTITY lol "lol">' }
      for i = 1, 9 do
        local prev = i == 1 and "lol" or ("lol" .. (i - 1))
        lines[#lines + 1] = (' <!ENTITY lol%d "%s">'):format(i, string.rep("&" .. prev .. ";", 10))
      end
      lines[#lines + 1] = "]>"
      lines[#lines + 1] = "<lolz>&lol9;</lolz>"
      local err = refused(table.concat(lines, "\n"))
      assert.matches("^2:%d+: DOCTYPE is not allowed$", err)
    end)

    it("refuses external entities and external DTDs", function()
      local err = refused('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
      assert.matches("DOCTYPE is not allowed$", err)
      assert.matches("DOCTYPE is not allowed$",
                     refused('<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd"><x/>'))
      assert.matches("DOCTYPE is not allowed$",
                     refused('<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><x/>'))
      -- An entity that is not predefined, without a DOCTYPE, is simply undefined.
      assert.matches("undefined entity$", refused("<x>&passwd;</x>"))
    end)
  end)

  describe("limits", function()
    it("accepts depth 64 and refuses depth 65 by default", function()
      local r = assert(decode(nest(64, "deep")))
      local v, d = r, 0
      while type(v) == "table" do v, d = v.a, d + 1 end
      assert.equal(64, d)
      assert.equal("deep", v)
      assert.matches("^1:%d+: nesting deeper than 64$", refused(nest(65)))
    end)

    it("honours max_depth", function()
      assert.same({ a = { a = { a = "" } } }, decode(nest(3), { max_depth = 3 }))
      -- the fourth "<a>" starts at column 10
      assert.equal("1:10: nesting deeper than 3", refused(nest(4), { max_depth = 3 }))
      assert.same({ a = "" }, decode("<a/>", { max_depth = 1 }))
      refused("<a><b/></a>", { max_depth = 1 })
      -- Open elements do not use Lua stack slots, so deep documents work on every Lua.
      local r = assert(decode(nest(20000, "x"), { max_depth = 20000 }))
      local v, d = r, 0
      while type(v) == "table" do v, d = v.a, d + 1 end
      assert.equal(20000, d)
      assert.equal("x", v)
    end)

    it("honours max_size on the input length", function()
      local doc = "<a>12345</a>"          -- 12 bytes
      assert.same({ a = "12345" }, decode(doc, { max_size = 12 }))
      local r, err = decode(doc, { max_size = 11 })
      assert.is_nil(r)
      assert.equal("document larger than max_size (11 bytes)", err)
    end)

    it("defaults max_size to 16 MiB", function()
      local limit = 16777216
      local body = string.rep("x", limit - 7)
      local ok = assert(decode("<a>" .. body .. "</a>"))
      assert.equal(limit - 7, #ok.a)
      local r, err = decode("<a>" .. body .. "x</a>")
      assert.is_nil(r)
      assert.equal("document larger than max_size (16777216 bytes)", err)
    end)
  end)

  describe("argument checking", function()
    it("raises on wrong argument types", function()
      assert.has_error(function() decode() end)
      assert.has_error(function() decode({}) end)
      assert.has_error(function() decode(nil, {}) end)
      assert.has_error(function() decode("<a/>", 5) end)
      assert.has_error(function() decode("<a/>", "opts") end)
    end)

    it("raises on bad options", function()
      assert.has_error(function() decode("<a/>", { arrays = "TextDetections" }) end)
      assert.has_error(function() decode("<a/>", { max_depth = "64" }) end)
      assert.has_error(function() decode("<a/>", { max_depth = 0 }) end)
      assert.has_error(function() decode("<a/>", { max_depth = 1.5 }) end)
      assert.has_error(function() decode("<a/>", { max_size = -1 }) end)
      assert.has_error(function() decode("<a/>", { max_size = {} }) end)
      assert.has_error(function() decode("<a/>", { max_size = 2 ^ 40 }) end)
    end)

    it("accepts nil opts and an empty opts table", function()
      assert.same({ a = "" }, decode("<a/>", nil))
      assert.same({ a = "" }, decode("<a/>", {}))
    end)
  end)
end)
