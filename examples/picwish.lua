-- OCR a file (or an http(s) URL) with PicWish.
--   OCR_PICWISH_API_KEY=... lua5.4 examples/picwish.lua scan.png [format output_dir]
-- The text goes to stdout; other formats (pdf, docx, xlsx, pptx) are saved in output_dir.
local ex = dofile((arg[0]:match("^(.*)/[^/]+$") or ".") .. "/setup.lua")
local ocr = require "ocr"

local source, format, output = arg[1], arg[2], arg[3]
if not source then
  io.stderr:write("usage: examples/picwish.lua FILE|URL [txt|pdf|docx|xlsx|pptx OUTPUT_DIR]\n")
  os.exit(2)
end

local client = ocr.new("picwish", {
  on_progress = function(ev) io.stderr:write(("[%s] %s%%\n"):format(ev.stage, ev.progress or "?")) end,
})
local input = { format = format, output = output }
if source:match("^https?://") then input.url = source else input.file = source end

local res, err = client:recognize(input)
if not res and err.kind == "timeout" and err.task_id then
  io.stderr:write("still processing; fetching task " .. err.task_id .. " once more\n")
  res, err = client:result(err.task_id, { format = format, output = output })
end
ex.report(res, err)
