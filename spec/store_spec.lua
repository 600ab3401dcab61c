-- ocr.store: the memory store (LRU) and the dir store (one file per key, shared by processes),
-- through the one small interface ocr.cache uses: get, set, add, incr, delete, with TTLs.
local ocr = require "ocr"
local core = require "ocr.core"
local F = require "helpers.files"

-- The same behaviour from both stores; `clock` moves time for TTLs.
local function interface(make)
  return function()
    local store, clock

    before_each(function() store, clock = make() end)

    it("gets what was set, replaces it, deletes it", function()
      assert.is_nil(store:get("a"))
      assert.is_true(store:set("a", "one"))
      assert.equal("one", store:get("a"))
      assert.is_true(store:set("a", "two"))
      assert.equal("two", store:get("a"))
      local bytes = "x\0y\255" .. string.rep("z", 70000)
      assert.is_true(store:set("b", bytes))
      assert.equal(bytes, store:get("b"))
      assert.is_true(store:delete("a"))
      assert.is_nil(store:get("a"))
      assert.is_true(store:delete("never there"))
    end)

    it("keeps any key apart, plain or not", function()
      local keys = { "k", "K", "a/b", "../x", string.rep("long", 100), "sp ace", "\0", "é" }
      for i, k in ipairs(keys) do store:set(k, "v" .. i) end
      for i, k in ipairs(keys) do assert.equal("v" .. i, store:get(k), k) end
    end)

    it("forgets an entry once its ttl has passed", function()
      store:set("t", "soon", 10)
      store:set("forever", "always")
      clock.advance(9)
      assert.equal("soon", store:get("t"))
      clock.advance(2)
      assert.is_nil(store:get("t"))
      assert.equal("always", store:get("forever"))
    end)

    it("adds only what is absent (or expired)", function()
      assert.is_true(store:add("x", "first", 5))
      local ok, why = store:add("x", "second")
      assert.is_false(ok)
      assert.equal("exists", why)
      assert.equal("first", store:get("x"))
      clock.advance(6)
      assert.is_true(store:add("x", "third"))
      assert.equal("third", store:get("x"))
    end)

    it("increments numbers, from init when absent", function()
      local v, err = store:incr("n", 1)
      assert.is_nil(v)
      assert.equal("not found", err)
      assert.equal(5, store:incr("n", 5, 0))
      assert.equal(7, store:incr("n", 2))
      assert.equal(7, store:get("n"))
      store:set("s", "text")
      assert.is_nil(store:incr("s", 1))
    end)

    it("refuses programmer mistakes", function()
      assert.has_error(function() store:set("", "v") end)
      assert.has_error(function() store:set({}, "v") end)
      assert.has_error(function() store:set("k", {}) end)
      assert.has_error(function() store:set("k", "v", -1) end)
    end)
  end
end

describe("ocr.store.memory", function()
  describe("interface", interface(function()
    local t = 0
    local s = ocr.store.memory{ max_items = 100 }
    s.now = function() return t end
    return s, { advance = function(d) t = t + d end }
  end))

  it("lets the least recently used entry go past max_items", function()
    local s = ocr.store.memory{ max_items = 3 }
    s:set("a", "1"); s:set("b", "2"); s:set("c", "3")
    assert.equal("1", s:get("a"))   -- a is now the most recent
    s:set("d", "4")                 -- b goes
    assert.is_nil(s:get("b"))
    assert.equal("1", s:get("a"))
    assert.equal("3", s:get("c"))
    assert.equal("4", s:get("d"))
    assert.equal(3, s.count)
    for i = 1, 1000 do s:set("k" .. i, "v") end
    assert.equal(3, s.count)
  end)

  it("checks its options", function()
    assert.has_error(function() ocr.store.memory{ max_items = 0 } end)
    assert.has_error(function() ocr.store.memory{ max_item = 10 } end)
  end)
end)

