-- ocr.curl multi interface against a real HTTP server (spec/emulators/httptest.py).
local curl = require "ocr.curl"
local emulator = require "helpers.emulator"
local cjson = require "cjson"
local socket = require "socket"
-- helpers.files runs its non-Lua children (sha1sum, ls, mktemp, rm) without the sanitizer runtimes
local F = require "helpers.files"
local rig = require "helpers.rig"

-- Drives m until no transfer is left (or the deadline passes); returns the results in the
-- order info_read gave them.
local function run(m, seconds)
  local out = {}
  local deadline = socket.gettime() + (seconds or 10)
  while m:count() > 0 and socket.gettime() < deadline do
    m:perform()
    while true do
      local id, res, err = m:info_read()
      if not id then break end
      out[#out + 1] = { id = id, res = res, err = err }
    end
    if m:count() > 0 then m:poll(50) end
  end
  return out
end

describe("ocr.curl multi", function()
  local emu, m, tmp

  setup(function() emu, tmp = rig.start("httptest") end)

  teardown(function()
    if m then m:close() end
    rig.stop(emu, tmp)
  end)

  before_each(function()
    emu:reset()
    if m then m:close() end
    m = curl.multi()
  end)

  local function url(path) return emu.url .. path end

  it("runs 20 slow transfers concurrently and returns each id once", function()
    local ids = {}
    local t0 = socket.gettime()
    for i = 1, 20 do
      local id = assert(m:add{ url = url("/slow?ms=200&i=" .. i) })
      assert.is_number(id)
      assert.is_nil(ids[id])
      ids[id] = i
    end
    assert.equal(20, m:count())
    local results = run(m, 10)
    local elapsed = socket.gettime() - t0
    assert.equal(20, #results)
    local seen = {}
    for _, r in ipairs(results) do
      assert.is_nil(seen[r.id], "id returned twice")
      seen[r.id] = true
      assert.is_not_nil(ids[r.id])
      assert.is_nil(r.err)
      assert.equal(200, r.res.status)
      assert.equal(200, cjson.decode(r.res.body).slept_ms)
      assert.truthy(r.res.url:match("i=" .. ids[r.id] .. "$"))
    end
    -- 20 x 0.2 s one after the other would take 4 s: a loose bound on concurrency
    assert.is_true(elapsed < 2, ("took %.2f s"):format(elapsed))
    assert.equal(0, m:count())
    assert.is_nil(m:info_read())
  end)

  it("returns errors through info_read", function()
    local refused = assert(m:add{ url = "http://127.0.0.1:" .. emulator.closed_port() .. "/" })
    local timeout = assert(m:add{ url = url("/slow?ms=3000"), timeout = 0.2 })
    local big = assert(m:add{ url = url("/bytes?n=5000"), max_response_size = 100 })
    local ok = assert(m:add{ url = url("/status/404") })
    local by_id = {}
    for _, r in ipairs(run(m, 10)) do by_id[r.id] = r end
    assert.is_nil(by_id[refused].res)
    assert.equal("network", by_id[refused].err.kind)
    assert.is_false(by_id[refused].err.sent)
    assert.equal("timeout", by_id[timeout].err.kind)
    assert.is_true(by_id[timeout].err.sent)
    assert.equal("too_large", by_id[big].err.kind)
    assert.equal(404, by_id[ok].res.status)
  end)

  -- These errors carry a message composed in C: each comes back under its own transfer's id.
  it("returns composed error messages under the transfer's id", function()
    local redirect = assert(m:add{ url = url("/redirect?to=file:///etc/passwd"), follow_redirects = true })
    -- A directory where the file should go: the rename at the end fails (EISDIR).
    local target = tmp .. "/a-directory"
    F.mkdir(target)
    local unwritable = assert(m:add{ url = url("/bytes?n=100"), save_to = target })
    emu:fault{ action = "raw", path = "/status", body = "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok" }
    local garbled = assert(m:add{ url = url("/status/200") })
    local by_id = {}
    for _, r in ipairs(run(m, 10)) do
      assert.is_number(r.id)
      by_id[r.id] = r
    end
    assert.equal("invalid_input", by_id[redirect].err.kind)
    assert.truthy(by_id[redirect].err.message:find("redirect refused", 1, true))
    assert.equal("invalid_input", by_id[unwritable].err.kind)
    assert.truthy(by_id[unwritable].err.message:find("save_to: cannot write", 1, true))
    assert.equal("network", by_id[garbled].err.kind)
    assert.truthy(by_id[garbled].err.message:find("malformed response", 1, true))
  end)

  it("refuses invalid input in add, before anything starts", function()
    local id, err = m:add{ url = "file:///etc/passwd" }
    assert.is_nil(id)
    assert.equal("invalid_input", err.kind)
    assert.is_false(err.sent)
    id, err = m:add{ url = url("/echo"), headers = { ["X-Bad"] = "a\r\nb" } }
    assert.is_nil(id)
    assert.equal("invalid_input", err.kind)
    id, err = m:add{ url = url("/echo"), form = { { name = "f", file = tmp .. "/missing" } } }
    assert.is_nil(id)
    assert.equal("invalid_input", err.kind)
    assert.equal(0, m:count())
    assert.same({}, emu:log())
    -- the pooled handle that served the refused requests works afterwards
    id = assert(m:add{ url = url("/status/201") })
    local results = run(m)
    assert.equal(id, results[1].id)
    assert.equal(201, results[1].res.status)
  end)

  it("perform(0) still acts on one socket per call: a loop of them finishes everything", function()
    local ids = {}
    for i = 1, 20 do ids[i] = assert(m:add{ url = url("/echo?i=" .. i) }) end
    local got, deadline = {}, socket.gettime() + 10
    while m:count() > 0 and socket.gettime() < deadline do
      m:perform(0)
      while true do
        local id, res = m:info_read()
        if not id then break end
        got[id] = cjson.decode(res.body).query.i
      end
      m:poll(20)
    end
    for i = 1, 20 do assert.equal(tostring(i), got[ids[i]]) end
  end)

  it("raises on on_progress and wrong arguments", function()
    assert.has_error(function() m:add{ url = url("/"), on_progress = function() end } end)
    assert.has_error(function() m:add("x") end)
    assert.has_error(function() m:add{ url = url("/"), bogus = 1 } end)
    assert.has_error(function() m:poll(-1) end)
    assert.has_error(function() m:poll("x") end)
    assert.has_error(function() m:perform(-1) end)
    assert.has_error(function() m:perform("x") end)
    assert.has_error(function() m:progress("x") end)
    assert.has_error(function() curl.multi(1) end)
    assert.has_error(function() curl.multi{ timeout = "x" } end)
    assert.equal(0, m:count())
  end)

  it("sends bodies, forms and uploads, and saves downloads", function()
    local path = tmp .. "/up.bin"
    F.write(path, ("multi\0"):rep(5000))
    local dl = tmp .. "/dl.bin"
    local body_id = m:add{ url = url("/upload"), body = ("b"):rep(100000) }
    collectgarbage()   -- the body string must stay alive inside the multi
    local form_id = m:add{ url = url("/upload"), form = { { name = "f", file = path } } }
    local put_id = m:add{ url = url("/upload"), upload_file = path }
    local dl_id = m:add{ url = url("/bytes?n=100000&seed=4"), save_to = dl }
    collectgarbage()
    local by_id = {}
    for _, r in ipairs(run(m, 10)) do by_id[r.id] = r end
    local b = cjson.decode(by_id[body_id].res.body)
    assert.equal(100000, b.size)
    local fm = cjson.decode(by_id[form_id].res.body)
    assert.equal(30000, fm.parts[1].size)
    assert.equal(F.sha1sum(path), fm.parts[1].sha1)
    local put = cjson.decode(by_id[put_id].res.body)
    assert.equal("PUT", put.method)
    assert.equal(F.sha1sum(path), put.sha1)
    assert.equal(dl, by_id[dl_id].res.saved)
    local s = curl.session()
    local ref = cjson.decode(s:request{ url = url("/bytes-sha1?n=100000&seed=4") }.body)
    s:close()
    assert.equal(ref.sha1, F.sha1sum(dl))
    os.remove(dl)
    os.remove(path)
  end)

  it("remove() cancels a transfer and removes its temp file", function()
    local dir = tmp .. "/cancel"
    F.mkdir(dir)
    local slow = assert(m:add{ url = url("/slow?ms=3000") })
    local dl = assert(m:add{ url = url("/bytes?n=1000000&chunk=10000&delay=20"),
                             save_to = dir .. "/partial.bin" })
    local deadline = socket.gettime() + 5
    repeat
      m:perform()
      m:poll(20)
    until (m:progress(dl).dlnow > 0) or socket.gettime() > deadline
    assert.is_true(m:progress(dl).dlnow > 0)
    assert.equal(1, #F.list(dir))   -- the .part- file exists while the download runs
    assert.is_true(m:remove(slow))
    assert.is_true(m:remove(dl))
    assert.is_false(m:remove(dl))
    assert.is_nil(m:progress(dl))
    assert.equal(0, m:count())
    m:perform()
    assert.is_nil(m:info_read())
    assert.same({}, F.list(dir))
  end)

  it("progress() moves during a slow download", function()
    local n = 300000
    local id = assert(m:add{ url = url(("/bytes?n=%d&chunk=15000&delay=40"):format(n)) })
    local samples, partial = {}, false
    local result
    local deadline = socket.gettime() + 10
    while not result and socket.gettime() < deadline do
      m:perform()
      local p = m:progress(id)
      if p then
        samples[#samples + 1] = p.dlnow
        if p.dlnow > 0 and p.dlnow < n then partial = true end
      end
      local rid, res = m:info_read()
      if rid then result = res end
      m:poll(30)
    end
    assert.is_true(partial, "never saw a partial download")
    for i = 2, #samples do assert.is_true(samples[i] >= samples[i - 1]) end
    assert.equal(n, #result.body)
  end)

  it("poll(0) does not block", function()
    local id = assert(m:add{ url = url("/slow?ms=1000") })
    m:perform()
    local t0 = socket.gettime()
    for _ = 1, 10 do m:poll(0) end
    assert.is_true(socket.gettime() - t0 < 0.1)
    assert.equal(1, m:perform())
    assert.is_true(m:remove(id))
  end)

  it("shares connections between transfers of one multi", function()
    local first = assert(m:add{ url = url("/conn") })
    local r1 = run(m)
    local second = assert(m:add{ url = url("/conn") })
    local r2 = run(m)
    assert.equal(first, r1[1].id)
    assert.equal(second, r2[1].id)
    assert.equal(cjson.decode(r1[1].res.body).port, cjson.decode(r2[1].res.body).port)
  end)

  it("close() frees transfers in flight; a closed multi raises", function()
    local dir = tmp .. "/closing"
    F.mkdir(dir)
    local x = curl.multi{ timeout = 30 }
    x:add{ url = url("/slow?ms=2000") }
    x:add{ url = url("/bytes?n=1000000&chunk=10000&delay=20"), save_to = dir .. "/f.bin" }
    x:perform()
    x:close()
    x:close()
    assert.has_error(function() x:add{ url = url("/") } end, "ocr.curl: attempt to use a closed multi")
    assert.has_error(function() x:perform() end)
    assert.same({}, F.list(dir))
    -- and one dropped without close is collected
    local y = curl.multi()
    y:add{ url = url("/slow?ms=2000"), body = "x" }
    y:perform()
    y = nil   -- luacheck: ignore
    collectgarbage()
    collectgarbage()
  end)
end)
