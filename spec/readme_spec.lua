-- The README's Lua examples run here, against the vendors' emulators, so a user who copies one
-- gets code that works: option and input names, methods, and what the example does with the
-- answer. Only the environment is replaced: each client gets its emulator's endpoint and test
-- credentials (and a short poll interval, below any vendor's floor), `file = "…"` names become fake images in a scratch
-- directory, and `print` is captured. (The provider guide has its own spec, and the embedding
-- example needs OpenResty: spec/embedding_spec.lua runs the same seam.)
local ocr = require "ocr"
local core = require "ocr.core"
local emulator = require "helpers.emulator"
local F = require "helpers.files"

-- The ```lua blocks of README.md, in order.
local function lua_blocks()
  local readme = assert(F.read("README.md"))
  local blocks = {}
  for code in readme:gmatch("\n```lua\n(.-)\n```") do blocks[#blocks + 1] = code end
  return blocks
end

-- The one block containing `marker` (plain text).
local function block_with(marker)
  local found
  for _, code in ipairs(lua_blocks()) do
    if code:find(marker, 1, true) then
      assert(not found, "more than one README example contains " .. marker)
      found = code
    end
  end
  return assert(found, "no README example contains " .. marker)
end

-- What each provider's client gets instead of the README's placeholders.
-- (Each provider's emulator has the provider's name.)
local SETUP = {
  picwish = { creds = { api_key = "test-picwish-key" }, config = { qps = 0 } },
  compdf = { creds = { api_key = "test-compdf-key" }, path = "/server/" },
  tencent = { creds = { secret_id = "AKIDtestSecretId", secret_key = "testSecretKey" } },
  oldfish = { creds = { token = "test-oldfish-token" } },
  uapi = { creds = { api_key = "test-uapi-key" } },
}

-- Fake files in the emulators' convention (helpers.files: the recognised text after "TEXT:").
local MAGIC = { png = F.PNG_MAGIC, jpg = "\255\216\255\224\0\16JFIF\0", pdf = "%PDF-1.7\n" }

local unpack = table.unpack or unpack   -- the specs also run on LuaJIT

local function load_in(code, name, env)
  if setfenv then   -- Lua 5.1 / LuaJIT
    local fn = assert(loadstring(code, name))
    return setfenv(fn, env)
  end
  return assert(load(code, name, "t", env))
end

describe("README examples", function()
  local dir, emus = nil, {}

  setup(function() dir = F.tmpdir() end)
  teardown(function()
    for _, emu in pairs(emus) do emu:stop() end
    F.rmdir(dir)
  end)

  local function fresh(provider, emu)
    emu:reset()
    if SETUP[provider].config then emu:config(SETUP[provider].config) end
  end

  -- Each emulator starts on first use and is made fresh before every test.
  local function emu_for(provider)
    assert(SETUP[provider], "no emulator for " .. provider)
    local emu = emus[provider]
    if not emu then
      emu = emulator.start(provider)
      emus[provider] = emu
      fresh(provider, emu)
    end
    return emu
  end

  before_each(function()
    for provider, emu in pairs(emus) do fresh(provider, emu) end
  end)

  -- ocr.new as a README example gets it: the emulator's endpoint and test credentials instead
  -- of the vendor's, and a short poll interval.
  local function client_for(name, opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    local s = SETUP[name]
    if s then
      for k, v in pairs(s.creds) do o[k] = v end
      o.endpoint = emu_for(name).url .. (s.path or "")
      o.poll_interval = 0.05
      o.min_poll_interval = 0   -- (a vendor's floor, compdf's 3 s, is for its real service)
    end
    return ocr.new(name, o)
  end

  local function pack(...) return { n = select("#", ...), ... } end

  -- Runs README code: `text` is what each `file = "…"` recognises as. Returns what it printed,
  -- then the values of `returns` (names of the example's locals, returned from its end).
  local function run(code, text, returns, extra_env)
    code = code:gsub('file = "([%w_%-/]+)%.(%a+)"', function(base, ext)
      if not MAGIC[ext] or base:find("^examples/") then return nil end
      local path = dir .. "/" .. base:gsub("/", "_") .. "." .. ext
      F.write(path, MAGIC[ext] .. "TEXT:" .. text)
      return 'file = "' .. path .. '"'
    end)
    code = code:gsub('"/tmp/out"', function()
      F.mkdir(dir .. "/out")
      return '"' .. dir .. "/out" .. '"'
    end)
    if returns then code = code .. "\nreturn " .. returns end
    local printed = {}
    local proxy = setmetatable({ new = client_for }, { __index = ocr })
    local env = setmetatable({
      ocr = proxy,
      require = function(m) if m == "ocr" then return proxy end return require(m) end,
      print = function(...)
        local parts = {}
        for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
        printed[#printed + 1] = table.concat(parts, "\t")
      end,
      os = setmetatable({ getenv = function() return "placeholder" end }, { __index = os }),
    }, { __index = _G })
    for k, v in pairs(extra_env or {}) do env[k] = v end
    local values = pack(load_in(code, "README example", env)())
    return table.concat(printed, "\n"), unpack(values, 1, values.n)
  end

  it("the first screen's example reads a file through picwish and prints its lines", function()
    local printed, res, err = run(block_with('ocr.new("picwish", { api_key = os.getenv'),
                                  "Hello README\n第二行", "res, err")
    assert.is_nil(err)
    assert.equal("Hello README\n第二行", res.text)
    assert.truthy(printed:find("Hello README\n第二行\nHello README\t", 1, true), printed)
  end)

  it("the jobs example runs a frame loop, cancels, and recognizes a batch", function()
    local frames = 0
    local _, job, res, err, out = run(block_with("client:submit{"), "Batch page", "job, res, err, out",
      { client = client_for("picwish"), draw_frame = function() frames = frames + 1 end })
    assert.is_true(frames > 0)
    assert.is_true(job:done())
    assert.is_nil(err)
    assert.equal("Batch page", res.text)
    assert.equal(2, #out)
    for i = 1, 2 do
      assert.is_nil(out[i].err)
      assert.equal("Batch page", out[i].res.text)
    end
  end)

  it("the cache example answers the second read from a dir store, sending nothing", function()
    local code = block_with('ocr.store.dir("~/.cache/lua-ocr")')
    code = code:gsub('"~/%.cache/lua%-ocr"', '"' .. dir .. '/cache"')
    local printed, res, again, out = run(code, "Cached page", "res, again, out")
    local emu = emus.picwish
    assert.equal("Cached page", res.text)
    assert.is_true(again.cached)
    assert.equal("Cached page\ttrue", printed)
    assert.is_true(out[1].res.cached)
    assert.equal("Cached page", out[2].res.text)
    assert.is_true(out[2].res.cached)   -- (the spec's page2.png has scan.png's bytes: one key)
    assert.equal(1, #emu:requests("/api/tasks/document/ocr", "POST"))
  end)

  it("the Many machines example keeps the rate limit, the budget and the cache in Redis", function()
    local R = require "helpers.redis"
    assert(not R.missing(), R.missing())
    local redis = R.start{ password = "placeholder" }   -- (what os.getenv gives README code here)
    finally(function() redis.stop() end)
    local code = block_with("ocr.store.redis{ host")
    code = code:gsub("port = 6379", "port = " .. redis.port)
    local printed, res, store = run(code, "Fleet page", "res, store")
    assert.equal("Fleet page", printed)
    assert.equal("Fleet page", res.text)
    assert.equal(0, store.outages)
    local keys = redis.conn():call("KEYS", "ocr:*")
    local joined = table.concat(keys, " ")
    assert.truthy(joined:find("ocr:rate:picwish:", 1, true), joined)
    assert.truthy(joined:find("ocr:budget:picwish:", 1, true), joined)
    assert.equal(3, #keys, joined)                       -- (and the cached result)
  end)

  it("compdf: an async PDF task with pages and a language", function()
    local _, res, err = run(block_with('ocr.new("compdf"'), "Contract page", "res, err")
    assert.is_nil(err)
    assert.truthy(res.text:find("Contract page", 1, true))
    local create = emus.compdf:requests("/server/v2/processAsync/documentAI/ocr", "POST")[1]
    assert.equal("1-3", create.form.pageRanges[1].value)
    assert.equal("CHINESE", create.form.ocrRecognitionLang[1].value)
  end)

  it("picwish: a PDF to docx into an output directory", function()
    local _, res, err = run(block_with('format = "docx"'), "Invoice 42", "res, err")
    assert.is_nil(err)
    assert.equal("docx", res.files[1].format)
    assert.truthy(res.files[1].path:find(dir .. "/out/", 1, true))
    assert.equal("PK\3\4", F.read(res.files[1].path):sub(1, 4))
  end)

  it("tencent: an object key in the bucket", function()
    emu_for("tencent"):config{ objects_b64 = { ["inbox/page-1.jpg"] = core.base64_encode(MAGIC.jpg .. "TEXT:COS page") } }
    local _, res, err = run(block_with('ocr.new("tencent"'), "unused", "res, err")
    assert.is_nil(err)
    assert.equal("COS page", res.text)
  end)

  it("oldfish: a table with half-width punctuation, then the quota", function()
    local printed, res, err = run(block_with('ocr.new("oldfish"'), "品名\t数量\n苹果\t3", "res, err")
    assert.is_nil(err)
    assert.truthy(res.text:find("苹果", 1, true))
    assert.truthy(printed:find("苹果", 1, true), printed)
    local ops = {}
    for _, e in ipairs(emus.oldfish:log()) do ops[e.query.op] = e end
    assert.same({ "2", "1" }, { ops.code.query.type, ops.code.query.half })
    assert.truthy(ops.count, "the example asks for the quota")
  end)

  it("budgets: what a call cost, and the client's stats", function()
    local printed, s = run(block_with("client:stats()"), "Priced page", "s")
    assert.equal("1", printed)
    assert.equal(1, s.requests)
    assert.equal(1, s.successes)
    assert.equal(1, s.credits)
    assert.equal("credit", s.unit)
    assert.equal(1, s.budget.spent)
    assert.equal(1, #emus.picwish:requests("/api/tasks/document/ocr", "POST"))
  end)

  it("uapi: markdown and angle classification", function()
    local printed, res, err = run(block_with('ocr.new("uapi"'), "Receipt total 9.90", "res, err")
    assert.is_nil(err)
    assert.truthy(res.markdown:find("Receipt total 9.90", 1, true))
    assert.truthy(printed:find("Receipt total 9.90", 1, true), printed)
    local post = emus.uapi:requests(nil, "POST")[1]
    assert.same({ "true", "true" }, { post.form.return_markdown[1].value, post.form.enable_cls[1].value })
  end)

  it("pipelines: a fallback of a cascade and a race, a race's job, a fallback's batch", function()
    local printed, res, err, job, out = run(block_with("ocr.cascade{"), "Pipeline page", "res, err, job, out")
    assert.is_nil(err)
    assert.equal("Pipeline page", res.text)
    assert.equal("uapi", res.provider)                 -- the cascade's first member read it
    assert.equal("boolean", type(res.accepted))
    assert.equal("cascade(uapi,picwish)", res.attempts[1].provider)
    assert.truthy(printed:find("uapi\t", 1, true), printed)
    assert.truthy(printed:find("cascade(uapi,picwish)\tok", 1, true), printed)
    assert.is_true(job:done())
    assert.equal("Pipeline page", (job:result()).text)
    assert.equal(2, #out)
    for i = 1, 2 do assert.equal("Pipeline page", out[i].res.text) end
  end)

  it("ocr.curl: a session posting a form with a file part", function()
    local emu = emu_for("picwish")
    local code = block_with("curl.session{"):gsub('"https://example.com/upload"', '"' .. emu.url .. '/upload"')
    local _, res, err = run(code, "upload body", "res, err")
    assert.is_nil(err)
    assert.equal("number", type(res.status))
    assert.equal("table", type(res.headers))
  end)

  local have_tesseract = pcall(require, "ocr.tesseract")
  local it_tess = have_tesseract and it or function(name) pending(name .. " (ocr.tesseract not built)") end
  it_tess("tesseract: the sample page", function()
    local _, res = run(block_with('ocr.new("tesseract"'), "", "res")
    assert.truthy(res.text:find("Offline OCR for Lua", 1, true), res.text)
  end)

  it_tess("ocr.tesseract: the pool polled once per frame", function()
    local seen = {}
    local printed, text, pool = run(block_with("tess.pool{"), "", "text, pool", {
      -- the example's frame sleep, counted (a page takes far longer than a frame)
      require = function(m)
        if m == "ocr.core" then
          return setmetatable({ sleep = function(s) seen[#seen + 1] = s core.sleep(s) end }, { __index = core })
        end
        return require(m)
      end })
    assert.truthy(text:find("Offline OCR for Lua", 1, true), text)
    assert.equal(text, printed)
    assert.truthy(#seen >= 3, "frames went by while the page was read: " .. #seen)
    assert.is_false(pool:usable(), "closed at the end")
  end)
end)
