-- Proves that spec/emulators/picwish.py enforces the PicWish contract (its public
-- API documentation), so providers tested against it are tested against the contract.
-- Requests go through a raw LuaSocket client (not ocr.curl, which is itself under test), so every
-- byte on the wire is the spec's choice.
local socket = require "socket"
local emulator = require "helpers.emulator"
local rawhttp = require "helpers.rawhttp"

local KEY = "test-picwish-key"
local CREATE = "/api/tasks/document/ocr"
local PNG = "\137PNG\r\n\26\n\0\0\0\rIHDR"

describe("picwish emulator", function()
  local emu

  local function api(method, path, opts)
    return rawhttp.api(emu.port, "X-API-KEY", KEY, method, path, opts)
  end

  local function file_part(bytes, name)
    return { name = "image_file", filename = name or "scan.png", ctype = "image/png",
             value = bytes }
  end

  local function create(parts, opts)
    opts = opts or {}
    opts.parts = parts
    return api("POST", CREATE, opts)
  end

  local function create_ok(parts)
    local res = create(parts)
    assert.are.equal(200, res.status, res.body)
    assert.are.equal(200, res.json.status)
    assert.are.equal("success", res.json.message)
    local id = res.json.data.task_id
    assert.truthy(id:match("^%x+%-%x+%-%x+%-%x+%-%x+$"), id)
    return id
  end

  local function poll(id, opts) return api("GET", CREATE .. "/" .. id, opts) end

  --- Polls until a final state; returns the last answer's data and the number of polls.
  local function walk(id)
    for n = 1, 20 do
      local res = poll(id)
      assert.are.equal(200, res.status, res.body)
      local d = res.json.data
      if d.state == 1 or d.state < 0 then return d, n, res.json end
    end
    error("task never finished")
  end

  local function expect_error(res, status)
    assert.are.equal(status, res.status, res.body)
    assert.are.equal(status, res.json.status)
    assert.are.equal("string", type(res.json.message))
    assert.is_nil(res.json.data)
  end

  --- GET of an absolute URL on the emulator, without any API key (a pre-signed result URL).
  local function download(url) return rawhttp.fetch(emu.port, url) end

  setup(function() emu = emulator.start("picwish") end)
  teardown(function() emu:stop() end)
  before_each(function()
    emu:reset()
    emu:config({ qps = 0 })   -- only the qps test wants the limit
  end)

  describe("authentication", function()
    it("refuses a create without X-API-KEY with 401", function()
      expect_error(create({ file_part(PNG) }, { key = false }), 401)
    end)
    it("refuses a wrong key, on create and on poll", function()
      expect_error(create({ file_part(PNG) }, { key = "nope" }), 401)
      local id = create_ok({ file_part(PNG) })
      expect_error(poll(id, { key = "nope" }), 401)
      expect_error(poll(id, { key = false }), 401)
    end)
    it("accepts a key set through config", function()
      emu:config({ api_key = "other" })
      expect_error(create({ file_part(PNG) }), 401)
      assert.are.equal(200, create({ file_part(PNG) }, { key = "other" }).status)
    end)
  end)

  describe("create", function()
    it("requires multipart/form-data", function()
      expect_error(api("POST", CREATE, { body = "image_url=http%3A%2F%2Fa.example%2Fx.png",
                                         ctype = "application/x-www-form-urlencoded" }), 400)
      expect_error(api("POST", CREATE, { body = '{"image_url":"http://a.example/x.png"}',
                                         ctype = "application/json" }), 400)
    end)
    it("wants exactly one source", function()
      expect_error(create({ { name = "format", value = "txt" } }), 400)
      expect_error(create({ file_part(PNG), { name = "image_url", value = "https://a.example/x.png" } }),
                   400)
      -- "the other file source parameter must be empty": present but empty is fine
      create_ok({ file_part(PNG), { name = "image_url", value = "" } })
      create_ok({ file_part("", "empty.png"), { name = "image_url", value = "https://a.example/x.png" } })
    end)
    it("refuses image_file sent as a plain field", function()
      expect_error(create({ { name = "image_file", value = PNG } }), 400)
    end)
    it("accepts only ports 80 and 443 and http(s) URLs", function()
      expect_error(create({ { name = "image_url", value = "http://a.example:8080/x.png" } }), 400)
      expect_error(create({ { name = "image_url", value = "https://a.example:80x/x.png" } }), 400)
      expect_error(create({ { name = "image_url", value = "ftp://a.example/x.png" } }), 400)
      expect_error(create({ { name = "image_url", value = "a.example/x.png" } }), 400)
      create_ok({ { name = "image_url", value = "http://a.example:80/x.png" } })
      create_ok({ { name = "image_url", value = "https://a.example:443/x.png" } })
      create_ok({ { name = "image_url", value = "https://a.example/x.png?sig=a%2Fb" } })
    end)
    it("wants image_url properly URL-encoded", function()
      expect_error(create({ { name = "image_url", value = "https://a.example/my scan.png" } }), 400)
      expect_error(create({ { name = "image_url", value = "https://a.example/%zz.png" } }), 400)
      expect_error(create({ { name = "image_url", value = "https://a.example/\228\189\160.png" } }), 400)
    end)
    it("checks format", function()
      for _, f in ipairs({ "txt", "pdf", "docx", "xlsx", "pptx" }) do
        create_ok({ file_part(PNG), { name = "format", value = f } })
      end
      expect_error(create({ file_part(PNG), { name = "format", value = "doc" } }), 400)
      expect_error(create({ file_part(PNG), { name = "format", value = "TXT" } }), 400)
      expect_error(create({ file_part(PNG), { name = "format", value = "" } }), 400)
    end)
    it("limits password to 32 characters", function()
      create_ok({ file_part(PNG), { name = "password", value = ("p"):rep(32) } })
      create_ok({ file_part(PNG), { name = "password", value = ("密"):rep(32) } })  -- characters, not bytes
      expect_error(create({ file_part(PNG), { name = "password", value = ("p"):rep(33) } }), 400)
    end)
    it("checks language names, case and count", function()
      create_ok({ file_part(PNG), { name = "language", value = "English,ChinesePRC,Digits" } })
      local ten = "English,ChinesePRC,ChineseTaiwan,Digits,Japanese,Korean,French,German,Spanish,Italian"
      create_ok({ file_part(PNG), { name = "language", value = ten } })
      expect_error(create({ file_part(PNG), { name = "language", value = ten .. ",Russian" } }), 400)
      expect_error(create({ file_part(PNG), { name = "language", value = "english" } }), 400)
      expect_error(create({ file_part(PNG), { name = "language", value = "English, Digits" } }), 400)
      expect_error(create({ file_part(PNG), { name = "language", value = "English,,Digits" } }), 400)
      expect_error(create({ file_part(PNG), { name = "language", value = "Klingon" } }), 400)
    end)
    it("refuses unknown and repeated fields", function()
      expect_error(create({ file_part(PNG), { name = "lang", value = "English" } }), 400)
      expect_error(create({ file_part(PNG), { name = "format", value = "txt" },
                            { name = "format", value = "pdf" } }), 400)
    end)
    it("answers 413 for a file over max_file_size", function()
      emu:config({ max_file_size = 64 })
      create_ok({ file_part(PNG .. ("x"):rep(64 - #PNG)) })
      expect_error(create({ file_part(PNG .. ("x"):rep(65 - #PNG)) }), 413)
    end)
    it("records what was sent in its state", function()
      local id = create_ok({ file_part(PNG, "a.png"), { name = "language", value = "English" },
                             { name = "password", value = "pw" } })
      local t = emu:state().tasks[id]
      assert.are.same({ "file", "a.png", "image/png", #PNG, "English", "pw", "txt", false },
                      { t.source, t.filename, t.content_type, t.size, t.language, t.password,
                        t.format, t.format_sent })
      id = create_ok({ { name = "image_url", value = "https://a.example/x.png" },
                       { name = "format", value = "pdf" } })
      t = emu:state().tasks[id]
      assert.are.same({ "url", "https://a.example/x.png", "ChinesePRC,English,Digits", "pdf", true },
                      { t.source, t.image_url, t.language, t.format, t.format_sent })
    end)
  end)

  describe("qps", function()
    it("allows 2 creates per second per key by default, then 429", function()
      emu:reset()   -- back to the default qps
      create_ok({ file_part(PNG) })
      create_ok({ file_part(PNG) })
      expect_error(create({ file_part(PNG) }), 429)
      -- polls are not limited
      assert.are.equal(200, poll((next(emu:state().tasks))).status)
      socket.sleep(1.1)
      create_ok({ file_part(PNG) })
    end)
    it("follows the qps setting", function()
      emu:config({ qps = 1 })
      create_ok({ file_part(PNG) })
      expect_error(create({ file_part(PNG) }), 429)
    end)
  end)

  describe("task life", function()
    it("walks queued -> processing -> done, one step per poll, then serves the text", function()
      local id = create_ok({ file_part(PNG .. "TEXT:Hello\n你好世界", "s.png"),
                             { name = "format", value = "txt" } })
      local r1 = poll(id).json
      assert.are.same({ 200, "success", id, 0, 0 },
                      { r1.status, r1.message, r1.data.task_id, r1.data.state, r1.data.progress })
      assert.is_nil(r1.data.file)
      assert.truthy(r1.data.created_at:match("^%d+$"))
      assert.are.equal("", r1.data.completed_at)
      local r2 = poll(id).json
      assert.are.same({ 4, 50 }, { r2.data.state, r2.data.progress })
      assert.is_nil(r2.data.file)
      assert.truthy(r2.data.processed_at:match("^%d+$"))
      local r3 = poll(id).json
      assert.are.same({ 1, 100 }, { r3.data.state, r3.data.progress })
      assert.truthy(r3.data.completed_at:match("^%d+$"))
      local url = r3.data.file
      local function lit(x) return (x:gsub("%p", "%%%0")) end
      assert.truthy(url:match("^" .. lit(emu.url .. "/results/" .. id .. ".txt?expires=") .. "%d+$"),
                    url)
      local expires = tonumber(url:match("expires=(%d+)"))
      assert.truthy(math.abs(expires - (tonumber(r3.data.completed_at) + 3600)) <= 1)
      -- the final state repeats
      assert.are.equal(1, poll(id).json.data.state)
      local got = download(url)
      assert.are.equal(200, got.status)
      assert.are.equal("Hello\n你好世界", got.body)
      assert.is_nil(emu:requests("/results/")[1].headers["x-api-key"])
    end)
    it("serves pdf and office results with the right magic", function()
      for fmt, magic in pairs({ pdf = "%PDF-1.4", docx = "PK\3\4", xlsx = "PK\3\4", pptx = "PK\3\4" }) do
        local id = create_ok({ file_part(PNG), { name = "format", value = fmt } })
        local d = walk(id)
        assert.truthy(d.file:find("%." .. fmt .. "%?expires="))
        local got = download(d.file)
        assert.are.equal(200, got.status)
        assert.are.equal(magic, got.body:sub(1, #magic))
      end
    end)
    it("recognises default_text without the marker and url_text for a URL", function()
      emu:config({ qps = 0, default_text = "plain default", url_text = "from the url" })
      assert.are.equal("plain default", download(walk(create_ok({ file_part(PNG) })).file).body)
      local id = create_ok({ { name = "image_url", value = "https://a.example/x.png" } })
      assert.are.equal("from the url", download(walk(id).file).body)
    end)
    it("fails a task whose script ends negative", function()
      emu:config({ qps = 0, script = { { state = 0, progress = 0 }, { state = 4, progress = 30 },
                                       { state = -8, progress = 30 } } })
      local id = create_ok({ file_part(PNG) })
      local d, n, whole = walk(id)
      assert.are.equal(3, n)
      assert.are.equal(-8, d.state)
      assert.is_nil(d.file)
      assert.are.equal(200, whole.status)
      assert.truthy(whole.message:find("timed out", 1, true))
      assert.truthy(d.completed_at:match("^%d+$"))
    end)
    it("fails an invalid image with state -7", function()
      local d = walk(create_ok({ file_part("this is not an image", "x.png") }))
      assert.are.equal(-7, d.state)
      assert.is_nil(d.file)
      -- every accepted magic is accepted
      for _, magic in ipairs({ "\255\216\255\224", "GIF89a", "BM", "%PDF-1.7", "PK\3\4",
                               "\208\207\17\224\161\177\26\225" }) do
        assert.are.equal(1, walk(create_ok({ file_part(magic .. "TEXT:x") })).state)
      end
    end)
    it("fails a URL listed in url_fail with its state", function()
      emu:config({ qps = 0, url_fail = { ["https://a.example/gone.png"] = -3 } })
      local d = walk(create_ok({ { name = "image_url", value = "https://a.example/gone.png" } }))
      assert.are.equal(-3, d.state)
    end)
    it("answers 404 for an unknown task", function()
      expect_error(poll("00000000-0000-4000-8000-000000000000"), 404)
    end)
    it("applies script changes to new tasks only", function()
      local old = create_ok({ file_part(PNG) })
      emu:config({ qps = 0, script = { { state = 1, progress = 100 } } })
      local new = create_ok({ file_part(PNG) })
      assert.are.equal(1, poll(new).json.data.state)
      assert.are.equal(0, poll(old).json.data.state)
      assert.are.equal(3, #emu:state().tasks[old].steps)
    end)
  end)

  describe("result URLs", function()
    it("expire after file_ttl with an OSS-style 403", function()
      emu:config({ qps = 0, file_ttl = 1 })
      local d = walk(create_ok({ file_part(PNG .. "TEXT:soon gone") }))
      assert.are.equal(200, download(d.file).status)
      socket.sleep(2.2)
      local got = download(d.file)
      assert.are.equal(403, got.status)
      assert.truthy(got.headers["content-type"]:find("application/xml", 1, true))
      assert.are.equal("AccessDenied", got.body:match("<Code>(.-)</Code>"))
      assert.are.equal("Request has expired.", got.body:match("<Message>(.-)</Message>"))
    end)
    it("refuse a tampered or missing expires, 404 an unknown file", function()
      local d = walk(create_ok({ file_part(PNG) }))
      local later = d.file:gsub("expires=(%d+)", function(e) return "expires=" .. (e + 3600) end)
      assert.are.equal(403, download(later).status)
      assert.are.equal(403, download((d.file:gsub("%?.*$", ""))).status)
      assert.are.equal(404, download((d.file:gsub("%.txt%?", ".pdf?"))).status)
      assert.are.equal("NoSuchKey", download((d.file:gsub("/results/%x", "/results/z"))).body
                       :match("<Code>(.-)</Code>"))
    end)
    it("honour result_base", function()
      emu:config({ qps = 0, result_base = "https://cdn.example" })
      local d = walk(create_ok({ file_part(PNG) }))
      assert.truthy(d.file:match("^https://cdn%.example/results/"))
    end)
  end)

  describe("error_style = body", function()
    it("sends errors as HTTP 200 with the status in the body", function()
      emu:config({ qps = 0, error_style = "body" })
      local res = create({ file_part(PNG) }, { key = "nope" })
      assert.are.equal(200, res.status)
      assert.are.equal(401, res.json.status)
      res = create({ file_part(PNG), { name = "format", value = "doc" } })
      assert.are.same({ 200, 400 }, { res.status, res.json.status })
      res = poll("no-such-task")
      assert.are.same({ 200, 404 }, { res.status, res.json.status })
      -- success is unchanged
      assert.are.equal(200, create({ file_part(PNG) }).json.status)
    end)
  end)

  it("answers 404 JSON for other API paths", function()
    local res = api("GET", "/api/tasks/document/nothing")
    expect_error(res, 404)
  end)
end)
