-- OCR a PDF or an image with ComPDF document AI.
--   OCR_COMPDF_API_KEY=... [OCR_COMPDF_ENDPOINT=...] lua5.4 examples/compdf.lua [--mode=sync|async|presigned]
--       [--pages=1-3,6] [--lang=zh-Hans] [--password=...] [--output=DIR] FILE
-- Prints the recognised text; a result that is a file (e.g. docx) is saved into --output.
-- The client reads the key and the endpoint (e.g. https://api-server.compdf.cn/server/ for the
-- mainland service) from the environment itself.
local ex = dofile((arg[0]:match("^(.*)/[^/]+$") or ".") .. "/setup.lua")
local ocr = require "ocr"

local input, file = {}, nil
local flags = { mode = "mode", pages = "pages", lang = "language", password = "password",
                output = "output" }
for _, a in ipairs(arg) do
  local k, v = a:match("^%-%-(%w+)=(.*)$")
  if k and flags[k] then input[flags[k]] = v
  elseif k or file then
    io.stderr:write("unexpected argument ", a, "\n")
    os.exit(2)
  else file = a end
end
if not file then
  io.stderr:write("usage: examples/compdf.lua [--mode=sync|async|presigned] [--pages=1-3,6] "
                  .. "[--lang=zh-Hans] [--password=...] [--output=DIR] FILE\n")
  os.exit(2)
end
input.file = file

local last
local client = ocr.new("compdf", {
  on_progress = function(ev)
    local line = ("[%s]%s"):format(ev.stage, ev.state and (" " .. ev.state) or "")
    if line ~= last then io.stderr:write(line, "\n") end
    last = line
  end,
})
local res, err = client:recognize(input)
if not res and err.kind == "timeout" and err.retryable and err.task_id then
  -- Nothing paid for is lost: the task's result stays fetchable for 24 hours.
  io.stderr:write("still processing; fetching task " .. err.task_id .. " once more\n")
  res, err = client:result(err.task_id, { output = input.output })
end
ex.report(res, err)
