-- Loading ocr.curl makes SIGPIPE harmless (libcurl with NOSIGNAL no longer shields the process
-- when a TLS peer closes mid-write), unless the host chose its own disposition.
-- Runs `lua_code` in a child interpreter (from a file, so no outer shell expands its `$PPID`:
-- inside the child, `kill -PIPE $PPID` is the child interpreter signalling itself).
local function run(lua_code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("package.cpath = 'build/lua5.4/?.so;' .. package.cpath\n", lua_code, "\n")
  f:close()
  -- An ignored signal stays ignored across exec, and this busted process has loaded ocr.curl:
  -- start the child with the default disposition, as a fresh script would have.
  local p = io.popen("env --default-signal=PIPE lua5.4 " .. path .. " 2>&1; echo status=$?")
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out
end

describe("ocr.curl and SIGPIPE", function()
  it("survives a SIGPIPE once loaded", function()
    local out = run("require 'ocr.curl'; os.execute('kill -PIPE $PPID'); print('alive')")
    assert.truthy(out:find("alive", 1, true), out)
    assert.truthy(out:find("status=0", 1, true), out)
  end)

  it("is what makes the difference: without it SIGPIPE kills the interpreter", function()
    local out = run("os.execute('kill -PIPE $PPID'); print('alive')")
    assert.is_nil(out:find("alive", 1, true), out)
  end)
end)
