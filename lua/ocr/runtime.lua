--- The runtime: how the Lua layer waits. Provider workflows are straight-line code that calls
-- `runtime.sleep(s)` and `runtime.now()`; the current host (ocr.host) decides what waiting means:
-- blocking the thread in a script, a timer inside a scheduler job, ngx.sleep inside nginx.
-- An embedder with its own event loop installs its waiting with `runtime.set`, and every
-- provider runs unchanged on it.
local host = require "ocr.host"

local M = {}

--- Installs a runtime: a table with `now()`, `sleep(s)` and optionally `random()`, laid over
--- the detected host (inside scheduler jobs, waits stay the scheduler's timers).
M.set = host.set_runtime

--- Back to the host's own waiting.
M.reset = host.reset_runtime

function M.now() return host.current().now() end
function M.random() return host.current().random() end
function M.sleep(seconds) return host.current().sleep(seconds) end

return M
