-- ocr.tesseract, the optional C module: libtesseract on worker threads. These specs run the real
-- engine on the committed sample pages (examples/sample*.png, made by spec/tools/render_sample.py
-- from examples/sample*.txt) and measure the character error rate against their exact text.
local has_tess, tess = pcall(require, "ocr.tesseract")

if not has_tess then
  describe("ocr.tesseract", function()
    if tostring(tess):find("module 'ocr.tesseract' not found", 1, true) then
      pending("ocr.tesseract is not built: `make` builds it when pkg-config finds tesseract and "
        .. "lept (apt-get install libtesseract-dev libleptonica-dev tesseract-ocr-eng)")
    else
      it("loads", function() error(tess, 0) end)   -- built but broken: that is a failure
    end
  end)
  return
end

local core = require "ocr.core"

local SAMPLE, SAMPLE_TXT = "examples/sample.png", "examples/sample.txt"
local SAMPLE_CHI, SAMPLE_CHI_TXT = "examples/sample-chi.png", "examples/sample-chi.txt"
local MAX_CER = 0.02

local function read(path) return assert(require("helpers.files").read(path)) end

local function write_tmp(data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

-- Width and height from the PNG's IHDR chunk (bytes 17..24, big-endian), read independently of
-- leptonica.
local function png_size(data)
  local function be32(i)
    local a, b, c, d = data:byte(i, i + 3)
    return ((a * 256 + b) * 256 + c) * 256 + d
  end
  assert(data:sub(13, 16) == "IHDR")
  return be32(17), be32(21)
end

local TIFF = "spec/fixtures/tiff/pages.tif"
local JPEG = "spec/fixtures/jpeg/page1.jpg"   -- spec/fixtures/tiff/page1.txt as a baseline JPEG
local SIDEWAYS = "spec/fixtures/rotated/page1-ccw90.png"   -- the same page turned 90° counter-clockwise
local TIFF_TXT = { "spec/fixtures/tiff/page1.txt", "spec/fixtures/tiff/page2.txt" }

-- The text of page `n` of a result's text (pages joined by form feeds).
local function texts_of(text, n)
  local i = 0
  for t in (text .. "\f"):gmatch("([^\f]*)\f") do
    i = i + 1
    if i == n then return t end
  end
end

-- Little-endian classic TIFFs taken apart and put together again (spec/helpers/tiff.lua).
local T = require "helpers.tiff"
local tiff_dirs, tiff_set, tiff_set_next, tiff_of_pages, patch = T.dirs, T.set, T.set_next, T.of_pages, T.patch

-- UTF-8 text as a list of code points (a byte loop, so it works on every Lua version).
local cer_helper = require "helpers.cer"

local function cer(reference, hypothesis)
  return cer_helper.rate(reference, hypothesis)
end

local function has_language(name)
  local langs = tess.languages()
  for _, l in ipairs(langs or {}) do if l == name then return true end end
  return false
end

-- Recognises one input on a fresh pool.
local function recognize(opts, input)
  local pool = assert(tess.pool(opts))
  local id = assert(pool:submit(input))
  local res, err = pool:wait(id)
  pool:close()
  return res, err
end

describe("ocr.tesseract", function()
  describe("the helpers of this spec", function()
    it("compute the CER as edit distance over code points / reference length", function()
      assert.equal(0, cer("a  b\n\nc", "a b c"))
      assert.equal(1 / 3, cer("abc", "abd"))          -- one substitution
      assert.equal(2 / 3, cer("abc", "a"))            -- two deletions
      assert.equal(1 / 4, cer("离线文字", "离线 文\n字x")) -- spaces beside Han dropped, x inserted
    end)
  end)

  it("reports its versions", function()
    assert.matches("^%d+%.%d+", tess._VERSION)
    assert.matches("leptonica", tess._LEPTONICA_VERSION)
  end)

  describe("languages()", function()
    it("lists the installed models, sorted, and the directory it looked in", function()
      local langs, dir = tess.languages()
      assert.is_table(langs)
      assert.is_string(dir)
      assert.equal(dir, tess.datapath())
      assert.truthy(has_language("eng"), "eng is needed by these specs")
      for i = 2, #langs do assert.truthy(langs[i - 1] < langs[i]) end
      local f = io.open(dir .. "/eng.traineddata", "rb")
      assert.truthy(f)
      f:close()
    end)

    it("reads an explicit datapath, and fails on a missing one", function()
      local langs = tess.languages(tess.datapath())
      assert.same(tess.languages(), langs)
      local none, err = tess.languages("/nonexistent/tessdata")
      assert.is_nil(none)
      assert.equal("not_found", err.kind)
      assert.matches("/nonexistent/tessdata", err.message, 1, true)
      assert.has_error(function() tess.languages({}) end)
    end)
  end)

  describe("recognition of the English sample", function()
    local res, err
    setup(function() res, err = recognize({ languages = "eng" }, { path = SAMPLE }) end)

    it("has a character error rate of at most 2%", function()
      assert.is_nil(err)
      local rate = cer(read(SAMPLE_TXT), res.text)
      assert.truthy(rate <= MAX_CER, ("CER %.4f over %.2f:\n%s"):format(rate, MAX_CER, res.text))
      assert.equal("eng", res.language)
    end)

    it("gives the image size, and lines and words with boxes inside it", function()
      local w, h = png_size(read(SAMPLE))
      assert.same({ { width = w, height = h } }, res.pages)
      local reference_lines = 0
      for line in read(SAMPLE_TXT):gmatch("[^\n]+") do reference_lines = reference_lines + 1 end
      assert.truthy(#res.lines >= reference_lines, "the renderer wraps, so at least the text's lines")
      local function check_box(b)
        assert.truthy(b.x >= 0 and b.y >= 0 and b.w > 0 and b.h > 0)
        assert.truthy(b.x + b.w <= w and b.y + b.h <= h)
      end
      local prev_y = -1
      for _, line in ipairs(res.lines) do
        assert.equal(1, line.page)
        assert.truthy(line.confidence >= 0 and line.confidence <= 1)
        check_box(line.box)
        assert.truthy(line.box.y > prev_y, "lines in reading order")
        prev_y = line.box.y
        local texts = {}
        for i, word in ipairs(line.words) do
          texts[i] = word.text
          assert.truthy(word.confidence >= 0 and word.confidence <= 1)
          check_box(word.box)
          assert.truthy(word.box.x >= line.box.x and word.box.x + word.box.w <= line.box.x + line.box.w)
        end
        assert.equal(line.text, table.concat(texts, " "))
      end
      assert.truthy(res.text:find(res.lines[2].text, 1, true))
    end)

    it("gives the same result for the bytes as for the file", function()
      local from_data = assert(recognize({ languages = "eng" }, { data = read(SAMPLE) }))
      assert.same(res, from_data)
    end)
  end)

  -- The formats leptonica reads besides PNG, JPEG and TIFF (Debian 12's is built with giflib and
  -- libwebp): the same page as spec/fixtures/tiff/page1.txt, by file and by bytes.
  it("reads BMP, GIF and WebP images", function()
    local pool = assert(tess.pool{})
    for _, ext in ipairs{ "bmp", "gif", "webp" } do
      local path = "spec/fixtures/formats/page1." .. ext
      for _, input in ipairs{ { path = path }, { data = read(path) } } do
        local res, err = pool:wait(assert(pool:submit(input)))
        assert.is_nil(err, ext .. ": " .. tostring(err and err.message))
        assert.same({ width = 2250, height = 372 }, res.pages[1], ext)
        local rate = cer(read(TIFF_TXT[1]), res.text)
        assert.truthy(rate <= MAX_CER, ("%s: CER %.4f:\n%s"):format(ext, rate, res.text))
      end
    end
    pool:close()
  end)

  describe("recognition of a multi-page TIFF", function()
    -- spec/fixtures/tiff/pages.tif: two pages of different sizes, 1-bit Group 4, as a fax or a
    -- document scanner writes them (made by spec/tools/render_sample.py from page1/page2.txt).
    local res, err
    setup(function() res, err = recognize({}, { path = TIFF }) end)

    it("reads every page, in order, each within 2% character error rate", function()
      assert.is_nil(err)
      assert.same({ { width = 2250, height = 372 }, { width = 2250, height = 444 } }, res.pages)
      local texts = {}
      for t in (res.text .. "\f"):gmatch("([^\f]*)\f") do texts[#texts + 1] = t end
      assert.equal(2, #texts, "pages joined by one form feed")
      for i, t in ipairs(texts) do
        local rate = cer(read(TIFF_TXT[i]), t)
        assert.truthy(rate <= MAX_CER, ("page %d: CER %.4f:\n%s"):format(i, rate, t))
      end
    end)

    it("gives every line its page, and boxes inside that page", function()
      local per_page = { 0, 0 }
      local prev = 1
      for _, line in ipairs(res.lines) do
        assert.truthy(line.page >= prev, "page 1's lines, then page 2's")
        prev = line.page
        per_page[line.page] = per_page[line.page] + 1
        local size = res.pages[line.page]
        assert.truthy(line.box.y + line.box.h <= size.height and line.box.x + line.box.w <= size.width)
        assert.truthy(texts_of(res.text, line.page):find(line.text, 1, true))
      end
      assert.same({ 1, 2 }, per_page, "page 1 holds one line, page 2 wraps to two")
    end)

    it("gives the same result for the bytes as for the file", function()
      assert.same(res, assert(recognize({}, { data = read(TIFF) })))
    end)

    describe("that is damaged or too large", function()
      local pool
      setup(function() pool = assert(tess.pool{}) end)
      teardown(function() pool:close() end)
      local function fails(input, opts)
        local p = opts and assert(tess.pool(opts)) or pool
        local r, e = p:wait(assert(p:submit(input)))
        if opts then p:close() end
        assert.is_nil(r, "no result, not a part of one")
        return e
      end

      it("refuses more pages than max_pages before reading any", function()
        local e = fails({ path = TIFF }, { max_pages = 1 })
        assert.equal("too_large", e.kind)
        assert.equal("TIFF image has 2 pages, over max_pages (1)", e.message)
      end)

      it("checks every page's size against the limits before decoding it", function()
        local e = fails({ path = TIFF }, { max_pixels = 2250 * 444 - 1 })   -- page 1 fits
        assert.equal("too_large", e.kind)
        assert.matches("^page 2 of the image is 2250x444 = 999000 pixels, over max_pixels", e.message)
        local tif = tiff_dirs(read(TIFF))
        local wide = tiff_set(tif, 2, 256, 40000)
        e = fails{ data = wide }
        assert.equal("too_large", e.kind)
        assert.matches("page 2 of the image is 40000x444; tesseract handles at most 32767", e.message, 1, true)
      end)

      it("never returns the readable pages of a file cut short", function()
        local data = read(TIFF)
        local tif = tiff_dirs(data)
        -- Every cut from the end of page 1's directory on: page 2 is missing or damaged.
        for cut = tif.dirs[1].finish, #data - 1, 97 do
          local e = fails{ data = data:sub(1, cut) }
          assert.equal("invalid_input", e.kind)
          assert.matches("truncated", e.message)
        end
      end)

      -- Bytes changed at random where a TIFF reader trusts the file most (the header and the
      -- page directories): every answer is a whole result or an error of the model, never a
      -- crash (make test-asan) or a result whose lines name pages it does not have.
      it("survives random damage to its header and page directories", function()
        local g = require("helpers.prng")(60601)
        local data = read(TIFF)
        local tif = tiff_dirs(data)
        local ranges = { { 1, 8 } }
        for _, d in ipairs(tif.dirs) do ranges[#ranges + 1] = { d.offset + 1, d.finish } end
        local kinds = { invalid_input = true, too_large = true }
        local answered, failed = 0, 0
        for round = 1, 60 do
          local bad = data
          for _ = 1, g.int(1, 3) do
            local r = ranges[g.int(1, #ranges)]
            bad = patch(bad, g.int(r[1], r[2]), string.char(g.int(0, 255)))
          end
          local r, e = pool:wait(assert(pool:submit{ data = bad }))
          if r then
            answered = answered + 1
            assert.truthy(#r.pages >= 1, "round " .. round)
            for _, line in ipairs(r.lines) do assert.truthy(line.page >= 1 and line.page <= #r.pages) end
          else
            failed = failed + 1
            assert.truthy(kinds[e.kind], ("round %d: %s: %s"):format(round, e.kind, e.message))
          end
        end
        assert.truthy(failed > 0, "the damage was seen")
      end)

      it("refuses a chain of page directories that loops", function()
        local tif = tiff_dirs(read(TIFF))
        local looped = tiff_set_next(tif, 2, tif.dirs[1].offset)
        local e = fails{ data = looped }
        assert.equal("invalid_input", e.kind)
        assert.equal("TIFF image is corrupt: its page directories loop", e.message)
        local e2 = fails{ data = tiff_set_next(tif, 1, tif.dirs[1].offset) }   -- onto itself
        assert.same(e, e2)
      end)
    end)

    -- The pages of one TIFF go to whichever workers are free. Eight pages: the fixture's two,
    -- alternately. Expected: each page read alone as a one-page TIFF (which is never split).
    describe("read by several workers", function()
      local ORDER = { 1, 2, 1, 2, 1, 2, 1, 2 }
      local tif, eight, alone
      setup(function()
        tif = tiff_dirs(read(TIFF))
        eight = tiff_of_pages(tif, ORDER)
        local pool = assert(tess.pool{ threads = 1 })
        alone = {}
        for n = 1, 2 do alone[n] = assert(pool:wait(assert(pool:submit{ data = tiff_of_pages(tif, { n }) }))) end
        pool:close()
      end)

      -- What the eight pages give when joined by hand from the pages read alone.
      local function expected()
        local texts, pages, lines = {}, {}, {}
        for i, n in ipairs(ORDER) do
          texts[i] = alone[n].text
          pages[i] = alone[n].pages[1]
          for _, line in ipairs(alone[n].lines) do
            local copy = {}
            for k, v in pairs(line) do copy[k] = v end
            copy.page = i
            copy.words = {}   -- (every word carries its page too)
            for j, word in ipairs(line.words) do
              copy.words[j] = {}
              for k, v in pairs(word) do copy.words[j][k] = v end
              copy.words[j].page = i
            end
            lines[#lines + 1] = copy
          end
        end
        return { text = table.concat(texts, "\f"), language = "eng", pages = pages, lines = lines }
      end

      it("has both workers on one image at once, and joins its pages in page order", function()
        local pool = assert(tess.pool{ threads = 2 })
        local id = assert(pool:submit{ data = eight })
        local most_busy, st = 0, nil
        local until_t = core.monotime() + 60
        repeat
          st = pool:stats()
          assert.equal(1, st.queued + st.running + st.finished, "one job")
          most_busy = math.max(most_busy, st.busy)
          if most_busy < 2 then core.sleep(0.001) end
        until most_busy == 2 or st.finished == 1 or core.monotime() > until_t
        local res8 = assert(pool:wait(id))
        pool:close()
        assert.equal(2, most_busy, "two workers reading pages of the one image")
        assert.same(expected(), res8)
        for i, n in ipairs(ORDER) do
          assert.truthy(cer(read(TIFF_TXT[n]), texts_of(res8.text, i)) <= MAX_CER, "page " .. i)
        end
      end)

      it("gives one worker's result, page by page, as several workers' result", function()
        assert.same(expected(), assert(recognize({ threads = 1 }, { data = eight })))
        assert.same(expected(), assert(recognize({ threads = 3 }, { data = eight })))
      end)

      it("keeps other images' turn: a job queued behind it finishes before its last page", function()
        local pool = assert(tess.pool{ threads = 1 })
        local big = assert(pool:submit{ data = eight })
        local small = assert(pool:submit{ data = tiff_of_pages(tif, { 1 }) })
        local order = {}
        local until_t = core.monotime() + 120
        while #order < 2 and core.monotime() < until_t do
          for _, job in ipairs(pool:poll()) do
            assert.is_nil(job.err)
            order[#order + 1] = job.id
          end
          core.sleep(0.005)
        end
        pool:close()
        assert.same({ small, big }, order)
      end)

      it("fails as a whole when a page cannot be decoded, naming the first such page", function()
        local pool = assert(tess.pool{ threads = 2 })
        local many = tiff_dirs(eight)
        -- compression 99 is no scheme libtiff knows: the directory reads, the page does not decode
        local bad5 = tiff_set(many, 5, 259, 99)
        local r, e = pool:wait(assert(pool:submit{ data = bad5 }))
        assert.is_nil(r)
        assert.same({ kind = "invalid_input",
                      message = "cannot decode page 5 of 8 of a TIFF image: corrupt or truncated" }, e)
        -- pages 1 and 2 read at once by the two workers: page 1's error, whichever fails last
        local bad1and2 = tiff_set(tiff_dirs(tiff_set(many, 2, 259, 99)), 1, 259, 99)
        for _ = 1, 10 do
          r, e = pool:wait(assert(pool:submit{ data = bad1and2 }))
          assert.is_nil(r)
          assert.matches("^cannot decode page 1 of 8", e.message)
        end
        -- a page without its size is refused before any page is decoded
        r, e = pool:wait(assert(pool:submit{ data = tiff_set(many, 6, 256, nil, 65000) }))
        assert.is_nil(r)
        assert.same({ kind = "invalid_input",
                      message = "TIFF image is corrupt: page 6 has no image size in its directory" }, e)
        -- and the pool goes on
        assert.same(expected(), assert(pool:wait(assert(pool:submit{ data = eight }))))
        pool:close()
      end)

      it("cancels at any moment into a cancelled job, never part of a result", function()
        local pool = assert(tess.pool{ threads = 2 })
        local kinds = {}
        for _, delay in ipairs({ 0, 0.001, 0.01, 0.03, 0.06, 0.1, 0.15, 0.25, 0.4 }) do
          local id = assert(pool:submit{ data = eight })
          core.sleep(delay)
          pool:cancel(id)
          local r, e = pool:wait(id, 60)
          if r then
            assert.same(expected(), r)
            kinds.whole = true
          else
            assert.equal("cancelled", e.kind)
            kinds.cancelled = true
          end
          local st = pool:stats()
          assert.same({ 0, 0, 0 }, { st.queued, st.running, st.busy })
        end
        assert.truthy(kinds.cancelled)
        assert.same(expected(), assert(pool:wait(assert(pool:submit{ data = eight }))))
        pool:close()
      end)

      it("is freed whole when the pool closes while its pages are read", function()
        for _, delay in ipairs({ 0, 0.005, 0.05, 0.2 }) do
          local pool = assert(tess.pool{ threads = 2 })
          local id = assert(pool:submit{ data = eight })
          assert(pool:submit{ data = eight })
          core.sleep(delay)
          pool:close()
          assert.has_error(function() pool:wait(id) end)
        end
      end)
    end)
  end)

  describe("orientation", function()
    it("is detected with psm 1: the page's angle, clockwise, and its text read upright", function()
      local res = assert(recognize({ psm = 1 }, { path = SIDEWAYS }))
      assert.same({ { width = 372, height = 2250, angle = 270 } }, res.pages,
                  "turned counter-clockwise: its text points 270° clockwise")
      local rate = cer(read(TIFF_TXT[1]), res.text)
      assert.truthy(rate <= MAX_CER, ("CER %.4f:\n%s"):format(rate, res.text))
      for _, line in ipairs(res.lines) do   -- boxes in the image's own coordinates: tall lines
        assert.truthy(line.box.h > line.box.w and line.box.x + line.box.w <= 372 and line.box.y + line.box.h <= 2250)
      end
      local upright = assert(recognize({ psm = 1 }, { path = JPEG }))
      assert.equal(0, upright.pages[1].angle)
    end)

    it("is not reported when the mode does not detect it", function()
      local res = assert(recognize({}, { path = SIDEWAYS }))   -- psm 3
      assert.is_nil(res.pages[1].angle)
      assert.truthy(cer(read(TIFF_TXT[1]), res.text) > 0.5, "read sideways, the text is lost")
    end)
  end)

  describe("recognition of the Chinese sample", function()
    if not has_language("chi_sim") then
      pending("chi_sim is not installed (apt-get install tesseract-ocr-chi-sim)")
      return
    end
    it("has a character error rate of at most 2%", function()
      local res = assert(recognize({ languages = "chi_sim" }, { path = SAMPLE_CHI }))
      local rate = cer(read(SAMPLE_CHI_TXT), res.text)
      assert.truthy(rate <= MAX_CER, ("CER %.4f over %.2f:\n%s"):format(rate, MAX_CER, res.text))
      assert.equal("chi_sim", res.language)
    end)
  end)

  describe("errors", function()
    local pool
    setup(function() pool = assert(tess.pool{}) end)
    teardown(function() pool:close() end)

    local function job_error(input)
      local res, err = pool:wait(assert(pool:submit(input)))
      assert.is_nil(res)
      return err
    end

    it("refuses an unreadable image as invalid_input", function()
      local err = job_error{ data = "this is not an image" }
      assert.equal("invalid_input", err.kind)
      assert.matches("cannot decode image", err.message)
      local truncated = job_error{ data = read(SAMPLE):sub(1, 200) }
      assert.equal("invalid_input", truncated.kind)
      assert.equal("invalid_input", job_error{ data = "" }.kind)
      local missing = job_error{ path = "/nonexistent/page.png" }
      assert.equal("invalid_input", missing.kind)
      assert.matches("/nonexistent/page.png", missing.message, 1, true)
    end)

    -- A download cut short: libpng and libjpeg would say so on stderr before leptonica refuses
    -- the image; the module refuses it first, saying what is wrong.
    it("refuses a PNG or a JPEG cut short, before decoding it", function()
      for _, case in ipairs{ { SAMPLE, "PNG image is truncated" }, { JPEG, "JPEG image is truncated" } } do
        local data = read(case[1])
        for _, keep in ipairs{ 0.1, 0.5, 0.9, (#data - 1) / #data } do
          local err = job_error{ data = data:sub(1, math.floor(#data * keep + 0.5)) }
          assert.equal("invalid_input", err.kind)
          assert.matches("^" .. case[2], err.message)
        end
      end
      local res = assert(pool:wait(assert(pool:submit{ path = JPEG })))
      assert.truthy(cer(read(TIFF_TXT[1]), res.text) <= MAX_CER, "the whole JPEG reads")
    end)

    -- The walks above read lengths from the file: random damage to the first bytes (the PNG's
    -- chunk headers, the JPEG's marker segments) and random cuts give a result or an error of
    -- the model, never a crash (make test-asan) or a hang.
    it("survives random damage to a PNG's or a JPEG's structure", function()
      local g = require("helpers.prng")(70707)
      local kinds = { invalid_input = true, too_large = true }
      for _, src in ipairs{ SAMPLE, JPEG } do
        local data = read(src)
        for round = 1, 12 do
          local bad = data
          for _ = 1, g.int(1, 3) do
            local at = g.int(1, 700)
            bad = bad:sub(1, at - 1) .. string.char(g.int(0, 255)) .. bad:sub(at + 1)
          end
          if g.int(1, 2) == 1 then bad = bad:sub(1, g.int(1, #bad)) end
          local r, e = pool:wait(assert(pool:submit{ data = bad }))
          assert.truthy(r or kinds[e.kind], ("%s round %d: %s"):format(src, round, tostring(e and e.message)))
        end
      end
    end)

    it("refuses a PDF as unsupported, by bytes or by file", function()
      local pdf = "%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
      local err = job_error{ data = pdf }
      assert.equal("unsupported", err.kind)
      assert.matches("PDFs are not supported by the tesseract provider", err.message, 1, true)
      local path = write_tmp(pdf)
      local err2 = job_error{ path = path }
      os.remove(path)
      assert.same(err, err2)
    end)

    it("refuses an image wider than tesseract's 32767 pixels before decoding it", function()
      local data = read(SAMPLE)
      local wide = data:sub(1, 16) .. "\0\0\156\64" .. data:sub(21)   -- IHDR width 40000
      assert.equal(40000, (png_size(wide)))
      local res, err = recognize({ max_pixels = 4294967296 }, { data = wide })
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      assert.matches("image is 40000x%d+; tesseract handles at most 32767 pixels a side", err.message)
    end)

    it("refuses images over max_pixels or max_bytes as too_large", function()
      local w, h = png_size(read(SAMPLE))
      local res, err = recognize({ max_pixels = w * h - 1 }, { path = SAMPLE })
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
      assert.matches("max_pixels", err.message)
      assert.is_table(recognize({ max_pixels = w * h }, { path = SAMPLE }))
      local small = assert(tess.pool{ max_bytes = 1000 })
      local id, serr = small:submit{ data = read(SAMPLE) }
      assert.is_nil(id)
      assert.equal("too_large", serr.kind)
      local _, ferr = small:wait(assert(small:submit{ path = SAMPLE }))
      assert.equal("too_large", ferr.kind)
      small:close()
    end)

    it("names the Debian package of a missing language", function()
      local p, err = tess.pool{ languages = "eng+xyz_abc" }
      assert.is_nil(p)
      assert.equal("invalid_input", err.kind)
      assert.matches("language data 'xyz_abc' not found in " .. tess.datapath(), err.message, 1, true)
      assert.matches("install tesseract%-ocr%-xyz%-abc$", err.message)
      local _, err2 = tess.pool{ languages = "eng", datapath = "/nonexistent/tessdata" }
      assert.equal("invalid_input", err2.kind)
      assert.matches("not found in /nonexistent/tessdata; install tesseract-ocr-eng", err2.message, 1, true)
    end)

    it("returns invalid_input for bad option values and raises on wrong types", function()
      for _, opts in ipairs{ { psm = 14 }, { psm = -1 }, { threads = 0 }, { threads = 65 },
                             { oem = 4 }, { threads = 1.5 }, { max_pixels = 0 }, { queue_size = 0 },
                             { languages = "../../etc/passwd" }, { languages = "eng+" },
                             { languages = "" }, { datapath = "" } } do
        local p, err = tess.pool(opts)
        assert.is_nil(p)
        assert.equal("invalid_input", err.kind)
      end
      assert.has_error(function() tess.pool{ languages = 5 } end)
      assert.has_error(function() tess.pool{ psm = "3" } end)
      assert.has_error(function() tess.pool{ datapath = true } end)
      assert.has_error(function() tess.pool{ thread = 2 } end, "tesseract.pool: unknown option 'thread'")
      assert.has_error(function() tess.pool("eng") end)
      assert.has_error(function() pool:submit("x.png") end)
      assert.has_error(function() pool:submit{} end)
      assert.has_error(function() pool:submit{ path = SAMPLE, data = "x" } end)
      assert.has_error(function() pool:submit{ file = SAMPLE } end)
      assert.has_error(function() pool:submit{ data = 42 } end)
      assert.has_error(function() pool:wait("one") end)
      assert.has_error(function() pool:wait(1, -1) end)
      local submit = getmetatable(pool).__index.submit
      assert.has_error(function() submit({}, { path = SAMPLE }) end)
    end)

    it("reports a legacy engine the model lacks as invalid_input, for the jobs and warm()", function()
      -- Debian's models are LSTM only; where a model has both engines this simply works. The
      -- model loads on a worker, so the pool is made and the jobs that need it fail.
      local p = assert(tess.pool{ oem = 0, threads = 2 })
      local res, err = p:wait(assert(p:submit{ path = SAMPLE }))
      if res then p:close() return end
      assert.equal("invalid_input", err.kind)
      assert.matches("tesseract cannot load language data 'eng' from .* with oem 0", err.message)
      local ok, werr = p:warm(nil, math.huge)
      assert.is_nil(ok)
      assert.same({ kind = "invalid_input", message = err.message }, werr)
      local _, again = p:wait(assert(p:submit{ data = read(SAMPLE) }))
      assert.same(err, again, "the next job needing it fails the same way: never a hang")
      local st = p:stats()
      assert.same({ 0, 0, 0 }, { st.engines, st.loads, st.caller_loads })
      p:close()
    end)
  end)

  describe("models", function()
    local function stats(pool)
      local st = pool:stats()
      return { engines = st.engines, loading = st.loading, loads = st.loads, caller_loads = st.caller_loads }
    end

    it("are not loaded when the pool is made, only by a worker for the first job", function()
      local pool = assert(tess.pool{ threads = 2 })
      -- nothing asked for a model yet: no worker has started loading one
      assert.same({ engines = 0, loading = 0, loads = 0, caller_loads = 0 }, stats(pool))
      local res = assert(pool:wait(assert(pool:submit{ path = SAMPLE })), "a job submitted at once")
      assert.truthy(cer(read(SAMPLE_TXT), res.text) <= MAX_CER)
      assert.same({ engines = 1, loading = 0, loads = 1, caller_loads = 0 }, stats(pool),
                  "one worker loaded the model it needed")
      pool:close()
    end)

    it("are loaded on every worker by warm(), which returns at once unless told to wait", function()
      local pool = assert(tess.pool{ threads = 2 })
      assert.is_true(pool:warm())
      local id = assert(pool:submit{ path = SAMPLE }, "a job queues behind the loads")
      assert.is_true(pool:warm(nil, math.huge))
      assert.same({ engines = 2, loading = 0, loads = 2, caller_loads = 0 }, stats(pool))
      assert.is_table(pool:wait(id))
      assert.is_true(pool:warm("eng", 0), "already loaded: nothing to wait for")
      assert.equal(2, stats(pool).loads)
      pool:close()
    end)

    it("says how a warm() wait ended", function()
      local pool = assert(tess.pool{ threads = 1 })
      local ok, err = pool:warm("eng", 0)
      if not ok then   -- (a load is never this fast; the wait ends first)
        assert.equal("timeout", err.kind)
        assert.matches("tesseract model 'eng' not loaded on every worker after 0 s", err.message, 1, true)
      end
      assert.is_true(pool:warm(nil, 600))
      local bad, berr = pool:warm("eng+xyz_abc", 1)
      assert.is_nil(bad)
      assert.equal("invalid_input", berr.kind)
      assert.matches("install tesseract%-ocr%-xyz%-abc$", berr.message)
      local bad2, berr2 = pool:warm("../x")
      assert.is_nil(bad2)
      assert.equal("invalid_input", berr2.kind)
      assert.has_error(function() pool:warm(5) end)
      assert.has_error(function() pool:warm("eng", -1) end)
      pool:close()
    end)

    it("are chosen per job: one pool reads each image with its own languages", function()
      if not has_language("chi_sim") then return pending("chi_sim is not installed") end
      local pool = assert(tess.pool{ threads = 1 })
      local chi = assert(pool:submit{ path = SAMPLE_CHI, languages = "chi_sim" })
      local eng = assert(pool:submit{ path = SAMPLE })
      local both = assert(pool:submit{ path = SAMPLE_CHI, languages = "eng+chi_sim" })
      local r_chi, r_eng, r_both = assert(pool:wait(chi)), assert(pool:wait(eng)), assert(pool:wait(both))
      assert.equal("chi_sim", r_chi.language)
      assert.truthy(cer(read(SAMPLE_CHI_TXT), r_chi.text) <= MAX_CER)
      assert.equal("eng", r_eng.language, "the pool's default")
      assert.truthy(cer(read(SAMPLE_TXT), r_eng.text) <= MAX_CER)
      assert.equal("eng+chi_sim", r_both.language)
      assert.same({ engines = 2, loading = 0, loads = 3, caller_loads = 0 }, stats(pool),
                  "max_engines = 2 by default: the first one loaded was let go")
      pool:close()
    end)

    it("are kept up to max_engines per worker, the least recently used let go", function()
      if not has_language("chi_sim") then return pending("chi_sim is not installed") end
      local pool = assert(tess.pool{ threads = 1, max_engines = 1 })
      local texts = {}
      for i, lang in ipairs{ "eng", "chi_sim", "eng" } do
        local res = assert(pool:wait(assert(pool:submit{ path = lang == "eng" and SAMPLE or SAMPLE_CHI, languages = lang })))
        texts[i] = res.text
        assert.same({ engines = 1, loading = 0, loads = i, caller_loads = 0 }, stats(pool))
      end
      assert.equal(texts[1], texts[3], "a model loaded again reads the same")
      pool:close()
      for _, bad in ipairs{ 0, 17, 1.5 } do
        local p, err = tess.pool{ max_engines = bad }
        assert.is_nil(p)
        assert.equal("invalid_input", err.kind)
        assert.matches("max_engines", err.message)
      end
    end)

    it("a job's languages are checked at submit: bad values and missing data", function()
      local pool = assert(tess.pool{ threads = 1 })
      for _, bad in ipairs{ "eng+", "../../etc/passwd", "", "eng+xyz_abc" } do
        local id, err = pool:submit{ path = SAMPLE, languages = bad }
        assert.is_nil(id)
        assert.equal("invalid_input", err.kind)
      end
      local _, err = pool:submit{ path = SAMPLE, languages = "eng+xyz_abc" }
      assert.matches("language data 'xyz_abc' not found in " .. tess.datapath() .. "; install tesseract-ocr-xyz-abc",
                     err.message, 1, true)
      assert.has_error(function() pool:submit{ path = SAMPLE, languages = { "eng" } } end)
      assert.equal(0, pool:pending())
      pool:close()
    end)

    it("a pool closes while its workers load", function()
      for threads = 1, 2 do
        local pool = assert(tess.pool{ threads = threads })
        pool:warm()
        pool:submit{ path = SAMPLE, languages = "osd" }
        pool:close()
        assert.is_false(pool:usable())
      end
    end)
  end)

  describe("the pool", function()
    it("returns a job id at once: submit does not wait for recognition", function()
      local pool = assert(tess.pool{})
      local data = read(SAMPLE)
      local t0 = core.monotime()
      local id = pool:submit{ data = data }
      local t_submit = core.monotime() - t0
      assert.equal(1, pool:pending())
      assert.same({}, pool:poll(), "nothing finished right after submit")
      local res = assert(pool:wait(id))
      local t_done = core.monotime() - t0
      assert.truthy(t_submit < t_done / 10, ("submit %.4fs, job %.4fs"):format(t_submit, t_done))
      assert.equal(0, pool:pending())
      assert.truthy(#res.lines > 0)
      pool:close()
    end)

    it("with 2 threads returns every job of 4 exactly once, as 1 thread does", function()
      local inputs = { { path = SAMPLE }, { data = read(SAMPLE) }, { path = SAMPLE_CHI },
                       { data = read(SAMPLE_CHI) } }
      local single = assert(tess.pool{ threads = 1 })
      local expected = {}
      for i, input in ipairs(inputs) do expected[i] = assert(single:wait(single:submit(input))) end
      single:close()

      local pool = assert(tess.pool{ threads = 2 })
      local index_of, seen = {}, {}
      for i, input in ipairs(inputs) do index_of[assert(pool:submit(input))] = i end
      assert.equal(4, pool:pending())
      -- both workers pick up a job at once (each takes a few hundred ms)
      local most_running, stats = 0, nil
      local until_t = core.monotime() + 5
      repeat
        stats = pool:stats()
        most_running = math.max(most_running, stats.running)
        assert.equal(4, stats.queued + stats.running + stats.finished)
      until most_running == 2 or core.monotime() > until_t
      assert.equal(2, most_running)
      assert.equal(2, stats.threads)
      local deadline = core.monotime() + 120
      local n = 0
      while n < 4 and core.monotime() < deadline do
        for _, job in ipairs(pool:poll()) do
          assert.is_nil(seen[job.id], "job returned twice")
          seen[job.id] = true
          assert.is_nil(job.err)
          assert.same(expected[index_of[job.id]], job.res)
          n = n + 1
        end
        if n < 4 then core.sleep(0.01) end
      end
      assert.equal(4, n)
      assert.equal(0, pool:pending())
      assert.same({}, pool:poll())
      pool:close()
    end)

    it("signals finished jobs on fd() for a poll set", function()
      local ok, socket = pcall(require, "socket")
      if not ok then return pending("LuaSocket is not installed") end
      local pool = assert(tess.pool{})
      local fd = pool:fd()
      assert.is_number(fd)
      local readable = { getfd = function() return fd end, dirty = function() return false end }
      assert.equal(0, #socket.select({ readable }, nil, 0))
      pool:submit{ path = SAMPLE }
      pool:submit{ data = "not an image" }
      local r = socket.select({ readable }, nil, 60)
      assert.equal(1, #r)
      local got = #pool:poll()
      while got < 2 do
        socket.select({ readable }, nil, 60)
        got = got + #pool:poll()
      end
      assert.equal(0, #socket.select({ readable }, nil, 0), "not readable once all are collected")
      pool:close()
    end)

    it("waits with a timeout, and knows no unknown job", function()
      local pool = assert(tess.pool{})
      local id = pool:submit{ path = SAMPLE }
      local res, err = pool:wait(id, 0)
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.equal(1, pool:pending())
      assert.is_table(pool:wait(id, 120))
      local none, err2 = pool:wait(id)
      assert.is_nil(none)
      assert.equal("not_found", err2.kind)
      pool:close()
    end)

    it("refuses a submit when the queue is full", function()
      local pool = assert(tess.pool{ queue_size = 2 })
      local a = assert(pool:submit{ path = SAMPLE })
      assert(pool:submit{ path = SAMPLE })
      local id, err = pool:submit{ path = SAMPLE }
      assert.is_nil(id)
      assert.equal("rate_limited", err.kind)
      assert.is_table(pool:wait(a))
      assert.is_number(pool:submit{ path = SAMPLE }, "room again once a job is collected")
      pool:close()
    end)

    it("cancels queued and running jobs", function()
      local pool = assert(tess.pool{ threads = 1 })
      local first = pool:submit{ path = SAMPLE }
      local second = pool:submit{ path = SAMPLE }
      assert.is_true(pool:cancel(second))
      assert.is_true(pool:cancel(first))
      for _, id in ipairs{ first, second } do
        local res, err = pool:wait(id)
        assert.is_nil(res)
        assert.equal("cancelled", err.kind)
      end
      assert.is_false(pool:cancel(first))
      assert.is_false(pool:cancel(12345))
      assert.is_table(pool:wait(pool:submit{ path = SAMPLE }), "the worker carries on")
      pool:close()
    end)

    describe("progress", function()
      -- Samples pool:progress(id) every millisecond until the job is finished (not collected).
      local function watch(pool, id)
        local seen = {}
        local until_t = core.monotime() + 120
        repeat
          local percent, done, pages, state = pool:progress(id)
          assert.is_number(percent, "a pending job has progress")
          local last = seen[#seen]
          if not last or last.percent ~= percent or last.done ~= done or last.pages ~= pages
             or last.state ~= state then
            seen[#seen + 1] = { percent = percent, done = done, pages = pages, state = state }
          end
          if state ~= "finished" then core.sleep(0.001) end
        until state == "finished" or core.monotime() > until_t
        return seen
      end

      it("goes from queued through rising percentages to finished at 100, then is gone", function()
        local pool = assert(tess.pool{ threads = 1 })
        local first = assert(pool:submit{ path = SAMPLE })
        local second = assert(pool:submit{ path = SAMPLE })
        local _, _, _, state = pool:progress(second)
        assert.equal("queued", state, "behind the first job on the one worker")
        local seen = watch(pool, first)
        local between = 0
        for i, s in ipairs(seen) do
          assert.equal(1, s.pages)
          if i > 1 then assert.truthy(s.percent >= seen[i - 1].percent, "never goes back") end
          if s.done == 0 then assert.truthy(s.percent < 100, "100 only once the page's result is stored") end
          if s.state == "queued" then assert.equal(0, s.percent) end
          if s.percent > 0 and s.percent < 100 then between = between + 1 end
        end
        assert.truthy(between >= 2, "tesseract's percentages while it reads: " .. #seen .. " samples")
        assert.same({ percent = 100, done = 1, pages = 1, state = "finished" }, seen[#seen])
        assert.is_table(pool:wait(first))
        assert.is_nil(pool:progress(first), "collected: no longer known")
        assert.is_nil(pool:progress(12345))
        pool:close()
      end)

      it("counts a TIFF's pages on every worker: never less than the pages read", function()
        local six = T.fax(6)
        local pool = assert(tess.pool{ threads = 2 })
        local id = assert(pool:submit{ data = six })
        local seen = watch(pool, id)
        local dones = {}
        for i, s in ipairs(seen) do
          assert.truthy(s.pages == 1 or s.pages == 6, "1 until the TIFF is opened, then 6")
          assert.truthy(s.percent >= math.floor(100 * s.done / s.pages), "percent covers pages read")
          if i > 1 then
            assert.truthy(s.percent >= seen[i - 1].percent and s.done >= seen[i - 1].done)
          end
          dones[s.done] = true
        end
        local distinct = 0
        for _ in pairs(dones) do distinct = distinct + 1 end
        assert.truthy(distinct >= 3, "pages counted as they are read")
        assert.same({ percent = 100, done = 6, pages = 6, state = "finished" }, seen[#seen])
        assert.equal(6, #assert(pool:wait(id)).pages)
        pool:close()
      end)
    end)

    describe("page_timeout", function()
      it("ends a page over it as a timeout naming the limit; the worker carries on", function()
        local pool = assert(tess.pool{ threads = 1, page_timeout = 0.02 })
        local t0 = core.monotime()
        local res, err = pool:wait(assert(pool:submit{ path = SAMPLE }))
        assert.is_nil(res)
        assert.equal("timeout", err.kind)
        assert.is_nil(err.pending, "the job ended: not this wait's own timeout")
        assert.matches("not recognised within page_timeout %(0%.02 s%)", err.message)
        assert.truthy(core.monotime() - t0 < 5, "stopped, not read to the end")
        -- a page without words has nothing to stop between: it is read
        local blank = assert(pool:wait(assert(pool:submit{ data = "P5\n1 1\n255\n\255" })))
        assert.equal(1, #blank.pages)
        local _, terr = pool:wait(assert(pool:submit{ data = tiff_of_pages(tiff_dirs(read(TIFF)), { 1, 2 }) }))
        assert.equal("timeout", terr.kind)
        assert.matches("^page %d+ was not recognised within page_timeout", terr.message, "a TIFF's page is named")
        local st = pool:stats()
        assert.same({ 0, 0, 0, 0, 1 }, { st.queued, st.running, st.finished, st.busy, st.threads })
        pool:close()
      end)

      it("leaves a page read within it alone", function()
        assert.same(assert(recognize({}, { path = SAMPLE })),
                    assert(recognize({ page_timeout = 600 }, { path = SAMPLE })))
      end)

      it("must be seconds above 0", function()
        for _, bad in ipairs{ 0, -1, 1e7, 0 / 0 } do
          local pool, err = tess.pool{ page_timeout = bad }
          assert.is_nil(pool)
          assert.equal("invalid_input", err.kind)
          assert.matches("page_timeout", err.message)
        end
        assert.has_error(function() tess.pool{ page_timeout = "1" } end,
                         "tesseract.pool: option 'page_timeout' must be a number (got string)")
      end)
    end)

    it("tells its own wait timeout (pending) from a job that ended", function()
      local pool = assert(tess.pool{ threads = 1 })
      local id = assert(pool:submit{ path = SAMPLE })
      local res, err = pool:wait(id, 0)
      assert.is_nil(res)
      assert.same({ kind = "timeout", pending = true,
                    message = ("tesseract job %d not finished after 0 s"):format(id) }, err)
      assert.is_table(pool:wait(id))
      pool:close()
    end)

    it("closes cleanly with jobs queued and running, and only once", function()
      local pool = assert(tess.pool{ threads = 2 })
      for _ = 1, 6 do pool:submit{ path = SAMPLE } end
      core.sleep(0.05)
      local t0 = core.monotime()
      pool:close()
      assert.truthy(core.monotime() - t0 < 10)
      pool:close()
      assert.matches("closed", tostring(pool))
      assert.has_error(function() pool:submit{ path = SAMPLE } end, "tesseract pool is closed")
      assert.has_error(function() pool:poll() end, "tesseract pool is closed")
    end)

    -- An OpenResty master that made a pool before forking its nginx workers: each worker gets a
    -- copy without the threads. (Needs a VM with FFI to fork: LuaJIT.)
    local fork = require "helpers.fork"
    local it_fork = fork.available and it or function(name) pending(name .. " (fork needs LuaJIT's FFI)") end
    it_fork("is closed in a forked child, where close and collection return at once", function()
      local pool = assert(tess.pool{ threads = 2 })
      local expected = assert(pool:wait(assert(pool:submit{ path = SAMPLE })))
      local queued = assert(pool:submit{ path = SAMPLE })   -- in flight at the fork
      local ok, why = fork.run(function()
        assert(pool:usable() == false, "usable in the child")
        local ok2, err = pcall(pool.submit, pool, { path = SAMPLE })
        assert(not ok2 and err:find("created in process %d+, before a fork"), tostring(err))
        assert(tostring(pool):find("closed"), tostring(pool))
        pool:close()
        pool = nil
        collectgarbage()
        collectgarbage()
        -- a pool made in the child works
        local own = assert(tess.pool{ threads = 1 })
        local r = assert(own:wait(assert(own:submit{ path = SAMPLE })))
        assert(r.text == expected.text, "the child's own pool reads the page")
        own:close()
      end, 60)
      assert.is_true(ok, why)
      -- the parent's pool is untouched: its job in flight at the fork finishes
      assert.is_true(pool:usable())
      assert.same(expected, assert(pool:wait(queued)))
      pool:close()
      assert.is_false(pool:usable())
    end)

    it("is collected with jobs in flight", function()
      do
        local pool = assert(tess.pool{ threads = 2 })
        for _ = 1, 3 do pool:submit{ data = read(SAMPLE) } end
      end
      collectgarbage()
      collectgarbage()
      local pool = assert(tess.pool{})
      assert.is_table(pool:wait(pool:submit{ path = SAMPLE }))
      pool:close()
    end)

    -- Random interleavings of every pool operation, on small images (fast to recognise) and
    -- garbage: under `make test-asan` a race between a worker and cancel, close or the collector
    -- shows as a report. Deterministic sequence (helpers.prng).
    it("survives random submit, cancel, poll, wait, close and collection", function()
      local int = require("helpers.prng")(12344).int
      local pgm = "P5\n24 12\n255\n" .. ("\255"):rep(24 * 12)
      local png = read(SAMPLE)
      local inputs = { { data = pgm }, { data = pgm }, { data = "not an image" },
                       { data = png:sub(1, 600) }, { path = "/nonexistent/page.png" } }
      local kinds = { invalid_input = true, cancelled = true, unsupported = true, too_large = true }
      local answered, failed = 0, 0
      local function check(res, err, where)
        if res then
          assert.is_string(res.text, where)
          answered = answered + 1
        else
          assert(type(err) == "table" and kinds[err.kind], where .. ": " .. tostring(err and err.kind))
          failed = failed + 1
        end
      end
      for round = 1, 12 do   -- each pool loads its models: ~0.2 s a round
        local pool = assert(tess.pool{ threads = int(1, 2) })
        local ids, seen = {}, {}
        local closed = false
        for _ = 1, int(5, 30) do
          local op = int(1, 10)
          if op <= 4 then
            local id = pool:submit(inputs[int(1, #inputs)])
            if id then
              assert.is_nil(seen[id], "an id given twice")
              seen[id] = true
              ids[#ids + 1] = id
            end
          elseif op <= 6 and #ids > 0 then
            pool:cancel(ids[int(1, #ids)])
          elseif op == 7 then
            for _, item in ipairs(pool:poll()) do
              check(item.res, item.err, "poll, round " .. round)
              for i = #ids, 1, -1 do   -- collected: waiting for it now would be not_found
                if ids[i] == item.id then table.remove(ids, i) end
              end
            end
          elseif op == 8 and #ids > 0 then
            local id = table.remove(ids, int(1, #ids))
            local res, err = pool:wait(id, 0.5)
            if res or (err and err.kind ~= "timeout") then check(res, err, "wait, round " .. round) end
          elseif op == 9 then
            assert.is_number(pool:pending())
            if #ids > 0 then   -- a pending id is known until collected (a wait above collected it)
              local percent, done, pages, state = pool:progress(ids[int(1, #ids)])
              assert.truthy(percent >= 0 and percent <= 100 and done <= pages, "progress")
              assert.truthy(state == "queued" or state == "running" or state == "finished")
            end
          elseif int(1, 4) == 1 then
            pool:close()
            closed = true
            assert.has_error(function() pool:submit(inputs[1]) end, "tesseract pool is closed")
            assert.has_error(function() pool:progress(1) end, "tesseract pool is closed")
            break
          end
        end
        if not closed and int(1, 2) == 1 then   -- collect what is left, then close
          for _, id in ipairs(ids) do
            local res, err = pool:wait(id, 5)
            check(res, err, "final wait, round " .. round)
          end
          pool:close()
        end
        pool = nil   -- the rest: left to the collector with jobs in flight
        collectgarbage()
      end
      -- Both ends were reached, or the sequence tested little.
      -- Both kinds of ending were seen (how many depends on timing: a cancel can come too late).
      assert.is_true(answered >= 1 and failed >= 1, ("answered %d, failed %d"):format(answered, failed))
    end)
  end)
end)
