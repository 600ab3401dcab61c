--- Benchmark 9 (issue 22): a scanned PDF to a searchable PDF, pages per second.
--   (a) `ocr -f pdf -j 2 -o DIR in.pdf` (bin/ocr: the tesseract provider, its default 2 workers
--       on 2 cores, poppler rendering at 300 dpi, libtesseract's PDF renderer)
--   (b) `ocrmypdf --jobs 2 --output-type pdf --optimize 0 in.pdf out.pdf`, OMP_THREAD_LIMIT=1
--       (its fastest sensible setting here: two tesseract processes, each single-threaded)
--   (c) `pdftoppm -r 300 -gray` then `tesseract PAGE OUT pdf` per page, two at a time
--       (`xargs -P 2`, OMP_THREAD_LIMIT=1), the pages joined by `qpdf --empty --pages`
-- The input: N pages of examples/sample.png at 300 dpi (img2pdf). Every side runs once untimed
-- first; then each round runs a, b, c in turn (the machine's speed drifts: alternated, never one block per side); a side's pages/s is
-- its median over the rounds, each ratio the median of the per-round ratios. Every output is
-- checked: N pages, each page's text layer (pdftotext) within 2% CER of the sample's text.
-- What the sides share and cannot save: recognising the pages (the same libtesseract, the same
-- model, psm 3, oem 3). What (a) saves: a process and a model load per page, ghostscript's
-- rasterising and the PDF surgery of (b); (c) pays a process and a model load per page too.
local M = {}

local cer = require "helpers.cer"
local read_all = require("helpers.files").read

local function execute(cmd)
  local a = os.execute(cmd)
  return a == true or a == 0
end

local function on_path(prog) return execute("command -v " .. prog .. " >/dev/null 2>&1") end

local function capture(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local s = p:read("*a")
  p:close()
  return s
end

--- ctx: {lib=, row=, verdict=, quick=, cpath=, lua=}.
function M.run(ctx)
  local lib = ctx.lib
  local log, median, now, q = lib.log, lib.median, lib.now, lib.sh_quote
  local B = "9. a scanned PDF to a searchable PDF"
  for _, prog in ipairs{ "img2pdf", "ocrmypdf", "pdftoppm", "tesseract", "qpdf", "pdftotext", "xargs" } do
    if not on_path(prog) then
      log("9: skipped: no %s", prog)
      return ctx.row(B, "skipped", "no `" .. prog .. "` on PATH (Debian: img2pdf, ocrmypdf, poppler-utils, tesseract-ocr, qpdf)")
    end
  end
  if not pcall(require, "ocr.tesseract_pdf") then
    log("9: skipped: ocr.tesseract_pdf not built")
    return ctx.row(B, "skipped", "ocr.tesseract_pdf is not built (libpoppler-glib-dev)")
  end
  local N = ctx.quick and 6 or 20
  local ROUNDS = ctx.quick and 1 or 3
  local dir = lib.tmpdir()
  local input = dir .. "/scan.pdf"
  local sample = lib.ROOT .. "/examples/sample.png"
  local list = {}
  for i = 1, N do list[i] = q(sample) end
  assert(execute(("img2pdf %s -o %s 2>/dev/null"):format(table.concat(list, " "), q(input))), "img2pdf failed")
  local known = read_all(lib.ROOT .. "/examples/sample.txt")

  local ocr_cmd = ("cd %s && LUA_PATH=%s LUA_CPATH=%s %s bin/ocr -q -f pdf -j 2 -o %s %s >/dev/null 2>&1")
    :format(q(lib.ROOT), q(lib.ROOT .. "/lua/?.lua;;"), q(ctx.cpath .. "/?.so;;"), q(ctx.lua),
            q(dir .. "/a"), q(input))
  local mypdf_cmd = ("OMP_THREAD_LIMIT=1 ocrmypdf -q --jobs 2 --output-type pdf --optimize 0 %s %s >/dev/null 2>&1")
    :format(q(input), q(dir .. "/b.pdf"))
  local pages_cmd = ("cd %s && rm -rf c && mkdir c && pdftoppm -r 300 -gray %s c/p && cd c && ls p-*.pgm | "
    .. "OMP_THREAD_LIMIT=1 xargs -P 2 -I{} tesseract {} {} --psm 3 --oem 3 -l eng pdf >/dev/null 2>&1 && "
    .. "qpdf --empty --pages $(ls p-*.pgm.pdf) -- ../c.pdf")
    :format(q(dir), q(input))

  -- Every page of a side's output must carry the sample's text.
  local function check(path, side)
    local info = capture("pdfinfo " .. q(path))
    local pages = tonumber(info:match("Pages:%s+(%d+)"))
    if pages ~= N then error(("benchmark 9: %s wrote %s pages, not %d"):format(side, tostring(pages), N), 0) end
    local worst = 0
    for i = 1, N, math.max(1, math.floor(N / 4)) do
      local text = capture(("pdftotext -f %d -l %d %s -"):format(i, i, q(path)))
      worst = math.max(worst, cer.rate(known, text))
    end
    if worst > 0.02 then error(("benchmark 9: %s's text layer is off: CER %.3f"):format(side, worst), 0) end
    return worst
  end

  local sides = {
    { name = "a", run = function()
        execute("rm -rf " .. q(dir .. "/a") .. " && mkdir " .. q(dir .. "/a"))
        return execute(ocr_cmd), dir .. "/a/scan.pdf" end },
    { name = "b", run = function() os.remove(dir .. "/b.pdf") return execute(mypdf_cmd), dir .. "/b.pdf" end },
    { name = "c", run = function() os.remove(dir .. "/c.pdf") return execute(pages_cmd), dir .. "/c.pdf" end },
  }
  local t, cers = { a = {}, b = {}, c = {} }, {}
  local r_ab, r_ac = {}, {}
  -- Warm-up, untimed: each side once, so that no side pays for a cold page cache (its model,
  -- its programs) in the first round.
  for _, side in ipairs(sides) do
    if not side.run() then error("benchmark 9: side " .. side.name .. " failed", 0) end
  end
  for r = 1, ROUNDS do
    for _, side in ipairs(sides) do
      local t0 = now()
      local ok, path = side.run()
      t[side.name][r] = now() - t0
      if not ok then error("benchmark 9: side " .. side.name .. " failed", 0) end
      cers[side.name] = check(path, side.name)
    end
    r_ab[r], r_ac[r] = t.b[r] / t.a[r], t.c[r] / t.a[r]
    log("9: round %d: (a) %.2f pages/s, (b) %.2f pages/s, (c) %.2f pages/s", r,
        N / t.a[r], N / t.b[r], N / t.c[r])
  end
  local function rate(ts) local m = median(ts) return ("%.2f pages/s (%.2f s for %d pages)"):format(N / m, m, N) end
  local function ratio(xs)
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(xs) do lo, hi = math.min(lo, x), math.max(hi, x) end
    return median(xs), ("**%.3f×** (rounds %.2f–%.2f)"):format(median(xs), lo, hi)
  end
  ctx.row(B, ("%d pages of examples/sample.png at 300 dpi (img2pdf, %d KB); %d round(s), a, b, c alternated; `%s`")
            :format(N, math.floor(#(read_all(input) or "") / 1024), ROUNDS, capture("ocrmypdf --version"):match("[^\n]*")),
          ("every output: %d pages, text layer within 2%% CER of the sample (worst: a %.3f, b %.3f, c %.3f)")
            :format(N, cers.a, cers.b, cers.c))
  ctx.row(B, "(a) `ocr -f pdf -j 2 -o DIR scan.pdf` (2 workers, poppler at 300 dpi, libtesseract's PDF renderer; process start and model load included)", rate(t.a))
  ctx.row(B, "(b) `OMP_THREAD_LIMIT=1 ocrmypdf --jobs 2 --output-type pdf --optimize 0`", rate(t.b))
  ctx.row(B, "(c) `pdftoppm -r 300 -gray` + `tesseract PAGE OUT pdf` per page (`xargs -P 2`, OMP_THREAD_LIMIT=1) + `qpdf` to join", rate(t.c))
  local ab, ab_s = ratio(r_ab)
  ctx.row(B, "(a)/(b): vs ocrmypdf", ab_s, "≥ 1.5×", ctx.verdict(ab >= 1.5))
  local _, ac_s = ratio(r_ac)
  ctx.row(B, "(a)/(c): vs pdftoppm + one tesseract per page", ac_s)
end

return M
