-- Writes the seed corpora fuzz/corpus/<harness>/ from the spec fixtures and small strings, in
-- each harness's input layout (fuzz/harness.h, the layout at the top of each fuzz/<harness>.c).
-- The output is committed; run again (lua5.4 fuzz/seeds.lua, from the checkout) after changing a
-- layout. Every seed stays within a few KB.
local function read(path)   -- (run by lua5.4 only)
  local f <close> = assert(io.open(path, "rb"))
  return f:read("a")
end

local written = 0
local function seed(harness, name, bytes)
  os.execute("mkdir -p fuzz/corpus/" .. harness)
  local f = assert(io.open(("fuzz/corpus/%s/%s"):format(harness, name), "wb"))
  f:write(bytes)
  f:close()
  assert(#bytes <= 8192, name)
  written = written + 1
end

-- the byte readers' inverses
local function u8(v) return string.char(v) end
local function u16(v) return string.pack(">I2", v) end
local function str(s)
  assert(#s <= 255, "str longer than 255 bytes")
  return u8(#s) .. s
end

-- ---- xml_decode: flags, [max_depth - 1], [max_size], [array name], document ---------------

local tencent = read("spec/fixtures/xml/tencent_ocr.xml")
seed("xml_decode", "tencent_ocr", u8(0) .. tencent)
seed("xml_decode", "tencent_ocr_opts", u8(1 + 2 + 4 + 8) .. u8(9) .. u16(4000) .. str("TextDetections") .. tencent)
local docs = {
  cos_list = '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Contents>'
    .. '<Key>a.png</Key><Size>3</Size></Contents><Contents><Key>b&amp;c</Key></Contents></ListBucketResult>',
  attrs = '<a><b><c><d>1</d><d>2</d></c></b><e x="&lt;" y=\'q\'/></a>',
  doctype = '<!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>',
  ns_cdata = '<r xmlns:p="u"><p:a p:b="1">\228\189\160\229\165\189</p:a><![CDATA[ <x> ]]></r>',
  mixed = '<Response><Code>0</Code><Mixed>t<b>u</b>v</Mixed><Item a="1">x</Item><Item/></Response>',
  latin1 = '<?xml version="1.0" encoding="ISO-8859-1"?><a>\233t\233</a>',
  utf16 = "\255\254<\0a\0>\0x\0<\0/\0a\0>\0",
  deep = ("<a>"):rep(70) .. ("</a>"):rep(70),
  error = '<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>',
}
for name, doc in pairs(docs) do
  seed("xml_decode", name, u8(0) .. doc)
end
seed("xml_decode", "deep_limit", u8(1 + 2) .. u8(63) .. docs.deep)
seed("xml_decode", "small_max_size", u8(1 + 4) .. u16(40) .. docs.cos_list)

-- ---- codec: one string ---------------------------------------------------------------------

local codec = {
  empty = "", text = "hello world", b64 = "aGVsbG8gd29ybGQ=", b64_pad2 = "QQ==", b64_bits = "QR==",
  b64_bad = "QUJD=A==", b64_ws = "QU JD", pct = "%E4%BD%A0%E5%A5%BD", pct_lower = "a%2fb%2Bc",
  pct_bad = "100%", pct_short = "%4", plus = "a+b c~._-", binary = "\0\1\2\255\254=%",
  b64_long = string.rep("QUJD", 300),   -- past codec.c's 1024-character decode chunk
}
for name, s in pairs(codec) do seed("codec", name, s) end

-- ---- multipart: flags, [boundary], parts (u8 % 9), each a mask and its fields ----------------

local function part(fields)
  local k, out = 0, {}
  local function add(bit, v) k = k + bit out[#out + 1] = v end
  if fields.name then add(1, str(fields.name)) end
  if fields.number then add(2 + 0x40, u8(fields.number))
  elseif fields.value then add(2, str(fields.value)) end
  if fields.data then add(4, str(fields.data)) end
  if fields.filename then add(8, str(fields.filename)) end
  if fields.content_type then add(16, str(fields.content_type)) end
  return u8(k) .. table.concat(out)
end
local function form(boundary, parts)
  return u8(boundary and 1 or 0) .. (boundary and str(boundary) or "") .. u8(#parts) .. table.concat(parts)
end
seed("multipart", "fields", form("XyZ", { part{ name = "lang", value = "en" }, part{ name = "n", number = 2 } }))
seed("multipart", "file", form("----ocr0123", {
  part{ name = "file", filename = 'a"b\r\n.png', content_type = "image/png", data = "\137PNG\r\n\26\n..." },
  part{ name = "language", value = "English,ChinesePRC" } }))
seed("multipart", "random_boundary", form(nil, { part{ name = "f", data = "bytes", filename = "x.bin" } }))
seed("multipart", "quoted_boundary", form("a b:c", { part{ name = "q", value = "a b:c" } }))
seed("multipart", "junk", form("b", { u8(0x80) .. str("not a table"), part{ value = "no name" } }))

-- ---- cos_sign: flags, id, key, method, path, start, expire, params, headers -------------------

local function kv(pairs_)
  local out = { u8(#pairs_) }
  for _, p in ipairs(pairs_) do
    out[#out + 1] = str(p[1])
    if type(p[2]) == "number" then out[#out + 1] = u8(p[2] * 2 + 1)
    else out[#out + 1] = u8(0) .. str(p[2]) end
  end
  return table.concat(out)
end
local function sign(flags, id, key, method, path, start, span, params, headers)
  return u8(flags) .. str(id) .. str(key) .. str(method) .. str(path)
    .. u16(start // 65536) .. u16(start % 65536) .. u16(span) .. kv(params) .. kv(headers)
end
local ID, KEY = "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q", "BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz"
seed("cos_sign", "put", sign(0, ID, KEY, "PUT", "/exampleobject(\232\133\190\232\174\175\228\186\145)",
  1557989151, 7200, {}, {
    { "Date", "Thu, 16 May 2019 06:45:51 GMT" },
    { "Host", "examplebucket-1250000000.cos.ap-beijing.myqcloud.com" },
    { "Content-Type", "text/plain" }, { "Content-Length", 2 } }))
seed("cos_sign", "get_params", sign(0, ID, KEY, "GET", "/a b/c.png", 1557989753, 7200,
  { { "response-content-type", "application/octet-stream" }, { "response-cache-control", "max-age=600" },
    { "x y", "1" }, { "z", "" }, { "n", 5 } },
  { { "Host", "h.example" }, { "host", "dup" } }))
seed("cos_sign", "expire_before_start", sign(1, "AKID", "k", "delete", "/", 1700000000, 5, {}, {}))

-- ---- http_response: flags, [max_header_size - 1], [max_headers], cuts, response ---------------

local function http(flags, extra, cuts, wire)
  local out = { u8(flags), extra, u8(#cuts) }
  for _, c in ipairs(cuts) do out[#out + 1] = u16(c) end
  out[#out + 1] = wire
  return table.concat(out)
end
local responses = {
  length = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":[1,2,3]}",
  chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
  eof = "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nread until the peer closes",
  continue = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    .. "HTTP/1.1 201 Created\r\nX-A: b\r\nX-A: c \r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
  no_body = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n",
  error = "HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\nno",
  folded = "HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 0\r\n\r\n",
}
for name, wire in pairs(responses) do
  seed("http_response", name, http(0, "", { 7, 30, 31, 45 }, wire))
end
seed("http_response", "head_request", http(1 + 2, "", { 20 }, responses.length))
seed("http_response", "small_limits", http(1 + 4 + 8, u16(40) .. u8(1), { 3, 60 }, responses.continue))

-- ---- image_check: max_pages - 1, the image ------------------------------------------------------

-- The fixtures cut down to their structure: what the probe walks, with little of the pixel data.
local function png_small(png)
  local out, off = { png:sub(1, 8) }, 9
  while off + 11 <= #png do
    local n, kind = string.unpack(">I4c4", png, off)
    local data = png:sub(off + 8, off + 7 + n)
    if kind == "IDAT" then data = data:sub(1, 64) end
    out[#out + 1] = string.pack(">I4", #data) .. kind .. data .. png:sub(off + 8 + n, off + 11 + n)
    if kind == "IEND" then break end
    off = off + 12 + n
  end
  return table.concat(out)
end
local function jpeg_small(jpg)
  local sos = assert(jpg:find("\255\218", 3, true))
  local n = string.unpack(">I2", jpg, sos + 2)
  return jpg:sub(1, sos + 1 + n) .. jpg:sub(sos + 2 + n, sos + 65 + n) .. "\255\217"
end
-- A BigTIFF (big-endian) of two pages, written by hand: each directory has ImageWidth (SHORT)
-- and ImageLength (LONG8).
local function bigtiff()
  local function dir(w, h, next_off)
    return string.pack(">I8", 2)
      .. string.pack(">I2I2I8I2I2I4", 256, 3, 1, w, 0, 0)
      .. string.pack(">I2I2I8I8", 257, 16, 1, h)
      .. string.pack(">I8", next_off)
  end
  local first = 16
  local second = first + 8 + 2 * 20 + 8
  return "MM\0\43" .. string.pack(">I2I2I8", 8, 0, first) .. dir(3, 4, second) .. dir(5, 6, 0)
end
local images = {
  tiff_pages = read("spec/fixtures/tiff/pages.tif"),
  bigtiff = bigtiff(),
  png = png_small(read("spec/fixtures/rotated/page1-ccw90.png")),
  jpeg = jpeg_small(read("spec/fixtures/jpeg/page1.jpg")),
  gif = read("spec/fixtures/formats/page1.gif"):sub(1, 64),
  pdf = "%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n",
}
for name, img in pairs(images) do seed("image_check", name, u8(7) .. img) end
seed("image_check", "tiff_one_page_max", u8(0) .. images.tiff_pages)

print(("fuzz/seeds.lua: %d seeds written under fuzz/corpus/"):format(written))
