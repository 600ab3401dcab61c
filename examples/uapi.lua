-- OCR a file (or an http(s) URL) with UAPI's Universal OCR endpoint.
--   [OCR_UAPI_API_KEY=...] [OCR_UAPI_ENDPOINT=...] lua5.4 examples/uapi.lua [--markdown] FILE|URL
-- Without a key the call uses UAPI's anonymous visitor quota. Prints the text (or, with
-- --markdown, the Markdown the service builds from headings, paragraphs and tables).
dofile((arg[0]:match("^(.*)/[^/]+$") or ".") .. "/setup.lua")
local ocr = require "ocr"

local markdown, source = false, nil
for _, a in ipairs(arg) do
  if a == "--markdown" then markdown = true else source = source or a end
end
if not source then
  io.stderr:write("usage: examples/uapi.lua [--markdown] FILE|URL\n")
  os.exit(2)
end

local client = ocr.new("uapi")   -- api_key and endpoint come from OCR_UAPI_API_KEY / OCR_UAPI_ENDPOINT
-- Only the text is wanted: need_location = false keeps the answer small (the document's advice).
local input = { need_location = false, markdown = markdown or nil }
if source:match("^https?://") then input.url = source else input.file = source end

local res, err = client:recognize(input)
if not res then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
if markdown then
  print(res.markdown or res.text)
else
  print(res.text)
end
