-- Every provider against damaged vendor answers: spec/emulators/mutproxy.py sits between the
-- client and the vendor's emulator and, for about half of the answers, changes a field's type,
-- drops a key, moves a state number out of range, swaps the status for an error, or truncates or
-- garbles the body. Whatever the vendor says, a job must end, with either a result that follows
-- the result model or an `ocr.error` that follows the error model, and no secret in either.
local ocr = require "ocr"
local errors = require "ocr.errors"
local core = require "ocr.core"
local emulator = require "helpers.emulator"
local F = require "helpers.files"
local expect = require "helpers.expect"

-- FUZZ_SEED=n FUZZ_JOBS=n explore further than CI does (each vendor's default seed is one that
-- once found a bug; picwish runs fewer jobs, its emulator takes 0.15 s per task);
-- FUZZ_VERBOSE=1 prints what happened.
local JOBS = tonumber(os.getenv("FUZZ_JOBS"))
local SEED = tonumber(os.getenv("FUZZ_SEED"))
local VERBOSE = os.getenv("FUZZ_VERBOSE")

-- Each vendor: its credentials (the emulators accept the ones their specs use; they are the
-- secrets to look for), how its emulator is set up, the client options and one input.
local VENDORS = {
  { name = "compdf", secrets = { "test-compdf-key" },
    options = function(url) return { api_key = "test-compdf-key", endpoint = url .. "/server/" } end,
    input = function(img) return { file = img } end },
  { name = "picwish", seed = 2, jobs = 30, secrets = { "test-picwish-key" },
    setup = function(emu) emu:config{ qps = 0 } end,
    options = function(url) return { api_key = "test-picwish-key", endpoint = url, rate = false } end,
    input = function(img) return { file = img } end },
  { name = "tencent", seed = 4, secrets = { "testSecretKey" },
    options = function(url)
      return { secret_id = "AKIDtestSecretId", secret_key = "testSecretKey", endpoint = url }
    end,
    input = function(img) return { file = img } end },
  { name = "oldfish", secrets = { "test-oldfish-token" },
    options = function(url) return { token = "test-oldfish-token", endpoint = url } end,
    input = function(img) return { file = img } end },
  { name = "uapi", secrets = { "test-uapi-key" },
    setup = function(emu) emu:config{ visitor_credits = 100000 } end,
    options = function(url) return { api_key = "test-uapi-key", endpoint = url } end,
    input = function(img) return { file = img } end },
}

local function is_number(v) return type(v) == "number" and v == v end

-- A failed check says where: "lines[3].box.w: number expected, got string".
local function check_box(where, box)
  if box == nil then return end
  assert(type(box) == "table", where .. ": table expected")
  for _, k in ipairs{ "x", "y", "w", "h" } do
    assert(is_number(box[k]), ("%s.%s: number expected, got %s"):format(where, k, type(box[k])))
  end
end

local function check_piece(where, piece)
  assert(type(piece) == "table", where .. ": table expected, got " .. type(piece))
  assert(type(piece.text) == "string", where .. ".text: string expected, got " .. type(piece.text))
  if piece.confidence ~= nil then
    assert(is_number(piece.confidence) and piece.confidence >= 0 and piece.confidence <= 1,
           where .. ".confidence: a number in 0..1 expected, got " .. tostring(piece.confidence))
  end
  check_box(where .. ".box", piece.box)
  if piece.polygon ~= nil then
    assert(type(piece.polygon) == "table", where .. ".polygon: table expected")
    for i, p in ipairs(piece.polygon) do
      assert(type(p) == "table" and is_number(p.x) and is_number(p.y), ("%s.polygon[%d]: {x=, y=} expected"):format(where, i))
    end
  end
end

