-- The one `language` option: BCP 47 codes mapped onto every provider's own names, checked before
-- anything is sent, per input and per client; and the input shorthands every provider shares.
local ocr = require "ocr"
local language = require "ocr.language"
local F = require "helpers.files"
local rig = require "helpers.rig"

describe("ocr.language", function()
  local spec = {
    codes = { en = "English", ["zh-Hans"] = "ChinesePRC", ["zh-Hant"] = "ChineseTaiwan", ja = "Japanese",
              pt = "Portuguese", ["pt-BR"] = "PortugueseBrazilian" },
    native = function(n) return n:match("^%u%a*$") ~= nil end, join = ",", max = 3,
  }

  it("maps codes, lists and native names, in order, without repeats", function()
    assert.equal("English", language.resolve(spec, "en"))
    assert.equal("English,ChinesePRC", language.resolve(spec, { "en", "zh-Hans" }))
    assert.equal("English,ChinesePRC", language.resolve(spec, "en, zh-Hans ,en"))
    assert.equal("ChinesePRC,Digits", language.resolve(spec, "zh-Hans,Digits"))
  end)

  it("reads case, underscores, regions and scripts as BCP 47 does", function()
    assert.equal("ChinesePRC", language.resolve(spec, "ZH-hans"))
    assert.equal("ChinesePRC", language.resolve(spec, "zh_CN"))
    assert.equal("ChineseTaiwan", language.resolve(spec, "zh-TW"))
    assert.equal("ChineseTaiwan", language.resolve(spec, "zh-Hant-HK"))
    assert.equal("ChinesePRC", language.resolve(spec, "zh"))
    assert.equal("PortugueseBrazilian", language.resolve(spec, "pt-BR"))
    assert.equal("Portuguese", language.resolve(spec, "pt-PT"))
    assert.equal("English", language.resolve(spec, "en-GB"))
  end)

  it("refuses a code it cannot read, naming the closest known ones", function()
    local v, err = language.resolve(spec, "jp", "picwish")
    assert.is_nil(v)
    assert.truthy(err:find('language "jp" is not one picwish reads (closest: ja', 1, true), err)
    v, err = language.resolve(spec, "english")
    assert.is_nil(v)
    assert.truthy(err:find("closest: English", 1, true), err)
  end)

  it("never maps a named script onto another", function()
    local s = { codes = { ["zh-Hans"] = "chi_sim" }, join = "+" }
    assert.is_nil((language.resolve(s, "zh-Hant")))
  end)

  it("bounds what it accepts", function()
    assert.truthy(select(2, language.resolve(spec, "en,ja,pt,zh-Hans")):find("at most 3", 1, true))
    assert.truthy(select(2, language.resolve(spec, "")):find("empty", 1, true))
    assert.truthy(select(2, language.resolve(spec, 5)):find("string or an array", 1, true))
    assert.truthy(select(2, language.resolve(spec, string.rep("e", 100000))):find("512", 1, true))
    assert.truthy(select(2, language.resolve(spec, { "en", {} })):find("item 2", 1, true))
    local one = { codes = { en = "eng" } }
    assert.truthy(select(2, language.resolve(one, "en,en-US")) == nil)   -- (one language, twice)
    assert.truthy(select(2, language.resolve({ codes = { en = "e", ja = "j" } }, "en,ja"))
                  :find("one language at a time", 1, true))
  end)

  it("accepts any well-formed code for a vendor that detects the language, sending nothing", function()
    local detects = { detects = true }
    assert.equal(false, language.resolve(detects, "fr"))
    assert.equal(false, language.resolve(detects, "und"))
    assert.equal(false, language.resolve(spec, "und"))   -- (no name for it: the vendor's default)
    assert.equal("English", language.resolve(spec, "und,en"))
    assert.is_nil((language.resolve(detects, "not a code")))
  end)

  it("checks a definition's table when a provider is registered", function()
    local function reg(languages)
      return pcall(ocr.register, "lang-test", { recognize = function() end, languages = languages })
    end
    assert.is_true((reg{ codes = { en = "e" }, join = "+" }))
    local ok, err = reg{ codes = { EN = "e" } }
    assert.is_false(ok)
    assert.truthy(tostring(err):find("canonical BCP 47", 1, true))
    ok, err = reg{ codez = {} }
    assert.is_false(ok)
    assert.truthy(tostring(err):find("languages.codez", 1, true))
  end)
end)

describe("the language option on every provider", function()
  local dir, seen
  setup(function()
    dir = F.tmpdir()
    ocr.register("lang-probe", {
      offline = true, sources = { "file", "data" },
      languages = { codes = { en = "eng", ja = "jpn" }, join = "+", default = "eng" },
      recognize = function(ctx, input)
        seen = ctx:language(input)
        return require("ocr.result").new{ text = tostring(seen) }
      end,
    })
  end)
  teardown(function() F.rmdir(dir) end)

  it("takes a client default, an input's own value, and the provider's default", function()
    local c = ocr.new("lang-probe")
    assert.equal("eng", c:recognize{ data = "x" }.text)
    assert.equal("eng+jpn", c:recognize{ data = "x", language = { "en", "ja" } }.text)
    local cj = ocr.new("lang-probe", { language = "ja" })
    assert.equal("jpn", cj:recognize{ data = "x" }.text)
    assert.equal("eng", cj:recognize{ data = "x", language = "en-US" }.text)
  end)

  it("refuses a bad input language before the provider runs, a bad default at ocr.new", function()
    seen = nil
    local res, err = ocr.new("lang-probe"):recognize{ data = "x", language = "xx" }
    assert.is_nil(res)
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("closest:", 1, true))
    assert.is_nil(seen)
    local ok, msg = pcall(ocr.new, "lang-probe", { language = "klingon" })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find('language "klingon"', 1, true))
  end)

  it("is refused by a provider that declares no languages", function()
    ocr.register("no-lang", { offline = true, sources = { "data" },
                              recognize = function() return require("ocr.result").new{ text = "" } end })
    local res, err = ocr.new("no-lang"):recognize{ data = "x", language = "en" }
    assert.is_nil(res)
    assert.truthy(err.message:find("unknown option 'language'", 1, true))
  end)

  it("leaves a provider's own language option to it when it declares no languages", function()
    ocr.register("own-lang", { offline = true, sources = { "data" }, options = { language = "string" },
                               recognize = function(_, input) return require("ocr.result").new{ text = input.language } end })
    local res, err = ocr.new("own-lang"):recognize{ data = "x", language = "Klingon" }
    assert.is_nil(err)
    assert.equal("Klingon", res.text)
  end)

  for _, p in ipairs{
    { "compdf", { api_key = "k" }, "zh-Hant", "CHINESE_TRAD" },
    { "tencent", { secret_id = "i", secret_key = "k", bucket = "b-1250000000", region = "ap-guangzhou" }, "ja", "jap" },
    { "picwish", { api_key = "k" }, { "en", "zh-Hans" }, "English,ChinesePRC" },
  } do
    it(p[1] .. " maps BCP 47 codes onto its own names, and refuses what it cannot read", function()
      local c = ocr.new(p[1], p[2])
      assert.equal(p[4], c:language_for{ language = p[3] })
      local msg = c:check_input{ data = "x", language = "qq" }
      assert.truthy(msg and msg:find("closest:", 1, true), msg)
    end)
  end

  it("uapi and oldfish detect the language themselves: a code is accepted and not sent", function()
    for _, name in ipairs{ "uapi", "oldfish" } do
      local c = ocr.new(name, name == "oldfish" and { token = "t" } or {})
      assert.is_nil(c:check_input{ data = "x", language = "fr" })
      assert.is_nil(c:language_for{ language = "fr" })
    end
  end)
