-- Assertions the provider specs share. Each checks exactly what the specs used to spell out
-- inline, through luassert (busted's `assert` is not a global inside a required module).
local assert = require "luassert"
local emulator = require "helpers.emulator"

local M = {}

--- client:recognize(input) refuses before any request: no result, an error of kind
--- "invalid_input" whose message contains `fragment` (plain text; not checked when nil), and an
--- empty request log on `emu`. Returns the error.
function M.invalid_input_sends_nothing(client, input, emu, fragment)
  local res, err = client:recognize(input)
  assert.is_nil(res)
  assert.equal("invalid_input", err.kind)
  if fragment then assert.truthy(err.message:find(fragment, 1, true), err.message) end
  assert.equal(0, #emu:log())
  return err
end

--- A client from make_client{endpoint = a closed port on 127.0.0.1, retries = 2} fails
--- recognize(input) with a network error that was never sent, after 3 attempts: requests refused
--- before they left this machine are retried. Returns the error.
function M.refused_and_retried(make_client, input)
  local port = emulator.closed_port()
  local res, err = make_client{ endpoint = "http://127.0.0.1:" .. port, retries = 2 }
                   :recognize(input)
  assert.is_nil(res)
  assert.equal("network", err.kind)
  assert.is_false(err.sent)
  assert.equal(3, err.attempts)
  return err
end

--- No field of any table in `list` contains `needle` (plain text) once turned into a string; a
--- failure names the field as `label .. key` ("secret in log field ", say).
function M.no_field_contains(list, needle, label)
  for _, t in ipairs(list) do
    for k, v in pairs(t) do
      assert.is_nil(tostring(v):find(needle, 1, true), label .. k)
    end
  end
end

--- No input was created twice: the multipart file names of the POSTs to `path` in `emu`'s log
--- (picwish's `image_file`) are all different. Returns how many creates there were.
function M.each_created_once(emu, path)
  local names, n = {}, 0
  for _, e in ipairs(emu:requests(path, "POST")) do
    local name = e.form.image_file[1].filename
    assert.is_nil(names[name], name .. " was created twice")
    names[name] = true
    n = n + 1
  end
  return n
end

return M
