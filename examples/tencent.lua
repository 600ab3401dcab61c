-- OCR with Tencent Cloud Infinite on COS: an object already in the bucket, a URL, or a local file
-- (uploaded, recognised, deleted).
--   OCR_TENCENT_SECRET_ID=... OCR_TENCENT_SECRET_KEY=... OCR_TENCENT_BUCKET=name-1250000000 \
--   OCR_TENCENT_REGION=ap-guangzhou lua5.4 examples/tencent.lua key:path/in/bucket.png | URL | FILE
-- Prints one line per detected text line: confidence, box and text.
dofile((arg[0]:match("^(.*)/[^/]+$") or ".") .. "/setup.lua")
local ocr = require "ocr"

local source = arg[1]
if not source then
  io.stderr:write("usage: examples/tencent.lua key:OBJECT_KEY | URL | FILE\n")
  os.exit(2)
end

local client = ocr.new("tencent")
local input = { isword = true }
if source:match("^key:") then input.key = source:sub(5)
elseif source:match("^https?://") then input.url = source
else input.file = source end

local res, err = client:recognize(input)
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
for _, line in ipairs(res.lines) do
  local b = line.box or {}
  print(("%3d%%  %4s,%-4s %4sx%-4s  %s"):format(math.floor((line.confidence or 0) * 100 + 0.5),
        b.x or "", b.y or "", b.w or "", b.h or "", line.text))
end
