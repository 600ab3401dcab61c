--- Benchmark 5 (issue 6): local OCR throughput, images per second on 20 page images.
--   (a)  provider `tesseract` (ocr.tesseract), `threads = 1`, through `client:recognize_all`
--   (b)  the `tesseract` command spawned per image, one at a time, OMP_THREAD_LIMIT=1 (its best
--        configuration here: compare (b0)), same languages, psm, oem and tessdata directory
--   (b2) the same commands two at a time (`xargs -P 2`): what (c) competes with on 2 cores
--   (b0) the command as installed (OpenMP left on, its default), on the first chunk of each
--        round: what a user who spawns `tesseract IMG OUT` gets without tuning it
--   (c)  provider `tesseract` with `threads = 2`
--   (d)  one 20-page TIFF (a fax: spec/fixtures/tiff/pages.tif's two pages alternated), read by
--        `threads = 1` and by `threads = 2`: the pages of one image spread over the workers
--   (e)  a game's first `ocr.step(0)` after `client:submit` on a new client, cold (no model loaded
--        yet) and after `client:warm{ wait = true }`, against the steps while that page is read
-- Each round gives every side the 20 images in 5 chunks of 4, alternated a, b, b2, c, a, b, ...:
-- the machine's speed drifts over seconds and a side timed as one 12 s block would catch a
-- different machine than the next. A side's time in a round is the sum of its chunks; every
-- ratio is the median of the per-round ratios. Each round also times the command on a 1×1 image
-- (process start + model load: the fixed cost the module saves) and the module on 1×1 images
-- (its own cost per image), which say what (a)/(b) can be.
-- Every answer is checked (a known line of the page in the text) and the module's text is
-- compared with the command's: both sides must have done the same work.
local M = {}

local ENG = { image = "examples/sample.png", key = "Offline OCR for Lua" }
local CHI = { image = "examples/sample-chi.png", key = "离线文字识别" }

-- Whitespace differs between renderers (and chi_sim puts spaces between words): compare without.
local function squash(s) return (s:gsub("%s+", "")) end

local read_all = require("helpers.files").read

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function copy(from, to)
  write_file(to, assert(read_all(from), "cannot read " .. from))
end

-- os.execute's success on Lua 5.4 (true) and 5.1 (0).
local function execute(cmd)
  local a = os.execute(cmd)
  return a == true or a == 0
end

local function on_path(prog)
  return execute("command -v " .. prog .. " >/dev/null 2>&1")
end

local function first_line(cmd)
  local p = io.popen(cmd .. " 2>&1", "r")
  if not p then return nil end
  local s = p:read("*l")
  p:close()
  return s
end

-- Why the benchmark cannot run here, or nil.
local function unavailable(langs)
  local ok, tess = pcall(require, "ocr.tesseract")
  if not ok then return "the ocr.tesseract module is not built (libtesseract-dev, libleptonica-dev)" end
  if not on_path("tesseract") then return "no `tesseract` command on PATH (Debian package tesseract-ocr)" end
  if not on_path("xargs") then return "no `xargs` on PATH" end
  local names = tess.languages(tess.datapath()) or {}
  local have = {}
  for _, n in ipairs(names) do have[n] = true end
  for lang in langs:gmatch("[^+]+") do
    if not have[lang] then return ("no %s language data (tesseract-ocr-%s)"):format(lang, (lang:gsub("_", "-"))) end
  end
  return nil, tess
end

