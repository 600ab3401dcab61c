--- Tesseract, on this machine: no key, no network. The C module ocr.tesseract runs recognition on
-- worker threads; each worker loads the engine of the languages a job asks for (on that worker,
-- never on the caller's thread) and keeps a few (`max_engines`). A job waits on the pool through
-- the scheduler (`ctx:await`), so `client:submit` + `ocr.step(0)` never block the caller while a
-- model loads or an image is recognised, and several images are recognised in parallel.
-- `client:warm()` has the workers load the client's language ahead of the first image.
local core = require "ocr.core"
local result = require "ocr.result"

-- Pools are shared by every client with the same engine settings, so creating clients again
-- (a CLI run, a test) never reloads a model; the language is not among them: it is chosen per
-- job. A pool made before a fork (an OpenResty master warmed up in init_by_lua) is not usable in
-- the child: the child makes its own.
local pools = {}

local PACKAGES = "libtesseract-dev libleptonica-dev tesseract-ocr-eng"

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
  options = {},
  cache_key = { "psm", "oem", "datapath" },   -- (ocr.cache: client options that change a result)
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
    local id, serr = pool:submit{ path = input.file, data = input.data, languages = ctx:language(input) }
    if not id then return nil, ctx:error{ kind = serr.kind, message = serr.message } end
    local res, rerr = ctx:await(pool, id, progress_reporter(ctx))
    if not res then
      local e = ctx:error{ kind = rerr.kind, message = rerr.message }
      if e.kind == "timeout" then e.retryable = false end   -- (over page_timeout: it would be again)
      return nil, e
    end
    -- A multi-page TIFF gives every page: texts joined by "\f", lines with their page. psm 1 and
    -- 12 detect the orientation: `angle`, clockwise degrees, as vendors report it (the first page's).
    local first = res.pages[1] or {}
    return result.new{ text = res.text, lines = res.lines, language = res.language, pages = #res.pages,
                       angle = first.angle,
                       raw = { width = first.width, height = first.height, pages = res.pages } }
  end,
}
