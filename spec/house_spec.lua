-- The house rules a newcomer relies on: a vendor's name, hosts and option names live in its
-- provider file only (adding a vendor touches one file), and the README opens with the API.
local F = require "helpers.files"
local core = require "ocr.core"

-- The Lua files under dir, recursively (paths), without a shell.
local function lua_files(dir, out)
  out = out or {}
  for _, name in ipairs(assert(core.list_dir(dir))) do
    local path = dir .. "/" .. name
    local st = core.lstat(path)
    if st.type == "directory" then lua_files(path, out)
    elseif name:match("%.lua$") then out[#out + 1] = path end
  end
  return out
end

describe("the house", function()
  local files = lua_files("lua")
  local providers = {}
  for _, name in ipairs(core.list_dir("lua/ocr/providers")) do
    providers[#providers + 1] = name:match("^(.-)%.lua$")
  end
  table.sort(providers)

  it("names each vendor, its hosts and its dialect only in its provider file", function()
    assert.is_true(#providers >= 6)
    for _, p in ipairs(providers) do
      local own = "lua/ocr/providers/" .. p .. ".lua"
      local text = F.read(own)
      -- the vendor's name, the hosts of its URLs, and its multi-word wire names (camelCase or
      -- with a dash or underscore inside quotes: "ocrRecognitionLang", "language-type")
      -- (names and hosts in any case; wire names as written)
      local marks = { { p:lower(), true } }
      for host in text:gmatch("https?://([%w%.%-]+)") do marks[#marks + 1] = { host:lower(), true } end
      for wire in text:gmatch('"(%l+%u%a+)"') do marks[#marks + 1] = { wire } end
      for wire in text:gmatch('%["([%l]+%-[%l%-]+)"%]') do marks[#marks + 1] = { wire } end
      for _, path in ipairs(files) do
        if path ~= own then
          local other = F.read(path)
          local lower = other:lower()
          for _, m in ipairs(marks) do
            local at = (m[2] and lower or other):find(m[1], 1, true)
            assert.is_nil(at, ("%s names %q (from %s)"):format(path, m[1], own))
          end
        end
      end
    end
  end)

  it("opens the README with the two commands, then the API", function()
    local readme = F.read("README.md")
    local first = {}
    for line in (readme .. "\n"):gmatch("([^\n]*)\n") do
      first[#first + 1] = line
      if #first == 150 then break end
    end
    local top = table.concat(first, "\n")
    for _, heading in ipairs{ "## Two commands", "make demo", "make test", "## The `ocr` API",
                              "### `ocr.new(name, opts) → client`", "### `client:recognize(input)",
                              "### The `language` option", "### The result model", "### The error model" } do
      assert.truthy(top:find(heading, 1, true), heading .. " within the README's first 150 lines")
    end
  end)
end)
