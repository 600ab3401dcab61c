-- client:warm() for a cloud provider: one unbilled HEAD leaves a connection (TCP and TLS done) in
-- the pool the first unbilled request takes (a billed create always goes on a fresh connection,
-- so that a lost answer is never paid twice); the emulator logs each request's client port, so
-- reuse shows.
-- (The local engine's warm-up, models loaded on the worker threads, is in spec/tesseract_spec.lua.)
local ocr = require "ocr"
local rig = require "helpers.rig"

describe("client:warm() for a cloud provider", function()
  local emu, dir, img

  local function client(opts)
    return rig.client("picwish", { api_key = "test-picwish-key", endpoint = emu.url, poll_interval = 0.01,
      poll_timeout = 5, backoff = { base = 0.01, cap = 0.05 }, rate = false }, opts)
  end

  setup(function() emu, dir, img = rig.start("picwish", { { "scan.png", "Warm page" } }) end)
  teardown(function() rig.stop(emu, dir) end)
  before_each(function()
    emu:reset()
    emu:config{ qps = 0 }
  end)

  -- The first poll of the task, the first request that may reuse a connection.
  local function first_poll(res)
    return emu:requests("/api/tasks/document/ocr/" .. res.task_id, "GET")[1]
  end

  it("with wait: the script's first poll goes on the connection warm() opened", function()
    local c = client()
    assert.is_true(c:warm{ wait = true })
    local heads = emu:requests("/", "HEAD")
    assert.equal(1, #heads)
    local res, err = c:recognize(img)
    assert.is_nil(err)
    assert.equal("Warm page", res.text)
    assert.equal(heads[1].peer_port, first_poll(res).peer_port)
    assert.equal(0, #emu:requests("/api/tasks/document/ocr", "HEAD"))   -- (nothing billed)
  end)

  it("without wait: returns at once, and a game's jobs find the connection", function()
    local c = client()
    assert.is_true(c:warm())
    assert.equal(0, #emu:requests("/", "HEAD"))   -- nothing sent before the loop steps
    while ocr.step(0.01) > 0 do end
    local heads = emu:requests("/", "HEAD")
    assert.equal(1, #heads)
    local job = c:submit(img)
    while ocr.step(0.01) > 0 do end
    local res, err = job:result()
    assert.is_nil(err)
    assert.equal("Warm page", res.text)
    assert.equal(heads[1].peer_port, first_poll(res).peer_port)
  end)

  it("reports an endpoint it cannot reach, and never raises", function()
    local c = ocr.new("picwish", { api_key = "k", endpoint = "http://127.0.0.1:1", retries = 0,
                                   connect_timeout = 2 })
    local ok, err = c:warm{ wait = true }
    assert.is_nil(ok)
    assert.equal("network", err.kind)
    assert.is_nil(tostring(err):find("k", 1, true) and tostring(err):find("api_key", 1, true))
  end)

  it("checks its options like ocr.new", function()
    assert.has_error(function() client():warm{ wiat = true } end, "warm: unknown option 'wiat'")
  end)
end)
