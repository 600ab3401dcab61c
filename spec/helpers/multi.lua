--- Drives an ocr.curl multi handle from a test or a benchmark (a client, not the code under test).
local M = {}

--- One round: act on the sockets, wait up to `poll_ms` for activity, act again, then hand every
-- finished transfer to on_done(id, res, err).
function M.round(m, poll_ms, on_done)
  m:perform(0)
  m:poll(poll_ms)
  m:perform(0)
  for id, res, err in function() return m:info_read() end do on_done(id, res, err) end
end

return M
