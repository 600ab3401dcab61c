--- Benchmark 7 (issue 20): what a cache hit costs beyond hashing the input.
--   (a) a hit on a 1 MB image, memory store and dir store, against core.sha256_file of the same
--       file (OpenSSL, streamed): per call, the hit's time less the hash's, medians over rounds
--       alternated hash, memory hit, dir hit, hash, ...
--   (b) recognize_all of 200 inputs (100 KB each), all cached, against hashing the 200 files:
--       the time beyond their hashing.
-- The inner client is an offline provider whose result (30 lines with boxes, words and
-- confidences) stands for a page; a hit never calls it. No network, no server.
local M = {}

function M.run(b)
  local ocr, lib, row, verdict = b.ocr, b.lib, b.row, b.verdict
  local core = require "ocr.core"
  local now, median = lib.now, lib.median
  local Q = b.quick
  local dir = lib.tmpdir()

  local function page_result()
    local lines = {}
    for i = 1, 30 do
      local words = {}
      for j = 1, 6 do
        words[j] = { text = "word" .. j, confidence = 0.9, box = { x = j * 40, y = i * 20, w = 36, h = 16 } }
      end
      lines[i] = { text = ("line %d of the page with six words"):format(i), confidence = 0.93,
                   box = { x = 10, y = i * 20, w = 300, h = 16 }, words = words }
    end
    return ocr.result.new{ lines = lines, language = "en", pages = 1 }
  end
  ocr.register("bench_cache", {
    offline = true, sources = { "file", "data" }, options = { format = { "txt" } },
    cache_key = { "format" },
    recognize = function() return page_result() end,
  })
  local client = ocr.new("bench_cache")

  local bodies = {}
  local function write(path, n, seed)   -- n bytes, PNG-looking, told apart by their last 8
    if not bodies[n] then
      local tmp, data = lib.payload(n)
      os.remove(tmp)
      bodies[n] = data:sub(1, n - 8)
    end
    local f = assert(io.open(path, "wb"))
    f:write(bodies[n], ("%08d"):format(seed))
    f:close()
    return path
  end

  -- (a)
  local big = write(dir .. "/big.png", 1024 * 1024, 1)
  local mem = ocr.cache(client, { store = ocr.store.memory{} })
  local disk = ocr.cache(client, { store = ocr.store.dir(dir .. "/store") })
  assert(mem:recognize{ file = big })
  assert(disk:recognize{ file = big })
  local N, ROUNDS = Q and 50 or 200, Q and 3 or 9
  local function per_call(fn)
    local t0 = now()
    for _ = 1, N do fn() end
    return (now() - t0) / N
  end
  local hash, hit_mem, hit_dir = {}, {}, {}
  for r = 1, ROUNDS do
    hash[r] = per_call(function() core.sha256_file(big) end)
    hit_mem[r] = per_call(function() assert(mem:recognize{ file = big }).cached = nil end)
    hit_dir[r] = per_call(function() assert(disk:recognize{ file = big }).cached = nil end)
  end
  local h, m, d = median(hash), median(hit_mem), median(hit_dir)
  local B = "7. ocr.cache hits (no network)"
  local us = function(s) return ("%.1f µs"):format(s * 1e6) end
  row(B, ("core.sha256_file of a 1 MB image (OpenSSL, streamed), %d calls × %d rounds"):format(N, ROUNDS), us(h))
  row(B, "hit, `ocr.store.memory`: time less the hash's (30-line result)", ("%s (%s in all)"):format(us(m - h), us(m)),
      "≤ 50 µs", verdict(m - h <= 50e-6))
  row(B, "hit, `ocr.store.dir`: time less the hash's", ("%s (%s in all)"):format(us(d - h), us(d)),
      "≤ 300 µs", verdict(d - h <= 300e-6))

  -- (b)
  local inputs, paths = {}, {}
  for i = 1, 200 do
    paths[i] = write(dir .. "/p" .. i .. ".png", 100 * 1024, i)
    inputs[i] = { file = paths[i] }
  end
  local store_all = ocr.store.dir(dir .. "/store-all")
  ocr.cache(client, { store = store_all }):recognize_all(inputs)
  local hashing, beyond = {}, {}
  for r = 1, Q and 3 or 7 do
    local t0 = now()
    for i = 1, 200 do core.sha256_file(paths[i]) end
    hashing[r] = now() - t0
    local all = ocr.cache(client, { store = store_all })   -- (a new cache: every entry decoded)
    t0 = now()
    local out = all:recognize_all(inputs)
    local t = now() - t0
    for i = 1, 200 do assert(out[i].res and out[i].res.cached, "benchmark 7: input not cached") end
    beyond[r] = t - hashing[r]
  end
  row(B, "`recognize_all` of 200 cached inputs (100 KB files, dir store, a fresh cache object: every entry read and decoded): time beyond hashing them",
      ("%.3f s (hashing %.3f s)"):format(median(beyond), median(hashing)), "< 0.1 s",
      verdict(median(beyond) < 0.1))
end

return M