--- ctx: {ocr=, lib=, row=, verdict=, notes=, check_all=, quick=, mixed=}.
function M.run(ctx)
  local lib, ocr = ctx.lib, ctx.ocr
  local log, median, now = lib.log, lib.median, lib.now
  local B = "5. local OCR: `tesseract` provider vs the `tesseract` command"
  local N = ctx.quick and 8 or 20
  local CHUNK = 4                         -- images per side before the next side runs
  local ROUNDS = ctx.quick and 1 or 3
  local langs = ctx.mixed and "eng+chi_sim" or "eng"
  local pages = ctx.mixed and { ENG, CHI } or { ENG }
  local PSM = 3

  local why, tess = unavailable(langs)
  if why then
    log("5: skipped: %s", why)
    ctx.row(B, "skipped", why)
    return
  end
  local datapath = tess.datapath()

  -- The images: copies under one temporary directory, read by every side from the same files.
  local dir = lib.tmpdir()
  -- Mixed pages go E C C E in every chunk, so two workers (or two commands) finish a chunk together.
  local order = ctx.mixed and { 1, 2, 2, 1 } or { 1 }
  local images, keys, names = {}, {}, {}
  for i = 1, N do
    local page = pages[order[(i - 1) % #order + 1]]
    names[i] = ("img%02d.png"):format(i)
    images[i] = dir .. "/" .. names[i]
    keys[i] = squash(page.key)
    copy(lib.ROOT .. "/" .. page.image, images[i])
  end
  local one = dir .. "/one.pgm"              -- a 1×1 white PGM: start and model load, no text
  write_file(one, "P5\n1 1\n255\n\255")
  local ones = {}
  for i = 1, N do ones[i] = { file = one } end

  -- The command, in its best configuration, with the module's settings. xargs execs tesseract
  -- directly; each writes imgNN.png.txt next to its image.
  local q = lib.sh_quote
  local tess_args = ("--psm %d --oem 3 -l %s%s"):format(PSM, langs,
    datapath and (" --tessdata-dir " .. q(datapath)) or "")
  local function xargs_cmd(par, lo, hi, as_installed)
    local list = {}
    for i = lo, hi do list[#list + 1] = q(names[i]) end
    local env = as_installed and "env -u OMP_THREAD_LIMIT" or "OMP_THREAD_LIMIT=1"
    return ("cd %s && printf '%%s\\n' %s | %s xargs -P %d -I{} tesseract {} {} %s 2>%s")
      :format(q(dir), table.concat(list, " "), env, par, tess_args, q(dir .. "/stderr.log"))
  end
  local one_cmd = ("OMP_THREAD_LIMIT=1 exec tesseract %s %s %s 2>/dev/null")
    :format(q(one), q(dir .. "/one"), tess_args)

  -- Images lo..hi through the command, par at a time; the time, and the texts into `texts`.
  local function run_command(par, lo, hi, texts, as_installed)
    for i = lo, hi do os.remove(images[i] .. ".txt") end
    local t0 = now()
    local ok = execute(xargs_cmd(par, lo, hi, as_installed))
    local dt = now() - t0
    if not ok then
      error("benchmark 5: tesseract command failed: " .. tostring(read_all(dir .. "/stderr.log")), 0)
    end
    for i = lo, hi do
      texts[i] = squash(read_all(images[i] .. ".txt") or "")
      if not texts[i]:find(keys[i], 1, true) then
        error(("benchmark 5: the command's text for image %d lacks %q"):format(i, keys[i]), 0)
      end
    end
    return dt
  end

  local function run_module(client, inputs)
    local t0, c0 = now(), os.clock()
    local out = client:recognize_all(inputs)        -- default concurrency (8)
    local dt, cpu = now() - t0, os.clock() - c0
    ctx.check_all(out, #inputs, "benchmark 5")
    return dt, cpu, out
  end

  local opts = { language = langs, psm = PSM, oem = 3, datapath = datapath }
  local function client_with(threads)
    local o = { threads = threads }
    for k, v in pairs(opts) do o[k] = v end
    return ocr.new("tesseract", o)
  end
  local inputs = {}
  for i = 1, N do inputs[i] = { file = images[i] } end

  -- Warm-up: each pool loads its model(s) and recognises a page on every worker; the command
  -- runs once so its model is in the page cache too.
  local c1, c2 = client_with(1), client_with(2)
  assert(c2:warm{ wait = true })   -- (a worker loads a model when a job or warm() needs it)
  local t0 = now()
  run_module(c1, { inputs[1] })
  log("5: threads = 1 pool: model load + first page %.2f s", now() - t0)
  run_module(c2, { inputs[1], inputs[2] or inputs[1] })
  run_module(c1, ones)
  if not execute(one_cmd) then error("benchmark 5: `tesseract` fails on a 1×1 image", 0) end

  local ta, tb, tb2, tc, cpu_a, cpu_c = {}, {}, {}, {}, {}, {}
  local r_ab, r_ca, r_cb2, mod_one = {}, {}, {}, {}
  local tb0, r_ab0, b0_n = {}, {}, 0       -- (b0) on each round's first chunk, and (a) on it
  local fixed, rec, cmd_rest, bound = {}, {}, {}, {}   -- per round: F, R, (b) per page − F, (R + F) / R
  local same, compared = 0, 0
  -- The fixed cost is sampled once per chunk, in the same minutes as the rest of the round.
  local function sample_fixed(into)
    local s = now()
    if not execute(one_cmd) then error("benchmark 5: `tesseract` fails on a 1×1 image", 0) end
    into[#into + 1] = now() - s
  end
  for r = 1, ROUNDS do
    local f_round = {}
    ta[r], tb[r], tb2[r], tc[r], cpu_a[r], cpu_c[r] = 0, 0, 0, 0, 0, 0
    local out_a, texts_b, texts_b2 = {}, {}, {}
    for lo = 1, N, CHUNK do
      local hi = math.min(N, lo + CHUNK - 1)
      local chunk = {}
      for i = lo, hi do chunk[#chunk + 1] = inputs[i] end
      local dt, cpu, out = run_module(c1, chunk)
      ta[r], cpu_a[r] = ta[r] + dt, cpu_a[r] + cpu
      for k, o in ipairs(out) do out_a[lo + k - 1] = o end
      if lo == 1 then
        tb0[r] = run_command(1, lo, hi, {}, true)
        r_ab0[r], b0_n = tb0[r] / dt, hi - lo + 1
      end
      tb[r] = tb[r] + run_command(1, lo, hi, texts_b)
      tb2[r] = tb2[r] + run_command(2, lo, hi, texts_b2)
      sample_fixed(f_round)
      dt, cpu = run_module(c2, chunk)
      tc[r], cpu_c[r] = tc[r] + dt, cpu_c[r] + cpu
    end
    mod_one[r] = run_module(c1, ones) / N
    for i = 1, N do
      local text = squash(out_a[i].res.text or "")
      if not text:find(keys[i], 1, true) then
        error(("benchmark 5: the module's text for image %d lacks %q"):format(i, keys[i]), 0)
      end
      compared = compared + 1
      if text == texts_b[i] then same = same + 1 end
    end
    r_ab[r], r_ca[r], r_cb2[r] = tb[r] / ta[r], ta[r] / tc[r], tb2[r] / tc[r]
    fixed[r], rec[r] = median(f_round), ta[r] / N
    cmd_rest[r], bound[r] = tb[r] / N - fixed[r], (rec[r] + fixed[r]) / rec[r]
    log("5: round %d: (a) %.2f img/s, (b) %.2f img/s, (b2) %.2f img/s, (c) %.2f img/s; (a)/(b) %.3f, (c)/(a) %.3f; 1×1 command %.0f ms",
        r, N / ta[r], N / tb[r], N / tb2[r], N / tc[r], r_ab[r], r_ca[r], fixed[r] * 1000)
  end

  -- (d): one multi-page image, 1 worker vs 2, alternated within each round.
  local T = require "helpers.tiff"
  local FAX_PAGES = ctx.quick and 8 or 20
  local fax = dir .. "/fax.tif"
  write_file(fax, T.fax(FAX_PAGES, lib.ROOT))
  local fax_key = squash("This is the second page of that file.")
  local td1, td2, r_d = {}, {}, {}
  local fax_text
  local function read_fax(client)
    local t = now()
    local res, err = client:recognize{ file = fax }
    t = now() - t
    if not res then error("benchmark 5: the fax: " .. tostring(err), 0) end
    local _, seen = squash(res.text):gsub(fax_key, "")
    if res.pages ~= FAX_PAGES or seen ~= FAX_PAGES / 2 or (fax_text and res.text ~= fax_text) then
      error(("benchmark 5: the fax read wrong: %s pages, page 2's line %d times"):format(tostring(res.pages), seen), 0)
    end
    fax_text = res.text
    return t
  end
  -- The command reads every page of a TIFF too, one after another.
  local fax_cmd = ("OMP_THREAD_LIMIT=1 exec tesseract %s %s %s 2>/dev/null")
    :format(q(fax), q(dir .. "/fax"), tess_args)
  local function command_fax()
    os.remove(dir .. "/fax.txt")
    local t = now()
    local ok = execute(fax_cmd)
    t = now() - t
    local _, seen = squash(read_all(dir .. "/fax.txt") or ""):gsub(fax_key, "")
    if not ok or seen ~= FAX_PAGES / 2 then error("benchmark 5: the command read the fax wrong", 0) end
    return t
  end
  local tdb, r_db = {}, {}
  read_fax(c2)   -- warm: both workers have read a page of it
  for r = 1, ROUNDS do
    td1[r] = read_fax(c1)
    tdb[r] = command_fax()
    td2[r] = read_fax(c2)
    r_d[r], r_db[r] = td1[r] / td2[r], tdb[r] / td2[r]
  end
  log("5: (d) fax of %d pages: 1 worker %.2f s, 2 workers %.2f s, the command %.2f s", FAX_PAGES,
      median(td1), median(td2), median(tdb))

  local function rate(ts) local t = median(ts) return ("%.2f images/s (%.3f s/image)"):format(N / t, t / N) end
  local images_what = ctx.mixed
    and ("%d page images: examples/sample.png (2250×984) and sample-chi.png (2250×912) alternated, copied"):format(N)
    or ("%d page images: copies of examples/sample.png (2250×984, 8-bit gray, ~100 words)"):format(N)
  local cmd_version = first_line("tesseract --version") or "?"
  ctx.row(B, ("%s; `-l %s`, psm %d, oem 3, same tessdata dir on every side; libtesseract %s (module), %s (command); %d round(s), each giving every side the %d images in chunks of %d alternated a, b, b2, c, a, …")
            :format(images_what, langs, PSM, tess._VERSION, cmd_version, ROUNDS, N, CHUNK),
          ("medians over the rounds; each side's text checked; module text = command text (whitespace aside) for %d of %d images")
            :format(same, compared))
  ctx.row(B, "(a) `client:recognize_all` (concurrency 8), `threads = 1`: one model, loaded and warmed on one page before timing",
          rate(ta) .. (", CPU %.3f s/image"):format(median(cpu_a) / N))
  ctx.row(B, "(b) `OMP_THREAD_LIMIT=1 tesseract IMG OUT` per image, one at a time (`xargs -P 1`, output to a file)",
          rate(tb))
  ctx.row(B, "(b2) the same commands two at a time (`xargs -P 2`)", rate(tb2))
  do
    local t = median(tb0)
    ctx.row(B, ("(b0) `tesseract IMG OUT` as installed (OpenMP left on: its default), one at a time; the first %d images of each round")
              :format(b0_n),
            ("%.2f images/s (%.3f s/image)"):format(b0_n / t, t / b0_n))
  end
  ctx.row(B, "(c) `client:recognize_all` (concurrency 8), `threads = 2`, warmed on both workers",
          rate(tc) .. (", CPU %.3f s/image"):format(median(cpu_c) / N))
  -- A ratio: its median over the rounds, and the range, since rounds on a shared machine differ.
  local function ratio(xs)
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(xs) do lo, hi = math.min(lo, x), math.max(hi, x) end
    return median(xs), ("**%.3f×** (rounds %.2f–%.2f)"):format(median(xs), lo, hi)
  end
  local ab, ab_s = ratio(r_ab)
  local ca, ca_s = ratio(r_ca)
  local _, cb2_s = ratio(r_cb2)
  ctx.row(B, "(a)/(b): module vs one command per image", ab_s, "≥ 1.5×", ctx.verdict(ab >= 1.5))
  ctx.row(B, "(c)/(a): 2 threads vs 1", ca_s, "≥ 1.6×", ctx.verdict(ca >= 1.6))
  ctx.row(B, "(c)/(b2): 2 threads vs 2 commands at a time", cb2_s)
  ctx.row(B, ("(d) one %d-page TIFF (a fax: spec/fixtures/tiff/pages.tif's pages, 2250×372 and 2250×444, alternated), `client:recognize`, `threads = 1` / `threads = 2`")
              :format(FAX_PAGES),
          ("%.2f / %.2f pages/s"):format(FAX_PAGES / median(td1), FAX_PAGES / median(td2)))
  ctx.row(B, "(db) `OMP_THREAD_LIMIT=1 tesseract FAX OUT`: the command reads the pages in order",
          ("%.2f pages/s"):format(FAX_PAGES / median(tdb)))
  local _, d_s = ratio(r_d)
  ctx.row(B, "(d2)/(d1): one image's pages on 2 workers vs 1", d_s)
  local _, db_s = ratio(r_db)
  ctx.row(B, "(d2)/(db): 2 workers vs the command on the one file", db_s)
  local _, ab0_s = ratio(r_ab0)
  ctx.row(B, "(a)/(b0): module vs the command as installed, on the same images (the module keeps OpenMP out of its workers; the target above is judged against (b), the command's best configuration)",
          ab0_s)
  -- What (a)/(b) can be: the command pays the same recognition plus fixed costs per image.
  local F, R = median(fixed), median(rec)
  local extra = {}
  for r = 1, ROUNDS do extra[r] = cmd_rest[r] - rec[r] end
  local X = median(extra)
  local _, bound_s = ratio(bound)
  ctx.row(B, "why (a)/(b) is what it is: F = the command's fixed cost per image (on a 1×1 image: process start + model load), R = the module's time per page; the module saves F, so (a)/(b) ≈ (R + F) / R",
          ("F = %.0f ms (one run per chunk, %d per round); R = %.0f ms/page; (b) per page − F − R = %+.0f ms%s; module on a 1×1 image %.1f ms/image; (R + F) / R = %s")
            :format(F * 1000, math.ceil(N / CHUNK), R * 1000, X * 1000,
                    math.abs(X) < 0.1 * R and " (≈ 0: the command recognises as fast as the module)" or "",
                    median(mod_one) * 1000, bound_s))
  M.first_step(ctx, opts, B, ratio)
  ctx.notes[#ctx.notes + 1] = ("Benchmark 5: a `tesseract` command costs F = %.0f ms before any page (start, model load); recognising one of these pages takes R = %.0f ms, the same engine call on both sides (same text, (b) per page − F − R = %+.0f ms). Keeping the model loaded saves F, not recognition, so (a)/(b) ≈ (R + F) / R; 1.5× needs F ≥ R / 2, i.e. pages recognised in under %.0f ms (smaller pages) or a model slower to load%s. F, R and (b) are paired within each round.")
    :format(F * 1000, R * 1000, X * 1000, 2 * F * 1000,
            ctx.mixed and "" or " (eng+chi_sim: `--tess-mixed`)")
end

--- (e): the first `ocr.step(0)` after `client:submit`, as a game's loop runs it. Each round makes
-- two new clients, each with a pool of its own (`max_pages` differs: pools are shared by clients
-- with equal settings), `threads = 1`: one cold, one warmed with `client:warm{ wait = true }`.
-- Each reads the page twice: the first job's first step (the pool made in it, when cold) against
-- the second job's first step (steady state: pool and model there), in the same round.
function M.first_step(ctx, opts, B, ratio)
  local ocr, lib = ctx.ocr, ctx.lib
  local now, median = lib.now, lib.median
  local core = require "ocr.core"
  local def = require "ocr.providers.tesseract"
  local ROUNDS = ctx.quick and 2 or 7
  local key = squash(ENG.key)
  local first, steady, poll, latency = {}, {}, {}, {}
  for _, mode in ipairs{ "cold", "warm" } do first[mode], steady[mode], latency[mode] = {}, {}, {} end
  local r_cold, r_warm = {}, {}
  -- One job: its first step's time, the median of its other steps, submit to result.
  local function read_page(client)
    local t0 = now()
    local job = client:submit{ file = ENG.image }
    local s = now()
    ocr.step(0)
    local first_t = now() - s
    local steps = {}
    while not job:done() do
      core.sleep(0.002)   -- (a frame's other work)
      s = now()
      ocr.step(0)
      steps[#steps + 1] = now() - s
    end
    local res, err = job:result()
    if not res or not squash(res.text):find(key, 1, true) then
      error("benchmark 5 (e): the page read wrong: " .. tostring(err), 0)
    end
    return first_t, median(steps), now() - t0
  end
  for r = 1, ROUNDS do
    for _, mode in ipairs{ "cold", "warm" } do
      local o = { threads = 1, max_pages = 4000 + 2 * r + (mode == "warm" and 1 or 0) }
      for k, v in pairs(opts) do o[k] = v end
      local client = ocr.new("tesseract", o)
      if mode == "warm" then assert(client:warm{ wait = true }) end
      local f, p, l = read_page(client)
      first[mode][r], latency[mode][r] = f, l
      local f2, p2 = read_page(client)
      steady[mode][r], poll[#poll + 1], poll[#poll + 2] = f2, p, p2
      local pool = def._pool(client)
      local st = pool:stats()
      if st.caller_loads ~= 0 or st.loads ~= 1 then
        error(("benchmark 5 (e): %d loads, %d on the caller's thread"):format(st.loads, st.caller_loads), 0)
      end
      pool:close()
    end
    r_cold[r] = first.cold[r] / steady.cold[r]
    r_warm[r] = first.warm[r] / steady.warm[r]
    lib.log("5: (e) round %d: first step cold %.3f ms (steady %.3f), warm %.3f ms (steady %.3f); page in %.0f / %.0f ms",
            r, first.cold[r] * 1000, steady.cold[r] * 1000, first.warm[r] * 1000, steady.warm[r] * 1000,
            latency.cold[r] * 1000, latency.warm[r] * 1000)
  end
  local function ms(xs) return ("%.3f ms"):format(median(xs) * 1000) end
  local cold, cold_s = ratio(r_cold)
  local warm, warm_s = ratio(r_warm)
  ctx.row(B, ("(e) a game's first `ocr.step(0)` after `client:submit` on a new client (`threads = 1`, a pool of its own), %d rounds: cold (pool made in that step, no model loaded: a worker loads it) / after `client:warm{ wait = true }` / steady (a later job's first step, same client); the step polling a page in flight")
              :format(ROUNDS),
          ("cold %s, warm %s, steady %s; polling %s (it was 199–241 ms when the step loaded the model)")
            :format(ms(first.cold), ms(first.warm), ms(steady.warm), ms(poll)))
  ctx.row(B, "(e) first step / steady step: cold; after warm()", cold_s .. "; " .. warm_s,
          "≤ 5×; ≤ 2×", ctx.verdict(cold <= 5 and warm <= 2))
  ctx.row(B, "(e) submit to result of the first page: cold (the worker loads the model first) / after warm()",
          ("%s / %s"):format(ms(latency.cold), ms(latency.warm)))
end

return M
