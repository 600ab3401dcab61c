-- Child processes of the specs (emulators, python tools) must not inherit the sanitizer runtimes
-- that `make test-asan` preloads into the Lua interpreter: their own leaks are not ours to report.
-- Lua cannot unsetenv, so commands are prefixed instead.
local M = {}

M.CLEAN_ENV = os.getenv("OCR_SANITIZED")
  and "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS " or ""

-- The whole command line runs in a shell started without the sanitizer environment, so every
-- command of a pipeline or list is clean, not only the first.
local function clean(cmd)
  if M.CLEAN_ENV == "" then return cmd end
  return M.CLEAN_ENV .. "sh -c '" .. cmd:gsub("'", "'\\''") .. "'"
end

--- io.popen for non-Lua children: `cmd` runs without the sanitizer environment.
function M.popen(cmd, mode)
  return io.popen(clean(cmd), mode or "r")
end

--- os.execute for non-Lua children, likewise.
function M.execute(cmd)
  return os.execute(clean(cmd))
end

return M
