--- HTTP/1.1 over nginx cosockets (`ngx.socket.tcp`): the nginx host's transport. The same
-- request and response shapes, error kinds and billing rules as `ocr.curl`'s sessions, without
-- ever blocking a worker. Lua here only moves bytes: the response is framed by `ocr.core`'s
-- HTTP parser (http_parser), multipart bodies are planned by `ocr.core.multipart_plan`, and
-- file contents are streamed from disk in chunks, never held whole.
--
-- Connections are kept alive in nginx's pools, one per scheme, host, port and TLS settings
-- (what makes a connection reusable). A billed request (`fresh_connect`) always opens a new
-- connection and closes it after: on a reused one a request could be lost after it left, and a
-- silent resend could bill twice. A request that is not billed and finds its reused connection
-- closed before any answer is sent once more on a new one, as libcurl does.
local core = require "ocr.core"
local url = require "ocr.url"

local M = {}

M.DEFAULTS = {
  keepalive_timeout = 60,                 -- seconds an idle connection stays in its pool
  keepalive_pool = 32,                    -- idle connections kept per pool
  max_response_size = 64 * 1024 * 1024,   -- in-memory bodies
  max_download_size = 1024 * 1024 * 1024, -- save_to bodies
  chunk = 64 * 1024,                      -- bytes read from a file or the socket at a time
}

local Transport = {}
Transport.__index = Transport

--- A transport; `opts`: keepalive_timeout (s), keepalive_pool (connections per pool).
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    keepalive_timeout = opts.keepalive_timeout or M.DEFAULTS.keepalive_timeout,
    keepalive_pool = opts.keepalive_pool or M.DEFAULTS.keepalive_pool,
  }, Transport)
end

local function fail(kind, message, sent)
  return nil, { kind = kind, message = message, sent = sent or false }
end

-- What a request needs of its URL (ocr.url: linear, length-bounded, never raises): scheme,
-- host, the port it connects to, the request target and the Host header. Or nil, message.
local function parse_url(s)
  local u, err = url.parse_http(s)
  if not u then return nil, err end
  if u.userinfo then return nil, "credentials in the URL are refused" end
  return { scheme = u.scheme, host = u.host, port = url.port(u), target = url.target(u),
           host_header = url.host_port(u) }
end

-- A header name must be a token, a value free of control characters (no CR/LF injection).
local function check_header(name, value)
  if type(name) ~= "string" or name == "" or name:find("[^%w!#$%%&'*+%-.^_`|~]") then
    return ("header name %q is not a token"):format(tostring(name))
  end
  if value:find("[%z\1-\8\10-\31\127]") then
    return ("header %s: the value contains a control character"):format(name)
  end
end

-- What the body will be: a string, or pieces (strings and {file=, size=}) with their length.
local function plan_body(req)
  if req.body ~= nil then
    if type(req.body) ~= "string" then return nil, "body must be a string" end
    return { req.body }, #req.body
  end
  if req.form ~= nil then
    local streamed = false
    for _, p in ipairs(req.form) do
      if type(p) == "table" and p.file ~= nil then streamed = true end
    end
    if not streamed then
      local body, ctype = core.multipart(req.form)
      if not body then return nil, ctype end
      return { body }, #body, ctype
    end
    local pieces, ctype, length = core.multipart_plan(req.form)
    if not pieces then return nil, ctype end
    return pieces, length, ctype
  end
  if req.upload_file ~= nil then
    local st, err = core.stat(req.upload_file)
    if not st then return nil, "upload_file: " .. tostring(err) end
    if st.type ~= "file" then return nil, "upload_file: not a regular file" end
    return { { file = req.upload_file, size = st.size } }, st.size
  end
  return {}, nil
end

