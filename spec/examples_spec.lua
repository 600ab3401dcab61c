-- Every example in examples/ runs as a user would run it (a subprocess with credentials and an
-- endpoint in the environment) against its vendor's emulator, so the examples cannot rot.
local core = require "ocr.core"
local emulator = require "helpers.emulator"
local F = require "helpers.files"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = p:read("*a")
  p:close()
  return out:gsub("exit=%d+\n$", ""), tonumber(out:match("exit=(%d+)\n$"))
end

describe("examples/", function()
  local dir, img

  setup(function()
    dir = F.tmpdir()
    img = F.write(dir .. "/scan.png", F.image("Example text\n示例文字"))
  end)
  teardown(function() F.rmdir(dir) end)

  local function with_emulator(name, settings, fn)
    local emu = emulator.start(name)
    if settings then emu:config(settings) end
    local ok, err = pcall(fn, emu)
    emu:stop()
    assert(ok, err)
  end

  it("picwish.lua prints the text", function()
    with_emulator("picwish", { qps = 0 }, function(emu)
      local out, status = run(("OCR_PICWISH_API_KEY=test-picwish-key OCR_PICWISH_ENDPOINT=%s lua5.4 examples/picwish.lua %s")
                              :format(emu.url, img))
      assert.equal(0, status, out)
      assert.truthy(out:find("Example text\n示例文字", 1, true), out)
    end)
  end)

  it("tencent.lua prints lines with confidence and boxes", function()
    with_emulator("tencent", { objects_b64 = { ["in/scan.png"] = core.base64_encode(F.image("COS example")) } }, function(emu)
      local out, status = run(("OCR_TENCENT_SECRET_ID=AKIDtestSecretId OCR_TENCENT_SECRET_KEY=testSecretKey OCR_TENCENT_ENDPOINT=%s lua5.4 examples/tencent.lua key:in/scan.png")
                              :format(emu.url))
      assert.equal(0, status, out)
      assert.truthy(out:match("%d+%%%s+%d+,%d+%s+%d+x%d+%s+COS example"), out)
    end)
  end)

  it("compdf.lua prints the text", function()
    with_emulator("compdf", nil, function(emu)
      local out, status = run(("OCR_COMPDF_API_KEY=test-compdf-key OCR_COMPDF_ENDPOINT=%s/server/ lua5.4 examples/compdf.lua %s")
                              :format(emu.url, img))
      assert.equal(0, status, out)
      assert.truthy(out:find("示例文字", 1, true), out)
    end)
  end)

  it("oldfish.lua prints the text and the quota", function()
    with_emulator("oldfish", nil, function(emu)
      local env = ("OCR_OLDFISH_TOKEN=test-oldfish-token OCR_OLDFISH_ENDPOINT=%s"):format(emu.url)
      local out, status = run(env .. " lua5.4 examples/oldfish.lua " .. img)
      assert.equal(0, status, out)
      assert.truthy(out:find("示例文字", 1, true), out)
      out, status = run(env .. " lua5.4 examples/oldfish.lua --quota")
      assert.equal(0, status, out)
    end)
  end)

  it("uapi.lua prints the text", function()
    with_emulator("uapi", nil, function(emu)
      local out, status = run(("OCR_UAPI_API_KEY=test-uapi-key OCR_UAPI_ENDPOINT=%s lua5.4 examples/uapi.lua %s")
                              :format(emu.url, img))
      assert.equal(0, status, out)
      assert.truthy(out:find("Example text", 1, true), out)
    end)
  end)

  it("fail with a readable error and exit 1 on a wrong key", function()
    with_emulator("picwish", { qps = 0 }, function(emu)
      local out, status = run(("OCR_PICWISH_API_KEY=wrong-key-123 OCR_PICWISH_ENDPOINT=%s lua5.4 examples/picwish.lua %s")
                              :format(emu.url, img))
      assert.equal(1, status)
      assert.truthy(out:find("picwish: auth:", 1, true), out)
      assert.is_nil(out:find("wrong-key-123", 1, true))
    end)
  end)
end)
