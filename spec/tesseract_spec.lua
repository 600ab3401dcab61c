-- The tesseract provider through the public API: same result and error models as the cloud
-- providers, recognition off the caller's thread, several images in parallel.
local ocr = require "ocr"
local core = require "ocr.core"
local F = require "helpers.files"
local cer = require "helpers.cer"

local have_module = pcall(require, "ocr.tesseract")
local describe_if = have_module and describe or function(name) pending(name .. " (ocr.tesseract not built)") end

describe_if("tesseract provider", function()
  local sample_text = assert(F.read("examples/sample.txt"))

  it("reads the sample page within 2% character error rate, with geometry", function()
    local client = ocr.new("tesseract", { threads = 1 })
    local res, err = client:recognize{ file = "examples/sample.png" }
    assert.is_nil(err)
    assert.equal("tesseract", res.provider)
    local rate = cer.rate(res.text, sample_text)
    assert.is_true(rate <= 0.02, ("CER %.4f"):format(rate))
    assert.is_true(#res.lines >= 8)
    for _, line in ipairs(res.lines) do
      assert.is_true(line.confidence >= 0 and line.confidence <= 1)
      assert.is_true(line.box.w > 0 and line.box.h > 0)
      assert.is_true(#line.words >= 1)
      assert.equal(1, line.page)
    end
  end)

  it("reads in-memory data like a file", function()
    local client = ocr.new("tesseract")
    local a = assert(client:recognize{ file = "examples/sample.png" })
    local b = assert(client:recognize{ data = F.read("examples/sample.png") })
    assert.equal(a.text, b.text)
  end)

  it("reads every page of a multi-page TIFF into one result", function()
    local client = ocr.new("tesseract", { threads = 1 })
    local res = assert(client:recognize{ file = "spec/fixtures/tiff/pages.tif" })
    assert.equal(2, res.pages)
    assert.same({ { width = 2250, height = 372 }, { width = 2250, height = 444 } }, res.raw.pages)
    assert.same({ 2250, 372 }, { res.raw.width, res.raw.height }, "raw width and height: the first page's")
    local first, second = res.text:match("^(.*)\f(.*)$")
    assert.truthy(first, "pages joined by a form feed")
    assert.is_true(cer.rate(first, F.read("spec/fixtures/tiff/page1.txt")) <= 0.02)
    assert.is_true(cer.rate(second, F.read("spec/fixtures/tiff/page2.txt")) <= 0.02)
    assert.equal(1, res.lines[1].page)
    assert.equal(2, res.lines[#res.lines].page)
    local _, err = ocr.new("tesseract", { max_pages = 1 }):recognize{ file = "spec/fixtures/tiff/pages.tif" }
    assert.equal("too_large", err.kind)
    assert.truthy(err.message:find("max_pages", 1, true))
  end)

  it("reads an image at a URL: the client fetches it for the engine", function()
    local http = require("helpers.emulator").start("httptest")
    finally(function() http:stop() end)
    local res = assert(ocr.new("tesseract", { threads = 1 }):recognize{ url = http.url .. "/files/examples/sample.png" })
    assert.is_true(cer.rate(res.text, sample_text) <= 0.02)
    assert.equal(1, #http:requests("/files/examples/sample.png", "GET"))
  end)

  it("reports the angle of a page scanned sideways with psm = 1", function()
    local res = assert(ocr.new("tesseract", { psm = 1, threads = 1 }):recognize{ file = "spec/fixtures/rotated/page1-ccw90.png" })
    assert.equal(270, res.angle)
    assert.is_true(cer.rate(res.text, F.read("spec/fixtures/tiff/page1.txt")) <= 0.02)
  end)

  -- OpenResty: init_by_lua makes a client and warms it on a page; nginx forks its workers, each
  -- of which recognises with that client. (Needs LuaJIT's FFI to fork.)
  local fork = require "helpers.fork"
  local it_fork = fork.available and it or function(name) pending(name .. " (fork needs LuaJIT's FFI)") end
  it_fork("recognises in a forked child with a client warmed before the fork", function()
    local client = ocr.new("tesseract", { threads = 1 })
    local before = assert(client:recognize{ file = "examples/sample.png" })
    local ok, why = fork.run(function()
      local res, err = client:recognize{ file = "examples/sample.png" }
      assert(res, tostring(err))
      assert(res.text == before.text, "the same text in the child")
    end, 60)
    assert.is_true(ok, why)
    assert.same(before.text, assert(client:recognize{ file = "examples/sample.png" }).text)
  end)

  it("maps an unreadable image to invalid_input, and a damaged PDF too (unsupported without the PDF module)", function()
    local client = ocr.new("tesseract")
    local _, err = client:recognize{ data = "definitely not an image" }
    assert.equal("invalid_input", err.kind)
    _, err = client:recognize{ data = "%PDF-1.4\n..." }
    if pcall(require, "ocr.tesseract_pdf") then
      assert.equal("invalid_input", err.kind)
      assert.truthy(err.message:find("damaged", 1, true), err.message)
    else
      assert.equal("unsupported", err.kind)
      assert.truthy(err.message:find("libpoppler-glib-dev", 1, true), err.message)
    end
  end)

  it("names the package to install for missing language data", function()
    local _, err = ocr.new("tesseract", { language = "xyz_qq" }):recognize{ file = "examples/sample.png" }
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("tesseract-ocr-xyz-qq", 1, true), err.message)
  end)

  describe("language", function()
    local chi_text = assert(F.read("examples/sample-chi.txt"))
    local has_chi = false
    for _, l in ipairs(require("ocr.tesseract").languages() or {}) do has_chi = has_chi or l == "chi_sim" end

    it("is chosen per input: BCP 47 codes, lists and tesseract's own names", function()
      if not has_chi then return pending("chi_sim is not installed (tesseract-ocr-chi-sim)") end
      local client = ocr.new("tesseract", { threads = 1 })
      local eng = assert(client:recognize{ file = "examples/sample.png" })
      assert.equal("eng", eng.language, "the default")
      for _, case in ipairs{ { "zh-Hans", "chi_sim" }, { "zh-CN", "chi_sim" }, { "chi_sim", "chi_sim" },
                             { { "en", "zh-Hans" }, "eng+chi_sim" }, { "en,zh-Hans", "eng+chi_sim" },
                             { "eng+chi_sim", "eng+chi_sim" } } do
        local res = assert(client:recognize{ file = "examples/sample-chi.png", language = case[1] })
        assert.equal(case[2], res.language)
        assert.is_true(cer.rate(res.text, chi_text) <= 0.02, res.language)
      end
      local zh = assert(ocr.new("tesseract", { threads = 1, language = "zh-Hans" }):recognize{ file = "examples/sample-chi.png" })
      assert.equal("chi_sim", zh.language, "the client's default")
    end)

    it("refuses a code tesseract does not read as invalid_input, naming the closest codes", function()
      local client = ocr.new("tesseract", { threads = 1 })
      local _, err = client:recognize{ file = "examples/sample.png", language = "jp" }
      assert.equal("invalid_input", err.kind)
      assert.matches('language "jp" is not one tesseract reads (closest: ', err.message, 1, true)
      assert.truthy(err.message:find("ja", 1, true), err.message)
      _, err = client:recognize{ file = "examples/sample.png", language = "zh-Hanz" }
      assert.equal("invalid_input", err.kind)
      assert.truthy(err.message:find("zh-Hans", 1, true), err.message)
      assert.has_error(function() ocr.new("tesseract", { language = "jp" }) end)
      assert.has_error(function() ocr.new("tesseract", { languages = "eng" }) end, nil, "the old option is gone")
    end)
  end)

  describe("client:warm()", function()
    local def = require "ocr.providers.tesseract"
    -- A pool of its own (pools are shared by clients with the same engine settings).
    local made = 900
    local function fresh(opts)
      made = made + 1
      opts.threads, opts.max_pages = opts.threads or 2, made
      local client = ocr.new("tesseract", opts)
      local pool = assert(def._pool(client))
      assert.equal(0, pool:stats().loads)
      return client, pool
    end

    it("loads the client's language on every worker, never on the caller's thread", function()
      local client, pool = fresh{ language = "en" }
      assert.is_true(client:warm(), "returns at once")
      assert.is_true(client:warm{ wait = true })
      local st = pool:stats()
      assert.same({ 2, 2, 0 }, { st.engines, st.loads, st.caller_loads })
      -- the first step of a game's loop finds the model loaded
      local job = client:submit{ file = "examples/sample.png" }
      while not job:done() do
        ocr.step(0)
        core.sleep(0.005)
      end
      assert.is_true(cer.rate(assert(job:result()).text, sample_text) <= 0.02)
      assert.equal(2, pool:stats().loads, "no model loaded for the job")
      assert.is_true(client:warm{ wait = 600 }, "already loaded")
    end)

    it("loads opts.language, checked as an input's", function()
      local client, pool = fresh{ threads = 1 }
      local ok, err = client:warm{ language = "jp" }
      assert.is_nil(ok)
      assert.equal("invalid_input", err.kind)
      assert.equal("tesseract", err.provider)
      assert.truthy(err.message:find("closest", 1, true), err.message)
      ok, err = client:warm{ language = "xyz_qq", wait = true }
      assert.is_nil(ok)
      assert.equal("invalid_input", err.kind)
      assert.truthy(err.message:find("tesseract-ocr-xyz-qq", 1, true), err.message)
      assert.is_true(client:warm{ language = "en", wait = true })
      assert.equal(1, pool:stats().engines)
      assert.has_error(function() client:warm{ wiat = true } end, "warm: unknown option 'wiat'")
      assert.has_error(function() client:warm{ wait = -1 } end)
    end)

    it("reports a model that cannot load when waiting, as invalid_input", function()
      local client = fresh{ oem = 0, threads = 1 }
      local ok, err = client:warm{ wait = true }
      if ok then return end   -- (a model with the legacy engine: it loads)
      assert.equal("invalid_input", err.kind)
      assert.truthy(err.message:find("oem 0", 1, true), err.message)
    end)

    it("is true at once for a local provider with nothing to load", function()
      ocr.register("nothing-to-load", { offline = true, sources = { "data" },
                                        recognize = function() return nil end })
      assert.is_true(ocr.new("nothing-to-load"):warm())
      assert.equal(0, ocr.in_flight())
    end)
  end)

  it("refuses engine settings out of range at ocr.new", function()
    assert.has_error(function() ocr.new("tesseract", { threads = 0 }) end)
    assert.has_error(function() ocr.new("tesseract", { psm = 14 }) end)
    assert.has_error(function() ocr.new("tesseract", { max_engines = 0 }) end)
    assert.has_error(function() ocr.new("tesseract", { endpoint = "http://x" }) end)
  end)

  it("never blocks the caller: submit and step(0) return while the image is recognised", function()
    local client = ocr.new("tesseract", { threads = 1 })
    local job = client:submit{ file = "examples/sample.png" }
    local t0 = core.monotime()
    local in_flight = ocr.step(0)
    local step_time = core.monotime() - t0
    assert.equal(1, in_flight)
    assert.is_false(job:done())
    local steps = 1
    while not job:done() do
      ocr.step(0)
      steps = steps + 1
      core.sleep(0.005)
    end
    -- the caller ran many frames while the page was read (a page takes far longer than a step)
    assert.is_true(steps > 5, "steps: " .. steps)
    assert.is_true(step_time < 0.1)
    assert.truthy(job:result())
  end)

  it("recognises several images in parallel with the same results as one at a time", function()
    local one = assert(ocr.new("tesseract", { threads = 1 }):recognize{ file = "examples/sample.png" })
    local client = ocr.new("tesseract", { threads = 2 })
    local inputs = {}
    for i = 1, 4 do inputs[i] = { file = "examples/sample.png" } end
    local out = client:recognize_all(inputs, { concurrency = 4 })
    for i = 1, 4 do
      assert.is_nil(out[i].err)
      assert.equal(one.text, out[i].res.text)
    end
  end)

  describe("progress", function()
    -- The events one input got, and what they must be: queued at 0 first, then processing
    -- with percentages and pages read that never go back, then done at 100.
    local function check(events, pages)
      assert.same({ "queued", 0 }, { events[1].stage, events[1].progress })
      assert.same({ "done", 100 }, { events[#events].stage, events[#events].progress })
      local between = 0
      for i = 2, #events - 1 do
        local ev, prev = events[i], events[i - 1]
        assert.equal("processing", ev.stage)
        assert.equal("tesseract", ev.provider)
        assert.truthy(ev.progress >= prev.progress and ev.pages_done >= prev.pages_done, "never goes back")
        assert.truthy(ev.pages == 1 or ev.pages == pages)
        assert.truthy(ev.progress >= math.floor(100 * ev.pages_done / ev.pages))
        if ev.progress > 0 and ev.progress < 100 then between = between + 1 end
      end
      return between
    end

    local twelve   -- pages of ~0.1 s each: long enough to watch
    setup(function() twelve = require("helpers.tiff").fax(12) end)

    it("is reported while the pages are read, when jobs run (steps wake up to ask)", function()
      local events = {}
      local client = ocr.new("tesseract", { threads = 1 })
      local out = client:recognize_all({ { data = twelve } }, { on_progress = function(ev)
        events[#events + 1] = ev
      end })
      assert.equal(12, out[1].res.pages)
      assert.equal(1, events[1].index)
      assert.truthy(check(events, 12) >= 3, "several percentages seen: " .. #events .. " events")
    end)

    it("is reported by a direct client:recognize too", function()
      local events = {}
      local client = ocr.new("tesseract", { threads = 1, on_progress = function(ev) events[#events + 1] = ev end })
      assert.equal(12, assert(client:recognize{ data = twelve }).pages)
      assert.truthy(check(events, 12) >= 3, "several percentages seen: " .. #events .. " events")
    end)
  end)

  it("never blocks an embedder's runtime: the page is waited for in its sleeps", function()
    -- as OpenResty's ngx.sleep would be: each sleep hands the thread back to the event loop
    local runtime = require "ocr.runtime"
    local sleeps, others = {}, 0
    runtime.set{ now = core.monotime, sleep = function(s)
      sleeps[#sleeps + 1] = s
      others = others + 1   -- the event loop's other work
      core.sleep(s)
    end }
    finally(runtime.reset)
    local events = {}
    local client = ocr.new("tesseract", { threads = 1, on_progress = function(ev) events[#events + 1] = ev end })
    local res = assert(client:recognize{ file = "examples/sample.png" })
    assert.is_true(cer.rate(res.text, sample_text) <= 0.02)
    assert.truthy(#sleeps >= 5, "the wait was the runtime's sleeps: " .. #sleeps)
    assert.equal(0.005, sleeps[1])
    for i = 2, #sleeps do assert.equal(math.min(0.05, sleeps[i - 1] * 2), sleeps[i]) end
    assert.equal(#sleeps, others)
    local processing = 0
    for _, ev in ipairs(events) do processing = processing + (ev.stage == "processing" and 1 or 0) end
    assert.truthy(processing >= 2, "progress between the sleeps")
    assert.equal("done", events[#events].stage)
  end)

  it("ends a page over page_timeout as a timeout that is not retried", function()
    local client = ocr.new("tesseract", { threads = 1, page_timeout = 0.02 })
    local res, err = client:recognize{ file = "examples/sample.png" }
    assert.is_nil(res)
    assert.equal("timeout", err.kind)
    assert.is_false(err.retryable)
    assert.equal("tesseract: timeout: the image was not recognised within page_timeout (0.02 s)", tostring(err))
    assert.has_error(function() ocr.new("tesseract", { page_timeout = 0 }) end)
    assert.has_error(function() ocr.new("tesseract", { page_timeout = "1" }) end)
  end)
end)
