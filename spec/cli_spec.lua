-- The `ocr` command as a user runs it: a subprocess, its stdout parsed back, its stderr and exit
-- status checked.
local cjson = require "cjson"
local F = require "helpers.files"
local rig = require "helpers.rig"
local cer = require "helpers.cer"

local have_tesseract = pcall(require, "ocr.tesseract")

-- Runs bin/ocr with `args` (a shell-quoted string) and an optional environment prefix.
local function ocr_cmd(args, env)
  local errfile = os.tmpname()
  local p = io.popen(("%s lua5.4 bin/ocr %s 2>%s; echo \"exit=$?\""):format(env or "", args, errfile))
  local out = p:read("*a")
  p:close()
  local err = F.read(errfile) or ""
  os.remove(errfile)
  local status = tonumber(out:match("exit=(%d+)\n$"))
  return out:gsub("exit=%d+\n$", ""), err, status
end

local function lines_of(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

describe("the ocr command", function()
  it("prints usage with --help and exits 0, naming no vendor and no vendor's codes", function()
    local out, _, status = ocr_cmd("--help")
    assert.equal(0, status)
    assert.truthy(out:find("usage: ocr", 1, true))
    for _, flag in ipairs{ "--require MODULE", "OCR_PROVIDERS", "--overwrite", "--lang L", "-o DIR" } do
      assert.truthy(out:find(flag, 1, true), flag)
    end
    for _, vendor in ipairs{ "picwish", "tencent", "compdf", "uapi", "oldfish", "chi_sim", "eng+", "PICWISH" } do
      assert.is_nil(out:find(vendor, 1, true), vendor)
    end
  end)

  it("prints its version", function()
    local out, _, status = ocr_cmd("--version")
    assert.equal(0, status)
    assert.truthy(out:match("^lua%-ocr %d+%.%d+%.%d+"))
  end)

  it("lists the providers with their credential variables", function()
    local out, _, status = ocr_cmd("providers")
    assert.equal(0, status)
    assert.truthy(out:find("picwish    OCR_PICWISH_API_KEY", 1, true))
    assert.truthy(out:find("tesseract", 1, true))
  end)

  it("exits 2 on usage errors, an unknown provider or an unknown option", function()
    local _, err, status = ocr_cmd("--frobnicate x.png")
    assert.equal(2, status)
    assert.truthy(err:find("unknown option --frobnicate", 1, true))
    _, err, status = ocr_cmd("-p nosuchvendor x.png")
    assert.equal(2, status)
    assert.truthy(err:find("unknown provider 'nosuchvendor'", 1, true))
    _, err, status = ocr_cmd("")
    assert.equal(2, status)
    _, err, status = ocr_cmd("-j zero x.png")
    assert.equal(2, status)
    _, err, status = ocr_cmd("-p uapi --set colour=red x.png")
    assert.equal(2, status)
    assert.truthy(err:find("no option 'colour'", 1, true))
    _, err, status = ocr_cmd("-p picwish x.png", "OCR_PICWISH_API_KEY=")
    assert.equal(2, status)
    assert.truthy(err:find("OCR_PICWISH_API_KEY", 1, true))
  end)

  describe("with a cloud provider (the picwish emulator)", function()
    local emu, dir, env
    setup(function()
      emu, dir = rig.start("picwish", { { "a.png", "first page\n第一页" }, { "b.png", "second page" },
                                        { "c.png", "third\tpage" } })
      env = ("OCR_PICWISH_API_KEY=test-picwish-key OCR_PICWISH_ENDPOINT=%s"):format(emu.url)
    end)
    teardown(function() rig.stop(emu, dir) end)
    before_each(function()
      emu:reset()
      emu:config{ qps = 0 }
    end)

    it("prints results in input order; one failure makes exit 1 with one stderr line", function()
      local out, err, status = ocr_cmd(("-p picwish -j 3 --set poll_interval=0.01 --set rate=false %s/a.png %s/missing.png %s/b.png")
                                       :format(dir, dir, dir), env)
      assert.equal(1, status)
      local a = out:find("==> " .. dir .. "/a.png <==\nfirst page\n第一页\n", 1, true)
      local b = out:find("==> " .. dir .. "/b.png <==\nsecond page\n", 1, true)
      assert.truthy(a and b and a < b, out)
      local failures = 0
      for _, l in ipairs(lines_of(err)) do
        if l:find("missing.png: picwish: invalid_input", 1, true) then failures = failures + 1 end
      end
      assert.equal(1, failures, err)
    end)

    it("shows progress on stderr: a bar on a terminal, plain lines otherwise, none with -q", function()
      local args = ("-p picwish -j 2 --set poll_interval=0.01 --set rate=false %s/a.png %s/missing.png %s/b.png")
                   :format(dir, dir, dir)
      local _, err = ocr_cmd(args, env)
      local plain = {}
      for _, l in ipairs(lines_of(err)) do
        local n, total, name, state = l:match("^ocr: (%d)/(%d) (%S+) (%a+)$")
        if n then plain[#plain + 1] = { tonumber(n), tonumber(total), name:match("[^/]+$"), state } end
      end
      table.sort(plain, function(x, y) return x[1] < y[1] end)
      assert.equal(3, #plain, err)
      for i, p in ipairs(plain) do
        assert.same({ i, 3 }, { p[1], p[2] })
        assert.equal(p[3] == "missing.png" and "failed" or "ok", p[4])
      end
      local _, quiet = ocr_cmd("-q " .. args, env)
      assert.equal(1, #lines_of(quiet), "only the failure: " .. quiet)
      -- On a terminal (script(1) gives the command a pseudo-terminal): one bar redrawn in place.
      local cmd = (env .. " lua5.4 bin/ocr " .. args):gsub("'", "'\\''")
      -- script(1) is not ours to sanitize under make test-asan: helpers.shell starts it clean
      local p = require("helpers.shell").popen("script -qec '" .. cmd .. "' /dev/null")
      local tty = p:read("*a")
      p:close()
      assert.truthy(tty:find("\r%[#+%.*%] 1/3"), tty)
      assert.truthy(tty:find("\r%[" .. ("#"):rep(30) .. "%] 3/3"), tty)
      assert.is_nil(tty:find("ocr: %d/3"), "no plain progress lines on a terminal")
    end)

    it("prints JSON Lines, one object per input, parsed back", function()
      local out, _, status = ocr_cmd(("-p picwish --json --set poll_interval=0.01 %s/a.png %s/b.png"):format(dir, dir), env)
      assert.equal(0, status)
      local objs = {}
      for _, l in ipairs(lines_of(out)) do objs[#objs + 1] = cjson.decode(l) end
      assert.equal(2, #objs)
      assert.equal(dir .. "/a.png", objs[1].input)
      assert.equal("first page\n第一页", objs[1].text)
      assert.equal("第一页", objs[1].lines[2].text)
      assert.equal("picwish", objs[2].provider)
      assert.truthy(objs[2].task_id)
    end)

    it("prints a JSON error object for a failed input", function()
      local out, _, status = ocr_cmd(("-p picwish --json %s/nope.png"):format(dir), env)
      assert.equal(1, status)
      local obj = cjson.decode(lines_of(out)[1])
      assert.equal("invalid_input", obj.error.kind)
    end)

    it("prints TSV with a header row and escaped text", function()
      local out, _, status = ocr_cmd(("-p picwish --tsv --set poll_interval=0.01 %s/c.png"):format(dir), env)
      assert.equal(0, status)
      local rows = lines_of(out)
      assert.equal(2, #rows)
      assert.equal("input\tline\tpage\tx\ty\tw\th\tconfidence\ttext", rows[1])
      local cols = {}
      for c in (rows[2] .. "\t"):gmatch("([^\t]*)\t") do cols[#cols + 1] = c end
      assert.equal(9, #cols)
      assert.equal("third\\tpage", cols[9])
    end)

    it("passes --lang and --set to the provider", function()
      local _, _, status = ocr_cmd(("-p picwish --lang English,Digits --set format=pdf -o %s --set poll_interval=0.01 %s/a.png")
                                   :format(dir, dir), env)
      assert.equal(0, status)
      local form = emu:requests("/api/tasks/document/ocr", "POST")[1].form
      assert.equal("English,Digits", form.language[1].value)
      assert.equal("pdf", form.format[1].value)
      local pdfs = {}
      for _, f in ipairs(F.list(dir)) do if f:match("%.pdf$") then pdfs[#pdfs + 1] = f end end
      assert.equal(1, #pdfs, "the provider's file is saved")
      assert.is_false(F.exists(dir .. "/a.txt"), "and no text copy beside it")
    end)
  end)

  local describe_tess = have_tesseract and describe or function(name) pending(name .. " (ocr.tesseract not built)") end
  describe_tess("with the default provider (tesseract, offline)", function()
    it("reads the sample page", function()
      local out, _, status = ocr_cmd("examples/sample.png")
      assert.equal(0, status)
      local rate = cer.rate(F.read("examples/sample.txt"), out)
      assert.is_true(rate <= 0.02, ("CER %.4f"):format(rate))
    end)

    it("prints TSV boxes for every line", function()
      local out, _, status = ocr_cmd("--tsv examples/sample.png")
      assert.equal(0, status)
      local rows = lines_of(out)
      assert.equal("input", table.remove(rows, 1):match("^[^\t]+"))
      for _, row in ipairs(rows) do
        local x, y, w, h = row:match("^[^\t]*\t%d+\t1\t(%d+)\t(%d+)\t(%d+)\t(%d+)\t0%.%d+\t")
        assert.truthy(x and y and w and h, row)
      end
    end)

    it("reads an http URL with the default provider, which takes no URL: the client fetches it", function()
      local http = require("helpers.emulator").start("httptest")
      finally(function() http:stop() end)
      local out, err, status = ocr_cmd(("'%s/files/examples/sample.png'"):format(http.url))
      assert.equal(0, status, err)
      local rate = cer.rate(F.read("examples/sample.txt"), out)
      assert.is_true(rate <= 0.02, ("CER %.4f"):format(rate))
      local _, err404, status404 = ocr_cmd(("'%s/files/examples/none.png'"):format(http.url))
      assert.equal(1, status404)
      assert.truthy(err404:find("invalid_input: the input URL answered HTTP 404", 1, true), err404)
    end)

    it("says in one line on stderr that an image is cut short, libpng and libjpeg silent", function()
      local dir = F.tmpdir()
      finally(function() F.rmdir(dir) end)
      for _, src in ipairs{ "examples/sample.png", "spec/fixtures/jpeg/page1.jpg" } do
        local data = F.read(src)
        local cut = F.write(dir .. "/cut-" .. src:match("[^/]+$"), data:sub(1, math.floor(#data / 2)))
        local out, err, status = ocr_cmd(cut)
        assert.equal(1, status)
        assert.equal("", out)
        assert.equal(1, #lines_of(err), err)
        assert.truthy(err:find("invalid_input: %u+ image is truncated"), err)
      end
    end)

    it("saves each result in -o DIR as it prints it, never over an existing file", function()
      local dir = F.tmpdir()
      finally(function() F.rmdir(dir) end)
      local out, err, status = ocr_cmd(("-q -o %s examples/sample.png spec/fixtures/tiff/pages.tif"):format(dir))
      assert.equal(0, status, err)
      assert.equal(("2 inputs: 2 ok, 0 failed; 2 files in %s\n"):format(dir), out)
      assert.same({ "pages.txt", "sample.txt" }, F.list(dir))
      assert.equal((ocr_cmd("examples/sample.png")), F.read(dir .. "/sample.txt"), "the file holds what is printed")
      assert.truthy(F.read(dir .. "/pages.txt"):find("\n\f\n", 1, true), "pages apart as printed")
      assert.truthy(err:find("examples/sample.png: saved " .. dir .. "/sample.txt\n", 1, true), err)
      local _, _, again = ocr_cmd(("-q --json -o %s examples/sample.png"):format(dir))
      assert.equal(0, again)
      _, _, again = ocr_cmd(("-q -o %s examples/sample.png"):format(dir))
      assert.equal(0, again)
      assert.same({ "pages.txt", "sample-1.txt", "sample.json", "sample.txt" }, F.list(dir))
      assert.equal("examples/sample.png", cjson.decode(F.read(dir .. "/sample.json")).input)
      assert.equal(F.read(dir .. "/sample.txt"), F.read(dir .. "/sample-1.txt"))
    end)

    it("fills the bar on a terminal as one long input's pages are read", function()
      local T = require "helpers.tiff"
      local tif = os.tmpname()
      finally(function() os.remove(tif) end)
      assert(F.write(tif, T.fax(12)))   -- a page takes ~0.1 s: long enough to watch
      local cmd = "lua5.4 bin/ocr -j 1 --set threads=1 " .. tif .. " >/dev/null"
      local p = require("helpers.shell").popen("script -qec '" .. cmd .. "' /dev/null")
      local tty = p:read("*a")
      p:close()
      local fills = {}
      for hashes in tty:gmatch("\r%[(#*)%.+%] 0/1") do fills[#fills + 1] = #hashes end
      local grew = 0
      for i = 2, #fills do
        assert.truthy(fills[i] >= fills[i - 1], "fills up, never back")
        if fills[i] > fills[i - 1] then grew = grew + 1 end
      end
      assert.truthy(grew >= 2 and fills[#fills] < 30, "the bar grew while the one input was read: " .. tty)
      assert.truthy(tty:find("\r%[" .. ("#"):rep(30) .. "%] 1/1"), tty)
    end)

    it("prints every page of a multi-page TIFF: a form-feed line between pages, the page in TSV", function()
      local tif = "spec/fixtures/tiff/pages.tif"
      local out, _, status = ocr_cmd(tif)
      assert.equal(0, status)
      local pages = {}
      for page in (out .. "\f\n"):gmatch("(.-)\n\f\n") do pages[#pages + 1] = page end
      assert.equal(2, #pages, out)
      for i, page in ipairs(pages) do
        local rate = cer.rate(F.read(("spec/fixtures/tiff/page%d.txt"):format(i)), page)
        assert.is_true(rate <= 0.02, ("page %d: CER %.4f"):format(i, rate))
      end
      local tsv = lines_of((ocr_cmd("--tsv " .. tif)))
      local on_page = {}
      table.remove(tsv, 1)
      for i, row in ipairs(tsv) do on_page[i] = tonumber(row:match("^[^\t]*\t%d+\t(%d+)\t")) end
      assert.same({ 1, 2, 2 }, on_page)
      local json = cjson.decode((ocr_cmd("--json " .. tif)))
      assert.equal(2, json.pages)
      assert.equal(2, json.lines[#json.lines].page)
    end)
  end)

  -- A user's own providers, from Lua modules the command requires: one records what it receives
  -- (its text says which file, which language and which options it got), and with `--set
  -- save=NAME` it saves a file of its own in the input's output folder, as a vendor's PDF would be.
  describe("with providers from the user's Lua modules", function()
    local mods, env
    local MOD = [[
local ocr = require "ocr"
local files = require "ocr.files"
ocr.register(%q, {
  offline = true, credentials = {}, sources = { "file" },
  options = { save = "string" },
  languages = { codes = { en = "English", ["zh-Hans"] = "Chinese" }, native = { "Klingon" }, join = "+" },
  recognize = function(ctx, input)
    if input.file:match("fail%%.png$") then return nil, ocr.error{ kind = "invalid_input", message = "refused" } end
    local saved = {}
    if input.save and input.output then
      local path = assert(files.safe_path(input.output, input.save))
      local f = assert(io.open(path, "wb"))
      f:write("saved for ", input.file)
      f:close()
      saved[1] = { path = path, format = "pdf" }
    end
    return ocr.result.new{ text = "file=" .. input.file .. " language=" .. tostring(ctx:language(input))
                                  .. " odd=a/b c\\d e\\/f", files = saved }
  end,
})
]]
    setup(function()
      mods = F.tmpdir()
      F.write(mods .. "/mine.lua", MOD:format("mine"))
      F.write(mods .. "/theirs.lua", MOD:format("theirs"))
      F.write(mods .. "/broken.lua", "local x = \n error('broken on purpose')\n")
      env = ("LUA_PATH='%s/?.lua;'\"${LUA_PATH:-;}\""):format(mods)
    end)
    teardown(function() F.rmdir(mods) end)

    -- A folder of inputs (fake images: the provider only reads the name).
    local function inputs(names)
      local dir = F.tmpdir()
      for _, n in ipairs(names) do F.write(dir .. "/" .. n, F.image(n)) end
      return dir
    end

    it("loads providers with --require (repeatable) and OCR_PROVIDERS before -p is resolved", function()
      local dir = inputs{ "a.png" }
      finally(function() F.rmdir(dir) end)
      local out, err, status = ocr_cmd("--require mine -p mine " .. dir .. "/a.png", env)
      assert.equal(0, status, err)
      assert.equal("file=" .. dir .. "/a.png language=nil odd=a/b c\\d e\\/f\n", out)
      out, err, status = ocr_cmd("--require=mine --require theirs -p theirs " .. dir .. "/a.png", env)
      assert.equal(0, status, err)
      out, err, status = ocr_cmd("-p theirs " .. dir .. "/a.png", env .. " OCR_PROVIDERS=mine,theirs")
      assert.equal(0, status, err)
      assert.truthy(out:find("file=", 1, true))
      out = ocr_cmd("providers", env .. " OCR_PROVIDERS=' mine , theirs,'")
      assert.truthy(out:find("\nmine       no credentials\n", 1, true), out)
      assert.truthy(out:find("\ntheirs     no credentials\n", 1, true), out)
      _, err, status = ocr_cmd("-p mine " .. dir .. "/a.png", env)
      assert.equal(2, status, "not loaded without --require")
      assert.truthy(err:find("unknown provider 'mine'", 1, true), err)
    end)

    it("stops with a usage error naming a module that does not load", function()
      local _, err, status = ocr_cmd("--require nosuchmodule -p mine x.png", env)
      assert.equal(2, status)
      assert.equal("ocr: module 'nosuchmodule' (--require) failed to load: module 'nosuchmodule' not found"
                   .. " (is it on LUA_PATH?)\n", err)
      _, err, status = ocr_cmd("-p mine x.png", env .. " OCR_PROVIDERS=mine,broken")
      assert.equal(2, status)
      assert.truthy(err:find("^ocr: module 'broken' %(OCR_PROVIDERS%) failed to load: .*broken%.lua:2: broken on purpose\n$"), err)
      local out
      out, _, status = ocr_cmd("--help", env .. " OCR_PROVIDERS=broken")
      assert.equal(0, status, "--help needs no module")
      assert.truthy(out:find("usage: ocr", 1, true))
    end)

    it("passes --lang to every provider as the input option language", function()
      local dir = inputs{ "a.png" }
      finally(function() F.rmdir(dir) end)
      for lang, native in pairs{ ["zh-Hans"] = "Chinese", ["en,zh-Hans"] = "English+Chinese", Klingon = "Klingon",
                                 zh_hans = "Chinese" } do
        local out, err, status = ocr_cmd(("--require mine -p mine --lang %s %s/a.png"):format(lang, dir), env)
        assert.equal(0, status, err)
        assert.truthy(out:find(" language=" .. native .. " ", 1, true), out)
      end
      local _, err, status = ocr_cmd(("--require mine -p mine --lang xx-Latn %s/a.png"):format(dir), env)
      assert.equal(2, status, "a language the provider does not read is a usage error")
      assert.truthy(err:find('language "xx-Latn" is not one mine reads', 1, true), err)
    end)

    it("reads a folder: its images and PDFs, sorted by name, not recursive, no symlinks", function()
      local dir = inputs{ "b.jpg", "a.PNG", "B.pdf", "c.txt", ".hidden.png", "d.TIFF", "e.webp", "f.pnm",
                          "g.bmp", "h.gif", "i.jpeg", "j.tif", "noext" }
      finally(function() F.rmdir(dir) end)
      F.mkdir(dir .. "/sub")
      F.mkdir(dir .. "/folder.png")
      F.write(dir .. "/sub/deep.png", F.image("deep"))
      require("helpers.shell").execute(("ln -s b.jpg '%s/link.png'; ln -s sub/deep.png '%s/deeplink.png'"):format(dir, dir))
      local out, err, status = ocr_cmd("--require mine -p mine -q " .. dir .. "/ " .. dir .. "/a.PNG", env)
      assert.equal(0, status, err)
      local got = {}
      for name in out:gmatch("==> (%S+) <==") do got[#got + 1] = name end
      local want = {}
      for i, n in ipairs{ "B.pdf", "a.PNG", "b.jpg", "d.TIFF", "e.webp", "f.pnm", "g.bmp", "h.gif", "i.jpeg", "j.tif" } do
        want[i] = dir .. "/" .. n
      end
      want[#want + 1] = dir .. "/a.PNG"   -- a file named after the folder stays an input of its own
      assert.same(want, got)
      local empty = inputs{ "notes.txt" }
      finally(function() F.rmdir(empty) end)
      local _, eerr, estatus = ocr_cmd("--require mine -p mine " .. empty, env)
      assert.equal(2, estatus)
      assert.equal("ocr: folder " .. empty .. " holds no images or PDFs\n", eerr)
    end)

    it("prints --json without \\/ escapes, real backslashes kept", function()
      local dir = inputs{ "a.png" }
      finally(function() F.rmdir(dir) end)
      local out, err, status = ocr_cmd("--require mine -p mine --json " .. dir .. "/a.png", env)
      assert.equal(0, status, err)
      assert.is_nil(out:find("\\/", 1, true) and out:find("[^\\]\\/"), out)
      assert.truthy(out:find('"input":"' .. dir .. '/a.png"', 1, true), out)
      assert.truthy(out:find([[odd=a/b c\\d e\\/f"]], 1, true), out)
      local doc = cjson.decode(out)
      assert.equal("file=" .. dir .. "/a.png language=nil odd=a/b c\\d e\\/f", doc.text)
      assert.equal("mine", doc.provider)
    end)

    it("with -o creates the folder, saves there and prints only a summary; failures on stderr", function()
      local dir = inputs{ "a.png", "b.png", "fail.png" }
      local out_dir = dir .. "/out/nested/"
      finally(function() F.rmdir(dir) end)
      local out, err, status = ocr_cmd(("--require mine -p mine -q --tsv -o %s %s/a.png %s/fail.png %s/b.png")
                                       :format(out_dir, dir, dir, dir), env)
      assert.equal(1, status)
      assert.equal("3 inputs: 2 ok, 1 failed; 2 files in " .. out_dir .. "\n", out)
      assert.truthy(err:find("fail%.png: [^\n]*invalid_input: refused\n"), err)
      assert.same({ "a.tsv", "b.tsv" }, F.list(out_dir))
      local rows = lines_of(F.read(out_dir .. "a.tsv"))
      assert.equal(2, #rows, "a header, then the line")
      assert.equal("input\tline\tpage\tx\ty\tw\th\tconfidence\ttext", rows[1])
      out, _, status = ocr_cmd(("--require mine -p mine -q --set save=report.pdf -o %s %s/a.png")
                               :format(out_dir, dir), env)
      assert.equal(0, status)
      assert.equal("1 input: 1 ok, 0 failed; 1 file in " .. out_dir .. "\n", out)
      assert.same({ "a.tsv", "b.tsv", "report.pdf" }, F.list(out_dir), "the provider's file, no text copy")
      F.write(dir .. "/file", "")
      local _, ferr, fstatus = ocr_cmd(("--require mine -p mine -o %s/file/x %s/a.png"):format(dir, dir), env)
      assert.equal(2, fstatus)
      assert.truthy(ferr:find("^ocr: cannot create the output folder "), ferr)
    end)

    it("keeps existing files under -o (NAME-1), and replaces them with --overwrite", function()
      local dir = inputs{ "a.png" }
      local sub = inputs{ "a.png" }
      finally(function() F.rmdir(dir) F.rmdir(sub) end)
      local out_dir = dir .. "/out"
      local run = "--require mine -p mine -q -o " .. out_dir .. " --set save=report.pdf "
      F.mkdir(out_dir)
      F.write(out_dir .. "/report.pdf", "old")
      F.write(dir .. "/outside", "outside")
      require("helpers.shell").execute(("ln -s ../outside '%s/report-1.pdf'"):format(out_dir))
      local _, err, status = ocr_cmd(run .. dir .. "/a.png", env)
      assert.equal(0, status, err)
      assert.same({ "report-1.pdf", "report-2.pdf", "report.pdf" }, F.list(out_dir))
      assert.equal("old", F.read(out_dir .. "/report.pdf"))
      -- --overwrite: report.pdf replaced; in one run, two inputs of one name both kept
      _, err, status = ocr_cmd(run .. "--overwrite " .. dir .. "/a.png " .. sub .. "/a.png", env)
      assert.equal(0, status, err)
      assert.same({ "report-1.pdf", "report-2.pdf", "report-3.pdf", "report.pdf" }, F.list(out_dir), "no staging left")
      assert.equal("saved for " .. dir .. "/a.png", F.read(out_dir .. "/report.pdf"))
      assert.equal("saved for " .. sub .. "/a.png", F.read(out_dir .. "/report-3.pdf"))
      assert.equal("outside", F.read(dir .. "/outside"), "a symlink is never written through")
      -- the command's own result files alike
      local text_run = "--require mine -p mine -q -o " .. out_dir .. " " .. dir .. "/a.png"
      F.write(out_dir .. "/a.txt", "old")
      assert.equal(0, select(3, ocr_cmd(text_run, env)))
      assert.equal("old", F.read(out_dir .. "/a.txt"))
      assert.truthy(F.read(out_dir .. "/a-1.txt"):find("^file="))
      assert.equal(0, select(3, ocr_cmd(text_run:gsub("%-q", "-q --overwrite"), env)))
      assert.truthy(F.read(out_dir .. "/a.txt"):find("^file="))
      assert.is_nil(F.read(out_dir .. "/a-2.txt"))
      local _, oerr, ostatus = ocr_cmd("--overwrite " .. dir .. "/a.png", env)
      assert.equal(2, ostatus)
      assert.truthy(oerr:find("--overwrite needs -o DIR", 1, true))
    end)
  end)

  -- In-process, with a provider that counts how many of its jobs are in flight at once: -j N
  -- runs N inputs concurrently through the runtime, and the results still print in input order.
  it("runs -j N inputs at once and prints them in input order", function()
    local ocr = require "ocr"
    local cli = require "ocr.cli"
    local runtime = require "ocr.runtime"
    local active, peak = 0, 0
    ocr.register("cli_jobs_spec", {
      offline = true, credentials = {}, sources = { "file" },
      recognize = function(_, input)
        active = active + 1
        peak = math.max(peak, active)
        runtime.sleep(0.02)
        active = active - 1
        return ocr.result.new{ text = input.file }
      end,
    })
    local names = { "examples/sample.png", "examples/sample.txt", "examples/picwish.lua", "examples/setup.lua",
                    "examples/uapi.lua", "examples/tencent.lua" }
    for _, j in ipairs{ 1, 3 } do
      peak = 0
      local buf = {}
      local sink = { write = function(self, ...) for _, v in ipairs{ ... } do buf[#buf + 1] = v end return self end }
      local args = { "-p", "cli_jobs_spec", "-q", "-j", tostring(j) }
      for _, n in ipairs(names) do args[#args + 1] = n end
      assert.equal(0, cli.main(args, ocr, { stdout = sink, stderr = sink }))
      assert.equal(j, peak, "-j " .. j)
      local printed = {}
      for name in table.concat(buf):gmatch("==> (%S+) <==") do printed[#printed + 1] = name end
      assert.same(names, printed)
    end
  end)

  -- In-process (cli.main with its streams replaced): a provider that put what JSON cannot carry
  -- into its lines (a NaN, a function, a sparse table) still gets its result printed.
  it("prints --json for a result holding values JSON cannot carry", function()
    local ocr = require "ocr"
    local cli = require "ocr.cli"
    ocr.register("cli_odd_spec", {
      endpoint = "http://127.0.0.1:9", credentials = {}, sources = { "file" },
      recognize = function()
        return ocr.result.new{ lines = { { text = "kept", page = 0 / 0, extra = { [1] = 1, [20] = 2 },
                                           hook = print, score = 1 / 0, tags = { "a", "b" } } },
                               files = { { url = "http://h.test/r.txt", size = 0 / 0, open = io.open } } }
      end,
    })
    local function sink()
      local buf = {}
      return { write = function(self, ...) for _, v in ipairs{ ... } do buf[#buf + 1] = tostring(v) end return self end,
               text = function() return table.concat(buf) end }
    end
    local out, err = sink(), sink()
    local status = cli.main({ "-p", "cli_odd_spec", "--json", "examples/sample.png" }, ocr,
                            { stdout = out, stderr = err })
    assert.equal(0, status, err.text())
    local doc = cjson.decode(out.text())
    assert.equal("kept", doc.lines[1].text)
    assert.same({ "a", "b" }, doc.lines[1].tags)
    assert.is_nil(doc.lines[1].page)
    assert.is_nil(doc.lines[1].hook)
    assert.is_nil(doc.lines[1].score)
    assert.equal("http://h.test/r.txt", doc.files[1].url)
    assert.is_nil(doc.files[1].size)
  end)

  describe("pipelines: several providers, --min-confidence, --hedge-after, --cache, --budget", function()
    local pic, uapi, dir, env
    setup(function()
      pic, dir = rig.start("picwish", { { "p.png", "pipeline page" } })
      uapi = require("helpers.emulator").start("uapi")
      env = ("OCR_PICWISH_API_KEY=test-picwish-key OCR_PICWISH_ENDPOINT=%s OCR_UAPI_API_KEY=test-uapi-key "
             .. "OCR_UAPI_ENDPOINT=%s XDG_CACHE_HOME=%s/xdg"):format(pic.url, uapi.url, dir)
    end)
    teardown(function()
      uapi:stop()
      rig.stop(pic, dir)
    end)
    before_each(function()
      pic:reset()
      pic:config{ qps = 0 }
      uapi:reset()
    end)
    local FAST = "--set poll_interval=0.01 --set rate=false --set retries=0"
    local CREATE, UAPI = "/api/tasks/document/ocr", "/api/v1/image/ocr"

    it("-p a,b falls back to the next provider and says so in one summary line", function()
      uapi:fault{ action = "status", path = UAPI, status = 402, times = 1,
                  body = '{"code":"INSUFFICIENT_CREDITS","message":"no credits"}' }
      local out, err, status = ocr_cmd(("-p uapi,picwish %s %s/p.png"):format(FAST, dir), env)
      assert.equal(0, status, err)
      assert.equal("pipeline page\n", out)
      assert.equal(1, #uapi:requests(UAPI, "POST"))
      assert.equal(1, #pic:requests(CREATE, "POST"))
      assert.truthy(err:find("ocr: 1 done (0 cached), 0 failed; 1 credits spent", 1, true), err)
    end)

    it("--min-confidence escalates while the confidence is too low", function()
      local out, err, status = ocr_cmd(("-p picwish,uapi --min-confidence 0.5 --json %s %s/p.png"):format(FAST, dir), env)
      assert.equal(0, status, err)
      local res = cjson.decode(out)
      assert.equal("uapi", res.provider)   -- (picwish's text file has no confidence)
      assert.is_true(res.accepted)
      assert.equal(1, #pic:requests(CREATE, "POST"))
      assert.equal(1, #uapi:requests(UAPI, "POST"))
    end)

    it("--hedge-after races the providers: one answer, in order", function()
      local out, err, status = ocr_cmd(("-p uapi,picwish --hedge-after 5 %s %s/p.png"):format(FAST, dir), env)
      assert.equal(0, status, err)
      assert.equal("pipeline page\n", out)
      assert.equal(1, #uapi:requests(UAPI, "POST"))
      assert.equal(0, #pic:requests(CREATE, "POST"))   -- (uapi answered long before 5 s)
    end)

    it("--cache reads an input once: the second run sends nothing", function()
      local _, err, status = ocr_cmd(("-p picwish --cache %s %s/p.png"):format(FAST, dir), env)
      assert.equal(0, status, err)
      local out, err2, status2 = ocr_cmd(("-p picwish --cache %s %s/p.png"):format(FAST, dir), env)
      assert.equal(0, status2, err2)
      assert.equal("pipeline page\n", out)
      assert.equal(1, #pic:requests(CREATE, "POST"))
      assert.truthy(err2:find("1 done (1 cached), 0 failed; 0 credits spent", 1, true), err2)
      assert.truthy(#assert(require("ocr.core").list_dir(dir .. "/xdg/lua-ocr")) > 0)
    end)

    it("--budget refuses a billed request before it is sent", function()
      local _, err, status = ocr_cmd(("-p picwish --budget 0 %s %s/p.png"):format(FAST, dir), env)
      assert.equal(1, status)
      assert.truthy(err:find("quota", 1, true), err)
      assert.equal(0, #pic:requests(CREATE, "POST"))
    end)

    it("--store redis://: the cache, the budget and the rate limit in Redis, shared by runs", function()
      local R = require "helpers.redis"
      assert(not R.missing(), R.missing())
      local secret = "cli-secret-" .. os.time()
      local redis = R.start{ password = secret }
      finally(function() redis.stop() end)
      local store = ("--store redis://:%s@127.0.0.1:%d/2"):format(secret, redis.port)
      local args = ("-p picwish --cache %s --budget 5 --set poll_interval=0.01 --set retries=0 %s/p.png")
                   :format(store, dir)
      local out, err, status = ocr_cmd(args, env)
      assert.equal(0, status, err)
      assert.equal("pipeline page\n", out)
      out, err, status = ocr_cmd(args, env)
      assert.equal(0, status, err)
      assert.equal("pipeline page\n", out)
      assert.equal(1, #pic:requests(CREATE, "POST"))
      assert.truthy(err:find("1 done (1 cached)", 1, true), err)
      local c = redis.conn()
      c:call("SELECT", 2)
      local keys = c:call("KEYS", "ocr:*")
      local kinds = {}
      for _, k in ipairs(keys) do kinds[#kinds + 1] = k:match("^ocr:(%a+)") or k end
      table.sort(kinds)
      -- the cached result, the run's budget count, the bucket of the picwish key
      assert.truthy(table.concat(kinds, " "):find("rate", 1, true), table.concat(keys, " "))
      assert.is_true(#keys >= 3, table.concat(keys, " "))
      assert.falsy(err:find(secret, 1, true))
      -- Redis gone: the run still works on its own, says so once, and never the password.
      redis.kill()
      pic:reset()
      out, err, status = ocr_cmd(args, env)
      assert.equal(0, status, err)
      assert.equal("pipeline page\n", out)
      local _, n = err:gsub("unreachable", "")
      assert.equal(1, n, err)
      assert.falsy(err:find(secret, 1, true))
      -- a store that is not Redis is a usage error
      out, err, status = ocr_cmd("--store memcached://x " .. dir .. "/p.png", env)
      assert.equal(2, status)
      assert.truthy(err:find("redis://", 1, true), err)
    end)

    it("refuses flags that do not go together", function()
      local _, err, status = ocr_cmd("-p uapi,picwish --min-confidence 0.5 --hedge-after 1 x.png", env)
      assert.equal(2, status)
      assert.truthy(err:find("do not go together", 1, true), err)
      _, err, status = ocr_cmd("--hedge-after 1 x.png", env)
      assert.equal(2, status)
      _, err, status = ocr_cmd("-p uapi,,picwish x.png", env)
      assert.equal(2, status)
    end)
  end)
end)
