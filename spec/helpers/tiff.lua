-- Little-endian classic TIFFs read and rewritten byte by byte, independently of libtiff, so that
-- specs can damage one page's directory or build a TIFF of many pages from a fixture's (and
-- benchmark 5 a long fax from them) without an encoder.
local M = {}

-- The integer of n little-endian bytes at 1-based position i, and its inverse.
local function le(data, i, n)
  local v = 0
  for k = n - 1, 0, -1 do v = v * 256 + data:byte(i + k) end
  return v
end
local function le_bytes(v, n)
  local out = {}
  for k = 1, n do out[k] = string.char(v % 256) v = math.floor(v / 256) end
  return table.concat(out)
end

--- The data with `bytes` written over it from 1-based position `at`.
function M.patch(data, at, bytes) return data:sub(1, at - 1) .. bytes .. data:sub(at + #bytes) end
local patch = M.patch

--- A TIFF's page directories: {data=, dirs={ {offset=, entries=, next_at=, finish=}, ... }};
-- offset is 0-based as the file stores it, next_at and finish are 1-based positions.
function M.dirs(data)
  assert(data:sub(1, 4) == "II*\0", "a little-endian classic TIFF")
  local dirs, off = {}, le(data, 5, 4)
  while off ~= 0 do
    local entries = le(data, off + 1, 2)
    local next_at = off + 1 + 2 + 12 * entries
    dirs[#dirs + 1] = { offset = off, entries = entries, next_at = next_at, finish = next_at + 3 }
    off = le(data, next_at, 4)
  end
  return { data = data, dirs = dirs }
end

--- The data with directory `n` pointing on to `offset` (0-based, as TIFF stores it).
function M.set_next(tif, n, offset)
  return patch(tif.data, tif.dirs[n].next_at, le_bytes(offset, 4))
end

--- The data with page `n`'s entry for `tag` (SHORT or LONG) holding `value`, or renamed `as`
-- another tag when `value` is nil.
function M.set(tif, n, tag, value, as)
  local dir = tif.dirs[n]
  for e = 0, dir.entries - 1 do
    local at = dir.offset + 1 + 2 + 12 * e
    if le(tif.data, at, 2) == tag then
      if value == nil then return patch(tif.data, at, le_bytes(as, 2)) end
      local long = le(tif.data, at + 2, 2) == 4
      return patch(tif.data, at + 8, le_bytes(value, long and 4 or 2))
    end
  end
  error("no tag " .. tag)
end

--- A TIFF whose pages are the given TIFF's pages in `order` (e.g. {1, 2, 1}): a copy of each
-- page's directory is appended and the copies chained. Directories point at image data by
-- absolute offsets, so the copies share it and no page is encoded again.
function M.of_pages(tif, order)
  local data = tif.data .. (#tif.data % 2 == 1 and "\0" or "")   -- directories start on a word
  local offsets, at = {}, #data
  for i, n in ipairs(order) do
    offsets[i] = at
    at = at + tif.dirs[n].finish - tif.dirs[n].offset
  end
  local parts = { patch(data, 5, le_bytes(offsets[1], 4)) }
  for i, n in ipairs(order) do
    local d = tif.dirs[n]
    parts[#parts + 1] = tif.data:sub(d.offset + 1, d.next_at - 1) .. le_bytes(offsets[i + 1] or 0, 4)
  end
  return table.concat(parts)
end

--- A fax of `n` pages: spec/fixtures/tiff/pages.tif's two pages alternated (1, 2, 1, …), each
-- read in about 0.1 s. `root` is the project's directory (default: the current one).
function M.fax(n, root)
  local f = assert(io.open((root or ".") .. "/spec/fixtures/tiff/pages.tif", "rb"))
  local data = f:read("*a")
  f:close()
  local order = {}
  for i = 1, n do order[i] = (i - 1) % 2 + 1 end
  return M.of_pages(M.dirs(data), order)
end

return M
