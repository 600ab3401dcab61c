-- The oldfish provider end to end through the public API, against the strict Code.ashx emulator
-- (spec/emulators/oldfish.py).
local ocr = require "ocr"
local cjson = require "cjson"
local F = require "helpers.files"
local rig = require "helpers.rig"
local expect = require "helpers.expect"

local TOKEN = "test-oldfish-token"
local TEXT = "Hello lua-ocr\n你好，世界"

describe("oldfish provider", function()
  local emu, dir, img

  local function client(opts)
    return rig.client("oldfish", { token = TOKEN, endpoint = emu.url, poll_interval = 0.01,
      poll_timeout = 5, backoff = { base = 0.01, cap = 0.05 } }, opts)
  end

  local function ops(op)
    local out = {}
    for _, e in ipairs(emu:log()) do
      if e.query.op == op then out[#out + 1] = e end
    end
    return out
  end

  setup(function() emu, dir, img = rig.start("oldfish", { { "scan.png", TEXT } }) end)
  teardown(function() rig.stop(emu, dir) end)
  before_each(function() emu:reset() end)

  describe("sources", function()
    it("streams a file as the multipart part `file`, with type and the token in the query", function()
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal("oldfish", res.provider)
      assert.equal("chi_sim", res.language)
      assert.equal(2, #res.lines)
      assert.equal("你好，世界", res.lines[2].text)
      -- geometry from verticalText (ocrtext.py: 16 px per column, wide characters 2 columns)
      assert.same({ x = 20, y = 60, w = 160, h = 32 }, res.lines[2].box)
      assert.equal(1, res.lines[1].page)
      assert.truthy(res.task_id:match("^%x+%-%x+%-%x+%-%x+%-%x+$"))
      local code = ops("code")
      assert.equal(1, #code)
      assert.equal("/Code.ashx", code[1].path)
      assert.equal("POST", code[1].method)
      assert.same({ op = "code", app = "api", token = TOKEN, type = "0" }, code[1].query)
      assert.equal("scan.png", code[1].form.file[1].filename)
      assert.equal("image/png", code[1].form.file[1].content_type)
      assert.is_nil(code[1].form.code)
      assert.is_nil(code[1].form.url)
      assert.equal(0, #ops("idcode"))
    end)

    it("sends in-memory data as bare base64 in `code`", function()
      local data = "\137PNG\r\n\26\nTEXT:你好"
      local res, err = client():recognize{ data = data }
      assert.is_nil(err)
      assert.equal("你好", res.text)
      local form = ops("code")[1].form
      -- python3 -c 'import base64; print(base64.b64encode(b"\x89PNG\r\n\x1a\nTEXT:\xe4\xbd\xa0\xe5\xa5\xbd").decode())'
      assert.equal("iVBORw0KGgpURVhUOuS9oOWlvQ==", form.code[1].value)
      assert.is_nil(form.file)
    end)

    it("sends data as a file part with data_as = \"file\" and a custom file_field", function()
      local res, err = client{ data_as = "file", file_field = "image" }
                       :recognize{ data = F.image("内存里的图"), filename = "page.jpg" }
      assert.is_nil(err)
      assert.equal("内存里的图", res.text)
      local form = ops("code")[1].form
      assert.equal("page.jpg", form.image[1].filename)
      assert.equal("image/jpeg", form.image[1].content_type)
      assert.equal("image", emu:state().tasks[res.task_id].part_name)
    end)

    it("sends a URL as the form field `url`", function()
      emu:config{ url_text = "网址里的文字\nfrom a URL" }
      local res, err = client():recognize{ url = "https://example.com/a%20b.png" }
      assert.is_nil(err)
      assert.equal("网址里的文字\nfrom a URL", res.text)
      assert.equal("https://example.com/a%20b.png", ops("code")[1].form.url[1].value)
    end)
  end)

  describe("options", function()
    it("puts every layout flag in the query as 1/0 and omits those not given", function()
      local c = client()
      assert(c:recognize{ file = img, left = true, top = true, autodirection = true, half = true,
                          space = true, symbol = true, duplicate = true })
      assert(c:recognize{ file = img, left = false, duplicate = false })
      assert(c:recognize{ file = img })
      local code = ops("code")
      for _, f in ipairs{ "left", "top", "autodirection", "half", "space", "symbol", "duplicate" } do
        assert.equal("1", code[1].query[f], f)
      end
      assert.equal("0", code[2].query.left)
      assert.equal("0", code[2].query.duplicate)
      assert.is_nil(code[2].query.top)
      for _, f in ipairs{ "left", "top", "autodirection", "half", "space", "symbol", "duplicate" } do
        assert.is_nil(code[3].query[f], f)
      end
    end)

    it("applies half = true (the emulator converts full-width punctuation)", function()
      local res = assert(client():recognize{ file = img, half = true })
      assert.equal("Hello lua-ocr\n你好,世界", res.text)
    end)

    it("accepts type as 0..3 or by name", function()
      local c = client()
      local names = { text = "0", vertical = "1", table = "2", formula = "3" }
      for name, n in pairs(names) do
        emu:reset()
        assert(c:recognize{ file = img, type = name })
        assert(c:recognize{ file = img, type = tonumber(n) })
        local code = ops("code")
        assert.equal(n, code[1].query.type)
        assert.equal(n, code[2].query.type)
      end
    end)

    it("decodes table mode's JSON columns into res.table and keeps the raw answer", function()
      local tbl = F.write(dir .. "/table.png", F.image("品名\t数量\n苹果\t3\n梨\t12"))
      local res, err = client():recognize{ file = tbl, type = "table" }
      assert.is_nil(err)
      assert.same({ { "品名", "苹果", "梨" }, { "数量", "3", "12" } }, res.table)
      assert.equal("string", type(res.raw.result.spiltText))
      assert.same(res.table, cjson.decode(res.raw.result.spiltText))
      assert.equal(2, res.raw.result.resultType)
      assert.equal("品名\t数量\n苹果\t3\n梨\t12", res.text)
    end)

    it("keeps an undecodable table in res.raw, without res.table", function()
      emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST",
                 body = cjson.encode{ ocrType = 2, id = "t-1", state = 2, result = {
                   autoText = "a\tb", spiltText = "[[not json", resultType = 2 } } }
      local events = {}
      local res, err = client{ log = function(ev) events[#events + 1] = ev end }
                       :recognize{ file = img, type = 2 }
      assert.is_nil(err)
      assert.is_nil(res.table)
      assert.equal("[[not json", res.raw.result.spiltText)
      assert.equal("a\tb", res.text)
      local seen = false
      for _, ev in ipairs(events) do seen = seen or (ev.event == "decode_failed" and ev.field == "spiltText") end
      assert.is_true(seen)
    end)

    it("offers the formula preview page (type 3) as res.view_url", function()
      local res = assert(client():recognize{ file = img, type = "formula" })
      assert.equal(emu.url .. "/view/" .. res.task_id, res.view_url)
    end)

    it("maps verticalText pages (pageIndex + 1) and falls back on the lines without autoText", function()
      emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST",
                 body = cjson.encode{ ocrType = 0, id = "p-1", state = 2, result = {
                   verticalText = cjson.encode{
                     { words = "第一页", pageIndex = 0, location = { left = 1, top = 2, width = 3, height = 4 } },
                     { words = "第二页", pageIndex = 1, trans = "page two" } } } } }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal("第一页\n第二页", res.text)
      assert.equal(2, res.pages)
      assert.same({ x = 1, y = 2, w = 3, h = 4 }, res.lines[1].box)
      assert.equal(2, res.lines[2].page)
      assert.is_nil(res.lines[2].box)
      assert.equal("page two", res.lines[2].translation)
    end)
  end)

  describe("result files", function()
    it("lists result.files with their formats", function()
      emu:config{ files = { 1, 2, 3, 4, 5, 6 } }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      local formats = {}
      for i, f in ipairs(res.files) do
        formats[i] = f.format
        assert.truthy(f.url:match("^" .. emu.url:gsub("%p", "%%%0") .. "/files/"))
        assert.is_nil(f.path)
      end
      assert.same({ "pdf", "docx", "pptx", "xlsx", "txt", "md" }, formats)
      assert.equal("PDF document", res.files[1].desc)
      assert.equal(0, #emu:requests("/files/"))
    end)

    it("downloads them into output, never outside it and never over an existing file", function()
      local out = F.mkdir(dir .. "/out-files")
      F.write(out .. "/escape.docx", "mine")
      emu:config{ files = { 1, { fileType = 2, name = "../../escape.docx" } } }
      local res, err = client():recognize{ file = img, output = out }
      assert.is_nil(err)
      assert.equal(out .. "/" .. res.task_id .. "-1.pdf", res.files[1].path)
      assert.equal("%PDF", F.read(res.files[1].path):sub(1, 4))
      assert.equal(out .. "/escape-1.docx", res.files[2].path)
      assert.equal("mine", F.read(out .. "/escape.docx"))
      assert.equal("PK", F.read(res.files[2].path):sub(1, 2))
      local expected = { "escape-1.docx", "escape.docx", res.task_id .. "-1.pdf" }
      table.sort(expected)
      assert.same(expected, F.list(out))
      assert.is_nil(F.read(dir .. "/escape.docx"))
    end)

    it("reports an expired result file as not_found", function()
      local out = F.mkdir(dir .. "/out-expired")
      emu:config{ files = { 1 }, file_ttl = -1 }
      local res, err = client():recognize{ file = img, output = out }
      assert.is_nil(res)
      assert.equal("not_found", err.kind)
      assert.equal(404, err.status)
      assert.truthy(err.task_id)
    end)
  end)

  describe("the quota answer", function()
    it("is a quota error whose message is the tip, never OCR text", function()
      emu:config{ credits = 1 }
      local c = client()
      assert(c:recognize{ file = img })
      local res, err = c:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("quota", err.kind)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("quota has been exhausted", 1, true))
      assert.is_nil(err.tips)
      assert.equal(2, #ops("code"))   -- never re-sent
      assert.equal(1, #ops("count"))  -- the check that tells it from a bad token
    end)

    it("becomes auth when op=count shows the token is invalid", function()
      local res, err = client{ token = "not-a-valid-token" }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("auth", err.kind)
      assert.truthy(err.message:find("Invalid token", 1, true))
      assert.equal(1, #ops("code"))
    end)

    it("stays quota with tips_check = false, without asking op=count", function()
      local _, err = client{ token = "not-a-valid-token", tips_check = false }:recognize{ file = img }
      assert.equal("quota", err.kind)
      assert.equal(0, #ops("count"))
    end)
  end)

  describe("polling", function()
    it("polls op=idcode with the id in a form body until state 2", function()
      emu:config{ script = { 0, 0, 2 } }
      local stages = {}
      local res, err = client{ on_progress = function(ev) stages[#stages + 1] = ev.stage end }
                       :recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      local polls = ops("idcode")
      assert.equal(2, #polls)
      for _, p in ipairs(polls) do
        assert.equal("/Code.ashx", p.path)
        assert.equal("POST", p.method)
        assert.same({ op = "idcode", app = "api", token = TOKEN }, p.query)
        assert.equal("id=" .. res.task_id, p.body)
        assert.equal("application/x-www-form-urlencoded", p.headers["content-type"])
      end
      assert.equal(1, #ops("code"))
      local queued = 0
      for _, s in ipairs(stages) do if s == "queued" then queued = queued + 1 end end
      assert.is_true(queued >= 2)
      assert.equal("done", stages[#stages])
    end)

    it("maps the plain-text `no` (id expired) to not_found, keeping the id", function()
      emu:config{ script = { 0, 2 }, result_ttl = 0 }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("not_found", err.kind)
      assert.truthy(err.task_id)
      assert.equal(1, #ops("idcode"))   -- not retried
    end)

    it("maps an unknown id in client:result to not_found", function()
      local res, err = client():result("00000000-0000-0000-0000-000000000000")
      assert.is_nil(res)
      assert.equal("not_found", err.kind)
      assert.equal("00000000-0000-0000-0000-000000000000", err.task_id)
    end)

    it("times out keeping the id, and client:result fetches it later", function()
      local script = {}
      for i = 1, 40 do script[i] = 0 end
      script[41] = 2
      emu:config{ script = script }
      local res, err = client{ poll_timeout = 0.05, poll_interval = 0.02 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("timeout", err.kind)
      assert.is_true(err.retryable)
      assert.truthy(err.task_id)
      local res2, err2 = client{ poll_interval = 0.001 }:result(err.task_id)
      assert.is_nil(err2)
      assert.equal(TEXT, res2.text)
      assert.equal(err.task_id, res2.task_id)
      assert.equal(1, #ops("code"))
    end)

    it("takes the array element with our id", function()
      emu:config{ script = { 0, 2 } }
      local other = { ocrType = 0, id = "someone-else", state = 3 }
      local mine = { ocrType = 0, id = "ID", state = 2, result = { autoText = "我的结果" } }
      -- 1. the emulator's op=code answers a fresh UUID; the idcode answer is replaced by one whose
      --    elements carry other ids: the first element is taken.
      emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST", skip = 1,
                 body = cjson.encode{ other, mine } }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("task_failed", err.kind)
      -- 2. op=code answers id "ID" (pending): the element with that id is taken, wherever it is.
      emu:reset()
      emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST",
                 body = cjson.encode{ ocrType = 0, id = "ID", state = 0 } }
      emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST",
                 body = cjson.encode{ other, mine } }
      local res2, err2 = client():recognize{ file = img }
      assert.is_nil(err2)
      assert.equal("我的结果", res2.text)
      assert.equal("ID", res2.task_id)
    end)

    it("retries polls through 5xx, drops, truncated and slow answers", function()
      emu:config{ script = { 0, 2 } }
      local c = client{ timeout = 0.5, retries = 4 } -- four faults on one poll, then the answer
      emu:fault{ action = "status", path = "/Code.ashx", status = 503, body = "busy", skip = 1 }
      emu:fault{ action = "drop", path = "/Code.ashx", skip = 1 }
      emu:fault{ action = "truncate", path = "/Code.ashx", skip = 1 }
      emu:fault{ action = "slow", delay = 1, path = "/Code.ashx", skip = 1 }
      local res, err = c:recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(1, #ops("code"))
      assert.equal(5, #ops("idcode"))
    end)
  end)

  describe("every documented state", function()
    local kinds = { [3] = "task_failed", [4] = "timeout", [7] = "unsupported" }
    for state, kind in pairs(kinds) do
      it(("maps state %d on op=code to %s, never re-sending"):format(state, kind), function()
        emu:config{ script = { state } }
        local res, err = client():recognize{ file = img }
        assert.is_nil(res)
        assert.equal(kind, err.kind)
        assert.equal(state, err.code)
        assert.is_true(#err.message > 0)
        assert.equal(1, #ops("code"))
      end)
      it(("maps state %d while polling to %s, keeping the id"):format(state, kind), function()
        emu:config{ script = { 0, state } }
        local res, err = client():recognize{ file = img }
        assert.is_nil(res)
        assert.equal(kind, err.kind)
        assert.equal(state, err.code)
        assert.truthy(err.task_id)
        assert.equal(1, #ops("idcode"))
      end)
    end

    it("marks state 3 retryable and state 7 not", function()
      emu:config{ script = { 3 } }
      local _, err = client():recognize{ file = img }
      assert.is_true(err.retryable)
      emu:config{ script = { 7 } }
      _, err = client():recognize{ file = img }
      assert.is_false(err.retryable)
    end)

    it("answers state 7 for a file format the engine does not take", function()
      local res, err = client():recognize{ data = "plain text, no image", filename = "x.png" }
      assert.is_nil(res)
      assert.equal("unsupported", err.kind)
      assert.equal(7, err.code)
    end)

    it("re-sends op=code on state 6 (busy): the vendor did not take the job", function()
      emu:config{ busy = 2 }
      local res, err = client():recognize{ file = img }
      assert.is_nil(err)
      assert.equal(TEXT, res.text)
      assert.equal(3, #ops("code"))
      assert.equal(1, emu:state().used[TOKEN])
    end)

    it("gives up on state 6 after the retries as rate_limited, vendor_busy", function()
      emu:config{ busy = 10 }
      local res, err = client{ retries = 2 }:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("rate_limited", err.kind)
      assert.is_true(err.vendor_busy)
      assert.equal(6, err.code)
      assert.equal(3, err.attempts)
      assert.equal(3, #ops("code"))
    end)

    it("maps state 6 while polling to rate_limited", function()
      emu:config{ script = { 0, 6 } }
      local _, err = client():recognize{ file = img }
      assert.equal("rate_limited", err.kind)
      assert.truthy(err.task_id)
    end)

    it("turns an undocumented state or a malformed answer into protocol", function()
      emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST",
                 body = '{"ocrType":0,"id":"x","state":5}' }
      local _, err = client():recognize{ file = img }
      assert.equal("protocol", err.kind)
      assert.equal(5, err.code)
      emu:fault{ action = "malformed", path = "/Code.ashx", method = "POST" }
      _, err = client():recognize{ file = img }
      assert.equal("protocol", err.kind)
      emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST",
                 body = '{"ocrType":0,"id":"x","state":2}' }
      _, err = client():recognize{ file = img }
      assert.equal("protocol", err.kind)
      assert.truthy(err.message:find("result", 1, true))
    end)

    it("maps HTTP errors by status", function()
      emu:fault{ action = "status", status = 404, path = "/Code.ashx", body = "<html>gone</html>",
                 content_type = "text/html" }
      local _, err = client():recognize{ file = img }
      assert.equal("not_found", err.kind)
      assert.equal(404, err.status)
      assert.equal(1, #ops("code"))
    end)
  end)

  describe("client:quota()", function()
    it("reads op=count on /Code.aspx", function()
      emu:config{ credits = 10 }
      local c = client()
      assert(c:recognize{ file = img })
      assert(c:recognize{ data = F.image("二") })
      local q, err = c:quota()
      assert.is_nil(err)
      assert.equal("api", q.account)
      assert.equal(2, q.today)
      assert.equal(8, q.limit)
      local e = emu:requests("/Code.aspx")[1]
      assert.equal("GET", e.method)
      assert.same({ op = "count", app = "api", token = TOKEN }, e.query)
    end)

    it("reads the document's commented style too", function()
      emu:config{ credits = 5, count_comments = true }
      local q = assert(client():quota())
      assert.equal(0, q.today)
      assert.equal(5, q.limit)
    end)

    it("keeps // inside strings (escaped quotes too) while it strips the comments", function()
      emu:fault{ action = "status", path = "/Code.aspx", status = 200,
                 body = '{ // the account\n  "Account": "a\\"pi // not a comment",\n  "TodayCount": 3, // used\n  "LimitCount": 7\n}' }
      local q, err = client():quota()
      assert.is_nil(err)
      assert.same({ account = 'a"pi // not a comment', today = 3, limit = 7, provider = "oldfish" }, q)
    end)

    it("calls a count answer that is not JSON, or lacks the counts, a protocol error", function()
      for body, words in pairs{ ["<html>busy</html>"] = "count answer is not JSON",
                                ['{"Account":"api"}'] = "count answer lacks TodayCount/LimitCount" } do
        emu:reset()
        emu:fault{ action = "status", path = "/Code.aspx", status = 200, body = body }
        local q, err = client():quota()
        assert.is_nil(q)
        assert.equal("protocol", err.kind)
        assert.equal(words, err.message)
      end
    end)

    it("maps the all-zero answer to auth", function()
      local q, err = client{ token = "not-a-valid-token" }:quota()
      assert.is_nil(q)
      assert.equal("auth", err.kind)
    end)
  end)

  describe("client:upload_image()", function()
    it("uploads to op=imgUpload and returns the URL, which recognises as the image", function()
      local c = client()
      local up, err = c:upload_image(img)
      assert.is_nil(err)
      assert.truthy(up.url:match("^" .. emu.url:gsub("%p", "%%%0") .. "/uploads/%x+%.png$"))
      assert.equal(up.url, tostring(up))
      local e = ops("imgUpload")[1]
      assert.same({ op = "imgUpload", app = "api", token = TOKEN }, e.query)
      assert.equal("scan.png", e.form.file[1].filename)
      assert.equal("image/png", e.form.file[1].content_type)
      local res = assert(c:recognize{ url = up.url })
      assert.equal(TEXT, res.text)
    end)

    it("maps `no` to an error", function()
      emu:config{ upload_fail = true }
      local up, err = client():upload_image(img)
      assert.is_nil(up)
      assert.equal("server", err.kind)
      assert.truthy(err.message:find('"no"', 1, true))
      assert.equal(1, #ops("imgUpload"))
    end)

    it("takes the image bed's URL as ocr.url reads it: any scheme case, never a malformed one", function()
      for _, c in ipairs{ { "HTTPS://Bed.example/i/a.png\r\n", true }, { "http://bed.example:0/a.png", false },
                          { "http://bed.example/a b.png", false }, { "ftp://bed.example/a.png", false },
                          { "http://[::1/a.png", false } } do
        emu:reset()
        emu:fault{ action = "status", status = 200, path = "/Code.ashx", method = "POST", body = c[1] }
        local up, err = client():upload_image(img)
        if c[2] then
          assert.is_nil(err)
          assert.equal("HTTPS://Bed.example/i/a.png", up.url)
        else
          assert.is_nil(up, c[1])
          assert.equal("protocol", err.kind)
        end
      end
    end)

    it("sends nothing for a missing file", function()
      local up, err = client():upload_image(dir .. "/missing.png")
      assert.is_nil(up)
      assert.equal("invalid_input", err.kind)
      local _, err2 = client():upload_image()
      assert.equal("invalid_input", err2.kind)
      assert.equal(0, #emu:log())
    end)
  end)

  describe("invalid input sends nothing", function()
    local cases = {
      { "two sources", { file = "x.png", url = "https://a.example/x.png" }, "exactly one source" },
      { "no source", { half = true }, "one source is required" },
      { "a key source", { key = "a/b.png" }, "does not accept" },
      { "a missing file", { file = "/nonexistent/scan.png" }, "cannot read" },
      { "a directory", { file = "/tmp" }, "not a file" },
      { "type 4", { data = "x", type = 4 }, "type" },
      { "an unknown type name", { data = "x", type = "handwriting" }, "type" },
      { "a flag as a number", { data = "x", left = 1 }, "left" },
      { "a flag as a string", { data = "x", half = "1" }, "half" },
      { "an unknown option", { data = "x", autoDirection = true }, "unknown option 'autoDirection'" },
      { "empty data", { data = "" }, "empty" },
      { "a relative url", { url = "example.com/a.png" }, "absolute" },
      { "a filename with a url", { url = "https://a.example/x.png", filename = "x.png" }, "filename" },
      { "an output that is not a directory", { data = "x", output = "/nonexistent" }, "output" },
    }
    for _, c in ipairs(cases) do
      it("refuses " .. c[1], function()
        expect.invalid_input_sends_nothing(client(), c[2], emu, c[3])
      end)
    end

    it("raises on programmer mistakes in ocr.new", function()
      local ok, msg = pcall(ocr.new, "oldfish", { endpoint = emu.url })
      assert.is_false(ok)
      assert.truthy(msg:find("OCR_OLDFISH_TOKEN", 1, true))
      assert.has_error(function() ocr.new("oldfish", { token = TOKEN, data_as = "base64" }) end)
      assert.has_error(function() ocr.new("oldfish", { token = TOKEN, tips_check = "no" }) end)
    end)
  end)

  describe("billed retries", function()
    it("does not re-send op=code whose answer was lost (dropped connection)", function()
      emu:fault{ action = "drop", path = "/Code.ashx", method = "POST" }
      local res, err = client():recognize{ file = img }
      assert.is_nil(res)
      assert.equal("network", err.kind)
      assert.is_true(err.sent)
      assert.is_true(err.retryable)
      assert.equal(1, #ops("code"))
    end)

    it("does not re-send op=code after a 500", function()
      emu:fault{ action = "status", path = "/Code.ashx", method = "POST", status = 500, body = "boom" }
      local _, err = client():recognize{ file = img }
      assert.equal("server", err.kind)
      assert.equal(1, #ops("code"))
    end)

    it("re-sends op=code that never left this machine (connection refused)", function()
      expect.refused_and_retried(client, { file = img })
    end)
  end)

  describe("the token", function()
    it("never appears in errors or log events, although it travels in the URL", function()
      local secret = "tok-Very$ecret+123/=="
      emu:config{ token = secret, script = { 0, 2 } }
      local events = {}
      local c = client{ token = secret, log = function(ev) events[#events + 1] = ev end }
      local res = assert(c:recognize{ file = img })
      assert.equal(TEXT, res.text)
      -- the emulator saw it (URL-decoded) in the query
      assert.equal(secret, ops("code")[1].query.token)
      assert.truthy(ops("code")[1].raw_query:find("token=tok-Very%24ecret%2B123%2F%3D%3D", 1, true))
      local errs = {}
      emu:fault{ action = "status", path = "/Code.ashx", status = 400,
                 body = "bad token " .. secret .. " in /Code.ashx?token=tok-Very%24ecret%2B123%2F%3D%3D" }
      errs[#errs + 1] = select(2, c:recognize{ file = img })
      emu:fault{ action = "drop", path = "/Code.ashx" }
      errs[#errs + 1] = select(2, c:recognize{ file = img })
      errs[#errs + 1] = select(2, c:result("no-such-id"))
      emu:fault{ action = "status", path = "/Code.aspx", status = 500, times = 10,
                 body = "count failed for " .. secret }
      errs[#errs + 1] = select(2, c:quota())
      assert.equal("invalid_input", errs[1].kind)
      assert.truthy(tostring(errs[1]):find("***", 1, true))
      for _, e in ipairs(errs) do
        assert.is_nil(tostring(e):find(secret, 1, true))
        assert.is_nil(tostring(e):find("tok-Very", 1, true), tostring(e))
        expect.no_field_contains({ e }, "tok-Very", "token in error field ")
      end
      assert.is_true(#events > 6)
      local urls = 0
      for _, ev in ipairs(events) do
        expect.no_field_contains({ ev }, "tok-Very", "token in log field ")
        if ev.url then
          urls = urls + 1
          assert.truthy(ev.url:find("token=***", 1, true), ev.url)
        end
      end
      assert.is_true(urls > 6)
    end)
  end)
end)