-- The result model of README ("The result model").
local function check_result(res, provider)
  assert.equal(provider, res.provider)
  assert(type(res.text) == "string", "text: string expected, got " .. type(res.text))
  assert(type(res.lines) == "table", "lines: table expected")
  for i, line in ipairs(res.lines) do
    check_piece(("lines[%d]"):format(i), line)
    if line.words ~= nil then
      assert(type(line.words) == "table", ("lines[%d].words: table expected"):format(i))
      for j, w in ipairs(line.words) do check_piece(("lines[%d].words[%d]"):format(i, j), w) end
    end
  end
  assert(type(res.files) == "table", "files: table expected")
  for i, f in ipairs(res.files) do
    assert(type(f) == "table" and (type(f.url) == "string" or type(f.path) == "string"),
           ("files[%d]: {url=} or {path=} expected"):format(i))
  end
  if res.angle ~= nil then assert(is_number(res.angle), "angle: number expected") end
  for _, k in ipairs{ "task_id", "request_id", "language" } do
    local v = res[k]
    assert(v == nil or type(v) == "string" or type(v) == "number", k .. ": a string or number expected, got " .. type(v))
  end
end

local function check_error(err, provider, secrets)
  assert(errors.is_error(err), "an ocr.error expected, got " .. tostring(err))
  assert(errors.KINDS[err.kind] ~= nil, "unknown kind " .. tostring(err.kind))
  assert(type(err.message) == "string" and #err.message > 0, "a message expected")
  assert.equal(provider, err.provider)
  for _, k in ipairs{ "code", "task_id", "request_id" } do
    local v = err[k]
    assert(v == nil or type(v) == "string" or type(v) == "number", k .. ": a string or number expected, got " .. type(v))
  end
  assert(err.status == nil or math.type == nil or math.type(err.status) == "integer", "status: an integer expected")
  for _, secret in ipairs(secrets) do
    expect.no_field_contains({ err }, secret, "a secret in error field ")
    assert(not tostring(err):find(secret, 1, true), "a secret in the error: " .. tostring(err))
  end
end

describe("providers against damaged vendor answers", function()
  local dir, img

  setup(function()
    dir = F.tmpdir()
    img = F.write(dir .. "/page.png", F.image("Fuzzed page\n第二行"))
  end)
  teardown(function() F.rmdir(dir) end)

  for _, vendor in ipairs(VENDORS) do
    it(vendor.name .. ": every job ends in a valid result or a valid error", function()
      local emu = emulator.start(vendor.name)
      local proxy = emulator.start("mutproxy", "--target " .. emu.url)
      local ok, failure = pcall(function()
        if vendor.setup then vendor.setup(emu) end
        proxy:config{ seed = SEED or vendor.seed or 11, rate = 0.5 }
        local opts = vendor.options(proxy.url)
        opts.poll_interval, opts.poll_timeout = 0.01, 1
        opts.retries, opts.backoff = 2, { base = 0.005, cap = 0.02 }
        opts.timeout = 5
        local client = ocr.new(vendor.name, opts)
        local inputs = {}
        local jobs = JOBS or vendor.jobs or 50
        for i = 1, jobs do inputs[i] = vendor.input(img) end
        local t0 = core.monotime()
        local out = client:recognize_all(inputs, { concurrency = 1 })
        assert.is_true(core.monotime() - t0 < 60, "took too long")
        assert.equal(jobs, #out)
        local results, failures = 0, 0
        for i, o in ipairs(out) do
          assert((o.res == nil) ~= (o.err == nil), ("input %d: exactly one of res and err"):format(i))
          if o.res then
            local good, why = pcall(check_result, o.res, vendor.name)
            assert(good, ("input %d: %s"):format(i, tostring(why)))
            results = results + 1
          else
            local good, why = pcall(check_error, o.err, vendor.name, vendor.secrets)
            assert(good, ("input %d: %s (%s)"):format(i, tostring(why), tostring(o.err)))
            failures = failures + 1
          end
        end
        local state = proxy:state()
        if VERBOSE then
          local kinds = {}
          for _, o in ipairs(out) do
            local k = o.err and o.err.kind or "result"
            kinds[k] = (kinds[k] or 0) + 1
          end
          local line = {}
          for k, n in pairs(kinds) do line[#line + 1] = k .. "=" .. n end
          for k, n in pairs(state.kinds) do line[#line + 1] = "damage:" .. k .. "=" .. n end
          table.sort(line)
          print(vendor.name, table.concat(line, " "))
        end
        assert(state.mutated >= 10, "the proxy damaged only " .. state.mutated .. " answers")
        assert(results > 0 and failures > 0, ("%d results, %d errors: the mix says nothing"):format(results, failures))
      end)
      proxy:stop()
      emu:stop()
      if not ok then error(failure, 0) end
    end)
  end
end)