end)

describe("input shorthands", function()
  local dir, img
  setup(function()
    dir = F.tmpdir()
    img = F.write(dir .. "/scan.png", F.image("x"))
    ocr.register("echo-input", {
      offline = true, sources = { "file", "data" },
      recognize = function(ctx, input)
        return require("ocr.result").new{ text = input.file or "data",
                                          lines = { { text = "a", box = { x = 300.0, y = 2.0, w = 1.5, h = 4 },
                                                      polygon = { { x = 1.0, y = 2.0 } }, page = 1.0 } },
                                          pages = 2.0, angle = 90.0 }
      end,
    })
  end)
  teardown(function() F.rmdir(dir) end)

  it("recognize(path) is recognize{file = path}, in every call", function()
    local c = ocr.new("echo-input")
    assert.equal(img, c:recognize(img).text)
    local job = c:submit(img)
    assert.equal(img, (ocr.run() or true) and job:result().text)
    local out = c:recognize_all{ img, { data = "x" } }
    assert.equal(img, out[1].res.text)
    assert.equal(img, out[1].input)
  end)

  it("keeps the caller's own _fields on an input, returned untouched", function()
    local tag = { row = 7 }
    local out = ocr.new("echo-input"):recognize_all{ { file = img, _row = 7, _tag = tag } }
    assert.is_nil(out[1].err)
    assert.equal(7, out[1].input._row)
    assert.equal(tag, out[1].input._tag)
  end)

  it("gives whole coordinates as integers", function()
    local res = ocr.new("echo-input"):recognize(img)
    local line = res.lines[1]
    assert.equal("300", tostring(line.box.x))
    assert.equal("1.5", tostring(line.box.w))
    assert.equal("1", tostring(line.polygon[1].x))
    assert.equal("1", tostring(line.page))
    assert.equal("2", tostring(res.pages))
    assert.equal("90", tostring(res.angle))
  end)
end)
