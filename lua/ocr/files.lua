--- Paths on the local disk: checking inputs before anything is sent, and turning names that come
-- from a server into paths that can never escape the directory the user chose.
local core = require "ocr.core"
local strings = require "ocr.strings"
local url = require "ocr.url"

local M = {}

--- Checks that `path` is a readable regular file; returns its size or nil, message.
function M.check_input(path)
  if type(path) ~= "string" or path == "" then return nil, "file must be a non-empty path" end
  local st, err = core.stat(path)
  if not st then return nil, "cannot read input file " .. err end
  if st.type ~= "file" then return nil, ("input %s is a %s, not a file"):format(path, st.type) end
  local f, ferr = io.open(path, "rb")
  if not f then return nil, "cannot read input file " .. tostring(ferr) end
  f:close()
  return st.size
end

--- Checks that `dir` is an existing directory.
function M.check_dir(dir)
  local st, err = core.stat(dir)
  if not st then return nil, "output directory " .. err end
  if st.type ~= "directory" then return nil, ("output %s is not a directory"):format(dir) end
  return true
end

function M.basename(path)
  local name = strings.after_last(strings.rstrip(path, strings.SLASHES), strings.SLASHES)
  return name ~= "" and name or path
end

--- A server-given file name made safe: no directories, no `..`, no NUL or control characters,
-- no leading dots, bounded length. Never empty.
function M.sanitize_name(name, fallback)
  name = tostring(name or "")
  name = name:gsub("[%z\1-\31\127]", "")
  name = strings.after_last(name, strings.SLASHES)
  name = strings.rstrip(name:gsub("%.%.+", "."):gsub("^[%.%s]+", ""), strings.SPACE)
  if #name > 200 then
    local ext = name:match("(%.[%w]+)$") or ""
    name = name:sub(1, 200 - #ext) .. ext
  end
  if name == "" then name = fallback or "result" end
  return name
end

local SPACES = { allow_spaces = true }   -- (an input URL may have them: see ocr.client)

--- The file name a URL suggests: its last path segment, percent-decoded and sanitised, else
-- `fallback`; `format` is added as the extension when the name has none.
function M.url_name(s, fallback, format)
  local u = url.parse(s, SPACES)
  local last = u and u.host and strings.after_last(u.path, strings.SLASHES) or ""
  last = core.url_decode(last) or ""
  local name = M.sanitize_name(last, fallback)
  if format and not name:find(".", 1, true) then name = name .. "." .. format end
  return name
end

--- A new path inside `dir` for `name` (sanitised), reserved by creating it with `body` (default
-- empty): an existing entry is never overwritten nor followed; "name.ext" becomes "name-1.ext",
-- "name-2.ext", ... With no body the caller writes the file (or renames a complete one over
-- it) or removes it.
function M.safe_path(dir, name, body)
  local ok, err = M.check_dir(dir)
  if not ok then return nil, err end
  name = M.sanitize_name(name)
  local stem, ext = name:match("^(.-)(%.[^%.]*)$")
  if not stem or stem == "" then stem, ext = name, "" end
  local base = strings.rstrip(dir, strings.SLASHES)
  local candidate = base .. "/" .. name
  local n = 0
  while true do
    -- Taken atomically: two jobs saving the same name get two files, and an existing entry
    -- (a file, a symlink, even a dangling one) is never written through.
    local ok, err, why = core.write_new(candidate, body or "")
    if ok then return candidate end
    if why ~= "exists" then return nil, "cannot create " .. err end
    n = n + 1
    if n > 1000 then return nil, "too many files named " .. name .. " in " .. dir end
    candidate = ("%s/%s-%d%s"):format(base, stem, n, ext)
  end
end

local MIME = {
  png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", gif = "image/gif", bmp = "image/bmp",
  webp = "image/webp", tif = "image/tiff", tiff = "image/tiff", pdf = "application/pdf",
  txt = "text/plain", doc = "application/msword", xls = "application/vnd.ms-excel",
  ppt = "application/vnd.ms-powerpoint",
  docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}

--- The MIME type for a file name, by extension (application/octet-stream when unknown).
function M.mime_type(name)
  local ext = tostring(name or ""):match("%.([%w]+)$")
  return ext and MIME[ext:lower()] or "application/octet-stream"
end

-- Magic numbers of the formats vendors accept, to name in-memory data that has no filename
-- (vendors go by the extension).
local MAGIC = {
  { "\137PNG\r\n\26\n", "png" }, { "\255\216\255", "jpg" }, { "GIF87a", "gif" }, { "GIF89a", "gif" },
  { "BM", "bmp" }, { "II*\0", "tif" }, { "MM\0*", "tif" }, { "%PDF", "pdf" },
}

--- The file extension for bytes, by magic number (nil when unknown).
function M.sniff_extension(data)
  for _, m in ipairs(MAGIC) do
    if data:sub(1, #m[1]) == m[1] then return m[2] end
  end
  if data:sub(1, 4) == "RIFF" and data:sub(9, 12) == "WEBP" then return "webp" end
  return nil
end

--- The name to upload an input under: the caller's `filename`, the file's own name, the name its
-- `url` suggests, or `stem` plus the extension sniffed from in-memory `data` ("image.png"; just
-- `stem` if unknown).
function M.name_for(input, stem)
  if input.filename then return input.filename end
  if input.file then return M.basename(input.file) end
  if input.url then return M.url_name(input.url, stem) end
  local ext = input.data and M.sniff_extension(input.data)
  return ext and (stem .. "." .. ext) or stem
end

--- The multipart part that carries the input's file (streamed) or data under the form field
-- `field`, named as name_for(input, stem) says, with that name's MIME type.
function M.part(field, input, stem)
  local name = M.name_for(input, stem)
  return { name = field, file = input.file, data = not input.file and input.data or nil,
           filename = name, content_type = M.mime_type(name) }
end

local DOT = strings.set_of(".")

--- The extension of a file name or a URL's path, lower-case and without the dot ("a.b.TXT" ->
-- "txt"); nil when the last segment has none.
function M.extension(path)
  if type(path) ~= "string" then return nil end
  local ext = strings.after_last(path, DOT)
  if ext == path or not ext:match("^%w+$") then return nil end
  return ext:lower()
end

-- Result formats whose files are text: a task's text rather than a document to save.
local TEXT = { txt = true, text = true, md = true, markdown = true, html = true, htm = true,
               json = true, xml = true, csv = true, tsv = true }

--- Whether files of `format` (an extension: "txt", "md", "json", ...) are text.
function M.is_text(format)
  return TEXT[format] == true
end

--- Refuses, before anything is sent, a request whose result is a file (`is_text` false) with
-- nowhere to save it: no `output` and `download` not false.
function M.check_output(input, option, value, is_text)
  if not is_text and input.download ~= false and not input.output then
    return ("%s %q produces a file: pass output = dir to save it, or download = false for its URL")
           :format(option, tostring(value))
  end
end

--- Writes `body` to a new file for `name` in `dir` (safe_path's rules); returns its path or
-- nil, message (a failed write leaves no file behind).
function M.write_new(dir, name, body)
  return M.safe_path(dir, name, body)
end

--- A whole file's bytes, or nil, message (a store's entry, a provider's input read whole).
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("*a")
  f:close()
  return data
end

return M
