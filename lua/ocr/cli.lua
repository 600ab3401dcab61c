--- The `ocr` command (bin/ocr): argument parsing, running inputs concurrently through the job
-- runtime, and printing results as text, JSON Lines or TSV. Kept in a module so the specs and
-- embedders can call `main(args)` without a subprocess.
local cjson = require "cjson"
local core = require "ocr.core"
local client_mod = require "ocr.client"
local registry = require "ocr.registry"
local files = require "ocr.files"

local M = { USAGE = [==[
usage: ocr [-p PROVIDER[,PROVIDER...]] [--text | --json | --tsv] [--lang L] [-o DIR [--overwrite]]
           [--min-confidence C | --hedge-after S] [--cache[=DIR]] [--budget N]
           [--store redis://[:PASSWORD@]HOST[:PORT][/DB]] [-f FORMAT] [--pages P] [--dpi N]
           [--password W] [-j N] [-q] [--require MODULE]... [--set key=value]... INPUT...
       ocr [--require MODULE]... providers
       ocr --help | --version

Recognises text in each INPUT and prints it. An INPUT is a file, a folder (its images and
PDFs, by name; not recursive), an http(s) URL, or - for standard input.
  -p, --provider NAME[,NAME...]
                        provider (default: the local engine, offline); see `ocr providers`;
                        several: each tried in turn when the one before fails (a fallback)
      --min-confidence C  with -p: go on to the next provider while a result's confidence
                        is under C (0..1), else keep the best (a cascade)
      --hedge-after S   with -p a,b: start the next provider when the one before has not
                        answered in S seconds; the first result wins (a race)
      --cache[=DIR]     reuse results (and resume tasks) kept in DIR (default
                        $XDG_CACHE_HOME/lua-ocr): an input read before costs nothing
      --budget N        spend at most N credits per provider in this run
      --store URL       keep rate limits, the --budget count and the --cache (without DIR)
                        in Redis, shared with every process that uses the same store:
                        redis://[:PASSWORD@]HOST[:PORT][/DB] (also OCR_STORE); while Redis
                        is unreachable, this process keeps its own and says so once
      --text            print the text (default); a line with a form feed between pages;
                        several inputs get "==> name <==" headers
      --json            print one JSON object per input (JSON Lines): the result model
      --tsv             print a header row, then one row per text line:
                        input, line, page, x, y, w, h, confidence, text
      --lang L          recognition language: en, zh-Hans, a list en,zh-Hans, or the
                        provider's own code
  -o, --output DIR      save each result in DIR (created if missing) and print only a summary:
                        the provider's files, else NAME.txt, .json or .tsv as printed; an
                        existing file is kept and the new one named NAME-1.txt
      --overwrite       with -o, replace existing files instead
  -f, --format FORMAT   the provider's output format (its option `format`): with -o, the local
                        engine writes txt (default), hocr, alto, tsv or pdf (searchable)
      --pages P         PDF pages to read, like 1-3,6 (default: all)
      --dpi N           resolution PDF pages are rendered at (the local engine; default 300)
      --password W      an encrypted PDF's password
  -j, --jobs N          inputs in flight at once (default 4)
      --set key=value   a provider or client option (e.g. --set timeout=30)
      --require MODULE  load a Lua module first: one that calls ocr.register adds a provider
                        (also OCR_PROVIDERS=mod1,mod2)
  -q, --quiet           no progress on stderr
Credentials come from the environment: OCR_<PROVIDER>_<CREDENTIAL> (see `ocr providers`).
Exit status: 0 when every input succeeded, 1 when any failed, 2 for usage errors.
]==] }

local UsageError = {}
local make_client   -- (defined below, with the pipeline it builds)

local function usage_error(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, UsageError), 0)
end

