-- Proves that spec/emulators/oldfish.py enforces the Code.ashx contract (its public
-- API documentation), so the provider tested against it is tested against the contract.
-- Requests go through a raw LuaSocket client (not ocr.curl), so every byte is the spec's choice.
local cjson = require "cjson"
local emulator = require "helpers.emulator"
local rawhttp = require "helpers.rawhttp"

local TOKEN = "test-oldfish-token"
local PNG = "\137PNG\r\n\26\n\0\0\0\rIHDR"

-- Every answer's JSON is decoded leniently: count answers in the commented style are no JSON.
local function raw(port, method, target, headers, body)
  return rawhttp.decode_json(rawhttp.request(port, method, target, headers, body), true)
end

local function b64(s) return require("ocr.core").base64_encode(s) end

describe("oldfish emulator", function()
  local emu

  local function target(path, op, extra, token)
    local q = "?op=" .. op .. "&app=api&token=" .. (token or TOKEN)
    return path .. q .. (extra or "")
  end

  local function post(op, opts)
    opts = opts or {}
    local headers, body = {}, nil
    if opts.parts then
      local ctype
      body, ctype = rawhttp.multipart(opts.parts, "----lua-ocr-oldfish-")
      headers[1] = { "Content-Type", ctype }
    elseif opts.form then
      body = opts.form
      headers[1] = { "Content-Type", "application/x-www-form-urlencoded" }
    elseif opts.body then
      body = opts.body
      headers[1] = { "Content-Type", opts.ctype }
    end
    local t = opts.target or target("/Code.ashx", op, opts.query, opts.token)
    return raw(emu.port, opts.method or "POST", t, headers, body)
  end

  local function file(bytes, name) return { name = "file", filename = name or "a.png", ctype = "image/png", value = bytes } end
  local function code(parts, opts) opts = opts or {}; opts.parts = parts; return post("code", opts) end
  local function idcode(id, token) return post("idcode", { form = "id=" .. id, token = token }) end
  local function count(token) return raw(emu.port, "GET", target("/Code.aspx", "count", nil, token), {}) end
  local function ok_answer(res)
    assert.equal(200, res.status, res.body)
    assert.equal(2, res.json.state, res.body)
    return res.json
  end

  setup(function() emu = emulator.start("oldfish") end)
  teardown(function() emu:stop() end)
  before_each(function() emu:reset() end)

  describe("authentication", function()
    it("answers a bad token on code with a Tips answer carrying a message, and no state", function()
      local res = code({ file(PNG .. "TEXT:x") }, { token = "wrong" })
      assert.equal(200, res.status)
      assert.equal("Tips", res.json.processName)
      assert.is_nil(res.json.state)
      assert.equal("string", type(res.json.message))
      assert.truthy(res.json.result.autoText:find("token", 1, true))
      assert.same({}, emu:state().used)
    end)
    it("requires app=api", function()
      local res = code({ file(PNG) }, { target = "/Code.ashx?op=code&token=" .. TOKEN })
      assert.equal("Tips", res.json.processName)
      res = raw(emu.port, "GET", "/Code.aspx?op=count&app=web&token=" .. TOKEN, {})
      assert.same({ Account = "api", TodayCount = 0, LimitCount = 0 }, res.json)
    end)
    it("answers all zeros on count and `no` on idcode and imgUpload", function()
      assert.same({ Account = "api", TodayCount = 0, LimitCount = 0 }, count("wrong").json)
      assert.same({ Account = "api", TodayCount = 0, LimitCount = 100 }, count().json)
      local id = ok_answer(code({ file(PNG) })).id
      assert.equal("no", idcode(id, "wrong").body)
      assert.equal("no", post("imgUpload", { parts = { file(PNG) }, token = "wrong" }).body)
    end)
  end)

  describe("routing", function()
    it("knows the documented spellings and methods only", function()
      assert.equal(404, raw(emu.port, "POST", "/code.ashx?op=code&app=api&token=" .. TOKEN, {}, "").status)
      assert.equal(404, raw(emu.port, "GET", "/Code.ashx.aspx?op=count&app=api&token=" .. TOKEN, {}).status)
      assert.equal(400, raw(emu.port, "GET", target("/Code.ashx", "count"), {}).status)
      assert.equal(400, code({ file(PNG) }, { target = target("/Code.aspx", "code") }).status)
      assert.equal(405, raw(emu.port, "GET", target("/Code.ashx", "code"), {}).status)
      assert.equal(405, raw(emu.port, "POST", target("/Code.aspx", "count"), {}, "").status)
      assert.equal(400, post("Code", { parts = { file(PNG) } }).status)
    end)
    it("refuses unknown and repeated query parameters", function()
      assert.equal(400, code({ file(PNG) }, { query = "&autoDirection=1" }).status)
      assert.equal(400, code({ file(PNG) }, { query = "&type=0&type=1" }).status)
      assert.equal(400, post("idcode", { form = "id=x", query = "&type=0" }).status)
      assert.equal(400, raw(emu.port, "GET", target("/Code.aspx", "count", "&x=1"), {}).status)
    end)
  end)

  describe("op=code", function()
    it("recognises a file part, with verticalText as a JSON string", function()
      local a = ok_answer(code({ file(PNG .. "TEXT:Hello\n你好") }))
      assert.truthy(a.id:match("^%x+%-%x+%-%x+%-%x+%-%x+$"))
      assert.equal(0, a.ocrType)
      assert.equal("OCR-Node-01", a.processName)
      assert.equal("Hello\n你好", a.result.autoText)
      assert.equal("\tHello\n\t你好", a.result.spiltText)
      assert.equal("chi_sim", a.result.lang)
      assert.equal("string", type(a.result.verticalText))
      local cells = cjson.decode(a.result.verticalText)
      assert.equal("你好", cells[2].words)
      assert.equal(0, cells[2].pageIndex)
      assert.same({ left = 20, top = 60, width = 64, height = 32 }, cells[2].location)
      assert.is_nil(a.message)
    end)
    it("takes the file part under any name, records it, and wants a filename", function()
      local a = ok_answer(code({ { name = "image", filename = "b.png", ctype = "image/png", value = PNG } }))
      assert.equal("image", emu:state().tasks[a.id].part_name)
      assert.equal(400, code({ { name = "file", value = PNG } }).status)
    end)
    it("takes url and code as multipart or urlencoded fields, and code as a text/plain body", function()
      emu:config{ url_text = "来自网址" }
      assert.equal("来自网址", ok_answer(code({ { name = "url", value = "https://a.example/x.png" } })).result.autoText)
      assert.equal("来自网址", ok_answer(post("code", { form = "url=https%3A%2F%2Fa.example%2Fx.png" })).result.autoText)
      local data = b64(PNG .. "TEXT:编码")
      assert.equal("编码", ok_answer(code({ { name = "code", value = data } })).result.autoText)
      assert.equal("编码", ok_answer(post("code", { form = "code=" .. data:gsub("[+/=]", function(c)
        return ("%%%02X"):format(c:byte()) end) })).result.autoText)
      assert.equal("编码", ok_answer(post("code", { body = data, ctype = "text/plain" })).result.autoText)
    end)
    it("wants exactly one image source", function()
      assert.equal(400, code({}).status)
      assert.equal(400, code({ file(PNG), { name = "url", value = "https://a.example/x.png" } }).status)
      assert.equal(400, code({ { name = "url", value = "https://a.example/x.png" }, { name = "code", value = b64(PNG) } }).status)
      assert.equal(400, code({ file(PNG), file(PNG, "b.png") }).status)
      assert.equal(400, code({ file(PNG), { name = "lang", value = "eng" } }).status)
      assert.equal(400, code({ { name = "url", value = "ftp://a.example/x.png" } }).status)
      assert.equal(400, code({ file("") }).status)
    end)
    it("wants strict base64 without a data: header", function()
      local data = b64(PNG)
      assert.equal(400, code({ { name = "code", value = "data:image/png;base64," .. data } }).status)
      assert.equal(400, code({ { name = "code", value = data:gsub("=+$", "") } }).status)
      assert.equal(400, code({ { name = "code", value = data:sub(1, 8) .. "\n" .. data:sub(9) } }).status)
      assert.equal(400, code({ { name = "code", value = data:gsub("%+", "-") .. "-" } }).status)
      assert.equal(400, code({ { name = "code", value = "" } }).status)
      ok_answer(code({ { name = "code", value = data } }))
    end)
    it("takes type 0..3 and answers state 7 for other types", function()
      for t = 0, 3 do
        assert.equal(t, ok_answer(code({ file(PNG) }, { query = "&type=" .. t })).ocrType)
      end
      for _, t in ipairs{ "4", "-1", "table", "" } do
        local res = code({ file(PNG) }, { query = "&type=" .. t })
        assert.equal(7, res.json.state, t)
        assert.is_nil(res.json.result)
      end
      assert.same({ [TOKEN] = 4 }, emu:state().used)
    end)
    it("takes the layout flags as 0 or 1 only, and applies half", function()
      local q = "&left=1&top=0&autodirection=1&half=1&space=0&symbol=1&duplicate=0"
      local a = ok_answer(code({ file(PNG .. "TEXT:你好，世界！") }, { query = q }))
      assert.equal("你好,世界!", a.result.autoText)
      assert.same({ left = 1, top = 0, autodirection = 1, half = 1, space = 0, symbol = 1, duplicate = 0 },
                  emu:state().tasks[a.id].flags)
      for _, bad in ipairs{ "&left=2", "&half=true", "&top=", "&space=01" } do
        assert.equal(400, code({ file(PNG) }, { query = bad }).status, bad)
      end
    end)
    it("answers state 7 for a file without an accepted magic number", function()
      local res = code({ file("just text") })
      assert.equal(7, res.json.state)
      assert.equal("string", type(res.json.message))
    end)
    it("gives table mode JSON columns in spiltText", function()
      local a = ok_answer(code({ file(PNG .. "TEXT:a\tb\nc\td\te") }, { query = "&type=2" }))
      assert.equal(2, a.result.resultType)
      assert.same({ { "a", "c" }, { "b", "d" }, { "", "e" } }, cjson.decode(a.result.spiltText))
    end)
    it("gives formula mode a viewUrl", function()
      local a = ok_answer(code({ file(PNG .. "TEXT:x^2") }, { query = "&type=3" }))
      assert.equal(1, a.result.resultType)
      local page = raw(emu.port, "GET", a.result.viewUrl:match("^http://[^/]+(/.*)$"), {})
      assert.equal(200, page.status)
      assert.truthy(page.body:find("x^2", 1, true))
    end)
    it("answers state 6 while busy, for free", function()
      emu:config{ busy = 1 }
      local res = code({ file(PNG) })
      assert.equal(6, res.json.state)
      assert.is_nil(res.json.id)
      ok_answer(code({ file(PNG) }))
      assert.same({ [TOKEN] = 1 }, emu:state().used)
    end)
    it("answers the documented quota answer once the credits run out", function()
      emu:config{ credits = 1 }
      ok_answer(code({ file(PNG) }))
      local res = code({ file(PNG) })
      assert.equal(200, res.status)
      assert.same({ ocrType = 0, processName = "Tips", id = 1, result = {
        spiltText = "Today's API quota has been exhausted, please recharge and continue to use it!",
        autoText = "Today's API quota has been exhausted, please recharge and continue to use it!" } }, res.json)
      assert.same({ Account = "api", TodayCount = 1, LimitCount = 0 }, count().json)
    end)
  end)

  describe("op=idcode", function()
    it("walks the script, answering a JSON array; pending answers have no processName", function()
      emu:config{ script = { 0, { state = 0 }, 2 } }
      local first = code({ file(PNG .. "TEXT:慢") })
      assert.equal(0, first.json.state)
      assert.is_nil(first.json.processName)
      assert.is_nil(first.json.result)
      local id = first.json.id
      local r1 = idcode(id)
      assert.equal(1, #r1.json)
      assert.equal(0, r1.json[1].state)
      local r2 = idcode(id)
      assert.equal(2, r2.json[1].state)
      assert.equal("慢", r2.json[1].result.autoText)
      assert.equal(id, r2.json[1].id)
      assert.equal(2, idcode(id).json[1].state) -- the last step repeats
      -- the id may come as a multipart field too (ASP.NET Request.Form)
      local m = post("idcode", { parts = { { name = "id", value = id } } })
      assert.equal(2, m.json[1].state)
    end)
    it("answers states 3, 4, 6, 7 with a message", function()
      for _, s in ipairs{ 3, 4, 6, 7 } do
        emu:config{ script = { 0, s } }
        local a = idcode(code({ file(PNG) }).json.id).json[1]
        assert.equal(s, a.state)
        assert.equal("string", type(a.message))
        assert.is_nil(a.result)
      end
    end)
    it("answers plain `no` for unknown, missing, another token's and expired ids", function()
      emu:config{ token = { TOKEN, "other-token" }, script = { 0, 2 } }
      local id = code({ file(PNG) }).json.id
      local res = idcode("00000000-0000-0000-0000-000000000000")
      assert.equal("no", res.body)
      assert.truthy(res.headers["content-type"]:find("text/plain", 1, true))
      assert.equal("no", post("idcode", { form = "" }).body)
      assert.equal("no", idcode(id, "other-token").body)
      emu:config{ result_ttl = 0 }
      assert.equal("no", idcode(id).body)
    end)
  end)

  describe("result files", function()
    it("lists DownLoadInfo objects, serves them, and lets them expire", function()
      emu:config{ files = { 1, { fileType = 6, name = "../../notes.md", desc = "笔记" } } }
      local a = ok_answer(code({ file(PNG .. "TEXT:文件") }))
      local f = a.result.files
      assert.equal(2, #f)
      assert.same({ 1, 6 }, { f[1].fileType, f[2].fileType })
      assert.equal("", f[1].param)
      assert.equal("笔记", f[2].desc)
      assert.truthy(f[2].url:find("/files/..%2F..%2Fnotes.md", 1, true))
      local pdf = raw(emu.port, "GET", f[1].url:match("^http://[^/]+(/.*)$"), {})
      assert.equal("%PDF", pdf.body:sub(1, 4))
      assert.equal("# 文件", raw(emu.port, "GET", f[2].url:match("^http://[^/]+(/.*)$"), {}).body)
      emu:config{ files = { 2 }, file_ttl = -1 }
      local b = ok_answer(code({ file(PNG) }))
      assert.equal(404, raw(emu.port, "GET", b.result.files[1].url:match("^http://[^/]+(/.*)$"), {}).status)
    end)
  end)

  describe("op=imgUpload and op=count", function()
    it("stores an image and answers its URL on this server as plain text", function()
      local res = post("imgUpload", { parts = { file(PNG .. "TEXT:图床") } })
      assert.equal(200, res.status)
      local url = res.body
      assert.truthy(url:match("^" .. emu.url:gsub("%p", "%%%0") .. "/uploads/%x+%.png$"), url)
      assert.equal(PNG .. "TEXT:图床", raw(emu.port, "GET", url:match("^http://[^/]+(/.*)$"), {}).body)
      assert.equal("图床", ok_answer(code({ { name = "url", value = url } })).result.autoText)
    end)
    it("answers `no` without a file, for a non-image, or when told to fail", function()
      assert.equal("no", post("imgUpload", { parts = { { name = "x", value = "y" } } }).body)
      assert.equal("no", post("imgUpload", { parts = { file("not an image") } }).body)
      emu:config{ upload_fail = true }
      assert.equal("no", post("imgUpload", { parts = { file(PNG) } }).body)
    end)
    it("counts what op=code charged, in the documented commented style on request", function()
      emu:config{ credits = 3, count_comments = true }
      ok_answer(code({ file(PNG) }))
      local res = count()
      assert.truthy(res.body:find('"TodayCount": 1, // Used today', 1, true))
      assert.truthy(res.body:find('"LimitCount": 2', 1, true))
    end)
  end)
end)
