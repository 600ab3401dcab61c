-- Scanned PDFs through the tesseract provider: pages rendered by poppler on the workers, pages
-- selected, passwords, text layers, hostile documents, and libtesseract's own renderers writing
-- hOCR, ALTO, TSV and searchable PDFs into `output`. Every PDF is made here, from the sample
-- pages, by img2pdf and qpdf (Debian's), or written out by hand for the hostile ones.
local ocr = require "ocr"
local core = require "ocr.core"
local F = require "helpers.files"
local cer = require "helpers.cer"
local shell = require "helpers.shell"

local function succeeded(r) return r == true or r == 0 end   -- (os.execute: 5.2+ or 5.1)
local function have(cmd) return succeeded(shell.execute("command -v " .. cmd .. " >/dev/null 2>&1")) end

local have_module = pcall(require, "ocr.tesseract") and pcall(require, "ocr.tesseract_pdf")
local tools = have("img2pdf") and have("qpdf") and have("pdftotext") and have("pdfinfo")
local describe_if = (have_module and tools) and describe or function(name)
  pending(name .. " (needs ocr.tesseract_pdf and img2pdf, qpdf, poppler-utils)")
end

local MAX_CER = 0.02
local SAMPLE = "examples/sample.png"
local TIFF = "spec/fixtures/tiff/pages.tif"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function run(cmd)
  assert(succeeded(shell.execute(cmd .. " >/dev/null 2>&1")), "failed: " .. cmd)
end

local function capture(cmd)
  local p = shell.popen(cmd .. " 2>/dev/null")
  local out = p:read("*a")
  p:close()
  return out
end

-- A PDF written out by hand (for the hostile ones): objects numbered from 1, a correct xref.
-- `size` replaces the trailer's /Size (the number of objects the file claims).
local function handmade(objects, size)
  local out, offsets = { "%PDF-1.4\n" }, {}
  local pos = #out[1]
  for i, body in ipairs(objects) do
    offsets[i] = pos
    out[#out + 1] = ("%d 0 obj\n%s\nendobj\n"):format(i, body)
    pos = pos + #out[#out]
  end
  out[#out + 1] = ("xref\n0 %d\n0000000000 65535 f \n"):format(#objects + 1)
  for i = 1, #objects do out[#out + 1] = ("%010d 00000 n \n"):format(offsets[i]) end
  out[#out + 1] = ("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"):format(size or #objects + 1, pos)
  return table.concat(out)
end

local function one_page(box, contents)
  local objs = { "<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
                 ("<< /Type /Page /Parent 2 0 R /MediaBox [%s] %s>>"):format(box, contents and
                   "/Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> " or "") }
  if contents then
    objs[4] = ("<< /Length %d >>\nstream\n%s\nendstream"):format(#contents, contents)
    objs[5] = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
  end
  return objs
end

-- "\f"-separated page texts
local function pages_of(text)
  local out = {}
  for page in (text .. "\f"):gmatch("([^\f]*)\f") do out[#out + 1] = page end
  return out
end

-- The interpreter running these specs (lua5.4, luajit, lua5.1): the parent of io.popen's shell.
local function interpreter()
  local p = io.popen("readlink /proc/$PPID/exe")
  local exe = p:read("*l")
  p:close()
  return exe
end

-- The first entry of package.cpath: the build these specs load (busted puts it first).
local function build_cpath() return package.cpath:match("^[^;]*;") or "" end

local function box_inside(b, w, h)
  return b and b.x >= 0 and b.y >= 0 and b.w >= 0 and b.h >= 0 and b.x + b.w <= w and b.y + b.h <= h
end

describe_if("tesseract provider with PDFs", function()
  local dir, out, texts, pdf
  local client

  lazy_setup(function()
    dir = F.tmpdir()
    pdf = {
      one = dir .. "/one.pdf", three = dir .. "/three.pdf", enc = dir .. "/enc.pdf",
      layer = dir .. "/layer.pdf", mixed = dir .. "/mixed.pdf", cut = dir .. "/cut.pdf",
      many = dir .. "/many.pdf", huge = dir .. "/huge.pdf",
    }
    -- pages of known text: the sample, then the TIFF's two pages (300 dpi each)
    texts = { F.read("examples/sample.txt"), F.read("spec/fixtures/tiff/page1.txt"),
              F.read("spec/fixtures/tiff/page2.txt") }
    run(("img2pdf %s -o %s"):format(SAMPLE, q(pdf.one)))
    run(("img2pdf %s %s -o %s"):format(SAMPLE, TIFF, q(pdf.three)))
    run(("qpdf --encrypt 'open sesame' owner-pw 256 -- %s %s"):format(q(pdf.three), q(pdf.enc)))
    -- a page whose text layer says what its (blank) image does not, then the sample scanned
    F.write(pdf.layer, handmade(one_page("0 0 612 792", "BT /F1 24 Tf 3 Tr 72 700 Td (HIDDEN LAYER WORDS) Tj ET")))
    run(("qpdf --empty --pages %s %s -- %s"):format(q(pdf.layer), q(pdf.one), q(pdf.mixed)))
    local whole = F.read(pdf.one)
    F.write(pdf.cut, whole:sub(1, math.floor(#whole / 2)))
    -- a page tree claiming a million pages, in a file claiming as many objects (poppler caps a
    -- count at the number of objects)
    local many = one_page("0 0 612 792")
    many[2] = "<< /Type /Pages /Count 1000000 /Kids [3 0 R] >>"
    F.write(pdf.many, handmade(many, 1000010))
    F.write(pdf.huge, handmade(one_page("0 0 20000 20000")))
    client = ocr.new("tesseract", { threads = 2 })
  end)

  lazy_teardown(function()
    if client then client:close() end
    if dir then F.rmdir(dir) end
  end)

  before_each(function()
    out = F.mkdir(dir .. "/out-" .. core.hex(core.random_bytes(4)))
  end)

  it("reads a one-page PDF within 2% CER, rendered at 300 dpi, every line and word on page 1", function()
    local res = assert(client:recognize{ file = pdf.one })
    assert.is_true(cer.rate(texts[1], res.text) <= MAX_CER, res.text)
    assert.equal(1, res.pages)
    local page = res.raw.pages[1]
    assert.same({ 1, 300, 2250, 984 }, { page.page, page.dpi, page.width, page.height })
    assert.is_true(#res.lines >= 8)
    for _, line in ipairs(res.lines) do
      assert.equal(1, line.page)
      assert.is_true(box_inside(line.box, 2250, 984))
      for _, word in ipairs(line.words) do
        assert.equal(1, word.page)
        assert.is_true(box_inside(word.box, 2250, 984))
      end
    end
  end)

  it("reads in-memory PDF data like a file, and a dpi of 150 renders half the pixels a side", function()
    local a = assert(client:recognize{ data = F.read(pdf.one) })
    assert.is_true(cer.rate(texts[1], a.text) <= MAX_CER)
    local b = assert(client:recognize{ file = pdf.one, dpi = 150 })
    assert.same({ 1125, 492, 150 }, { b.raw.pages[1].width, b.raw.pages[1].height, b.raw.pages[1].dpi })
    assert.is_true(cer.rate(texts[1], b.text) <= 0.05, b.text)
  end)

  it("reads three pages in order over two workers, each within 2% CER, with per-page progress", function()
    local events = {}
    local res = assert(client:recognize{ file = pdf.three,
      on_progress = function(ev) events[#events + 1] = ev end })
    assert.equal(3, res.pages)
    local got = pages_of(res.text)
    assert.equal(3, #got)
    for i = 1, 3 do
      assert.is_true(cer.rate(texts[i], got[i]) <= MAX_CER, ("page %d: %s"):format(i, got[i]))
      assert.equal(i, res.raw.pages[i].page)
    end
    local last_page = 0
    for _, line in ipairs(res.lines) do
      assert.is_true(line.page >= last_page, "lines in page order")
      last_page = line.page
      local p = res.raw.pages[line.page]
      assert.is_true(box_inside(line.box, p.width, p.height))
    end
    assert.equal(3, last_page)
    -- (the first events may come before the PDF is opened: one page is all that is known then)
    local done_seen, last = {}, nil
    for _, ev in ipairs(events) do
      if ev.stage == "processing" then
        assert.is_true(ev.pages == 1 or ev.pages == 3, tostring(ev.pages))
        if ev.pages == 3 then done_seen[ev.pages_done] = true end
        last = ev
      end
    end
    assert.equal(3, last.pages)
    assert.is_true(done_seen[0] or done_seen[1] or done_seen[2], "progress while pages were read")
  end)

  it("reads only the pages asked for, in document order, with their own numbers", function()
    local res = assert(client:recognize{ file = pdf.three, pages = "3,1" })
    assert.equal(2, res.pages)
    local got = pages_of(res.text)
    assert.is_true(cer.rate(texts[1], got[1]) <= MAX_CER)
    assert.is_true(cer.rate(texts[3], got[2]) <= MAX_CER)
    assert.same({ 1, 3 }, { res.raw.pages[1].page, res.raw.pages[2].page })
    assert.equal(1, res.lines[1].page)
    assert.equal(3, res.lines[#res.lines].page)
    local two = assert(client:recognize{ file = pdf.three, pages = "2-3,2" })
    assert.equal(2, two.pages)
    assert.is_true(cer.rate(texts[2], pages_of(two.text)[1]) <= MAX_CER)
  end)

  it("refuses malformed page ranges before reading, and pages past the end", function()
    for _, bad in ipairs{ "0", "3-1", "1-", "-2", "a", "1,,2", "1 - 2", "12345678", "", "1;2" } do
      local _, err = client:recognize{ file = pdf.three, pages = bad }
      assert.equal("invalid_input", err.kind, bad)
      assert.truthy(err.message:find("1-3,6", 1, true), err.message)
    end
    local _, err = client:recognize{ file = pdf.three, pages = "2-9" }
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("page 9 is past the end of the PDF (3 pages)", 1, true), err.message)
    _, err = client:recognize{ file = pdf.one, dpi = 20 }
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("dpi", 1, true))
  end)

  it("opens an encrypted PDF with its password; a missing or wrong one is invalid_input saying which", function()
    local _, err = client:recognize{ file = pdf.enc }
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("encrypted: pass its password", 1, true), err.message)
    _, err = client:recognize{ file = pdf.enc, password = "open says me" }
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("password given does not open", 1, true), err.message)
    assert.is_nil(err.message:find("says me", 1, true), "the password is not repeated")
    local res = assert(client:recognize{ file = pdf.enc, password = "open sesame", pages = "2" })
    assert.is_true(cer.rate(texts[2], res.text) <= MAX_CER)
  end)

  it("recognises a page with a text layer by default, and takes its text as is with text_layer = keep", function()
    local res = assert(client:recognize{ file = pdf.mixed })
    local got = pages_of(res.text)
    assert.equal(2, #got)
    assert.is_nil(got[1]:find("HIDDEN", 1, true), "the blank page's image holds no text")
    assert.is_nil(res.raw.pages[1].kept)
    assert.is_true(cer.rate(texts[1], got[2]) <= MAX_CER)

    local kept = assert(client:recognize{ file = pdf.mixed, text_layer = "keep" })
    got = pages_of(kept.text)
    assert.equal("HIDDEN LAYER WORDS", got[1])
    assert.is_true(kept.raw.pages[1].kept)
    assert.is_nil(kept.raw.pages[2].kept, "a page without a layer is still recognised")
    assert.is_true(cer.rate(texts[1], got[2]) <= MAX_CER)
    local line = kept.lines[1]
    assert.same({ "HIDDEN LAYER WORDS", 1, 1 }, { line.text, line.page, line.confidence })
    assert.same({ "HIDDEN", "LAYER", "WORDS" }, { line.words[1].text, line.words[2].text, line.words[3].text })
    -- 72 pt from the left at 300 dpi: 300 px; the words follow each other on the line
    local p = kept.raw.pages[1]
    assert.same({ 2550, 3300 }, { p.width, p.height })
    assert.is_true(math.abs(line.box.x - 300) <= 4, line.box.x)
    assert.is_true(box_inside(line.box, p.width, p.height))
    assert.is_true(line.words[1].box.x < line.words[2].box.x and line.words[2].box.x < line.words[3].box.x)
    assert.equal(2, kept.lines[#kept.lines].page)
  end)

  it("says a truncated PDF is damaged (invalid_input), wherever it was cut", function()
    local _, err = client:recognize{ file = pdf.cut }
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("damaged", 1, true), err.message)
    local whole = F.read(pdf.three)
    for _, at in ipairs{ 5, 9, 200, 1000, math.floor(#whole / 3), #whole - 400, #whole - 30 } do
      local res, e = client:recognize{ data = whole:sub(1, at) }
      -- (a file cut in its trailer still holds every page: poppler rebuilds the table)
      assert.truthy(res or e.kind == "invalid_input", at .. ": " .. tostring(e))
    end
  end)

  it("ends every damaged PDF in a result or invalid_input / too_large, never a crash", function()
    local prng = require "helpers.prng"
    local g = prng(22)
    local kinds = { invalid_input = true, too_large = true }
    local sources = { F.read(pdf.three), F.read(pdf.mixed), F.read(pdf.many) }
    for round = 1, 45 do
      local src = sources[round % #sources + 1]
      local bad = src
      for _ = 1, g.int(1, 6) do
        -- anywhere, or in the structure at the end (the xref table, the trailer) and the start
        local at = g.int(1, 3) == 1 and g.int(math.max(1, #bad - 1500), #bad) or g.int(1, math.min(#bad, 2000))
        local what = g.int(1, 3)
        if what == 1 then bad = bad:sub(1, at - 1) .. string.char(g.int(0, 255)) .. bad:sub(at + 1)
        elseif what == 2 then bad = bad:sub(1, at - 1) .. bad:sub(at + g.int(1, 40))
        else bad = bad:sub(1, at) .. ("%d"):format(g.int(0, 99999999)) .. bad:sub(at + 1) end
      end
      if g.int(1, 4) == 1 then bad = bad:sub(1, g.int(6, #bad)) end
      local res, err = client:recognize{ data = bad, dpi = 50, text_layer = round % 2 == 0 and "keep" or nil }
      assert.truthy(res or kinds[err.kind], ("round %d: %s"):format(round, tostring(err)))
    end
  end)

  it("refuses a PDF claiming a million pages by max_pages, before reading any", function()
    local t0 = core.monotime()
    local _, err = client:recognize{ file = pdf.many }
    assert.equal("too_large", err.kind)
    assert.truthy(err.message:find("1000000 pages, over max_pages (1000)", 1, true), err.message)
    assert.is_true(core.monotime() - t0 < 10)
    local res = assert(client:recognize{ file = pdf.many, pages = "1" })   -- its one real page
    assert.equal(1, res.pages)
    local _, err2 = client:recognize{ file = pdf.many, pages = "2" }
    assert.equal("invalid_input", err2.kind)
  end)

  it("refuses a 20000 x 20000 pt page by max_pixels before rendering it", function()
    local _, err = client:recognize{ file = pdf.huge }
    assert.equal("too_large", err.kind)
    assert.truthy(err.message:find("83333x83333", 1, true), err.message)
    assert.truthy(err.message:find("max_pixels", 1, true))
    local small = ocr.new("tesseract", { threads = 1, max_pixels = 1000000 })
    local _, err2 = small:recognize{ file = pdf.one }
    assert.equal("too_large", err2.kind)
    small:close()
  end)

  it("writes a searchable PDF: one file, pages in order, its text layer the recognised text", function()
    local res = assert(client:recognize{ file = pdf.three, format = "pdf", output = out })
    assert.equal(1, #res.files)
    assert.same({ out .. "/three.pdf", "pdf" }, { res.files[1].path, res.files[1].format })
    assert.same({ "three.pdf" }, F.list(out), "no staging folder left behind")
    assert.truthy(capture("pdfinfo " .. q(res.files[1].path)):find("Pages:%s+3"))
    local recognised = pages_of(res.text)
    for i = 1, 3 do
      local layer = capture(("pdftotext -f %d -l %d %s -"):format(i, i, q(res.files[1].path)))
      assert.is_true(cer.rate(recognised[i], layer) <= MAX_CER, ("page %d: %s"):format(i, layer))
      assert.is_true(cer.rate(texts[i], layer) <= MAX_CER)
    end
    assert.is_true(#res.lines > 8, "the lines are still in the result")
  end)

  it("writes hOCR that the project's XML decoder reads back, boxes inside their pages", function()
    local res = assert(client:recognize{ file = pdf.three, format = "hocr", output = out })
    local path = res.files[1].path
    assert.equal(out .. "/three.hocr", path)
    -- (libtesseract's XHTML names its DTD: the decoder refuses any DOCTYPE, so it goes first)
    local body = F.read(path):gsub("<!DOCTYPE[^>]*>", "", 1)
    local doc = assert(core.xml_decode(body, { arrays = { div = true, p = true, span = true } }))
    local pages = doc.html.body.div
    assert.equal(3, #pages)
    local words = 0
    for i, page in ipairs(pages) do
      assert.equal("ocr_page", page._attr.class)
      local w, h = page._attr.title:match("bbox 0 0 (%d+) (%d+)")
      w, h = tonumber(w), tonumber(h)
      assert.same({ res.raw.pages[i].width, res.raw.pages[i].height }, { w, h })
      for _, area in ipairs(page.div or {}) do
        for _, par in ipairs(area.p or {}) do
          for _, line in ipairs(par.span or {}) do
            for _, word in ipairs(line.span or {}) do
              local x1, y1, x2, y2 = word._attr.title:match("^bbox (%d+) (%d+) (%d+) (%d+)")
              x1, y1, x2, y2 = tonumber(x1), tonumber(y1), tonumber(x2), tonumber(y2)
              assert.is_true(x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h and x1 <= x2 and y1 <= y2)
              words = words + 1
            end
          end
        end
      end
    end
    local expected = 0
    for _, line in ipairs(res.lines) do expected = expected + #line.words end
    assert.equal(expected, words)
  end)

  it("writes well-formed hOCR whatever the input's name", function()
    local odd = F.write(dir .. "/a<b&'c\".pdf", F.read(pdf.one))
    local res = assert(client:recognize{ file = odd, format = "hocr", output = out })
    local body = F.read(res.files[1].path):gsub("<!DOCTYPE[^>]*>", "", 1)
    local doc = assert(core.xml_decode(body))
    assert.equal("a_b__c_.pdf", doc.html.head.title)
  end)

  it("writes ALTO that the project's XML decoder reads back, boxes inside their pages", function()
    local res = assert(client:recognize{ file = pdf.three, pages = "1,3", format = "alto", output = out })
    assert.equal(out .. "/three.xml", res.files[1].path)
    local doc = assert(core.xml_decode(F.read(res.files[1].path), { arrays = {
      Page = true, ComposedBlock = true, TextBlock = true, TextLine = true, String = true, SP = true } }))
    local pages = doc.alto.Layout.Page
    assert.equal(2, #pages)
    local strings = {}
    for i, page in ipairs(pages) do
      local w, h = tonumber(page._attr.WIDTH), tonumber(page._attr.HEIGHT)
      assert.same({ res.raw.pages[i].width, res.raw.pages[i].height }, { w, h })
      for _, cb in ipairs(page.PrintSpace.ComposedBlock or {}) do
        for _, tb in ipairs(cb.TextBlock or {}) do
          for _, tl in ipairs(tb.TextLine or {}) do
            for _, s in ipairs(tl.String or {}) do
              local x, y = tonumber(s._attr.HPOS), tonumber(s._attr.VPOS)
              local sw, sh = tonumber(s._attr.WIDTH), tonumber(s._attr.HEIGHT)
              assert.is_true(x >= 0 and y >= 0 and x + sw <= w and y + sh <= h)
              strings[#strings + 1] = s._attr.CONTENT
            end
          end
        end
      end
    end
    assert.is_true(cer.rate(texts[1] .. " " .. texts[3], table.concat(strings, " ")) <= MAX_CER)
  end)

  it("writes TSV with a row per word, numbered by page", function()
    local res = assert(client:recognize{ file = pdf.three, format = "tsv", output = out })
    local rows, pages = 0, {}
    for line in F.read(res.files[1].path):gmatch("[^\n]+") do
      local level, page = line:match("^(%d+)\t(%d+)\t")
      if level == "5" then
        rows = rows + 1
        pages[tonumber(page)] = true
      end
    end
    local words = 0
    for _, line in ipairs(res.lines) do words = words + #line.words end
    assert.equal(words, rows)
    assert.same({ true, true, true }, pages)
  end)

  it("writes a searchable PDF of an image too", function()
    local res = assert(client:recognize{ file = SAMPLE, format = "pdf", output = out })
    assert.equal(out .. "/sample.pdf", res.files[1].path)
    assert.is_true(cer.rate(texts[1], capture("pdftotext " .. q(res.files[1].path) .. " -")) <= MAX_CER)
  end)

  it("never overwrites nor follows what is in output, and leaves nothing when a job fails", function()
    F.write(out .. "/three.pdf", "mine")
    assert(succeeded(shell.execute(("ln -s %s %s"):format(q(dir .. "/nowhere"), q(out .. "/three-1.pdf")))))
    local res = assert(client:recognize{ file = pdf.three, pages = "1", format = "pdf", output = out })
    assert.equal(out .. "/three-2.pdf", res.files[1].path)
    assert.equal("mine", F.read(out .. "/three.pdf"))
    assert.is_false(F.exists(dir .. "/nowhere"), "the dangling symlink was not written through")
    local before = F.list(out)
    local _, err = client:recognize{ file = pdf.enc, format = "pdf", output = out }
    assert.equal("invalid_input", err.kind)
    assert.same(before, F.list(out), "a failed job leaves no file nor folder")
  end)

  it("refuses a file format without output, and text_layer = keep with a file format", function()
    local _, err = client:recognize{ file = pdf.one, format = "hocr" }
    assert.equal("invalid_input", err.kind)
    assert.truthy(err.message:find("output", 1, true))
    _, err = client:recognize{ file = pdf.one, format = "pdf", output = out, text_layer = "keep" }
    assert.equal("invalid_input", err.kind)
    assert.same({}, F.list(out))
  end)

  it("without the PDF module says which Debian package builds it", function()
    local saved = package.loaded["ocr.tesseract_pdf"]
    package.loaded["ocr.tesseract_pdf"] = nil
    package.preload["ocr.tesseract_pdf"] = function() error("module 'ocr.tesseract_pdf' not found") end
    local _, err = client:recognize{ file = pdf.one }
    package.preload["ocr.tesseract_pdf"] = nil
    package.loaded["ocr.tesseract_pdf"] = saved
    assert.equal("unsupported", err.kind)
    assert.truthy(err.message:find("apt-get install libpoppler-glib-dev", 1, true), err.message)
  end)

  it("loads poppler only once a PDF comes in", function()
    local exe = interpreter()
    local script = F.write(dir .. "/maps.lua", ([[
      package.path = "lua/?.lua;" .. package.path
      package.cpath = %q .. package.cpath
      local function poppler() return io.open("/proc/self/maps"):read("*a"):find("libpoppler", 1, true) ~= nil end
      local client = require("ocr").new("tesseract", { threads = 1 })
      assert(client:recognize{ file = %q })
      io.write(tostring(poppler()), " ")
      assert(client:recognize{ file = %q })
      io.write(tostring(poppler()))
      client:close()
    ]]):format(build_cpath(), SAMPLE, pdf.one))
    local p = io.popen(q(exe) .. " " .. q(script) .. " 2>&1")
    local said = p:read("*a")
    p:close()
    assert.equal("false true", said)
  end)

  it("ocr scan.pdf -f pdf -o out/ writes out/scan.pdf; --pages and --dpi reach the provider", function()
    local exe = interpreter()
    local scan = dir .. "/scan.pdf"
    F.write(scan, F.read(pdf.three))
    local lua_path = "LUA_PATH='lua/?.lua;;' LUA_CPATH=" .. q(build_cpath() .. ";") .. " "
    local p = io.popen(lua_path .. q(exe) .. " bin/ocr -q " .. q(scan) .. " -f pdf -o " .. q(out) .. " --pages 2-3 --dpi 200 2>&1; echo \"exit=$?\"")
    local said = p:read("*a")
    p:close()
    assert.truthy(said:find("exit=0", 1, true), said)
    assert.same({ "scan.pdf" }, F.list(out))
    assert.truthy(capture("pdfinfo " .. q(out .. "/scan.pdf")):find("Pages:%s+2"))
    assert.is_true(cer.rate(texts[2] .. " " .. texts[3], capture("pdftotext " .. q(out .. "/scan.pdf") .. " -")) <= MAX_CER)
  end)
end)
