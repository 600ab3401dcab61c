-- A deterministic generator for the fuzz specs: Park-Miller, exact on Lua 5.4 integers and on
-- Lua 5.1/LuaJIT doubles alike, so a failing sequence replays from its seed on every VM.
-- prng(seed) -> g with g.int(lo, hi), g.bytes(n), g.len() (a length, mostly short).
return function(seed)
  local x = seed % 2147483646 + 1
  local g = {}
  function g.int(lo, hi)
    x = (x * 16807) % 2147483647
    return lo + x % (hi - lo + 1)
  end
  function g.bytes(n)
    local t = {}
    for i = 1, n do t[i] = string.char(g.int(0, 255)) end
    return table.concat(t)
  end
  -- Mostly short, sometimes past the C code's 1 KiB chunks and 64-byte fast paths.
  function g.len()
    local c = g.int(1, 40)
    if c <= 24 then return g.int(0, 16) elseif c <= 39 then return g.int(0, 300) end
    return g.int(1000, 5000)
  end
  return g
end
