--- Tesseract, on this machine: no key, no network. The C module ocr.tesseract runs recognition on
-- worker threads, each with its own engine whose model is loaded once; a job waits on the pool
-- through the scheduler (`ctx:await`), so `client:submit` + `ocr.step(0)` never block the caller
-- while an image is recognised, and several images are recognised in parallel.
local core = require "ocr.core"
local result = require "ocr.result"

-- Pools are shared by every client with the same engine settings, so creating clients again
-- (a CLI run, a test) never reloads a model. A pool made before a fork (an OpenResty master
-- warmed up in init_by_lua) is not usable in the child: the child makes its own.
local pools = {}

local PACKAGES = "libtesseract-dev libleptonica-dev tesseract-ocr-eng"

local function pool_for(ctx)
  local o = ctx.options
  local threads = o.threads or math.min(4, core.cpu_count())
  local key = table.concat({ o.languages or "eng", o.datapath or "", o.psm or "", o.oem or "", threads,
                             o.max_pixels or "", o.max_pages or "", o.page_timeout or "" }, "|")
  if pools[key] and pools[key]:usable() then return pools[key] end
  local ok, tess = pcall(require, "ocr.tesseract")
  if not ok then
    return nil, ctx:error{ kind = "unsupported",
      message = "the ocr.tesseract module is not built: install " .. PACKAGES .. " and run make" }
  end
  local pool, err = tess.pool{ languages = o.languages or "eng", datapath = o.datapath, psm = o.psm,
                               oem = o.oem, threads = threads, max_pixels = o.max_pixels,
                               max_pages = o.max_pages, page_timeout = o.page_timeout }
  if not pool then return nil, ctx:error{ kind = err.kind, message = err.message } end
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
  credentials = {},
  client_options = { languages = "string", datapath = "string", psm = "integer", oem = "integer",
                     threads = "integer", max_pixels = "number", max_pages = "integer",
                     page_timeout = "number" },
  sources = { "file", "data" },
  options = {},

  -- Out-of-range engine settings are programmer mistakes: ocr.new raises.
  init = function(client)
    local o = client.options
    assert(o.threads == nil or (o.threads >= 1 and o.threads <= 64), "threads must be between 1 and 64")
    assert(o.psm == nil or (o.psm >= 0 and o.psm <= 13), "psm must be between 0 and 13")
    assert(o.oem == nil or (o.oem >= 0 and o.oem <= 3), "oem must be between 0 and 3")
    assert(o.page_timeout == nil or (o.page_timeout > 0 and o.page_timeout <= 1e6),
           "page_timeout must be seconds above 0 (up to 1e6)")
  end,

  recognize = function(ctx, input)
    local pool, err = pool_for(ctx)
    if not pool then return nil, err end
    local id, serr = pool:submit(input.file and { path = input.file } or { data = input.data })
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
