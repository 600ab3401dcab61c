-- The checks behind fuzz/'s libFuzzer harnesses, shared with spec/fuzz_spec.lua, which replays
-- the inputs kept in spec/fixtures/fuzz/<harness>/ through them.
--
-- checks.<harness>(args...) calls ocr.core and returns true, or false and why when an invariant
-- is broken (the harness then aborts: a finding). A Lua error with a message that escapes is an
-- answer ocr.core may give; one without a message is a finding too.
-- checks.decode.<harness>(bytes) is the Lua twin of the harness's C reader (fuzz/harness.h
-- describes the byte format, each harness its layout): the arguments, as {n = count, ...}.
-- Runs on Lua 5.1, LuaJIT and 5.4 (the specs run on all three).
local core = require "ocr.core"

local M = { decode = {} }

local unpack = table.unpack or unpack

-- ---- the byte readers of fuzz/harness.c --------------------------------------------------

local function reader(s)
  local pos = 1
  local r = {}
  function r.u8()
    if pos > #s then return 0 end
    pos = pos + 1
    return s:byte(pos - 1)
  end
  function r.u16()
    local hi = r.u8()
    return hi * 256 + r.u8()
  end
  function r.str()
    local n = r.u8()
    local out = s:sub(pos, pos + n - 1)
    pos = pos + #out
    return out
  end
  function r.rest()
    local out = s:sub(pos)
    pos = #s + 1
    return out
  end
  function r.left() return #s - pos + 1 end
  return r
end

local function bit(x, b) return math.floor(x / b) % 2 == 1 end   -- b: a power of two

-- fz_push_number's list, in its order. On Lua 5.4 the integers are integers (3 and 3.0 print
-- differently there); on 5.1 every number is a float and both columns agree anyway.
local NUMBERS = {
  0, -1, 1, 2 ^ 53, math.mininteger or -2 ^ 63,
  0.5, 1 / 0, -1 / 0, 0 / 0, 2 ^ 53, 1e308, 3,
}
if math.tointeger then
  NUMBERS[4] = math.tointeger(2 ^ 53)
  NUMBERS[10] = 2.0 ^ 53
  NUMBERS[12] = 3.0
