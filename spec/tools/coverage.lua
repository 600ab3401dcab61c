-- Line coverage of the specs (`make coverage`). Two steps, because gcov's counters reach the
-- disk only when the process that ran the C code exits:
--   lua5.4 spec/tools/coverage.lua lua OUTDIR BUSTED [busted args...]
--     runs busted in this interpreter with a line hook on every coroutine (jobs run on
--     coroutines) and reports, per file of lua/, the lines the compiler marks executable
--     (luac -l -l) that no spec reached;
--   lua5.4 spec/tools/coverage.lua c OUTDIR OBJDIR
--     reports gcov's numbers for csrc/ from a --coverage build whose objects are in OBJDIR.
-- Missed lines go to OUTDIR/lua.txt and OUTDIR/c.txt. A tool for finding untested behaviour,
-- not a gate: nothing here fails on a percentage.
local mode, outdir = arg[1], arg[2]
assert((mode == "lua" or mode == "c") and outdir and arg[3],
       "usage: coverage.lua lua OUTDIR BUSTED [args...] | coverage.lua c OUTDIR OBJDIR")
local version = _VERSION:match("%d+%.%d+")

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

if mode == "c" then
  local objdir = arg[3]
  local out = assert(io.open(outdir .. "/c.txt", "w"))
  print(("\n%-40s %8s  %s"):format("csrc/", "lines", "reached"))
  for _, file in ipairs(lines_of("ls csrc/*.c")) do
    local missed, pct, n = {}, nil, nil
    for _, l in ipairs(lines_of("gcov -t -o " .. objdir .. " " .. file .. " 2>/dev/null")) do
      local line = l:match("^%s*#####:%s*(%d+):")
      if line then missed[#missed + 1] = line end
    end
    for _, l in ipairs(lines_of("gcov -n -o " .. objdir .. " " .. file .. " 2>/dev/null")) do
      if not pct then pct, n = l:match("Lines executed:([%d.]+)%% of (%d+)") end
    end
    if pct then print(("%-40s %8s  %5.1f%%"):format(file, n, tonumber(pct))) end
    if #missed > 0 then out:write(file, ": ", table.concat(missed, " "), "\n") end
  end
  print(("(missed lines: %s/c.txt; many are out-of-memory paths)"):format(outdir))
  out:close()
  return
end

local busted = arg[3]
local hits = {}
local getinfo = debug.getinfo
local function hook(_, line)
  local src = getinfo(2, "S").source
  if src:sub(1, 5) == "@lua/" then
    local t = hits[src]
    if not t then t = {}; hits[src] = t end
    t[line] = true
  end
end
-- debug.sethook is per coroutine: hook every one created from now on.
local cocreate, resume = coroutine.create, coroutine.resume
coroutine.create = function(f)
  local co = cocreate(f)
  debug.sethook(co, hook, "l")
  return co
end
coroutine.wrap = function(f)
  local co = coroutine.create(f)
  return function(...)
    local r = table.pack(resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return table.unpack(r, 2, r.n)
  end
end

local reported = false
local function report()
  if reported then return end
  reported = true
  debug.sethook()
  local out = assert(io.open(outdir .. "/lua.txt", "w"))
  local total, reached = 0, 0
  print(("\n%-40s %8s  %s"):format("lua/", "lines", "reached"))
  for _, file in ipairs(lines_of("ls lua/*.lua lua/ocr/*.lua lua/ocr/providers/*.lua")) do
    local active = {}
    for _, l in ipairs(lines_of("luac" .. version .. " -p -l -l " .. file)) do
      local n = l:match("^%s+%d+%s+%[(%d+)%]")
      if n then active[tonumber(n)] = true end
    end
    local seen, missed, count = hits["@" .. file] or {}, {}, 0
    for n in pairs(active) do
      -- (line 1 is the chunk's own VARARGPREP, which runs before any hook can see it)
      if n > 1 then
        count = count + 1
        if not seen[n] then missed[#missed + 1] = n end
      end
    end
    table.sort(missed)
    total, reached = total + count, reached + count - #missed
    print(("%-40s %8d  %5.1f%%"):format(file, count, 100 * (count - #missed) / math.max(count, 1)))
    if #missed > 0 then out:write(file, ": ", table.concat(missed, " "), "\n") end
  end
  print(("%-40s %8d  %5.1f%%   (missed lines: %s/lua.txt)"):format("all", total, 100 * reached / total, outdir))
  out:close()
end

local exit = os.exit
os.exit = function(...)
  report()
  exit(...)
end
arg = { [0] = busted, table.unpack(arg, 4) }
debug.sethook(hook, "l")
dofile(busted)
report()
