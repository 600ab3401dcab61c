--- URLs, in one place, in LuaSocket's `socket.url` manner: parse, build, join (RFC 3986
-- reference resolution), ports, the http(s) check, percent-encoding and query strings.
--
-- Everything here reads strings from outside (an endpoint, an input URL, a URL in a vendor's
-- answer), so it runs in time linear in the input (plain finds, single character classes and
-- byte loops: no Lua pattern that can backtrack), refuses inputs over `MAX_LENGTH` bytes, and
-- answers a malformed URL with `nil, message`: it never raises.
--
--   parse("HTTPS://User@Example.COM:8443/a/b?q=1#top")
--     --> { scheme = "https", authority = "User@Example.COM:8443", userinfo = "User",
--           host = "example.com", port = 8443, path = "/a/b", query = "q=1", fragment = "top" }
--
-- The scheme and the host are lower-cased (both are case-insensitive); an IPv6 host comes
-- without its brackets. A part the URL does not have is nil (`query` is "" for a bare "?");
-- `path` is always a string, "" when empty. `port` is a number, nil when the URL names none
-- (url.port(u) gives the scheme's default then).
local core = require "ocr.core"

local M = {}

--- The longest URL accepted (bytes); parse's `opts.max_length` changes it for one call.
M.MAX_LENGTH = 16384
--- The longest host name (RFC 1035).
M.MAX_HOST = 255
--- The ports URLs of these schemes have when they name none.
M.DEFAULT_PORTS = { http = 80, https = 443 }

local byte, sub, find, lower = string.byte, string.sub, string.find, string.lower

-- What may not stand in each part (RFC 3986 section 3): single classes, tested with one find
-- each. Spaces, control characters and DEL are never part of a URL (and a CR or LF in one would
-- split the request it is sent in).
local NOT = {
  scheme = "[^%w%+%-%.]", userinfo = "[^%w%-%._~%%!%$&'%(%)%*%+,;=:]",
  reg_name = "[^%w%-%._~%%!%$&'%(%)%*%+,;=]", ipv6 = "[^%x:%.]",
  byte = "[%z\1-\32\127]", control = "[%z\1-\31\127]",
}

local function fail(fmt, ...) return nil, fmt:format(...) end

-- The host of an authority, lower-cased, or nil, message. `bracketed`: it stood inside [ ].
local function check_host(host, bracketed)
  if #host > M.MAX_HOST then return fail("the host is %d bytes long (at most %d)", #host, M.MAX_HOST) end
  if bracketed then
    if host == "" or find(host, NOT.ipv6) or not find(host, ":", 1, true) then
      return nil, "bad IPv6 address in the URL"
    end
  elseif find(host, NOT.reg_name) then
    return nil, "bad host in the URL"
  end
  return lower(host)
end

-- "" (none), or a port number 1-65535 written in at most 5 digits.
local function check_port(port)
  if port == "" then return nil end
  if #port > 5 or find(port, "%D") then return false end
  local n = tonumber(port)
  if n < 1 or n > 65535 then return false end
  return n
end

-- Splits an authority ("user@host:port") into the fields of `t`; nil, message if malformed.
local function parse_authority(authority, t)
  local rest = authority
  local at = find(rest, "@", 1, true)
  if at then
    local userinfo = sub(rest, 1, at - 1)
    if find(userinfo, NOT.userinfo) then return nil, "bad user information in the URL" end
    t.userinfo = userinfo
    rest = sub(rest, at + 1)
  end
  local host, port
  if byte(rest, 1) == 91 then                                              -- "[v6]:port"
    local close = find(rest, "]", 1, true)
    if not close then return nil, "bad IPv6 address in the URL" end
    host, port = sub(rest, 2, close - 1), sub(rest, close + 1)
    if port ~= "" and byte(port, 1) ~= 58 then return nil, "bad port in the URL" end   -- ":"
    port = sub(port, 2)
  else
    local colon = find(rest, ":", 1, true)
    host = colon and sub(rest, 1, colon - 1) or rest
    port = colon and sub(rest, colon + 1) or ""
  end
  local h, herr = check_host(host, byte(rest, 1) == 91)
  if not h then return nil, herr end
  local p = check_port(port)
  if p == false then return nil, "bad port in the URL" end
  t.host, t.port = h, p
  return true
end

--- Parses `s`, an absolute URL or a relative reference. Returns its parts (see above) or
--- nil, message. opts.max_length overrides MAX_LENGTH; with opts.allow_spaces, a space may
--- stand in the path, the query and the fragment (a URL handed on to a vendor, who encodes it).
function M.parse(s, opts)
  if type(s) ~= "string" then return fail("a URL must be a string, got %s", type(s)) end
  local max = opts and opts.max_length or M.MAX_LENGTH
  if #s > max then return fail("the URL is %d bytes long (at most %d)", #s, max) end
  if find(s, opts and opts.allow_spaces and NOT.control or NOT.byte) then
    return nil, "the URL contains spaces or control characters"
  end
  local t = {}
  local rest = s
  -- scheme ":" (a letter, then letters, digits, "+", "-", "."): else a relative reference.
  local colon = find(s, ":", 1, true)
  if colon and colon > 1 and find(s, "^%a") then
    local scheme = sub(s, 1, colon - 1)
    local stop = find(s, "[/?#]")
    if not (stop and stop < colon) then
      if find(scheme, NOT.scheme) then return nil, "bad scheme in the URL" end
      t.scheme = lower(scheme)
      rest = sub(s, colon + 1)
    end
  end
  local hash = find(rest, "#", 1, true)
  if hash then
    t.fragment = sub(rest, hash + 1)
    rest = sub(rest, 1, hash - 1)
  end
  local q = find(rest, "?", 1, true)
  if q then
    t.query = sub(rest, q + 1)
    rest = sub(rest, 1, q - 1)
  end
  if sub(rest, 1, 2) == "//" then
    local slash = find(rest, "/", 3, true)
    local authority = slash and sub(rest, 3, slash - 1) or sub(rest, 3)
    t.authority = authority
    local ok, err = parse_authority(authority, t)
    if not ok then return nil, err end
    rest = slash and sub(rest, slash) or ""
  end
  t.path = rest
  return t
end

--- Parses `s` as an absolute http or https URL with a host: its parts, or nil, message.
--- `opts` as for parse.
function M.parse_http(s, opts)
  local u, err = M.parse(s, opts)
  if not u then return nil, err end
  if u.scheme ~= "http" and u.scheme ~= "https" then
    return nil, "not an absolute http(s) URL (only http and https URLs are allowed)"
  end
  if not u.host or u.host == "" then return nil, "the URL has no host" end
  return u
end

--- Whether `s` is an absolute http(s) URL with a host (the scheme in any case); `opts` as for
--- parse.
function M.is_http(s, opts)
  return M.parse_http(s, opts) ~= nil
end

--- The port a scheme's URLs have when they name none (80, 443), or nil for another scheme.
function M.default_port(scheme)
  return type(scheme) == "string" and M.DEFAULT_PORTS[lower(scheme)] or nil
end

--- The port `u` (a URL string or parse's table) connects to: its own, else its scheme's default;
--- nil, message if it has neither or does not parse.
function M.port(u)
  if type(u) == "string" then
    local err
    u, err = M.parse(u)
    if not u then return nil, err end
  elseif type(u) ~= "table" then
    return fail("a URL or a parsed URL expected, got %s", type(u))
  end
  local p = u.port or M.default_port(u.scheme)
  if not p then return nil, "the URL names no port and its scheme has no default" end
  return p
end

local function bracketed(host)
  if find(host, ":", 1, true) then return "[" .. host .. "]" end
  return host
end

--- The `Host` header's value for parse's table `u`: the host (an IPv6 one in brackets), with
--- ":port" when the URL names a port other than its scheme's default.
function M.host_port(u)
  local h = bracketed(u.host or "")
  if u.port and u.port ~= M.default_port(u.scheme) then h = h .. ":" .. u.port end
  return h
end

--- The request target (origin form) for parse's table `u`: the path ("/" when empty) and the
--- query; never the fragment.
function M.target(u)
  local path = u.path
  if path == nil or path == "" then path = "/" end
  if u.query then return path .. "?" .. u.query end
  return path
end

--- Builds a URL string from a table shaped like parse's (scheme, userinfo, host, port, path,
--- query, fragment; `authority` is ignored: the host stands for it). Returns the string or
--- nil, message for a part that cannot stand where it goes. opts.max_length as for parse.
function M.build(t, opts)
  if type(t) ~= "table" then return fail("a URL table expected, got %s", type(t)) end
  for _, k in ipairs{ "scheme", "userinfo", "host", "path", "query", "fragment" } do
    local v = t[k]
    if v ~= nil and type(v) ~= "string" then return fail("the URL's %s must be a string", k) end
    if v and find(v, NOT.byte) then return fail("the URL's %s contains spaces or control characters", k) end
  end
  local out = {}
  if t.scheme then
    if not find(t.scheme, "^%a") or find(t.scheme, NOT.scheme) then return nil, "bad scheme" end
    out[#out + 1] = lower(t.scheme) .. ":"
  end
  local path = t.path or ""
  if find(path, "[?#]") then return nil, "the URL's path contains ? or #" end
  if t.query and find(t.query, "#", 1, true) then return nil, "the URL's query contains #" end
  if t.host then
    local h, herr = check_host(t.host, find(t.host, ":", 1, true) ~= nil)
    if not h then return nil, herr end
    out[#out + 1] = "//"
    if t.userinfo then
      if find(t.userinfo, NOT.userinfo) then return nil, "bad user information" end
      out[#out + 1] = t.userinfo .. "@"
    end
    out[#out + 1] = bracketed(h)
    if t.port ~= nil then
      local p = tonumber(t.port)
      if not p or p ~= math.floor(p) or p < 1 or p > 65535 then return nil, "bad port" end
      out[#out + 1] = (":%d"):format(p)
    end
    if path ~= "" and byte(path, 1) ~= 47 then path = "/" .. path end
  elseif t.userinfo or t.port then
    return nil, "a URL with user information or a port needs a host"
  elseif sub(path, 1, 2) == "//" then
    return nil, "a path without a host cannot start with //"
  end
  out[#out + 1] = path
  if t.query then out[#out + 1] = "?" .. t.query end
  if t.fragment then out[#out + 1] = "#" .. t.fragment end
  local s = table.concat(out)
  local max = opts and opts.max_length or M.MAX_LENGTH
  if #s > max then return fail("the URL would be %d bytes long (at most %d)", #s, max) end
  return s
end

-- RFC 3986 5.2.4, one pass over the segments: "." goes, ".." removes the segment before it
-- (never the root), and a path that ended in one of them keeps its trailing "/".
local function remove_dots(path)
  if not find(path, ".", 1, true) then return path end
  local segs, n, i = {}, 0, 1
  while true do
    local slash = find(path, "/", i, true)
    n = n + 1
    segs[n] = sub(path, i, (slash or #path + 1) - 1)
    if not slash then break end
    i = slash + 1
  end
  local out, m = {}, 0
  local absolute = byte(path, 1) == 47
  for k = 1, n do
    local s = segs[k]
    if s == "." or s == ".." then
      if s == ".." and m > (absolute and 1 or 0) then
        out[m] = nil
        m = m - 1
      end
      if k == n then
        m = m + 1
        out[m] = ""
      end
    else
      m = m + 1
      out[m] = s
    end
  end
  if absolute and m == 1 then return "/" end
  return table.concat(out, "/")
end

-- RFC 3986 5.2.3: a relative path against the base's.
local function merge(base, path)
  if base.host and base.path == "" then return "/" .. path end
  local j = #base.path
  while j > 0 and byte(base.path, j) ~= 47 do j = j - 1 end
  return sub(base.path, 1, j) .. path
end

--- Resolves `ref` against the absolute URL `base` (RFC 3986 section 5.2). Returns the resulting
--- URL string or nil, message. opts.max_length as for parse.
function M.join(base, ref, opts)
  local b, berr = M.parse(base, opts)
  if not b then return nil, "base: " .. berr end
  if not b.scheme then return nil, "base: not an absolute URL" end
  local r, rerr = M.parse(ref, opts)
  if not r then return nil, "reference: " .. rerr end
  local t = { fragment = r.fragment }
  if r.scheme then
    t.scheme, t.userinfo, t.host, t.port = r.scheme, r.userinfo, r.host, r.port
    t.path, t.query = remove_dots(r.path), r.query
  else
    t.scheme = b.scheme
    if r.host then
      t.userinfo, t.host, t.port = r.userinfo, r.host, r.port
      t.path, t.query = remove_dots(r.path), r.query
    else
      t.userinfo, t.host, t.port = b.userinfo, b.host, b.port
      if r.path == "" then
        t.path = b.path
        if r.query then t.query = r.query else t.query = b.query end
      else
        if byte(r.path, 1) == 47 then t.path = remove_dots(r.path)
        else t.path = remove_dots(merge(b, r.path)) end
        t.query = r.query
      end
    end
  end
  return M.build(t, opts)
end

--- Percent-encodes `s` (a string or number): every byte but A-Z a-z 0-9 - . _ ~ (RFC 3986).
function M.escape(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then return fail("escape: a string expected, got %s", type(s)) end
  return core.url_encode(s)
end

--- Decodes percent-escapes ("+" stays "+"); nil, message for a malformed escape.
function M.unescape(s)
  if type(s) ~= "string" then return fail("unescape: a string expected, got %s", type(s)) end
  return core.url_decode(s)
end

local function pair(k, v) return core.url_encode(tostring(k)) .. "=" .. core.url_encode(tostring(v)) end

--- A query string from a table: keys sorted (stable URLs, stable signatures), keys and values
--- escaped; `true`/`false` become "true"/"false". nil or {} gives "".
function M.build_query(query)
  if query == nil then return "" end
  if type(query) ~= "table" then return fail("build_query: a table expected, got %s", type(query)) end
  local k1, v1 = next(query)
  if k1 == nil then return "" end
  if next(query, k1) == nil then return pair(k1, v1) end   -- one key: nothing to sort
  local keys, byname = {}, {}
  for k in pairs(query) do
    local name = tostring(k)
    keys[#keys + 1] = name
    byname[name] = k
  end
  table.sort(keys)
  local out = {}
  for i = 1, #keys do out[i] = pair(keys[i], query[byname[keys[i]]]) end
  return table.concat(out, "&")
end

--- The most pairs parse_query reads.
M.MAX_QUERY_PAIRS = 1000

--- A table from a query string ("a=1&b=x%20y"; a key without "=" gets ""; a repeated key keeps
--- its last value). nil, message for a malformed escape, or more than MAX_QUERY_PAIRS pairs.
function M.parse_query(q)
  if type(q) ~= "string" then return fail("parse_query: a string expected, got %s", type(q)) end
  local t, n, i = {}, 0, 1
  while i <= #q do
    local amp = find(q, "&", i, true) or #q + 1
    local item = sub(q, i, amp - 1)
    if item ~= "" then
      n = n + 1
      if n > M.MAX_QUERY_PAIRS then return fail("the query has more than %d pairs", M.MAX_QUERY_PAIRS) end
      local eq = find(item, "=", 1, true)
      local k, kerr = core.url_decode(eq and sub(item, 1, eq - 1) or item)
      if not k then return nil, kerr end
      local v, verr = core.url_decode(eq and sub(item, eq + 1) or "")
      if not v then return nil, verr end
      t[k] = v
    end
    i = amp + 1
  end
  return t
end

return M
