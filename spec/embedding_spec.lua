-- The seam an embedder (OpenResty, a game engine) plugs into: its own runtime (`now`, `sleep`,
-- as ngx.now/ngx.sleep would be) and its own transport (as cosockets would be). A vendor
-- workflow must run unchanged on them, every wait and every byte going through them, and
-- libcurl must never be loaded. The stand-in transport is LuaSocket: real HTTP to the emulator.
local http = require "socket.http"
local socket = require "socket"
local ltn12 = require "ltn12"
local ocr = require "ocr"
local core = require "ocr.core"
local runtime = require "ocr.runtime"
local F = require "helpers.files"
local rig = require "helpers.rig"

local KEY = "test-picwish-key"
local TEXT = "Embedded\nline two"

-- A transport in the shape the README documents: request(self, req) -> res | nil, err, with
-- req as ocr.curl's session request. It handles what the cloud providers send: a body, a form
-- (encoded with ocr.core.multipart; file parts read from disk), an upload_file, a save_to.
local function luasocket_transport(log)
  local T = {}
  function T.request(_, req)
    log[#log + 1] = req.method .. " " .. req.url
    local headers, body = {}, req.body
    for k, v in pairs(req.headers or {}) do headers[k] = v end
    if req.form then
      local parts = {}
      for i, p in ipairs(req.form) do
        parts[i] = p
        if p.file then
          parts[i] = { name = p.name, filename = p.filename, content_type = p.content_type,
                       data = assert(F.read(p.file)) }
        end
      end
      local ctype
      body, ctype = core.multipart(parts)
      headers["Content-Type"] = ctype
    elseif req.upload_file then
      body = assert(F.read(req.upload_file))
    end
    if body then headers["Content-Length"] = #body end
    headers["User-Agent"] = headers["User-Agent"] or req.user_agent
    local chunks = {}
    local ok, status, got = http.request{ url = req.url, method = req.method or "GET",
      headers = headers, source = body and ltn12.source.string(body) or nil,
      sink = ltn12.sink.table(chunks) }
    if not ok then return nil, { kind = "network", message = tostring(status), sent = true } end
    local res = { status = status, headers = {}, body = table.concat(chunks), url = req.url }
    for k, v in pairs(got or {}) do res.headers[k:lower()] = v end
    if req.save_to then
      F.write(req.save_to, res.body)
      res.path, res.body = req.save_to, nil
    end
    return res
  end
  return T
end

describe("embedding: an embedder's runtime and transport", function()
  local emu, dir, img
  setup(function() emu, dir, img = rig.start("picwish", { { "scan.png", TEXT } }) end)
  teardown(function()
    runtime.reset()
    rig.stop(emu, dir)
  end)
  before_each(function()
    emu:reset()
    emu:config{ qps = 0, script = { { state = 0, progress = 0 }, { state = 4, progress = 50 },
                                    { state = 1, progress = 100 } } }
  end)
  after_each(function() runtime.reset() end)

  it("runs a polling vendor workflow with every wait in the runtime and every request in the transport", function()
    local sleeps, sent = {}, {}
    runtime.set{ now = socket.gettime, sleep = function(s)
      sleeps[#sleeps + 1] = s
      socket.sleep(s)
    end }
    -- the first poll fails (503): its retry's backoff is a wait like the others
    emu:fault{ action = "status", path = "/api/tasks/document/ocr/", method = "GET", status = 503 }
    local c = ocr.new("picwish", { api_key = KEY, endpoint = emu.url, transport = luasocket_transport(sent),
                                   poll_interval = 0.02, backoff = { base = 0.01, cap = 0.03 }, rate = false })
    local res, err = c:recognize{ file = img }
    assert.is_nil(err, err and tostring(err))
    assert.equal(TEXT, res.text)
    -- every request the emulator saw went through the embedder's transport, in order
    local seen = {}
    for _, e in ipairs(emu:log()) do seen[#seen + 1] = e.method .. " " .. emu.url .. e.path end
    assert.equal(#seen, #sent)
    for i = 1, #sent do assert.equal(seen[i], (sent[i]:gsub("%?.*$", ""))) end
    assert.truthy(sent[1]:match("^POST .*/api/tasks/document/ocr$"))
    assert.truthy(sent[#sent]:match("^GET .*/results/"))
    -- waits: one backoff (within the cap) and the poll intervals between the three states
    local polls, backoffs = 0, 0
    for _, s in ipairs(sleeps) do
      if s == 0.02 then polls = polls + 1 elseif s <= 0.03 then backoffs = backoffs + 1 end
    end
    assert.equal(1, backoffs)
    assert.is_true(polls >= 2, "poll waits: " .. polls)
    assert.equal(#sleeps, polls + backoffs)
  end)

  it("returns the transport's failure as a network error with the flag it set", function()
    local down = { request = function() return nil, { kind = "network", message = "cosocket: closed", sent = false } end }
    runtime.set{ now = socket.gettime, sleep = function() end }
    local c = ocr.new("picwish", { api_key = KEY, endpoint = emu.url, transport = down, retries = 2, rate = false })
    local res, err = c:recognize{ file = img }
    assert.is_nil(res)
    assert.equal("network", err.kind)
    assert.is_false(err.sent)
    assert.equal(3, err.attempts)        -- nothing was sent: a billed create may be retried
    assert.truthy(err.message:find("cosocket: closed", 1, true))
    assert.equal(0, #emu:log())
  end)

  it("never loads libcurl when the embedder brings the transport", function()
    -- A fresh interpreter of this one's kind (in this one other specs have loaded ocr.curl),
    -- on the modules the specs run against.
    local version = _VERSION:match("%d+%.%d+")
    local lua = version == "5.1" and (jit and "luajit" or "lua5.1") or ("lua" .. version)
    local cpath = (os.getenv("OCR_CPATH_DIR") or ("build/lua" .. version)) .. "/?.so"
    local script = F.write(dir .. "/embed.lua", ([[
      package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
      package.cpath = %q .. ";" .. package.cpath
      package.preload["ocr.curl"] = function() error("ocr.curl was loaded") end
      local ocr = require "ocr"
      local canned = { request = function(_, req)
        return { status = 200, headers = {}, body = '{"status":200,"message":"ok","data":{"task_id":"t1"}}' }
      end }
      local c = ocr.new("picwish", { api_key = "k", endpoint = "http://127.0.0.1:1", transport = canned,
                                     poll_timeout = 0.05, poll_interval = 0.01 })
      local _, err = c:recognize{ data = "\137PNG\r\n\26\n....", filename = "a.png" }
      print(err and err.kind, package.loaded["ocr.curl"] == nil)
    ]]):format(cpath))
    local p = io.popen(lua .. " " .. script .. " 2>&1")
    local out = p:read("*a")
    p:close()
    -- the canned poll answer has no state: the workflow ran to its protocol check without curl
    assert.equal("protocol\ttrue\n", out)
  end)
end)
