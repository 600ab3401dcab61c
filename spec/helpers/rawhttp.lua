-- A raw HTTP/1.1 client on LuaSocket and a multipart/form-data builder, for the emulator specs.
-- Both are deliberately independent of the code under test (ocr.curl, ocr.core's multipart): the
-- emulator specs prove the emulators against the vendors' contracts, so every byte on the wire is
-- the spec's own choice and neither side vouches for itself.
local socket = require "socket"
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
-- busted's `assert` is no global for required modules; luassert is the same object
local luassert = require "luassert"

local M = {}

local function has_header(headers, name)
  for _, h in ipairs(headers) do
    if h[1]:lower() == name then return true end
  end
  return false
end

--- One HTTP/1.1 exchange on a fresh connection to 127.0.0.1:port, closed afterwards.
--- headers: array of {name, value}, sent in order. opts (optional):
---   host = false    no Host header of its own (the caller sends one, or none);
---   length = false  no Content-Length of its own (otherwise a body gets one unless `headers`
---                   already carry one).
--- Returns {status = number, headers = {lowercase name = value}, body = string}; the body of an
--- answer to HEAD is not read.
function M.request(port, method, target, headers, body, opts)
  headers, opts = headers or {}, opts or {}
  local c = assert(socket.tcp())
  c:settimeout(15)
  assert(c:connect("127.0.0.1", port))
  local out = { ("%s %s HTTP/1.1\r\n"):format(method, target) }
  if opts.host ~= false then out[#out + 1] = ("Host: 127.0.0.1:%d\r\n"):format(port) end
  for _, h in ipairs(headers) do out[#out + 1] = h[1] .. ": " .. h[2] .. "\r\n" end
  if body and opts.length ~= false and not has_header(headers, "content-length") then
    out[#out + 1] = "Content-Length: " .. #body .. "\r\n"
  end
  out[#out + 1] = "Connection: close\r\n\r\n"
  out[#out + 1] = body or ""
  assert(c:send(table.concat(out)))
  local line = assert(c:receive("*l"))
  local res = { status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)")), headers = {} }
  while true do
    local l = assert(c:receive("*l"))
    if l == "" then break end
    local k, v = l:match("^([^:]+):%s*(.-)%s*$")
    res.headers[k:lower()] = v
  end
  local n = tonumber(res.headers["content-length"] or "0")
  res.body = (method ~= "HEAD" and n > 0) and assert(c:receive(n)) or ""
  c:close()
  return res
end

--- Sets res.json to the decoded body when the answer's Content-Type mentions json. A body that
--- is not JSON raises, or with `lenient` leaves res.json nil. Returns res.
function M.decode_json(res, lenient)
  if (res.headers["content-type"] or ""):find("json", 1, true) then
    if lenient then
      res.json = cjson_safe.decode(res.body)
    else
      res.json = cjson.decode(res.body)
    end
  end
  return res
end

--- multipart/form-data body of parts {name=, value=, filename=, ctype=} (a part with a filename
--- gets a Content-Type, application/octet-stream unless ctype is given). The boundary is
--- `boundary_prefix` (default "----lua-ocr-spec-") and a random number. Returns body, the
--- Content-Type header value.
function M.multipart(parts, boundary_prefix)
  local boundary = (boundary_prefix or "----lua-ocr-spec-") .. tostring(math.random(1, 1e9))
  local out = {}
  for _, p in ipairs(parts) do
    out[#out + 1] = "--" .. boundary .. "\r\n"
    if p.filename then
      out[#out + 1] = ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'):format(
        p.name, p.filename)
      out[#out + 1] = "Content-Type: " .. (p.ctype or "application/octet-stream") .. "\r\n\r\n"
    else
      out[#out + 1] = ('Content-Disposition: form-data; name="%s"\r\n\r\n'):format(p.name)
    end
    out[#out + 1] = p.value .. "\r\n"
  end
  out[#out + 1] = "--" .. boundary .. "--\r\n"
  return table.concat(out), "multipart/form-data; boundary=" .. boundary
end

--- A plain (non-file) part, in the shape multipart() takes.
function M.field(name, value) return { name = name, value = value } end

--- The path and query of an absolute URL on 127.0.0.1 (a pre-signed or result URL the emulator
--- handed out), or nil when the URL points elsewhere.
function M.target_of(url)
  return url:match("^http://127%.0%.0%.1:%d+(/.*)$")
end

--- request() on an absolute URL the emulator handed out, asserting (luassert) that it points to
--- this server; method defaults to GET, and no header is sent unless given (no API key).
function M.fetch(port, url, method, headers, body)
  local target = M.target_of(url)
  luassert.truthy(target, "URL not on this server: " .. url)
  return M.request(port, method or "GET", target, headers or {}, body)
end

--- The picwish/compdf style of call: `key_header` carries opts.key (unless opts.key == false,
--- `default_key` when nil); the body is opts.parts as multipart, or opts.body with opts.ctype.
--- The answer's JSON, if any, is decoded strictly into res.json.
function M.api(port, key_header, default_key, method, path, opts)
  opts = opts or {}
  local headers = {}
  if opts.key ~= false then headers[#headers + 1] = { key_header, opts.key or default_key } end
  local body
  if opts.parts then
    local ctype
    body, ctype = M.multipart(opts.parts)
    headers[#headers + 1] = { "Content-Type", ctype }
  elseif opts.body then
    body = opts.body
    headers[#headers + 1] = { "Content-Type", opts.ctype }
  end
  return M.decode_json(M.request(port, method, path, headers, body))
end

return M