describe("ocr.store.dir", function()
  local root
  setup(function() root = F.tmpdir() end)
  teardown(function() F.rmdir(root) end)

  local n = 0
  local function fresh(opts)
    n = n + 1
    return ocr.store.dir(root .. "/s" .. n .. "/nested", opts)
  end

  describe("interface", interface(function()
    local t = 1000000
    local s = fresh()
    s.time = function() return t end
    return s, { advance = function(d) t = t + d end }
  end))

  it("creates its directory with parents, and expands ~", function()
    local s = fresh()
    assert.equal("directory", core.stat(s.path).type)
    local home = os.getenv("HOME")
    if home and core.stat(home) then
      local d = ocr.store.dir("~/")
      assert.equal(home, d.path)
    end
  end)

  -- Every way an entry can be damaged: each reads as absent, and the next set or add replaces it.
  it("never returns a damaged or half-written entry, and replaces it", function()
    local s = fresh()
    s:set("k", "the value")
    local file = s:file("k")
    local whole = F.read(file)
    local damaged = {
      "",                                                  -- created, nothing written
      whole:sub(1, #whole - 3),                            -- the tail lost
      whole:sub(1, 20),                                    -- inside the header
      whole .. "more",                                     -- longer than its header says
      whole:gsub("the value", "THE VALUE"),                -- same length, other bytes
      "garbage\n",
      whole:gsub("^ocr%-store 1", "ocr-store 9"),          -- a format this version does not read
    }
    for i, bytes in ipairs(damaged) do
      F.write(file, bytes)
      assert.is_nil(s:get("k"), "damage " .. i)
      if i % 2 == 0 then
        assert.is_true(s:add("k", "added " .. i))
        assert.equal("added " .. i, s:get("k"))
      else
        assert.is_true(s:set("k", "set " .. i))
        assert.equal("set " .. i, s:get("k"))
      end
    end
  end)

  it("leaves no temporary file behind", function()
    local s = fresh()
    for i = 1, 20 do s:set("k" .. (i % 3), "v" .. i); s:add("a" .. (i % 2), "v") end
    s:incr("c", 1, 0)
    for _, name in ipairs(F.list(s.path)) do
      assert.falsy(name:find("^%.tmp"), name)
      assert.falsy(name:find("^%.lock"), name)
    end
  end)

  it("works without fsync when asked (sync = false)", function()
    local s = fresh{ sync = false }
    s:set("k", "v")
    assert.equal("v", s:get("k"))
    assert.has_error(function() fresh{ fsync = false } end)
  end)

  -- Two processes on one directory: 200 keys each of their own, 200 both write, 200 both try to
  -- add, one counter both increment 200 times. Nothing is lost, nothing is added twice.
  it("loses nothing to two processes writing at once", function()
    local dir = root .. "/shared"
    ocr.store.dir(dir)
    local version = _VERSION:match("%d+%.%d+")
    local lua = version == "5.1" and (rawget(_G, "jit") and "luajit" or "lua5.1") or ("lua" .. version)
    local cpath = (os.getenv("OCR_CPATH_DIR") or ("build/lua" .. version)) .. "/?.so"
    local script = F.write(root .. "/writer.lua", ([[
      package.path = "lua/?.lua;" .. package.path
      package.cpath = %q .. ";" .. package.cpath
      local s = require("ocr.store").dir(%q)
      local me = arg[1]
      local added = 0
      for i = 1, 200 do
        assert(s:set(me .. i, me .. " value " .. i))
        assert(s:set("both" .. i, me .. " wrote " .. i))
        if s:add("once" .. i, me) == true then added = added + 1 end
        assert(s:incr("counter", 1, 0))
      end
      print(me .. " added " .. added)
    ]]):format(cpath, dir))
    local a = io.popen(lua .. " " .. script .. " A 2>&1")
    local b = io.popen(lua .. " " .. script .. " B 2>&1")
    local out_a, out_b = a:read("*a"), b:read("*a")
    a:close(); b:close()
    local added_a = tonumber(out_a:match("A added (%d+)"))
    local added_b = tonumber(out_b:match("B added (%d+)"))
    assert.truthy(added_a, out_a)
    assert.truthy(added_b, out_b)
    assert.equal(200, added_a + added_b)
    local s = ocr.store.dir(dir)
    for i = 1, 200 do
      assert.equal("A value " .. i, s:get("A" .. i))
      assert.equal("B value " .. i, s:get("B" .. i))
      local both = s:get("both" .. i)
      assert.truthy(both == "A wrote " .. i or both == "B wrote " .. i, tostring(both))
      local once = s:get("once" .. i)
      assert.truthy(once == "A" or once == "B")
    end
    assert.equal(400, s:get("counter"))
    for _, name in ipairs(F.list(dir)) do assert.falsy(name:find("^%."), name) end
  end)
end)
