-- Lets the examples run straight from a checkout (after `make`) as well as from an installed tree:
-- the checkout's lua/ and build/ directories are searched first.
local root = (arg and arg[0] or ""):match("^(.*)/examples/[^/]+$") or "."
local v = _VERSION:match("%d+%.%d+")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/lua" .. v .. "/?.so;" .. package.cpath

local ex = {}

--- Prints a result's text and the files it saved, or the error (and exits 1).
function ex.report(res, err)
  if not res then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  if res.text ~= "" then print(res.text) end
  for _, f in ipairs(res.files) do
    if f.path then io.stderr:write("saved ", f.path, "\n") end
  end
end

return ex
