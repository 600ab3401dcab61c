--- The providers the benchmarks register: minimal vendors written with the public provider API
-- (ocr.register + ctx:request), talking to bench/fast_server.c. Each costs what a real provider
-- costs per request (input check, context, request building, the transfer, JSON decoding, a
-- result object) and nothing a real vendor would add (signing, big uploads), so the numbers are
-- the runtime's own overhead.
local ocr = require "ocr"

local M = {}

-- fast_server answers every request with the same JSON: {status, message, data = {task_id,
-- state, progress, text}}.
local function text_of(ctx, res)
  local data = res.json and res.json.data
  if type(data) ~= "table" or type(data.text) ~= "string" then
    return nil, ctx:error{ kind = "protocol", message = "answer has no data.text" }
  end
  return ocr.result.new{ text = data.text, raw = data }
end

--- The multipart form a picwish-style create sends: the image bytes and a format field. The C
-- baseline (bench/curl_loop.c --form) builds the very same parts.
local function form_of(input)
  return { { name = "image_file", data = input.data, filename = "page.png", content_type = "image/png" },
           { name = "format", value = "txt" } }
end
M.form_of = form_of

-- A provider whose job is one request (`request_of(input)` gives its fields), answered in JSON.
local function single(sources, options, request_of)
  return {
    credentials = {}, sources = sources, options = options,
    recognize = function(ctx, input)
      local req = request_of(input)
      req.decode = "json"
      local res, err = ctx:request(req)
      if not res then return nil, err end
      return text_of(ctx, res)
    end,
  }
end

function M.register()
  -- Benchmark 1: one GET per job, answered after `ms` milliseconds.
  ocr.register("bench_get", single({ "data" }, { ms = "integer" }, function(input)
    return { method = "GET", path = "/job", query = { ms = input.ms or 0 } }
  end))

  -- Benchmark 4: one multipart POST per job, the same bytes as curl_loop --form sends.
  ocr.register("bench_form", single({ "data" }, nil, function(input)
    return { method = "POST", path = "/recognize", form = form_of(input) }
  end))

  -- Benchmark 6 (c): one multipart POST whose image part is a file, streamed from disk.
  ocr.register("bench_upload", single({ "file" }, nil, function(input)
    return { method = "POST", path = "/recognize",
             form = { { name = "image_file", file = input.file, filename = "page.png", content_type = "image/png" },
                      { name = "format", value = "txt" } } }
  end))

  -- Benchmark 3: an async vendor's shape: a multipart create answered after create_ms, a wait
  -- of `interval` seconds (a scheduler timer), then a poll answered after poll_ms.
  ocr.register("bench_task", {
    credentials = {},
    sources = { "data" },
    options = { create_ms = "integer", poll_ms = "integer", interval = "number" },
    recognize = function(ctx, input)
      local res, err = ctx:request{ method = "POST", path = "/create",
                                    query = { ms = input.create_ms or 0 }, form = form_of(input),
                                    decode = "json" }
      if not res then return nil, err end
      ctx.task_id = res.json.data.task_id
      ctx:sleep(input.interval or 0)
      res, err = ctx:request{ method = "GET", path = "/task/" .. ctx.task_id,
                              query = { ms = input.poll_ms or 0 }, decode = "json" }
      if not res then return nil, err end
      return text_of(ctx, res)
    end,
  })
end

return M
