-- Packaging cannot drift from the tree: every Lua module under lua/ is in the rockspec, and every
-- C file the Makefile builds is in a rockspec too.
local shell = require "helpers.shell"
local F = require "helpers.files"

local function list(cmd)
  local out = {}
  local p = shell.popen(cmd)
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

describe("packaging", function()
  local rockspecs = (F.read("rockspec/ocr-scm-1.rockspec") or "") .. (F.read("rockspec/ocr-tesseract-scm-1.rockspec") or "")
                    .. (F.read("rockspec/ocr-redis-scm-1.rockspec") or "")
                    .. (F.read("rockspec/ocr-tesseract-pdf-scm-1.rockspec") or "")

  it("lists every Lua module of lua/ in the rockspec", function()
    local files = list("find lua -name '*.lua' | sort")
    assert.is_true(#files >= 15)
    for _, path in ipairs(files) do
      local module = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/", ".")
      local entry = ('["%s"] = "%s"'):format(module, path)
      assert.truthy(rockspecs:find(entry, 1, true), "rockspec lacks " .. entry)
    end
  end)

  it("builds every C source of csrc/ in a rockspec", function()
    for _, path in ipairs(list("ls csrc/*.c")) do
      assert.truthy(rockspecs:find('"' .. path .. '"', 1, true), "rockspec lacks " .. path)
    end
  end)

  it("installs the ocr command", function()
    assert.truthy(rockspecs:find('bin = { ocr = "bin/ocr" }', 1, true))
  end)
end)
