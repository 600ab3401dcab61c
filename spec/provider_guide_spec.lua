-- The README's "Write a provider" guide runs here, verbatim, against a small emulator of its
-- made-up vendor: if the guide or the public helpers it uses drift apart, this fails.
local ocr = require "ocr"
local emulator = require "helpers.emulator"
local F = require "helpers.files"

local GUIDE = "examples/provider_guide.lua"

describe("the provider guide (README: Write a provider)", function()
  local emu

  setup(function()
    emu = emulator.start("acme")
    dofile(GUIDE)
  end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  it("is quoted in the README exactly as it runs here", function()
    local guide = assert(F.read(GUIDE))
    local readme = assert(F.read("README.md"))
    local body = guide:gsub("^%-%-[^\n]*\n%-%-[^\n]*\n", "") -- the file's own two header lines
    assert.truthy(readme:find(body, 1, true), "README.md does not contain " .. GUIDE)
    local lines = select(2, body:gsub("\n", ""))
    assert.is_true(lines <= 60, "the guide is over a page: " .. lines .. " lines")
  end)

  it("is listed among the providers once registered", function()
    local found = false
    for _, name in ipairs(ocr.providers()) do found = found or name == "acme" end
    assert.is_true(found)
  end)

  it("recognizes through the public API, with progress and the task id", function()
    local stages = {}
    local client = ocr.new("acme", { api_key = "acme-key", endpoint = emu.url, poll_interval = 0.01,
                                     on_progress = function(ev) stages[#stages + 1] = ev.stage end })
    local res, err = client:recognize{ data = F.image("Acme says hi\n你好"), lang = "zh" }
    assert.is_nil(err)
    assert.equal("Acme says hi\n你好", res.text)
    assert.equal(2, #res.lines)
    assert.equal(50, res.lines[2].box.y)
    assert.equal(0.9, res.lines[1].confidence)
    assert.truthy(res.task_id)
    assert.equal("acme", res.provider)
    local processing = 0
    for _, s in ipairs(stages) do if s == "processing" then processing = processing + 1 end end
    assert.equal(2, processing)                 -- queued and running, then done
    assert.equal("done", stages[#stages])
    local create = emu:requests("/v1/jobs", "POST")[1]
    assert.equal("Token acme-key", create.headers.authorization)
  end)

  it("maps the vendor's errors and checks options before sending", function()
    local client = ocr.new("acme", { api_key = "acme-key", endpoint = emu.url, poll_interval = 0.01 })
    local _, err = client:recognize{ data = "plain text, not an image" }
    assert.equal("invalid_input", err.kind)
    assert.equal("BAD_IMAGE", err.code)
    emu:config{ credits = 0 }
    _, err = client:recognize{ data = F.image("x") }
    assert.equal("quota", err.kind)
    assert.equal("NO_CREDIT", err.code)
    local before = #emu:log()
    _, err = client:recognize{ data = F.image("x"), lang = "fr" }
    assert.equal("invalid_input", err.kind)
    assert.equal(before, #emu:log())
    _, err = ocr.new("acme", { api_key = "wrong", endpoint = emu.url }):recognize{ data = F.image("x") }
    assert.equal("auth", err.kind)
    assert.is_nil(tostring(err):find("wrong", 1, true))
  end)
end)
