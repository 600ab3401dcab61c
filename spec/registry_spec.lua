-- The provider registry (lua/ocr/registry.lua): a provider is the module ocr.providers.<name>,
-- found on package.path, so adding a vendor is adding one file; no list of vendors in the core.
local ocr = require "ocr"
local registry = require "ocr.registry"
local F = require "helpers.files"

local DEFINITION = [[
return {
  endpoint = "http://127.0.0.1:9/",
  credentials = { api_key = { required = true } },
  sources = { "data" },
  recognize = function(ctx, input) return require("ocr").result.new{ text = "%s" } end,
}
]]

describe("the provider registry", function()
  local dir, saved_path

  before_each(function()
    dir = F.tmpdir()
    saved_path = package.path
  end)

  after_each(function()
    package.path = saved_path
    for mod in pairs(package.loaded) do
      if mod:find("^ocr%.providers%.spec_") then package.loaded[mod] = nil end
    end
    for mod in pairs(package.preload) do
      if mod:find("^ocr%.providers%.spec_") then package.preload[mod] = nil end
    end
    F.rmdir(dir)
  end)

  local function provider_file(rel, text)
    F.mkdir(dir .. "/ocr")
    F.mkdir(dir .. "/ocr/providers")
    local parent = (dir .. "/" .. rel):match("^(.*)/[^/]*$")
    F.mkdir(parent)
    F.write(dir .. "/" .. rel, text)
  end

  it("lists the provider modules of this checkout, found on package.path", function()
    local names = ocr.providers()
    for _, n in ipairs{ "compdf", "oldfish", "picwish", "tencent", "tesseract", "uapi" } do
      assert.truthy(table.concat(names, ","):find(n, 1, true), n)
    end
    local sorted = { (table.unpack or unpack)(names) }
    table.sort(sorted)
    assert.same(sorted, names)
  end)

  it("takes a new vendor from one file on package.path: listed, loaded, used", function()
    provider_file("ocr/providers/spec_acme.lua", DEFINITION:format("from one file"))
    package.path = dir .. "/?.lua;" .. package.path
    assert.truthy(("," .. table.concat(ocr.providers(), ",") .. ","):find(",spec_acme,", 1, true))
    local client = ocr.new("spec_acme", { api_key = "k" })
    local res = assert(client:recognize{ data = "x" })
    assert.equal("from one file", res.text)
  end)

  it("follows the path's templates: ?/init.lua directories too", function()
    provider_file("ocr/providers/spec_dir/init.lua", DEFINITION:format("from init.lua"))
    provider_file("ocr/providers/spec_plain.lua", DEFINITION:format("plain"))
    assert.same({ "spec_dir" }, registry.scan(dir .. "/?/init.lua"))
    assert.same({ "spec_plain" }, registry.scan(dir .. "/?.lua"))
    assert.same({ "spec_dir", "spec_plain" }, registry.scan(dir .. "/?.lua;" .. dir .. "/?/init.lua;;"))
    package.path = dir .. "/?/init.lua;" .. package.path
    assert.equal("from init.lua", assert(ocr.new("spec_dir", { api_key = "k" }):recognize{ data = "x" }).text)
  end)

  it("lists only names a provider may have, and files the template names", function()
    for _, f in ipairs{ "spec_ok.lua", "spec bad.lua", "spec.dots.lua", "spec_x.txt", ".lua", "spec_y.lua~" } do
      provider_file("ocr/providers/" .. f, DEFINITION:format(f))
    end
    assert.same({ "spec_ok" }, registry.scan(dir .. "/?.lua"))
    assert.same({}, registry.scan(dir .. "/nowhere/?.lua;" .. dir .. "/?/?.lua"))
    assert.same({}, registry.scan(""))
  end)

  it("lists preloaded and registered providers", function()
    package.preload["ocr.providers.spec_pre"] = function()
      return (loadstring or load)(DEFINITION:format("preloaded"))()
    end
    ocr.register("spec_reg", { credentials = {}, sources = { "data" }, endpoint = "http://127.0.0.1:9/",
                               recognize = function() return ocr.result.new{ text = "registered" } end })
    local all = "," .. table.concat(ocr.providers(), ",") .. ","
    assert.truthy(all:find(",spec_pre,", 1, true))
    assert.truthy(all:find(",spec_reg,", 1, true))
    assert.equal("preloaded", assert(ocr.new("spec_pre", { api_key = "k" }):recognize{ data = "x" }).text)
  end)

  it("never requires anything for a name that is not a provider name", function()
    for _, name in ipairs{ "", "../x", "a.b", "a/b", "x y", ("a"):rep(65), "spec\0x" } do
      assert.is_nil(registry.get(name), name)
      local ok, err = pcall(ocr.new, name)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("unknown provider", 1, true), tostring(err))
    end
    assert.is_nil(registry.get("spec_missing"))
  end)

  it("raises when a provider's module fails, rather than calling it unknown", function()
    provider_file("ocr/providers/spec_broken.lua", "error('broken on purpose')")
    provider_file("ocr/providers/spec_needs.lua", "require 'spec_no_such_module' return {}")
    provider_file("ocr/providers/spec_bad_def.lua", "return { recognize = 5 }")
    package.path = dir .. "/?.lua;" .. package.path
    for _, c in ipairs{ { "spec_broken", "broken on purpose" }, { "spec_needs", "spec_no_such_module" },
                        { "spec_bad_def", "recognize must be a function" } } do
      local ok, err = pcall(ocr.new, c[1], {})
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[2], 1, true), tostring(err))
      assert.is_nil(tostring(err):find("unknown provider", 1, true), tostring(err))
    end
  end)
end)
