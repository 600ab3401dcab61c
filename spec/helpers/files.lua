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

M.read = require("ocr.files").read   -- (nil, message for a file that cannot be read)

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

--- Whether `path` can be opened for reading.
function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

--- The SHA-1 of a file's contents as lowercase hex, from the sha1sum command: a reference hash
--- that owes nothing to the code under test. nil when sha1sum printed nothing.
function M.sha1sum(path)
  local p = assert(shell.popen("sha1sum '" .. path .. "'"))
  local out = p:read("*l")
  p:close()
  return out and out:match("^(%x+)")
end

--- sha1sum() of a string, through a temporary file.
function M.sha1sum_string(s)
  local path = M.write(os.tmpname(), s)
  local h = M.sha1sum(path)
  os.remove(path)
  return h
end

return M
