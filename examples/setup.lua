-- Lets the examples run straight from a checkout (after `make`) as well as from an installed tree:
-- the checkout's lua/ and build/ directories are searched first.
local root = (arg and arg[0] or ""):match("^(.*)/examples/[^/]+$") or "."
local v = _VERSION:match("%d+%.%d+")
package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
package.cpath = root .. "/build/lua" .. v .. "/?.so;" .. package.cpath
