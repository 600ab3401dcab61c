-- What the end-to-end specs set up around their tests: an emulator (helpers.emulator) with a
-- scratch directory of fake images (helpers.files), and clients built from per-spec defaults.
local emulator = require "helpers.emulator"
local F = require "helpers.files"

local M = {}

local unpack = table.unpack or unpack   -- the specs also run on LuaJIT

--- Starts emulator `name`, then makes a scratch directory (files.tmpdir) holding one fake image
--- (files.image) per entry of `images`, an array of {filename, recognised text}, written in
--- order. Returns emu, the directory, then the images' paths in the same order.
function M.start(name, images)
  local emu = emulator.start(name)
  local dir = F.tmpdir()
  local paths = {}
  for i, img in ipairs(images or {}) do
    paths[i] = F.write(dir .. "/" .. img[1], F.image(img[2]))
  end
  return emu, dir, unpack(paths)
end

--- Undoes start(): stops the emulator, then removes the scratch directory.
function M.stop(emu, dir)
  emu:stop()
  F.rmdir(dir)
end

--- ocr.new(provider, o), o being a copy of `defaults` with each field of `opts` (may be nil) laid
--- over it: the specs' `client(opts)` shorthand.
function M.client(provider, defaults, opts)
  local o = {}
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  return require("ocr").new(provider, o)
end

return M
