-- Every provider through a hostile vendor (spec/hostile/server.py in front of its emulator),
-- one attack class at a time. Whatever arrives, a job must end (within its timeouts: a hang
-- or a quadratic pattern is a suite that never finishes), with a result or an ocr.error of a
-- known kind, no credential in the error in any encoding, and nothing written outside
-- `output` or through a symlink planted there.
local ocr = require "ocr"
local emulator, F, shell = require "helpers.emulator", require "helpers.files", require "helpers.shell"
local errors = require "ocr.errors"
local core = require "ocr.core"

local VENDORS = {
  { name = "picwish", secrets = { "test-picwish-key" },
    setup = function(emu) emu:config{ qps = 0 } end,
    options = function(url) return { api_key = "test-picwish-key", endpoint = url, rate = false } end },
  { name = "tencent", secrets = { "testSecretKey" },
    options = function(url) return { secret_id = "AKIDtestSecretId", secret_key = "testSecretKey", endpoint = url } end },
  { name = "compdf", secrets = { "test-compdf-key" },
    options = function(url) return { api_key = "test-compdf-key", endpoint = url .. "/server/" } end },
  { name = "oldfish", secrets = { "test-oldfish-token" },
    options = function(url) return { token = "test-oldfish-token", endpoint = url } end },
  { name = "uapi", secrets = { "test-uapi-key" },
    setup = function(emu) emu:config{ visitor_credits = 100000 } end,
    options = function(url) return { api_key = "test-uapi-key", endpoint = url } end },
}

-- attack, variants (see server.py)
local ATTACKS = { { "long_header", 1 }, { "ws_strings", 1 }, { "numbers", 4 }, { "ids", 5 },
                  { "names", 3 }, { "same_names", 1 }, { "echo_secrets", 1 }, { "endless", 1 },
                  { "stall", 1 } }

-- Each secret as it is and in the encodings a server may quote it in.
local function forms_of(secret)
  local out = { secret, core.base64_encode(secret) }
  out[#out + 1] = (secret:gsub("[^%w%-%._~]", function(c) return ("%%%02x"):format(c:byte()) end))
  out[#out + 1] = (secret:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
  return out
end

local function all_strings(v, out, depth)
  out = out or {}
  depth = depth or 0
  if type(v) == "string" then out[#out + 1] = v
  elseif type(v) == "table" and depth < 8 then
    for k, x in pairs(v) do
      if k ~= "raw" then all_strings(x, out, depth + 1) end
    end
  end
  return out
end

local function listing(dir)
  local p = shell.popen("find " .. dir .. " -mindepth 1 -printf '%y %P\\n' 2>/dev/null")
  local out = {}
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

for _, v in ipairs(VENDORS) do
  describe("hostile vendor: " .. v.name, function()
    local emu, proxy, dir, img

    lazy_setup(function()
      emu = emulator.start(v.name)
      proxy = emulator.start_script("spec/hostile/server.py", "--target " .. emu.url, "hostile")
      dir = F.tmpdir()
      img = F.write(dir .. "/in.png", F.image("Hostile\nworld"))
    end)
    lazy_teardown(function()
      if proxy then proxy:stop() end
      if emu then emu:stop() end
      if dir then F.rmdir(dir) end
    end)

    for _, a in ipairs(ATTACKS) do
      local attack, variants = a[1], a[2]
      it(attack .. ": ends with a result or a clean error, no secret, nothing outside output", function()
        for variant = 0, variants - 1 do
          emu:reset()
          if v.setup then v.setup(emu) end
          proxy:config{ attack = attack, variant = variant }
          local out, decoys = dir .. "/out-" .. attack .. variant, dir .. "/decoys"
          F.mkdir(out)
          F.mkdir(decoys)
          -- dangling symlinks under the names a hostile answer may pick
          for _, name in ipairs{ "same.txt", "escaped.txt", "result.txt" } do
            shell.execute(("ln -sf %s/%s %s/%s"):format(decoys, name, out, name))
          end
          local opts = v.options(proxy.url)
          opts.timeout, opts.connect_timeout, opts.poll_interval, opts.poll_timeout = 2, 2, 0.01, 4
          opts.retries, opts.backoff = (attack == "endless" or attack == "stall") and 0 or 1, { base = 0.01, cap = 0.02 }
          local ok, res, err = pcall(function()
            return ocr.new(v.name, opts):recognize{ file = img, output = out }
          end)
          local what = ("%s %s/%d"):format(v.name, attack, variant)
          assert(ok, what .. " raised: " .. tostring(res))
          if os.getenv("HOSTILE_VERBOSE") then
            io.stderr:write(what, ": ", err and tostring(err):sub(1, 200) or ("res " .. res.text:sub(1, 40)), "\n")
          end
          assert.is_true(proxy:state().attacked > 0, what .. ": the attack never reached the client")
          assert(res ~= nil or err ~= nil, what .. ": neither result nor error")
          if err then
            assert(errors.is_error(err), what .. ": not an ocr.error: " .. tostring(err))
            assert(errors.KINDS[err.kind] ~= nil, what .. ": unknown kind " .. tostring(err.kind))
            assert(type(err.message) == "string", what .. ": no message")
          else
            assert(type(res.text) == "string", what .. ": res.text")
          end
          local strings = all_strings(err or res)
          for _, s in ipairs(all_strings(err or res)) do   -- and what base64 in them says
            for token in s:gmatch("[%w+/]+=*") do
              if #token >= 12 then strings[#strings + 1] = core.base64_decode(token) end
            end
          end
          for _, s in ipairs(strings) do
            for _, secret in ipairs(v.secrets) do
              for _, form in ipairs(forms_of(secret)) do
                assert(not s:find(form, 1, true), what .. ": a secret in " .. s:sub(1, 300))
              end
            end
          end
          assert.same({}, listing(decoys), what .. ": written through a symlink")
          for _, entry in ipairs(listing(out)) do
            local kind, name = entry:match("^(%S+) (.*)$")
            assert(kind == "f" or (kind == "l" and ({ ["same.txt"] = 1, ["escaped.txt"] = 1, ["result.txt"] = 1 })[name]),
                   what .. ": unexpected entry in output: " .. entry)
          end
          for _, entry in ipairs(listing(dir)) do
            local name = entry:match("^%S+ (.*)$")
            assert(name == "in.png" or name:find("^out%-") or name:find("^decoys"),
                   what .. ": written outside output: " .. entry)
          end
        end
      end)
    end
  end)
end
