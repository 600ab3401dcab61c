-- Runs a function in a forked child of the spec process, where the VM has FFI (LuaJIT): for the
-- specs of what a process inherits across fork() (an OpenResty master's objects in its nginx
-- workers). The child reports through a file and always leaves with _exit, so it never returns
-- into busted; an alarm kills it if it hangs.
local has_ffi, ffi = pcall(require, "ffi")
local M = { available = has_ffi }
if not has_ffi then return M end

pcall(ffi.cdef, [[
  int fork(void);
  void _exit(int status);
  int waitpid(int pid, int *status, int options);
  unsigned int alarm(unsigned int seconds);
]])
local EINTR = 4

--- fn() in a child process; true, or false and why (its error, or the signal that ended it).
function M.run(fn, seconds)
  local path = os.tmpname()
  io.stdout:flush()
  io.stderr:flush()
  local pid = ffi.C.fork()
  if pid == 0 then
    ffi.C.alarm(seconds or 30)
    local ok, err = pcall(fn)
    local f = io.open(path, "w")
    if f then f:write(ok and "" or tostring(err)) f:close() end
    ffi.C._exit(ok and 0 or 1)
  end
  assert(pid > 0, "fork failed")
  local status = ffi.new("int[1]")
  local r
  repeat r = ffi.C.waitpid(pid, status, 0) until r == pid or ffi.errno() ~= EINTR
  local f = io.open(path, "r")
  local msg = f and f:read("*a") or ""
  if f then f:close() end
  os.remove(path)
  local signal, code = status[0] % 128, math.floor(status[0] / 256) % 256
  if signal ~= 0 then
    return false, ("the child was killed by signal %d%s"):format(signal, signal == 14 and " (it hung)" or "")
  end
  return code == 0, msg
end

return M