local function request_head(req, u, length, ctype)
  local method = req.method or (length and "POST" or "GET")
  if method:find("[^%u]") then return nil, "method must be upper-case letters" end
  local lines = { method .. " " .. u.target .. " HTTP/1.1" }
  local has = {}
  for name, value in pairs(req.headers or {}) do
    value = tostring(value)
    local bad = check_header(name, value)
    if bad then return nil, bad end
    local lname = name:lower()
    -- The framing is ours: the length we send is the length we counted.
    if lname ~= "content-length" and lname ~= "transfer-encoding" and lname ~= "connection" then
      has[lname] = true
      lines[#lines + 1] = name .. ": " .. value
    end
  end
  if not has.host then lines[#lines + 1] = "Host: " .. u.host_header end
  if not has["user-agent"] and req.user_agent then
    local bad = check_header("User-Agent", req.user_agent)
    if bad then return nil, "user_agent: " .. bad end
    lines[#lines + 1] = "User-Agent: " .. req.user_agent
  end
  if ctype and not has["content-type"] then lines[#lines + 1] = "Content-Type: " .. ctype end
  if length then
    lines[#lines + 1] = "Content-Length: " .. string.format("%d", length)
  elseif method == "POST" or method == "PUT" or method == "PATCH" then
    lines[#lines + 1] = "Content-Length: 0"
  end
  if method == "HEAD" and length then return nil, "method: HEAD cannot send a body" end
  lines[#lines + 1] = "\r\n"
  return table.concat(lines, "\r\n"), method
end

-- The pool a connection goes back to: everything that makes it reusable for another request.
local function pool_name(u, verify)
  local name = u.scheme .. "://" .. u.host .. ":" .. u.port
  if u.scheme == "https" then name = name .. (verify and "|verify" or "|noverify") end
  return "ocr|" .. name
end

local function ms(seconds) return math.max(1, math.floor(seconds * 1000 + 0.5)) end

local TLS_HINT = " (nginx checks servers against lua_ssl_trusted_certificate: set it, e.g. " ..
  "'lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;' with 'lua_ssl_verify_depth 3;')"
local DNS_HINT = " (nginx resolves names with its 'resolver' directive: add one to nginx.conf)"

-- Opens (or takes from its pool) a connection and does the TLS handshake on a new one.
local function connect(self, u, req, deadline, fresh)
  local sock = ngx.socket.tcp()
  local left = deadline - ngx.now()
  sock:settimeouts(ms(math.min(req.connect_timeout or 10, left)), ms(left), ms(left))
  local verify = not req.insecure
  local pool = pool_name(u, verify)
  local ok, err = sock:connect(u.host, u.port, { pool = fresh and (pool .. "|fresh") or pool,
                                                 pool_size = self.keepalive_pool })
  if not ok then
    local what = ("cannot connect to %s:%d: %s"):format(u.host, u.port, tostring(err))
    if tostring(err):find("no resolver", 1, true) then what = what .. DNS_HINT end
    return fail(err == "timeout" and "timeout" or "network", what)
  end
  if u.scheme == "https" and (sock:getreusedtimes() or 0) == 0 then
    local sni = u.host:find("^[%d.]+$") and nil or u.host
    local session, herr = sock:sslhandshake(nil, sni or u.host, verify)
    if not session then
      sock:close()
      local msg = ("TLS handshake with %s:%d failed: %s"):format(u.host, u.port, tostring(herr))
      if verify and (tostring(herr):find("certificate", 1, true) or tostring(herr):find("verif", 1, true)) then
        msg = msg .. TLS_HINT
      end
      return fail(herr == "timeout" and "timeout" or "tls", msg)
    end
  end
  return sock
end

-- Sends the head and the body pieces; file pieces are read and sent a chunk at a time.
-- Returns bytes sent, or nil, err, sent.
local function send_all(sock, head, pieces, report)
  local sent = 0
  local function put(data)
    local n, err = sock:send(data)
    if not n then return nil, err end
    sent = sent + #data
    return true
  end
  local ok, err = put(head)
  if not ok then return nil, err, false end
  local body_sent = 0
  for _, piece in ipairs(pieces) do
    if type(piece) == "string" then
      if #piece > 0 then
        ok, err = put(piece)
        if not ok then return nil, err, true end
        body_sent = body_sent + #piece
        if report then report(body_sent) end
      end
    else
      local f, oerr = io.open(piece.file, "rb")
      if not f then return nil, "cannot read " .. piece.file .. ": " .. tostring(oerr), true, "invalid_input" end
      local left = piece.size
      while left > 0 do
        local data = f:read(math.min(M.DEFAULTS.chunk, left))
        if not data then break end
        ok, err = put(data)
        if not ok then f:close() return nil, err, true end
        left = left - #data
        body_sent = body_sent + #data
        if report then report(body_sent) end
      end
      f:close()
      if left ~= 0 then
        return nil, ("%s changed size while it was sent"):format(piece.file), true, "invalid_input"
      end
    end
  end
  return sent
end

-- A temporary file next to `path`, renamed over it only when the body is complete and 2xx.
-- Created with O_EXCL|O_NOFOLLOW first, so a planted file or symlink is never written through.
local function open_temp(path)
  local tmp = path .. ".part-" .. core.hex(core.random_bytes(6))
  local ok, err = core.create_new(tmp)
  local f
  if ok then f, err = io.open(tmp, "wb") end
  if not f then return nil, ("save_to: cannot create a file next to '%s': %s"):format(path, tostring(err)) end
  return f, tmp
end

-- Reads the response a chunk at a time through the C parser. Returns res, keep_alive or
-- nil, err (sent = true).
local function receive(sock, req, method, deadline, report, got_bytes)
  local parser = core.http_response{ head = method == "HEAD" }
  local limit = req.max_response_size or M.DEFAULTS.max_response_size
  local chunks, size, received = {}, 0, 0
  local file, tmp
  local function abort(kind, message)
    if file then file:close() os.remove(tmp) end
    return fail(kind, message, true)
  end
  while true do
    sock:settimeouts(1000, 1000, ms(math.max(0.001, deadline - ngx.now())))
    local data, rerr = sock:receiveany(M.DEFAULTS.chunk)
    local body, state
    if data then
      received = received + #data
      got_bytes()
      body, state = parser:feed(data)
    elseif rerr == "closed" then
      body, state = parser:finish()
      if not body and received == 0 then
        return abort("network", "the server closed the connection without answering")
      end
    elseif rerr == "timeout" then
      return abort("timeout", "no complete answer in time")
    else
      return abort("network", "reading the answer failed: " .. tostring(rerr))
    end
    if not body then return abort("network", "malformed response from the server (" .. tostring(state) .. ")") end
    if #body > 0 then
      local status = parser:head()
      size = size + #body
      if req.save_to and status >= 200 and status < 300 then
        if size > (req.max_response_size or M.DEFAULTS.max_download_size) then
          return abort("too_large", "response exceeds the size limit")
        end
        if not file then
          local f, t = open_temp(req.save_to)
          if not f then return abort("invalid_input", t) end
          file, tmp = f, t
        end
        local ok, werr = file:write(body)
        if not ok then return abort("invalid_input", ("save_to: cannot write '%s': %s"):format(tmp, tostring(werr))) end
      else
        if size > limit then return abort("too_large", "response exceeds the size limit") end
        chunks[#chunks + 1] = body
      end
      if report then report(size, parser:content_length() or 0) end
    end
    if state == "done" then break end
  end
  local status, headers, keep_alive = parser:head()
  local res = { status = status, headers = headers, url = req.url, bytes_received = received }
  if file then
    file:close()
    local ok, rerr = os.rename(tmp, req.save_to)
    if not ok then
      os.remove(tmp)
      return fail("invalid_input", ("save_to: cannot rename to '%s': %s"):format(req.save_to, tostring(rerr)), true)
    end
    res.path, res.saved = req.save_to, true
  elseif req.save_to and status >= 200 and status < 300 then
    -- an empty 2xx body is still a file
    local f, ferr = io.open(req.save_to, "wb")
    if not f then return fail("invalid_input", "save_to: " .. tostring(ferr), true) end
    f:close()
    res.path, res.saved = req.save_to, true
  else
    res.body = table.concat(chunks)
  end
  return res, keep_alive and parser:extra() == 0
end

-- One attempt on one connection.
local function attempt(self, req, u, head, method, pieces, length, opts, deadline, fresh)
  local sock, cerr = connect(self, u, req, deadline, fresh)
  if not sock then return nil, cerr end
  local reused = (sock:getreusedtimes() or 0) > 0
  if opts and opts.on_start then opts.on_start() end
  local on_bytes = opts and opts.on_bytes
  local up = on_bytes and opts.stage == "upload" and length and function(n) on_bytes(n, length) end
  local down = on_bytes and opts.stage == "download" and on_bytes or nil
  sock:settimeouts(1000, ms(math.max(0.001, deadline - ngx.now())), 1000)
  local sent, serr, any, kind = send_all(sock, head, pieces, up)
  if not sent then
    sock:close()
    if kind then return fail(kind, serr, any) end
    local e = { kind = serr == "timeout" and "timeout" or "network",
                message = "sending the request failed: " .. tostring(serr), sent = any }
    e.stale = reused and not any
    return nil, e
  end
  local answered = false
  local res, keep = receive(sock, req, method, deadline, down, function() answered = true end)
  if not res then
    sock:close()
    keep.stale = reused and not answered and keep.kind == "network"
    return nil, keep
  end
  res.bytes_sent = sent
  if keep and not fresh then
    sock:setkeepalive(ms(self.keepalive_timeout), self.keepalive_pool)
  else
    sock:close()
  end
  return res
end

--- Sends `req` (shaped as ocr.curl's session request) and returns `res` or `nil, err`.
--- `opts`: stage ("upload"|"download") with on_bytes(now, total), on_start().
function Transport:request(req, opts)
  local started = ngx.now()
  local u, uerr = parse_url(req.url)
  if not u then return fail("invalid_input", "url: " .. uerr) end
  if req.proxy ~= nil and req.proxy ~= "" then
    return fail("invalid_input", "proxy: the nginx transport connects directly (use proxy_pass for a proxy)")
  end
  if req.ca_file ~= nil then
    return fail("invalid_input", "ca_file: inside nginx the trusted CAs are lua_ssl_trusted_certificate's")
  end
  local pieces, length, ctype = plan_body(req)
  if not pieces then return fail("invalid_input", length) end
  local head, method = request_head(req, u, length, ctype)
  if not head then return fail("invalid_input", method) end
  local deadline = started + (req.timeout or 60)
  local fresh = req.fresh_connect == true
  local res, err = attempt(self, req, u, head, method, pieces, length, opts, deadline, fresh)
  if not res and err.stale and not fresh then
    -- A pooled connection the server had closed: nothing of this request reached it.
    res, err = attempt(self, req, u, head, method, pieces, length, opts, deadline, true)
  end
  if not res then
    err.stale = nil
    return nil, err
  end
  ngx.update_time()
  res.time = ngx.now() - started
  return res
end

function Transport:close() end

return M
