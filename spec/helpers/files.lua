-- Small file helpers for specs: temporary files and directories, and fake images in the
-- emulators' "TEXT:" convention (the recognised text follows the marker).
local shell = require "helpers.shell"

local M = {}

M.PNG_MAGIC = "\137PNG\r\n\26\n"

function M.image(text)
  return M.PNG_MAGIC .. "\0\0\0\rIHDR fake image bytes\0\1\2\255TEXT:" .. text
end

function M.mkdir(dir)
  shell.execute("mkdir -p '" .. dir .. "'")
  return dir
end

function M.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("*a")
  f:close()
  return d
end

function M.tmpdir()
  local p = shell.popen("mktemp -d /tmp/ocr-spec.XXXXXX")
  local dir = p:read("*l")
  p:close()
  return dir
end

function M.rmdir(dir)
  assert(dir:match("^/tmp/ocr%-spec%."), "refusing to remove " .. dir)
  shell.execute("rm -rf '" .. dir .. "'")
end

function M.list(dir)
  local out = {}
  local p = shell.popen("ls -A '" .. dir .. "'")
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  table.sort(out)
  return out
end

function M.mkdir(dir)
  shell.execute("mkdir -p '" .. dir .. "'")
  return dir
end

return M
