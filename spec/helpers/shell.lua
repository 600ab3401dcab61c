-- Child processes of the specs (emulators, python tools) must not inherit the sanitizer runtimes
-- that `make test-asan` preloads into the Lua interpreter: their own leaks are not ours to report.
-- Lua cannot unsetenv, so commands are prefixed instead.
local M = {}

M.CLEAN_ENV = os.getenv("OCR_SANITIZED")
  and "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS " or ""

--- io.popen for a non-Lua child: `cmd` runs without the sanitizer environment.
function M.popen(cmd, mode)
  return io.popen(M.CLEAN_ENV .. cmd, mode or "r")
end

--- os.execute for a non-Lua child, likewise.
function M.execute(cmd)
  return os.execute(M.CLEAN_ENV .. cmd)
end

return M