end
local function number(sel) return NUMBERS[sel % #NUMBERS + 1] end

-- Deep equality of argument lists (NaN equals NaN, an integer never equals a float): used by
-- the harnesses under FUZZ_SELFCHECK=1 to prove their C reader and decode agree.
local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if a ~= a and b ~= b then return true end
    if math.type and math.type(a) ~= math.type(b) then return false, path .. ": integer vs float" end
    return a == b, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
  elseif type(a) ~= "table" then
    return a == b, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
  end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing" end
  end
  return true
end
function M.same_args(a, b) return same(a, b, "args") end

local function pack(...) return { n = select("#", ...), ... } end

-- pcall that also judges a raise: true, results... | false, message | nil, why (no message).
local function call(f, ...)
  local r = pack(pcall(f, ...))
  if r[1] then return true, unpack(r, 2, r.n) end
  if type(r[2]) ~= "string" or r[2] == "" then
    return nil, "raised without a message: " .. tostring(r[2])
  end
  return false, r[2]
end

-- A documented nil, message answer.
local function is_message(s) return type(s) == "string" and #s > 0 end

-- ---- xml_decode ----------------------------------------------------------------------------

function M.decode.xml_decode(s)
  local r = reader(s)
  local flags, opts = r.u8(), nil
  if bit(flags, 1) then
    opts = {}
    if bit(flags, 2) then opts.max_depth = 1 + r.u8() end
    if bit(flags, 4) then opts.max_size = r.u16() end
    if bit(flags, 8) then opts.arrays = { [r.str()] = true, Item = true } end
  end
  return { n = 2, r.rest(), opts }
end

function M.xml_decode(doc, opts)
  local t, err = core.xml_decode(doc, opts)
  if t == nil then
    if not is_message(err) then return false, "xml_decode: nil without a message" end
    if not (err:match("^%d+:%d+: .") or err:match("^document larger than max_size")) then
      return false, "xml_decode: a message not of the form line:col: message: " .. err
    end
    return true
  end
  if type(t) ~= "table" then return false, "xml_decode: returned a " .. type(t) end
  local root = next(t)
  if type(root) ~= "string" or next(t, root) ~= nil then
    return false, "xml_decode: the result is not {Root = value}"
  end
  return true
end

-- ---- codec -----------------------------------------------------------------------------------

function M.decode.codec(s) return { n = 1, s } end

function M.codec(s)
  local b64 = core.base64_encode(s)
  if #b64 ~= math.ceil(#s / 3) * 4 then return false, "base64_encode: wrong length" end
  if core.base64_decode(b64) ~= s then return false, "base64: decode(encode(s)) ~= s" end
  local pct = core.url_encode(s)
  if pct:find("[^%w%-%._~%%]") or pct:find("%%%X") or pct:find("%%%x%X") or pct:find("%%%l") or pct:find("%%%x%l") then
    return false, "url_encode: a character outside unreserved and uppercase %XX: " .. pct
  end
  if core.url_decode(pct) ~= s then return false, "url: decode(encode(s)) ~= s" end

  -- s itself: strict decoders refuse with a message or give what encodes back to s
  local raw, err = core.base64_decode(s)
  if raw == nil then
    if not is_message(err) then return false, "base64_decode: nil without a message" end
  else
    local canon = core.base64_encode(raw)
    local pad = s:find("=", 1, true)
    -- only the character before the padding may differ (the bits under it are not checked)
    if #canon ~= #s or (pad and (canon:sub(1, pad - 2) ~= s:sub(1, pad - 2) or canon:sub(pad) ~= s:sub(pad)))
       or (not pad and canon ~= s) then
      return false, "base64_decode accepted text that does not re-encode to itself"
    end
  end
  raw, err = core.url_decode(s)
  if raw == nil then
    if not is_message(err) then return false, "url_decode: nil without a message" end
  else
    local escapes = select(2, s:gsub("%%", ""))
    if #raw ~= #s - 2 * escapes then return false, "url_decode: wrong length" end
    if core.url_decode(core.url_encode(raw)) ~= raw then return false, "url: round trip of decoded bytes" end
  end
  return true
end

-- ---- multipart -----------------------------------------------------------------------------

function M.decode.multipart(s)
  local r = reader(s)
  local flags = r.u8()
  local boundary = bit(flags, 1) and r.str() or nil
  local parts = {}
  for i = 1, r.u8() % 9 do
    local k = r.u8()
    if bit(k, 0x80) then
      parts[i] = r.str()
    else
      local p = {}
      if bit(k, 1) then p.name = r.str() end
      if bit(k, 2) then
        if bit(k, 0x40) then p.value = number(r.u8()) else p.value = r.str() end
      end
      if bit(k, 4) then p.data = r.str() end
      if bit(k, 8) then p.filename = r.str() end
      if bit(k, 16) then p.content_type = r.str() end
      if bit(k, 32) then p.x = r.str() end
      parts[i] = p
    end
  end
  return { n = 2, parts, boundary }
end

function M.multipart(parts, boundary)
  local ok1, body, ctype = call(core.multipart, parts, boundary)
  if ok1 == nil then return false, "multipart: " .. ctype end
  local ok2, pieces, ctype2, length = call(core.multipart_plan, parts, boundary)
  if ok2 == nil then return false, "multipart_plan: " .. pieces end
  if ok1 ~= ok2 then
    return false, ("multipart %s but multipart_plan %s"):format(ok1 and "answered" or "raised",
                                                               ok2 and "answered" or "raised")
  end
  if not ok1 then return true end
  if (body == nil) ~= (pieces == nil) then
    return false, "one of multipart and multipart_plan refused: " .. tostring(ctype or ctype2)
  end
  if body == nil then
    if not is_message(ctype) or not is_message(ctype2) then return false, "nil without a message" end
    return true
  end
  if type(body) ~= "string" or type(pieces) ~= "table" then return false, "multipart: wrong types" end
  if #pieces ~= 1 or type(pieces[1]) ~= "string" then
    return false, "multipart_plan: parts held in memory make more than one piece"
  end
  if length ~= #pieces[1] or #pieces[1] ~= #body then return false, "multipart_plan: the length differs" end
  local b = type(ctype) == "string" and ctype:match('^multipart/form%-data; boundary="?([^"]+)"?$')
  if not b then return false, "multipart: content type " .. tostring(ctype) end
  if boundary and (b ~= boundary or ctype2 ~= ctype or pieces[1] ~= body) then
    return false, "multipart and multipart_plan differ with the same boundary"
  end
  if body:sub(-#b - 6) ~= "--" .. b .. "--\r\n" or body:sub(1, #b + 2) ~= "--" .. b then
    return false, "multipart: the body does not start and end with the boundary"
  end
  return true
end

-- ---- cos_sign --------------------------------------------------------------------------------

local COS_FIELDS = { "secret_id", "secret_key", "method", "path", "start", "expire", "params", "headers" }

function M.decode.cos_sign(s)
  local r = reader(s)
  local flags = r.u8()
  local t = {}
  for i = 1, 4 do t[COS_FIELDS[i]] = r.str() end
  t.start = r.u16() * 65536
  t.start = t.start + r.u16()
  t.expire = bit(flags, 1) and r.u16() or t.start + r.u16()
  for _, name in ipairs{ "params", "headers" } do
    local kv = {}
    for _ = 1, r.u8() % 17 do
      local k, v, sel = r.str(), nil, nil
      sel = r.u8()
      if sel % 2 == 1 then v = number(math.floor(sel / 2)) else v = r.str() end
      if kv[k] == nil then kv[k] = v end
    end
    t[name] = kv
  end
  if bit(flags, 2) then t[COS_FIELDS[r.u8() % 8 + 1]] = nil end
  return { n = 1, t }
end

-- The same table with params and headers rebuilt in reverse order of their keys, in a hash
-- part made larger first: another `next` order for the signer to sort.
local function reordered(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for _, name in ipairs{ "params", "headers" } do
    if type(t[name]) == "table" then
      local keys, kv = {}, {}
      for k in pairs(t[name]) do keys[#keys + 1] = k end
      for i = 1, 3 * #keys + 4 do kv[-i] = true end
      for i = #keys, 1, -1 do kv[keys[i]] = t[name][keys[i]] end
      for i = 1, 3 * #keys + 4 do kv[-i] = nil end
      c[name] = kv
    end
  end
  return c
end

function M.cos_sign(t)
  local ok1, a1 = call(core.cos_sign, t)
  if ok1 == nil then return false, "cos_sign: " .. a1 end
  local ok2, a2 = call(core.cos_sign, reordered(t))
  if ok2 == nil then return false, "cos_sign (reordered): " .. a2 end
  if ok1 ~= ok2 then return false, "cos_sign: the order of params or headers decided whether it raised" end
  if not ok1 then return true end
  if a1 ~= a2 then return false, "cos_sign: the order of params or headers changed the signature" end
  if type(a1) ~= "string" then return false, "cos_sign: returned a " .. type(a1) end
  local time = ("%d;%d"):format(t.start, t.expire)
  local head = "q-sign-algorithm=sha1&q-ak=" .. t.secret_id .. "&q-sign-time=" .. time
               .. "&q-key-time=" .. time .. "&q-header-list="
  if a1:sub(1, #head) ~= head or not a1:find("&q%-url%-param%-list=[^&]*&q%-signature=%x+$")
     or #a1:match("%x+$") ~= 40 then
    return false, "cos_sign: not the documented shape: " .. a1
  end
  return true
end

-- ---- http_response ---------------------------------------------------------------------------

function M.decode.http_response(s)
  local r = reader(s)
  local flags, opts = r.u8(), nil
  if bit(flags, 1) then
    opts = {}
    if bit(flags, 2) then opts.head = true end
    if bit(flags, 4) then opts.max_header_size = 1 + r.u16() end
    if bit(flags, 8) then opts.max_headers = r.u8() % 8 end
  end
  local cuts = {}
  for i = 1, r.u8() % 16 do cuts[i] = r.u16() end
  local wire = r.rest()
  for i = 1, #cuts do cuts[i] = cuts[i] % (#wire + 1) end
  table.sort(cuts)
  local pieces, at = {}, 0
  for i = 1, #cuts do
    pieces[i] = wire:sub(at + 1, cuts[i])
    at = cuts[i]
  end
  pieces[#pieces + 1] = wire:sub(at + 1)
  return { n = 3, opts, wire, pieces }
end

local STATES = { head = true, body = true, done = true }

-- Feeds the pieces then finish()es; checks every answer. Returns a summary of how it ended,
-- or nil and why an answer broke the rules.
local function drive(opts, pieces)
  local p = core.http_response(opts)
  local body, state, err = {}, nil, nil
  for i = 1, #pieces + 1 do
    local ok, out, st
    if i <= #pieces then ok, out, st = call(p.feed, p, pieces[i]) else ok, out, st = call(p.finish, p) end
    if ok == nil then return nil, "http_response: " .. out end
    if not ok then
      err = err or ("raised: " .. out)
      break
    end
    if out == nil then
      if not is_message(st) then return nil, "nil without a message" end
      if state == "done" then
        if st ~= "parser already finished" then return nil, "after done: " .. st end
      elseif err and st ~= err then
        return nil, "a second, different error: " .. err .. " / " .. st
      else
        err = st
      end
    else
      if type(out) ~= "string" or not STATES[st] then return nil, "a malformed answer: " .. tostring(st) end
      if err then return nil, "an answer after the error " .. err end
      body[#body + 1] = out
      state = st
    end
  end
  local status, headers, keep_alive = p:head()
  local head = "no head"
  if status ~= nil then
    if type(status) ~= "number" or type(headers) ~= "table" or type(keep_alive) ~= "boolean" then
      return nil, "head(): wrong types"
    end
    local lines = {}
    for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
    table.sort(lines)
    head = ("%d %s\n%s"):format(status, tostring(keep_alive), table.concat(lines, "\n"))
  end
  -- A refusal ends it: the body given before one depends on where the pieces were cut.
  return table.concat({ err and ("error: " .. err) or ("state: " .. tostring(state)),
                        err and "" or table.concat(body), head, tostring(p:extra()),
                        tostring(p:content_length()) }, "\n--\n")
end

function M.http_response(opts, wire, pieces)
  local whole, why = drive(opts, { wire })
  if not whole then return false, "fed whole: " .. why end
  local cut
  cut, why = drive(opts, pieces)
  if not cut then return false, ("fed in %d pieces: %s"):format(#pieces, why) end
  if cut ~= whole then
    return false, ("fed in %d pieces, it ended otherwise than fed whole:\n%s\n==== whole:\n%s")
                  :format(#pieces, cut, whole)
  end
  return true
end

-- ---- redis_reply (ocr.hiredis's reader) -------------------------------------------------------

function M.decode.redis_reply(s)
  local r = reader(s)
  local max_reply = bit(r.u8(), 1) and 16 + r.u16() or nil
  local cuts = {}
  for i = 1, r.u8() % 16 do cuts[i] = r.u16() end
  return { n = 3, max_reply, cuts, r.rest() }
end

local KINDS = { reply = true, protocol = true }

-- A reply as text, to compare two ways of feeding the same bytes.
local function show(v)
  if type(v) ~= "table" then return type(v) .. ":" .. tostring(v) end
  local parts = {}
  for i = 1, #v do parts[i] = show(v[i]) end
  if v.err then parts[#parts + 1] = "err:" .. tostring(v.err) end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- Feeds the pieces, reading every reply after each; returns what was read, or nil and why.
local function read_replies(max_reply, pieces)
  local r = require("ocr.hiredis").reader(max_reply)
  local out, failed = {}, nil
  for _, piece in ipairs(pieces) do
    local ok, fed, ferr, fkind = call(r.feed, r, piece)
    if ok == nil then return nil, fed end
    if not ok then return nil, "feed raised: " .. fed end
    if fed ~= true then
      if not is_message(ferr) or fkind ~= "protocol" then return nil, "feed: a malformed refusal" end
      failed = failed or ferr
      break
    end
    while true do
      local gok, v, gerr, gkind = call(r.get, r)
      if gok == nil then return nil, v end
      if not gok then return nil, "get raised: " .. v end
      if v == nil and gerr == nil then break end          -- (more bytes needed)
      if v == nil then
        -- (an error reply's message is the server's: "-\r\n" is a valid, empty one)
        if type(gerr) ~= "string" or not KINDS[gkind] or (gkind == "protocol" and gerr == "") then
          return nil, "get: a malformed error"
        end
        out[#out + 1] = "error:" .. gkind
        if gkind == "protocol" then failed = gerr break end
      else
        local t = type(v)
        if t ~= "string" and t ~= "number" and t ~= "table" and v ~= false then
          return nil, "get: a value of type " .. t
        end
        out[#out + 1] = show(v)
      end
    end
    if failed then break end
  end
  return { out = table.concat(out, "\n"), failed = failed }
end

function M.redis_reply(max_reply, cuts, wire)
  local whole, why = read_replies(max_reply, { wire })
  if not whole then return false, "fed whole: " .. why end
  for i = 1, #cuts do cuts[i] = cuts[i] % (#wire + 1) end
  table.sort(cuts)
  local pieces, at = {}, 0
  for i = 1, #cuts do
    pieces[i] = wire:sub(at + 1, cuts[i])
    at = cuts[i]
  end
  pieces[#pieces + 1] = wire:sub(at + 1)
  local cut
  cut, why = read_replies(max_reply, pieces)
  if not cut then return false, ("fed in %d pieces: %s"):format(#pieces, why) end
  -- The same replies, whatever the pieces; only the bound on a reply's bytes may cut in earlier
  -- when fed whole (a whole wire is measured at once), so compare when neither hit it.
  local bounded = (whole.failed or ""):find("max_reply", 1, true) or (cut.failed or ""):find("max_reply", 1, true)
  if not bounded and cut.out ~= whole.out then
    return false, ("fed in %d pieces, other replies than fed whole:\n%s\n==== whole:\n%s"):format(#pieces, cut.out, whole.out)
  end
  return true
end

-- ---- image_check (ocr.tesseract; the harness calls the C functions directly) ----------------

function M.decode.image_check(s)
  local r = reader(s)
  local max_pages = 1 + r.u8()
  return { n = 2, r.rest(), max_pages }
end

-- What ocr.tesseract's _check_image answers: pages and their sizes, or an error of the model.
function M.image_check(image, max_pages)
  local tess = require "ocr.tesseract"
  local n, sizes = tess._check_image(image, max_pages)
  if n == nil then
    local err = sizes
    if type(err) ~= "table" or not is_message(err.message)
       or not ({ invalid_input = true, too_large = true, unsupported = true })[err.kind] then
      return false, "_check_image: not an error of the model"
    end
    return true
  end
  if type(n) ~= "number" or n < 0 or n > max_pages then return false, "_check_image: a page count out of range" end
  if n > 0 then
    if type(sizes) ~= "table" or #sizes ~= n then return false, "_check_image: not one size per page" end
    for _, sz in ipairs(sizes) do
      if not (sz.width >= 1 and sz.height >= 1) then return false, "_check_image: a page without a size" end
    end
  end
  return true
end

return M
