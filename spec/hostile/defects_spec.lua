-- The defects a hostile world found (issue "A hostile world"), one class per block, each shown
-- end to end where a server or a file can cause it. Every test here failed before its fix.
local cjson = require "cjson"
local core = require "ocr.core"
local ocr = require "ocr"
local files = require "ocr.files"
local errors = require "ocr.errors"
local F = require "helpers.files"
local rig = require "helpers.rig"
local shell = require "helpers.shell"

describe("hostile world", function()
  describe("1. patterns on foreign strings run in linear time", function()
    -- A quadratic pattern needs hours for these 2 MB inputs; the child is given a minute, so
    -- a regression is a failure here, not a hung suite.
    it("names, paths, Retry-After and trimming of 2 MB pathological strings", function()
      local script = [[
        local files, errors, strings = require "ocr.files", require "ocr.errors", require "ocr.strings"
        local N = 2 * 1024 * 1024
        local letters, spaces = ("a"):rep(N), (" "):rep(N)
        assert(files.basename(letters .. "/x") == "x")
        assert(files.basename("dir/" .. letters .. "///") == letters)
        assert(#files.sanitize_name("a" .. spaces .. "b") <= 200)
        assert(files.sanitize_name(letters .. "/") == "result")
        assert(files.url_name("http://h/" .. letters .. "/", "f") == "f")
        assert(errors.parse_retry_after(letters) == nil)
        assert(errors.parse_retry_after("1" .. spaces .. "x") == nil)
        assert(strings.trim(spaces .. "x" .. spaces .. "y" .. spaces) == "x" .. spaces .. "y")
        assert(strings.rstrip("a" .. ("/"):rep(N) .. "b/", strings.SLASHES) == "a" .. ("/"):rep(N) .. "b")
        io.write("linear ok")
      ]]
      local lua = rawget(_G, "jit") and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))
      local cpath = "build/lua" .. (_VERSION:match("5%.4") and "5.4" or "5.1")
      local p = shell.popen(("LUA_PATH='lua/?.lua;;' LUA_CPATH='%s/?.so;;' timeout 60 %s -e %q 2>&1")
                            :format(cpath, lua, script))
      local out = p:read("*a")
      p:close()
      assert.equal("linear ok", out)
    end)
  end)

  describe("2 and 3. a result's name is taken atomically and never through a symlink", function()
    local dir
    before_each(function() dir = F.tmpdir() end)
    after_each(function() F.rmdir(dir) end)

    it("two callers asking for the same name get two files", function()
      local a = assert(files.safe_path(dir, "result.txt"))
      local b = assert(files.safe_path(dir, "result.txt"))
      assert.are_not.equal(a, b)
      assert.equal(dir .. "/result.txt", a)
      assert.equal(dir .. "/result-1.txt", b)
      assert.equal("file", core.stat(a).type)   -- reserved: a third caller sees it taken
    end)

    it("a dangling symlink with the result's name is neither followed nor replaced", function()
      local outside = F.tmpdir()
      finally(function() F.rmdir(outside) end)
      assert(shell.execute(("ln -s %s/stolen.txt %s/result.txt"):format(outside, dir)))
      local path = assert(files.safe_path(dir, "result.txt"))
      assert.equal(dir .. "/result-1.txt", path)
      assert.is_nil(core.stat(outside .. "/stolen.txt"))
      local nothing, err, why = core.create_new(dir .. "/result.txt")
      assert.is_nil(nothing)
      assert.equal("exists", why, err)
    end)

    it("a download that fails gives its reserved name back", function()
      local emu = require("helpers.emulator").start("httptest")
      finally(function() emu:stop() end)
      local client = ocr.new("picwish", { api_key = "k", endpoint = emu.url, retries = 0 })
      local ctx = require("ocr.context").new(client, {})
      local res, err = ctx:download(emu.url .. "/status/404", { output = dir, filename = "gone.txt" })
      assert.is_nil(res)
      assert.truthy(err)
      assert.is_nil(core.stat(dir .. "/gone.txt"))
    end)
  end)

  describe("4. an error that JSON cannot carry", function()
    it("a NaN or infinite code becomes a string; --json prints it and goes on", function()
      local e = errors.new{ kind = "server", code = 0 / 0 }
      assert.equal("string", type(e.code))
      assert.equal("inf", errors.new{ kind = "server", code = math.huge }.code)
      local cli = require "ocr.cli"
      local n = 0
      ocr.register("hostile_nan_spec", {
        offline = true, credentials = {}, sources = { "file" },
        recognize = function(ctx, input)
          n = n + 1
          if n == 1 then
            local err = ctx:error{ kind = "server", message = "bad" }
            err.code = 0 / 0          -- as a provider might set it after the fact
            return nil, err
          end
          return ocr.result.new{ text = "second " .. input.file }
        end,
      })
      local buf = {}
      local sink = { write = function(self, ...) for _, v in ipairs{ ... } do buf[#buf + 1] = v end return self end }
      cli.main({ "-p", "hostile_nan_spec", "-q", "--json", "-j", "1", "examples/sample.png", "examples/sample.txt" },
               ocr, { stdout = sink, stderr = sink })
      local out = table.concat(buf)
      assert.truthy(out:find('"kind":"server"', 1, true), out)
      assert.truthy(out:find('"text":"second examples', 1, true), out)
    end)
  end)

  describe("5. max_response_size", function()
    it("the client option reaches the transport", function()
      local emu = require("helpers.emulator").start("httptest")
      finally(function() emu:stop() end)
      local client = ocr.new("picwish", { api_key = "k", endpoint = emu.url, retries = 0, max_response_size = 100 })
      local ctx = require("ocr.context").new(client, {})
      local res, err = ctx:request{ method = "GET", url = emu.url .. "/bytes?n=5000" }
      assert.is_nil(res)
      assert.equal("too_large", err.kind)
    end)

    it("saved downloads: max_download_size when set, else an explicit max_response_size", function()
      local curl = require "ocr.curl"
      local emu = require("helpers.emulator").start("httptest")
      local dir = F.tmpdir()
      local sessions = {}
      finally(function()
        for _, s in ipairs(sessions) do s:close() end
        emu:stop()
        F.rmdir(dir)
      end)
      local function save(opts, name)
        local s = curl.session(opts)
        sessions[#sessions + 1] = s
        return s:request{ url = emu.url .. "/bytes?n=5000", save_to = dir .. "/" .. name }
      end
      -- max_response_size bounds in-memory bodies; max_download_size, given, alone bounds files
      local res, err = save({ max_response_size = 100, max_download_size = 10000 }, "a")
      assert.is_nil(err)
      assert.equal(5000, core.stat(res.path or dir .. "/a").size)
      local _, err2 = save({ max_response_size = 1000 }, "b")
      assert.equal("too_large", err2.kind)
      local _, err3 = save({ max_response_size = 1000000, max_download_size = 1000 }, "c")
      assert.equal("too_large", err3.kind)
    end)
  end)

  describe("6. header injection", function()
    it("CR or LF in user_agent is refused where it is given", function()
      assert.has_error(function() ocr.new("picwish", { api_key = "k", user_agent = "x\r\nX-Evil: 1" }) end,
                       [[ocr.new("picwish"): option 'user_agent' contains CR, LF or control characters]])
      local curl = require "ocr.curl"
      assert.has_error(function() curl.session{ user_agent = "x\nX-Evil: 1" } end)
    end)
  end)

  describe("7. a mapping that raises", function()
    it("becomes a protocol error and the uploaded object is still deleted", function()
      local emu, dir, img = rig.start("tencent", { { "t.png", "x" } })
      finally(function() rig.stop(emu, dir) end)
      -- TextDetections as text, where the mapping expects a list of tables
      -- a word polygon with one corner of four
      emu:fault{ action = "status", status = 200, method = "GET", content_type = "application/xml",
                 body = "<Response><TextDetections><DetectedText>a</DetectedText>" ..
                        "<WordPolygon><LeftTop><X>1</X><Y>2</Y></LeftTop></WordPolygon>" ..
                        "</TextDetections></Response>" }
      local client = rig.client("tencent", { secret_id = "AKIDtestSecretId", secret_key = "testSecretKey",
                                             endpoint = emu.url }, { retries = 0 })
      local res, err = client:recognize{ file = img }
      assert.is_nil(res)
      assert.equal("protocol", err.kind)
      assert.equal(1, #emu:requests("/", "DELETE"))
    end)
  end)

  describe("9 and 11. ids from answers", function()
    local emu, dir, img
    setup(function() emu, dir, img = rig.start("picwish", { { "i.png", "x" } }) end)
    teardown(function() rig.stop(emu, dir) end)
    before_each(function() emu:reset() end)

    local function create_answers(task_id)
      emu:fault{ action = "status", status = 200, path = "/api/tasks/document/ocr", method = "POST",
                 body = cjson.encode{ status = 200, data = { task_id = task_id } } }
      local client = rig.client("picwish", { api_key = "test-picwish-key", endpoint = emu.url },
                                { retries = 0, poll_interval = 0.01 })
      return client, client:recognize{ file = img }
    end

    it("a dot-segment task id is a protocol error: the poll never leaves its path", function()
      for _, id in ipairs{ "..", "." } do
        emu:reset()
        local _, res, err = create_answers(id)
        assert.is_nil(res)
        assert.equal("protocol", err.kind, id)
        assert.equal(1, #emu:log(), id)                 -- the create; no GET anywhere
      end
    end)

    it("a / or %2F in a task id stays inside its segment", function()
      local _, _, err = create_answers("a/../../b%2F")
      local gets = emu:requests("/", "GET")
      assert.truthy(#gets >= 1, tostring(err))
      assert.equal("/api/tasks/document/ocr/a%2F..%2F..%2Fb%252F", gets[1].raw_path)
    end)

    it("a 1 MB task id is a protocol error and is not kept", function()
      local client, res, err = create_answers(("x"):rep(1024 * 1024))
      assert.is_nil(res)
      assert.equal("protocol", err.kind)
      assert.equal(1, #emu:log())
      for path in pairs(client.url_memo) do assert.is_true(#path <= 512) end
    end)
  end)

  describe("10. secrets in every encoding", function()
    it("a signature a server echoes back is redacted like a credential", function()
      local emu = require("helpers.emulator").start("httptest")
      finally(function() emu:stop() end)
      local sig = ("5e2b"):rep(10)
      ocr.register("hostile_sig_spec", {
        credentials = { api_key = { required = true } }, sources = { "data" },
        recognize = function(ctx)
          local _, err = ctx:request{ method = "GET", url = emu.url .. "/echo",
            sign = function(_, req)
              req.headers = req.headers or {}
              req.headers.Authorization = "q-sign-algorithm=sha1&q-ak=AKIDx&q-signature=" .. sig
            end,
            check = function(c, res)    -- the echo of the request, headers and all, as the message
              return c:error{ kind = "server", message = res.body }
            end }
          return nil, err
        end,
      })
      local client = ocr.new("hostile_sig_spec", { api_key = "key-1234", endpoint = emu.url, retries = 0 })
      local _, err = client:recognize{ data = "x" }
      assert.equal("server", err.kind)
      assert.truthy(err.message:find("q-sign-algorithm", 1, true) == nil, err.message)
      assert.is_nil(err.message:find(sig, 1, true), err.message)
      assert.truthy(err.message:find("***", 1, true), err.message)
    end)

    it("are redacted as is, percent-encoded in either case, form-encoded, JSON-escaped, base64", function()
      local secret = "Sk/ey+ with space"
      local forms = {
        secret,
        "Sk%2Fey%2B%20with%20space", "Sk%2fey%2b%20with%20space", "Sk%2Fey%2B+with+space",
        '"Sk\\/ey+ with space"', core.base64_encode(secret),
      }
      for _, form in ipairs(forms) do
        local out = errors.redact("before " .. form .. " after", { secret })
        assert.is_nil(out:find("ey", 1, true), form .. " -> " .. out)
        assert.truthy(out:find("***", 1, true))
      end
    end)
  end)
end)
