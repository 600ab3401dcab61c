--- Tesseract, on this machine: no key, no network. The C module ocr.tesseract runs recognition on
-- worker threads; each worker loads the engine of the languages a job asks for (on that worker,
-- never on the caller's thread) and keeps a few (`max_engines`). A job waits on the pool through
-- the scheduler (`ctx:await`), so `client:submit` + `ocr.step(0)` never block the caller while a
-- model loads or an image is recognised, and several images are recognised in parallel.
-- `client:warm()` has the workers load the client's language ahead of the first image.
local core = require "ocr.core"
local result = require "ocr.result"
local files = require "ocr.files"

-- Pools are shared by every client with the same engine settings, so creating clients again
-- (a CLI run, a test) never reloads a model; the language is not among them: it is chosen per
-- job. A pool made before a fork (an OpenResty master warmed up in init_by_lua) is not usable in
-- the child: the child makes its own.
local pools = {}

local PACKAGES = "libtesseract-dev libleptonica-dev tesseract-ocr-eng"
local PDF_PACKAGE = "libpoppler-glib-dev"

-- The formats libtesseract's renderers write, and their files' extensions.
local FORMATS = { "txt", "hocr", "alto", "tsv", "pdf" }
local EXTENSION = { hocr = "hocr", alto = "xml", tsv = "tsv", pdf = "pdf" }

local MAX_RANGES, MAX_PAGE = 1024, 1000000

-- "1-3,6" (page numbers from 1, ranges low-high, no spaces: ocr.strings.is_page_ranges) into ascending,
-- disjoint {first, last, ...} pairs, overlaps merged; nil when malformed. Linear: one split on
-- commas, anchored patterns, at most MAX_RANGES items of 7 digits.
local function page_ranges(s)
  if #s > MAX_RANGES * 16 then return nil end
  local list = {}
  for item in (s .. ","):gmatch("([^,]*),") do
    local a, b = item:match("^(%d+)%-(%d+)$")
    if not a then a = item:match("^(%d+)$") b = a end
    if not a or #a > 7 or #b > 7 or #list >= MAX_RANGES then return nil end
    a, b = tonumber(a), tonumber(b)
    if a < 1 or b < a or b > MAX_PAGE then return nil end
    list[#list + 1] = { a, b }
  end
  table.sort(list, function(x, y) return x[1] < y[1] end)
  local flat = {}
  for _, r in ipairs(list) do
    local n = #flat
    if n > 0 and r[1] <= flat[n] + 1 then
      if r[2] > flat[n] then flat[n] = r[2] end
    else
      flat[n + 1], flat[n + 2] = r[1], r[2]
    end
  end
  return flat
end

-- Whether the input is a PDF: "%PDF" within its first 1024 bytes (where PDF readers look for the
-- header; poppler then decides whether it can read the rest; tp_is_pdf in C says the same).
local function is_pdf(input)
  local head = input.data and input.data:sub(1, 1024)
  if input.file then
    local f = io.open(input.file, "rb")
    head = f and f:read(1024)
    if f then f:close() end
  end
  return head ~= nil and head:find("%PDF", 1, true) ~= nil
end

-- The PDF renderer (ocr.tesseract_pdf, which loads poppler), required the first time a PDF
-- comes in; nil, err when it was not built.
local function pdf_renderer()
  local ok, mod = pcall(require, "ocr.tesseract_pdf")
  if ok then return mod.renderer end
  return nil, { kind = "unsupported", message = "PDF input needs the ocr.tesseract_pdf module, "
    .. "built when poppler is installed: apt-get install " .. PDF_PACKAGE .. ", then run make" }
end

-- Where a format's file goes: its name in input.output (the input's name with the format's
-- extension) is reserved at once (files.safe_path: created exclusively, never through a
-- symlink, "-1" added when taken); libtesseract's renderer, which opens its file by path,
-- writes into a new folder of this job's own beside it, and the file is renamed over the
-- reservation once complete. Returns the stage, or nil, err.
local function stage_output(input, format)
  local base = files.name_for(input, "input")
  local ext = files.extension(base)
  local stem = ext and base:sub(1, #base - #ext - 1) or base
  local final, err = files.safe_path(input.output, (stem ~= "" and stem or "input") .. "." .. EXTENSION[format])
  if not final then return nil, err end
  local dir = final:sub(1, #final - #files.basename(final))   -- (input.output, with its "/")
  for _ = 1, 10 do
    local folder = ("%s.ocr-tesseract-%s"):format(dir, core.hex(core.random_bytes(6)))
    local ok, merr, why = core.mkdir(folder)
    if ok then
      return { final = final, folder = folder, base = folder .. "/out",
               file = folder .. "/out." .. EXTENSION[format],
               -- (the hOCR renderer writes its title unescaped into XML)
               title = (base:gsub("[<>&\"']", "_")) }
    end
    if why ~= "exists" then
      os.remove(final)
      return nil, merr
    end
  end
  os.remove(final)
  return nil, "cannot create a folder in " .. input.output
end

-- Moves the complete file over its reserved name (done = true), or removes it and the
-- reservation; the job's folder goes either way.
local function unstage(stage, done)
  local ok, err = true, nil
  if done then ok, err = os.rename(stage.file, stage.final) end
  if not done or not ok then
    os.remove(stage.file)
    os.remove(stage.final)
  end
  os.remove(stage.folder)
  return ok, err
end

-- BCP 47 codes onto tesseract's model names (one Debian package each: tesseract-ocr-<name>
-- with "_" as "-"). zh-CN, zh-SG read as zh-Hans and zh-TW, zh-HK as zh-Hant (ocr.language).
local CODES = {
  af = "afr", am = "amh", ar = "ara", as = "asm", az = "aze", ["az-Cyrl"] = "aze_cyrl",
  be = "bel", bn = "ben", bo = "bod", bs = "bos", br = "bre", bg = "bul", ca = "cat",
  ceb = "ceb", cs = "ces", ["zh-Hans"] = "chi_sim", ["zh-Hant"] = "chi_tra", chr = "chr",
  co = "cos", cy = "cym", da = "dan", de = "deu", dv = "div", dz = "dzo", el = "ell",
  en = "eng", eo = "epo", et = "est", eu = "eus", fo = "fao", fa = "fas", fil = "fil",
  fi = "fin", fr = "fra", fy = "fry", gd = "gla", ga = "gle", gl = "glg", grc = "grc",
  gu = "guj", ht = "hat", he = "heb", hi = "hin", hr = "hrv", hu = "hun", hy = "hye",
  iu = "iku", id = "ind", is = "isl", it = "ita", jv = "jav", ja = "jpn", kn = "kan",
  ka = "kat", kk = "kaz", km = "khm", ky = "kir", ku = "kmr", kmr = "kmr", ko = "kor",
  lo = "lao", la = "lat", lv = "lav", lt = "lit", lb = "ltz", ml = "mal", mr = "mar",
  mk = "mkd", mt = "mlt", mn = "mon", mi = "mri", ms = "msa", my = "mya", ne = "nep",
  nl = "nld", no = "nor", nb = "nor", oc = "oci", ["or"] = "ori", pa = "pan", pl = "pol",
  pt = "por", ps = "pus", qu = "que", ro = "ron", ru = "rus", sa = "san", si = "sin",
  sk = "slk", sl = "slv", sd = "snd", es = "spa", sq = "sqi", sr = "srp",
  ["sr-Latn"] = "srp_latn", su = "sun", sw = "swa", sv = "swe", syr = "syr", ta = "tam",
  tt = "tat", te = "tel", tg = "tgk", th = "tha", ti = "tir", to = "ton", tr = "tur",
  ug = "uig", uk = "ukr", ur = "urd", uz = "uzb", ["uz-Cyrl"] = "uzb_cyrl", vi = "vie",
  yi = "yid", yo = "yor",
}

-- A tesseract name as it is: "eng", "chi_sim+eng", "script/Latin" (a model file's name under
-- the tessdata directory). Two letters alone are a BCP 47 code this table lacks, not a model.
local function native(name)
  for part in (name .. "+"):gmatch("([^+]*)%+") do
    if not part:match("^[%w_]+$") and not part:match("^[%w_]+/[%w_]+$") then return false end
    if #part < 3 then return false end
  end
  return true
end

local function pool_for(client)
  local o = client.options
  local threads = o.threads or math.min(4, core.cpu_count())
  local key = table.concat({ o.datapath or "", o.psm or "", o.oem or "", threads, o.max_engines or "",
                             o.max_pixels or "", o.max_pages or "", o.page_timeout or "" }, "|")
  if pools[key] and pools[key]:usable() then return pools[key] end
  local ok, tess = pcall(require, "ocr.tesseract")
  if not ok then
    return nil, { kind = "unsupported",
      message = "the ocr.tesseract module is not built: install " .. PACKAGES .. " and run make" }
  end
  local pool, err = tess.pool{ datapath = o.datapath, psm = o.psm, oem = o.oem, threads = threads,
                               max_engines = o.max_engines, max_pixels = o.max_pixels,
                               max_pages = o.max_pages, page_timeout = o.page_timeout }
  if not pool then return nil, err end
  pools[key] = pool
  return pool
end

-- Progress events while the pool works: "queued" until a worker takes the image, then
-- "processing" with the percentage tesseract reports (over all pages of a TIFF) and the pages
-- read so far; an event only when something changed.
local function progress_reporter(ctx)
  if not ctx:progress_wanted() then return nil end
  local last_stage, last_percent, last_done
  local function report(percent, done, pages, state)
    if not percent or state == "finished" then return end   -- ("done" follows from the client)
    local stage = state == "queued" and "queued" or "processing"
    if stage == last_stage and percent == last_percent and done == last_done then return end
    last_stage, last_percent, last_done = stage, percent, done
    ctx:progress(stage, percent, { pages = pages, pages_done = done })
  end
  report(0, 0, 1, "queued")
  return report
end

return {
  offline = true,
  default = true,   -- (the command's provider without -p: offline, no key)
  cost = { credits = 0, unit = "credit" },   -- (local: free)
  version = function()
    local ok, tess = pcall(require, "ocr.tesseract")
    return ok and ("tesseract " .. tostring(tess._VERSION)) or nil
  end,
  credentials = {},
  languages = { codes = CODES, native = native, join = "+", default = "eng" },
  client_options = { datapath = "string", psm = "integer", oem = "integer", threads = "integer",
                     max_engines = "integer", max_pixels = "number", max_pages = "integer",
                     page_timeout = "number" },
  sources = { "file", "data" },
  -- PDF inputs: dpi, pages, password, text_layer (ignored for images); format: what
  -- libtesseract's renderers write into `output` besides the result.
  options = { format = FORMATS, dpi = "integer", pages = "string", password = "string",
              text_layer = { "ocr", "keep" } },
  cache_key = { "psm", "oem", "datapath", "format", "dpi", "pages", "text_layer" },   -- (ocr.cache)

  validate = function(input)
    if input.pages ~= nil and not page_ranges(input.pages) then
      return ("pages %q must look like 1-3,6 (page numbers from 1 to %d, ranges low-high, at most %d)")
             :format(input.pages, MAX_PAGE, MAX_RANGES)
    end
    local dpi = input.dpi
    if dpi ~= nil and not (dpi >= 30 and dpi <= 1200 and dpi == math.floor(dpi)) then
      return "dpi must be a whole number from 30 to 1200"
    end
    local format = input.format or "txt"
    if format ~= "txt" and not input.output then
      return ("format %q writes a file: pass output = dir to save it"):format(format)
    end
    if input.text_layer == "keep" and format ~= "txt" then
      return ("text_layer = \"keep\" goes with format = \"txt\" only: libtesseract's %s renderer "
              .. "writes what the engine recognised"):format(format)
    end
  end,
  _pool = pool_for,   -- (the client's pool, or nil, err: for specs and benchmarks to read its stats)

  -- Out-of-range engine settings are programmer mistakes: ocr.new raises.
  init = function(client)
    -- Loading the module (libtesseract, ~10 ms) belongs to setup, not to a game's first step;
    -- a module not built is reported by the first recognize or warm.
    pcall(require, "ocr.tesseract")
    local o = client.options
    assert(o.threads == nil or (o.threads >= 1 and o.threads <= 64), "threads must be between 1 and 64")
    assert(o.max_engines == nil or (o.max_engines >= 1 and o.max_engines <= 16),
           "max_engines must be between 1 and 16")
    assert(o.psm == nil or (o.psm >= 0 and o.psm <= 13), "psm must be between 0 and 13")
    assert(o.oem == nil or (o.oem >= 0 and o.oem <= 3), "oem must be between 0 and 3")
    assert(o.page_timeout == nil or (o.page_timeout > 0 and o.page_timeout <= 1e6),
           "page_timeout must be seconds above 0 (up to 1e6)")
  end,

  -- client:warm(): every worker loads the engine of opts.language (native, resolved by the
  -- client) before its next image. Returns at once unless opts.wait (true, or seconds).
  warm = function(client, opts)
    local pool, err = pool_for(client)
    if not pool then return nil, err end
    local wait = opts.wait
    if wait == true then wait = math.huge elseif wait == false then wait = nil end
    return pool:warm(opts.language, wait)
  end,

  recognize = function(ctx, input)
    local pool, err = pool_for(ctx.client)
    if not pool then return nil, ctx:error{ kind = err.kind, message = err.message } end
    local job = { path = input.file, data = input.data, languages = ctx:language(input) }
    if is_pdf(input) then
      local renderer, perr = pdf_renderer()
      if not renderer then return nil, ctx:error{ kind = perr.kind, message = perr.message, retryable = false } end
      job.pdf, job.dpi, job.password, job.text_layer = renderer, input.dpi, input.password, input.text_layer
      job.pages = input.pages and page_ranges(input.pages)
    end
    local format, stage = input.format or "txt", nil
    if format ~= "txt" then
      local why
      stage, why = stage_output(input, format)
      if not stage then return nil, ctx:error{ kind = "invalid_input", message = why } end
      job.format, job.output, job.title = format, stage.base, stage.title
    end
    local id, serr = pool:submit(job)
    if not id then
      if stage then unstage(stage, false) end
      return nil, ctx:error{ kind = serr.kind, message = serr.message }
    end
    local res, rerr = ctx:await(pool, id, progress_reporter(ctx))
    if stage then
      -- (a job the scheduler stopped waiting for may still be writing: cancelled, it stops at
      -- its next word, and its file is let go with its folder)
      if not res then pool:cancel(id) end
      local moved, merr = unstage(stage, res ~= nil)
      if res and not moved then
        return nil, ctx:error{ kind = "invalid_input", message = "cannot save " .. stage.final .. ": " .. tostring(merr) }
      end
    end
    if not res then
      local e = ctx:error{ kind = rerr.kind, message = rerr.message }
      if e.kind == "timeout" then e.retryable = false end   -- (over page_timeout: it would be again)
      return nil, e
    end
    -- A multi-page TIFF gives every page: texts joined by "\f", lines with their page. psm 1 and
    -- 12 detect the orientation: `angle`, clockwise degrees, as vendors report it (the first page's).
    local first = res.pages[1] or {}
    return result.new{ text = res.text, lines = res.lines, language = res.language, pages = #res.pages,
                       angle = first.angle, files = stage and { { path = stage.final, format = format } } or nil,
                       raw = { width = first.width, height = first.height, pages = res.pages } }
  end,
}