--- Parses the arguments into an options table (raises a usage error).
function M.parse(args)
  local o = { format = "text", jobs = 4, sets = {}, requires = {}, inputs = {} }
  local i = 1
  local function value(flag)
    i = i + 1
    local v = args[i]
    if v == nil then usage_error("%s needs a value", flag) end
    return v
  end
  while i <= #args do
    local a = args[i]
    local long, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if long then
      table.insert(args, i + 1, inline)
      a = long
    end
    if a == "-h" or a == "--help" then o.help = true
    elseif a == "--version" then o.version = true
    elseif a == "-p" or a == "--provider" then
      o.providers = {}
      for name in (value(a) .. ","):gmatch("([^,]*),") do
        if name == "" then usage_error("-p needs provider names separated by commas") end
        o.providers[#o.providers + 1] = name
      end
    elseif a == "--min-confidence" then
      o.min_confidence = tonumber(value(a))
      if not o.min_confidence or o.min_confidence < 0 or o.min_confidence > 1 then
        usage_error("--min-confidence needs a number from 0 to 1")
      end
    elseif a == "--hedge-after" then
      o.hedge_after = tonumber(value(a))
      if not o.hedge_after or o.hedge_after < 0 or o.hedge_after == math.huge then
        usage_error("--hedge-after needs seconds >= 0")
      end
    elseif a == "--cache" then o.cache = long and value(a) or true   -- (--cache=DIR, or the default)
    elseif a == "--store" then o.store = value(a)
    elseif a == "--budget" then
      o.budget = tonumber(value(a))
      if not o.budget or o.budget < 0 then usage_error("--budget needs a number of credits >= 0") end
    elseif a == "--text" or a == "--json" or a == "--tsv" then o.format = a:sub(3)
    elseif a == "--lang" then o.lang = value(a)
    elseif a == "-o" or a == "--output" then o.output = value(a)
    elseif a == "--overwrite" then o.overwrite = true
    elseif a == "--require" then o.requires[#o.requires + 1] = value(a)
    elseif a == "-j" or a == "--jobs" then
      o.jobs = tonumber(value(a))
      if not o.jobs or o.jobs < 1 or o.jobs ~= math.floor(o.jobs) then usage_error("-j needs a whole number >= 1") end
    elseif a == "--set" then
      local k, v = value(a):match("^([%w_]+)=(.*)$")
      if not k then usage_error("--set needs key=value") end
      o.sets[#o.sets + 1] = { k, v }
    elseif a == "-q" or a == "--quiet" then o.quiet = true
    elseif a == "-f" or a == "--format" or a == "--pages" or a == "--dpi" or a == "--password" then
      -- (shorthands for --set: the provider's own options of those names)
      local key = (a == "-f" or a == "--format") and "format" or a:sub(3)
      o.sets[#o.sets + 1] = { key, value(a) }
    elseif a == "--" then
      for j = i + 1, #args do o.inputs[#o.inputs + 1] = args[j] end
      break
    elseif a:match("^%-.") then usage_error("unknown option %s", a)
    else o.inputs[#o.inputs + 1] = a end
    i = i + 1
  end
  if o.overwrite and not o.output then usage_error("--overwrite needs -o DIR") end
  if o.min_confidence and o.hedge_after then
    usage_error("--min-confidence (a cascade) and --hedge-after (a race) do not go together")
  end
  if o.hedge_after and #(o.providers or {}) < 2 then usage_error("--hedge-after races several providers: -p a,b") end
  return o
end

-- Requires the modules named by OCR_PROVIDERS (comma-separated) and --require, in that order,
-- so that the providers they register are known when -p is resolved.
local function require_modules(o)
  local list = {}
  for m in (os.getenv("OCR_PROVIDERS") or ""):gmatch("[^,%s]+") do list[#list + 1] = { m, "OCR_PROVIDERS" } end
  for _, m in ipairs(o.requires) do list[#list + 1] = { m, "--require" } end
  for _, e in ipairs(list) do
    local ok, err = pcall(require, e[1])
    if not ok then
      local first = tostring(err):match("^[^\n]*"):gsub(":$", "")
      local hint = first:find("not found", 1, true) and " (is it on LUA_PATH?)" or ""
      usage_error("module '%s' (%s) failed to load: %s%s", e[1], e[2], first, hint)
    end
  end
end

-- Byte order, whatever the locale (Lua's < on strings follows strcoll).
local function byte_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local MEDIA = { png = true, jpg = true, jpeg = true, tif = true, tiff = true, bmp = true, gif = true,
                webp = true, pnm = true, pdf = true }

-- The inputs a folder holds: its regular files (not symlinks, not hidden) with an image or PDF
-- extension, in byte order of their names. Not recursive.
local function folder_inputs(dir)
  local entries, err = core.list_dir(dir)
  if not entries then usage_error("cannot read folder %s", err) end
  local prefix = dir:sub(-1) == "/" and dir or dir .. "/"
  local names = {}
  for _, name in ipairs(entries) do
    local ext = name:match("%.([^.]+)$")
    if ext and MEDIA[ext:lower()] and name:sub(1, 1) ~= "." then
      local st = core.lstat(prefix .. name)
      if st and st.type == "file" then names[#names + 1] = name end
    end
  end
  if #names == 0 then usage_error("folder %s holds no images or PDFs", dir) end
  table.sort(names, byte_less)
  for i, name in ipairs(names) do names[i] = prefix .. name end
  return names
end

local function is_url(name) return name:match("^[hH][tT][tT][pP][sS]?://") ~= nil end

-- The command's inputs with each folder replaced by the files it holds.
local function expand_inputs(inputs)
  local out = {}
  for _, name in ipairs(inputs) do
    local st = name ~= "-" and not is_url(name) and core.stat(name)
    if st and st.type == "directory" then
      for _, f in ipairs(folder_inputs(name)) do out[#out + 1] = f end
    else
      out[#out + 1] = name
    end
  end
  return out
end

-- mkdir -p: `path` and its missing parents. Returns true, or nil and why.
local function make_dirs(path)
  path = path:gsub("(.)/+$", "%1")
  local st = core.stat(path)
  if st then
    if st.type == "directory" then return true end
    return nil, path .. " is not a directory"
  end
  local parent = path:match("^(.*[^/])/+[^/]+$")
  if parent then
    local ok, err = make_dirs(parent)
    if not ok then return nil, err end
  end
  local ok, err, why = core.mkdir(path)
  if ok or (why == "exists" and (core.stat(path) or {}).type == "directory") then return true end
  return nil, err
end

-- Turns a --set value into what the option's spec expects.
local function coerce(key, text, spec)
  if spec == "boolean" then
    if text == "true" or text == "1" or text == "yes" then return true end
    if text == "false" or text == "0" or text == "no" then return false end
    usage_error("--set %s: true or false expected", key)
  elseif spec == "number" or spec == "integer" then
    local n = tonumber(text)
    if not n then usage_error("--set %s: a number expected", key) end
    return n
  elseif spec == "table_or_false" then
    if text == "false" then return false end
    usage_error("--set %s: only false can be given on the command line", key)
  elseif type(spec) == "table" then
    for _, allowed in ipairs(spec) do
      if tostring(allowed) == text then return allowed end
    end
  end
  return text
end

-- Splits the --set options between the client (ocr.new) and every input. --lang is the one
-- `language` option (ocr.language): the client's, so that ocr.new checks it once (a code the
-- provider does not read is a usage error), else every input's (the client says why not).
local function build_options(o, name, def)
  local client_opts, input_opts = {}, {}
  local client_specs = { client_mod.COMMON_OPTIONS, def.client_options or {} }
  for k in pairs(def.credentials or {}) do client_specs[#client_specs + 1] = { [k] = "string" } end
  local function client_spec(k)
    for _, s in ipairs(client_specs) do if s[k] ~= nil then return s[k] end end
  end
  for _, kv in ipairs(o.sets) do
    local k, v = kv[1], kv[2]
    local ispec, cspec = (def.options or {})[k], client_spec(k)
    if ispec ~= nil then input_opts[k] = coerce(k, v, ispec)
    elseif cspec ~= nil then client_opts[k] = coerce(k, v, cspec)
    else usage_error("provider %s has no option '%s'", name, k) end
  end
  if o.lang then
    if def.languages then client_opts.language = o.lang else input_opts.language = o.lang end
  end
  if o.budget then client_opts.budget = { credits = o.budget, per = "run" } end
  if o.store_object then client_opts.store = o.store_object end   -- (rate limits and the budget)
  return client_opts, input_opts
end

local function make_input(name, input_opts, output)
  local input = {}
  for k, v in pairs(input_opts) do input[k] = v end
  input.output = output
  if name == "-" then
    input.data = io.stdin:read("*a")
    input.filename = "stdin"
  elseif is_url(name) then
    input.url = name
  else
    input.file = name
  end
  return input
end

-- A copy of `v` that JSON can carry: strings, finite numbers, booleans, arrays and objects with
-- string keys. A provider may have put anything into a line or a file entry (a NaN from a
-- vendor's answer, a function, a sparse table): that part is left out, the rest is printed.
local function json_safe(v, depth)
  local t = type(v)
  if t == "string" or t == "boolean" then return v end
  if t == "number" then return (v == v and v ~= math.huge and v ~= -math.huge) and v or nil end
  if t ~= "table" or depth > 16 then return nil end
  local n, count = #v, 0
  for _ in pairs(v) do count = count + 1 end
  local out = {}
  if n > 0 and n == count then
    for i = 1, n do out[#out + 1] = json_safe(v[i], depth + 1) end
    if #out == 0 then return cjson.empty_array end
  else
    for k, x in pairs(v) do
      if type(k) == "string" then out[k] = json_safe(x, depth + 1) end
    end
  end
  return out
end

-- lua-cjson writes "/" as "\/": valid JSON, but paths and URLs read badly. One left-to-right
-- pass over the escapes (in JSON only strings hold backslashes, each starting a two-character
-- escape or \uXXXX) turns "\/" back into "/" and leaves every other escape as it is: in "\\/"
-- the first escape is a backslash, and the slash after it was never escaped.
local function unescape_slashes(json)
  if not json:find("\\/", 1, true) then return json end
  return (json:gsub("\\(.)", function(c) if c == "/" then return "/" end end))
end

-- The result as plain JSON: every field the provider set (no metatables, no raw vendor answer,
-- none of the provider's own "_" fields), with lines and files always arrays.
local function to_json(name, res, err)
  if err then
    local e = {}
    for _, k in ipairs{ "kind", "message", "code", "status", "task_id", "request_id", "retryable" } do
      e[k] = err[k]
    end
    return unescape_slashes(cjson.encode{ input = name, error = json_safe(e, 0) })
  end
  local out = {}
  for k, v in pairs(res) do
    if type(k) == "string" and k ~= "raw" and k ~= "lines" and k ~= "files" and k:sub(1, 1) ~= "_" then
      out[k] = v
    end
  end
  out = json_safe(out, 0)
  out.input = name
  out.lines = #res.lines > 0 and json_safe(res.lines, 0) or cjson.empty_array
  out.files = #res.files > 0 and json_safe(res.files, 0) or cjson.empty_array
  return unescape_slashes(cjson.encode(out))
end

local function tsv_field(v)
  if v == nil then return "" end
  return (tostring(v):gsub("[\t\n\r\\]", { ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r", ["\\"] = "\\\\" }))
end

local TSV_HEADER = "input\tline\tpage\tx\ty\tw\th\tconfidence\ttext\n"

local function tsv_rows(name, res)
  local rows = {}
  for i, line in ipairs(res.lines) do
    local b = line.box or {}
    local conf = line.confidence and ("%.3f"):format(line.confidence)
    rows[i] = table.concat({ tsv_field(name), i, tsv_field(line.page or 1), tsv_field(b.x), tsv_field(b.y),
                             tsv_field(b.w), tsv_field(b.h), tsv_field(conf), tsv_field(line.text) }, "\t") .. "\n"
  end
  return table.concat(rows)
end

-- One input's result as the chosen format prints it (without the "==> name <==" header).
local function render(format, name, res, err)
  if format == "json" then return to_json(name, res, err) .. "\n" end
  if not res then return "" end
  if format == "tsv" then return tsv_rows(name, res) end
  -- The result joins pages with "\f"; printed, the form feed gets a line of its own, so that a
  -- page's last line and the next page's first stay apart on a terminal.
  local text = res.text:gsub("\n?\f\n?", "\n\f\n")
  return text .. (text:sub(-1) == "\n" and "" or "\n")
end

local EXTENSION = { text = "txt", json = "json", tsv = "tsv" }

-- Where -o saves results. An existing name is kept: the new file gets another (files.safe_path,
-- NAME-1.txt). With --overwrite every file is first written complete in a hidden staging folder
-- inside DIR (one subfolder per input, so that inputs saving alike names do not rename each
-- other's), then renamed over the name (atomic; a symlink there is replaced, not followed);
-- never over a file this run saved, so two inputs named alike both keep their results.
local function open_output(dir, overwrite)
  local out = { dir = dir, base = (dir:gsub("(.)/+$", "%1")), taken = {}, count = 0 }
  out.base = out.base == "/" and "" or out.base
  if overwrite then
    for _ = 1, 10 do
      local path = ("%s/.ocr-partial-%s"):format(out.base, core.hex(core.random_bytes(6)))
      local ok, err, why = core.mkdir(path)
      if ok then out.staging = path break end
      if why ~= "exists" then return nil, err end
    end
    if not out.staging then return nil, "cannot create a staging folder in " .. dir end
  end
  return out
end

-- Moves a complete file from the staging folder into DIR (--overwrite); returns its new path,
-- or nil and why.
local function place(out, from)
  local name = files.basename(from)
  local target = out.base .. "/" .. name
  if not out.taken[name] and os.rename(from, target) then
    out.taken[name] = true
    return target
  end
  local path, err = files.safe_path(out.dir, name)   -- taken by this run, or not replaceable
  if path then
    local ok, rerr = os.rename(from, path)
    if ok then
      out.taken[files.basename(path)] = true
      return path
    end
    os.remove(path)
    err = rerr
  end
  os.remove(from)
  return nil, err
end

-- The folder input `i` saves into: DIR, or with --overwrite its own staging subfolder.
local function input_folder(out, i)
  if not out.staging then return out.dir end
  local dir = out.staging .. "/" .. i
  local ok, err, why = core.mkdir(dir)
  if not ok and why ~= "exists" then return nil, err end
  return dir
end

-- Removes the staging folder and whatever a failed input left in it.
local function close_output(out)
  if not out.staging then return end
  for _, name in ipairs(core.list_dir(out.staging) or {}) do
    local path = out.staging .. "/" .. name
    for _, f in ipairs(core.list_dir(path) or {}) do os.remove(path .. "/" .. f) end
    os.remove(path)
  end
  os.remove(out.staging)
end

-- With -o, a result for which the provider saved no file (a local engine's, a text-only answer) is
-- saved as what would be printed, under the input's name: -o never leaves DIR empty without a
-- word. Returns the path, or nil and why.
local function save_rendered(out, format, input, rendered)
  local base = files.name_for(input, "input")
  local stem = base:match("^(.+)%.[^.]*$") or base
  local path, err = files.safe_path(input.output, stem .. "." .. EXTENSION[format])
  if not path then return nil, err end
  local f, ferr = io.open(path, "wb")
  local ok, werr = f and f:write(rendered)
  if f then f:close() end
  if not ok then
    os.remove(path)
    return nil, ferr or werr
  end
  if out.staging then return place(out, path) end
  return path
end

-- Progress on stderr: a bar on a terminal, plain lines otherwise (only for several inputs).
-- On a terminal the bar also fills with the inputs in flight (the percentage of their
-- "processing" stage: a local engine's page by page, a vendor's own), so one long input does not
-- leave it still.
local function progress_reporter(o, n, err_out)
  local quiet = { done = function() end, progress = function() end, finish = function() end }
  if o.quiet then return quiet end
  local tty = core.isatty(2)
  if not tty and n < 2 then return quiet end
  local done, partial, width = 0, {}, 30
  local failed_name
  local function draw()
    local sum = done
    for _, f in pairs(partial) do sum = sum + f end
    local filled = math.min(width, math.floor(width * sum / n))
    err_out:write(("\r[%s%s] %d/%d %s\27[K"):format(("#"):rep(filled), ("."):rep(width - filled), done, n,
                                                     failed_name and "(failed: " .. failed_name .. ")" or ""))
  end
  return {
    done = function(i, name, ok)
      done, partial[i] = done + 1, nil
      if tty then
        failed_name = not ok and name or failed_name
        draw()
      else
        err_out:write(("ocr: %d/%d %s %s\n"):format(done, n, name, ok and "ok" or "failed"))
      end
    end,
    progress = function(i, percent)
      if not (tty and percent) or percent >= 100 then return end
      local f = percent / 100
      if f > (partial[i] or 0) then
        partial[i] = f
        draw()
      end
    end,
    finish = function() if tty then err_out:write("\r\27[K") end end,
  }
end

-- The default cache folder: $XDG_CACHE_HOME/lua-ocr, else ~/.cache/lua-ocr.
local function default_cache()
  local base = os.getenv("XDG_CACHE_HOME")
  if not base or base == "" then base = (os.getenv("HOME") or ".") .. "/.cache" end
  return base .. "/lua-ocr"
end

-- The client the inputs go to: one provider's, or a pipeline of several (-p a,b: a fallback in
-- that order; with --min-confidence a cascade, with --hedge-after a race), cached with --cache.
-- Returns it and the input options, or nil and the usage message.
make_client = function(o, ocr)
  local names = o.providers or { registry.default_name() }
  if #names == 0 then return nil, nil, "no provider declares itself the default: pass -p NAME" end
  if o.store and not o.store_object then
    local made, s = pcall(ocr.store.redis, { url = o.store, log = o.log })
    if not made then return nil, nil, "--store: " .. (tostring(s):gsub("^.-:%d+: ", "")) end
    o.store_object = s
  end
  local members, input_opts = {}, nil
  for i, name in ipairs(names) do
    local loaded, def = pcall(registry.get, name)
    if not loaded or not def then
      local why = not loaded and ("\nocr: " .. tostring(def)) or ""
      return nil, nil, ("unknown provider '%s' (known: %s)%s"):format(name, table.concat(ocr.providers(), ", "), why)
    end
    local built, client_opts, opts = pcall(build_options, o, name, def)
    if not built then
      return nil, nil, type(client_opts) == "table" and client_opts.message or tostring(client_opts)
    end
    if input_opts then   -- (one input goes to every member: each must take its options)
      for k in pairs(opts) do
        if input_opts[k] == nil then return nil, nil, ("--set %s: provider %s has it, %s does not"):format(k, name, names[1]) end
      end
      for k in pairs(input_opts) do
        if opts[k] == nil then return nil, nil, ("--set %s: provider %s has it, %s does not"):format(k, names[1], name) end
      end
    end
    input_opts = opts
    local made, c = pcall(ocr.new, name, client_opts)
    if not made then return nil, nil, (tostring(c):gsub("^.-:%d+: ", "")) end
    members[i] = c
  end
  local client = members[1]
  if o.min_confidence then
    local min = o.min_confidence
    members.accept = function(res) return (res.confidence or 0) >= min end
    client = ocr.cascade(members)
  elseif o.hedge_after then
    members.hedge_after = o.hedge_after
    client = ocr.race(members)
  elseif #members > 1 then
    client = ocr.fallback(members)
  end
  if o.cache == true and o.store_object then
    client = ocr.cache(client, { store = o.store_object })
  elseif o.cache then
    local dir = o.cache == true and default_cache() or o.cache
    local ok, derr = make_dirs(dir)
    if not ok then return nil, nil, ("cannot create the cache folder %s: %s"):format(dir, derr) end
    client = ocr.cache(client, { store = ocr.store.dir(dir) })
  end
  return client, input_opts
end

-- One line on stderr after a pipeline's run: done, cached, failed, credits spent (those known).
local function pipeline_summary(o, results, err_out)
  if o.quiet or not (o.providers and #o.providers > 1 or o.cache or o.budget or o.min_confidence) then return end
  local done, cached, failed, credits = 0, 0, 0, 0
  for _, r in ipairs(results) do
    if r.res then
      done = done + 1
      if r.res.cached then cached = cached + 1 end
    else
      failed = failed + 1
    end
    local spent = (r.res or r.err).cost
    if type(spent) == "number" and not (r.res and r.res.cached) then credits = credits + spent end
  end
  err_out:write(("ocr: %d done (%d cached), %d failed; %g credits spent\n"):format(done, cached, failed, credits))
end

--- Runs the command; returns the exit status. `io` streams can be replaced for embedding.
function M.main(args, ocr, streams)
  streams = streams or {}
  local out, err_out = streams.stdout or io.stdout, streams.stderr or io.stderr
  local copy = {}
  for i = 1, #(args or {}) do copy[i] = args[i] end
  local ok, o = pcall(M.parse, copy)
  if not ok then
    if getmetatable(o) ~= UsageError then error(o, 0) end
    err_out:write("ocr: ", o.message, "\n", "try 'ocr --help'\n")
    return 2
  end
  if o.help then out:write(M.USAGE) return 0 end
  if o.version then
    local engine = registry.default_name()
    local def = engine and registry.get(engine)
    local about = def and def.version and def.version()
    out:write(ocr._VERSION, " (", _VERSION, ", ", require("ocr.curl")._CURL_VERSION:match("^%S+"),
              about and (", " .. about) or "", ")\n")
    return 0
  end
  local loaded_mods, merr = pcall(require_modules, o)
  if not loaded_mods then
    if getmetatable(merr) ~= UsageError then error(merr, 0) end
    err_out:write("ocr: ", merr.message, "\n")
    return 2
  end
  if o.inputs[1] == "providers" and #o.inputs == 1 then
    for _, name in ipairs(ocr.providers()) do
      local loaded, def = pcall(registry.get, name)
      local creds = {}
      if loaded and def then
        for k, spec in pairs(def.credentials or {}) do
          creds[#creds + 1] = client_mod.env_name(name, k) .. (spec.required and "" or " (optional)")
        end
        table.sort(creds)
      end
      out:write(("%-10s %s\n"):format(name, not loaded and "(unavailable: " .. tostring(def):match("[^\n]*") .. ")"
                                         or #creds > 0 and table.concat(creds, ", ") or "no credentials"))
    end
    return 0
  end
  if #o.inputs == 0 then
    err_out:write("ocr: no input given\ntry 'ocr --help'\n")
    return 2
  end
  if not o.store and (os.getenv("OCR_STORE") or "") ~= "" then o.store = os.getenv("OCR_STORE") end
  o.log = function(e) err_out:write("ocr: ", e.message, "\n") end   -- (the store's outages)
  local client, input_opts, cerr = make_client(o, ocr)
  if not client then
    err_out:write("ocr: ", cerr, "\n")
    return 2
  end

  local expanded, names = pcall(expand_inputs, o.inputs)
  if not expanded then
    if getmetatable(names) ~= UsageError then error(names, 0) end
    err_out:write("ocr: ", names.message, "\n")
    client:close()
    return 2
  end
  local output
  if o.output then
    local ok, derr = make_dirs(o.output)
    if ok then output, derr = open_output(o.output, o.overwrite) end
    if not output then
      err_out:write(("ocr: cannot create the output folder %s: %s\n"):format(o.output, derr))
      client:close()
      return 2
    end
  end

  local inputs = {}
  for i, name in ipairs(names) do
    local folder, ferr
    if output then
      folder, ferr = input_folder(output, i)
      if not folder then
        err_out:write(("ocr: cannot create a staging folder in %s: %s\n"):format(o.output, ferr))
        close_output(output)
        client:close()
        return 2
      end
    end
    inputs[i] = make_input(name, input_opts, folder)
  end
  local bar = progress_reporter(o, #inputs, err_out)
  local results = client:recognize_all(inputs, { concurrency = o.jobs,
    on_result = function(i, res) bar.done(i, names[i], res ~= nil) end,
    on_progress = function(ev) bar.progress(ev.index, ev.stage == "processing" and ev.progress) end })
  bar.finish()
  pipeline_summary(o, results, err_out)

  -- Without -o the results are printed; with it they are saved, and stdout gets a summary.
  local status, failed = 0, 0
  if o.format == "tsv" and not output then out:write(TSV_HEADER) end
  for i, r in ipairs(results) do
    local name = names[i]
    if r.err then
      status, failed = 1, failed + 1
      err_out:write(("ocr: %s: %s\n"):format(name, tostring(r.err)))
    end
    local saved = {}
    if r.res and output then
      for _, f in ipairs(r.res.files) do
        if type(f.path) == "string" and output.staging and f.path:sub(1, #output.staging + 1) == output.staging .. "/" then
          local path, perr = place(output, f.path)
          if not path then
            status = 1
            err_out:write(("ocr: %s: cannot save %s in %s: %s\n"):format(name, files.basename(f.path), o.output, perr))
          end
          f.path = path
        end
        saved[#saved + 1] = f.path
      end
    end
    local rendered = render(o.format, name, r.res, r.err)
    if not output then
      if r.res and o.format == "text" and #inputs > 1 then out:write(("==> %s <==\n"):format(name)) end
      out:write(rendered)
    elseif r.res and #saved == 0 then
      local path, serr = save_rendered(output, o.format, inputs[i],
                                       o.format == "tsv" and TSV_HEADER .. rendered or rendered)
      if path then
        saved[1] = path
      else
        status = 1
        err_out:write(("ocr: %s: cannot save the result in %s: %s\n"):format(name, o.output, serr))
      end
    end
    for _, path in ipairs(saved) do err_out:write(("ocr: %s: saved %s\n"):format(name, path)) end
    if output then output.count = output.count + #saved end
  end
  if output then
    close_output(output)
    local function n(count, what) return ("%d %s%s"):format(count, what, count == 1 and "" or "s") end
    out:write(("%s: %d ok, %d failed; %s in %s\n"):format(n(#inputs, "input"), #inputs - failed, failed,
                                                          n(output.count, "file"), o.output))
  end
  client:close()
  return status
end

return M
