--- lua-ocr: one API over cloud OCR vendors.
--
--   local ocr = require "ocr"
--   local client = ocr.new(provider, { api_key = "..." })   -- see ocr.providers()
--   local res, err = client:recognize{ file = "scan.png" }
--
-- See README.md for the full reference: options, the result and error models, providers, and
-- how to write your own provider with `ocr.register`.
local registry = require "ocr.registry"
local client = require "ocr.client"
local errors = require "ocr.errors"
local result = require "ocr.result"
local runtime = require "ocr.runtime"
local core = require "ocr.core"
local scheduler = require "ocr.scheduler"

local ocr = {
  _VERSION = "lua-ocr " .. core._VERSION,
  errors = errors,
  result = result,
  runtime = runtime,
  KINDS = errors.KINDS,
  -- What a provider's workflow uses besides its ctx (README: Write a provider).
  files = require "ocr.files",
  strings = require "ocr.strings",
  url = require "ocr.url",
  -- Key-value stores with TTLs for ocr.cache: ocr.store.memory{max_items=}, ocr.store.dir(path).
  store = require "ocr.store",
}

--- A client that answers from `opts.store` what `inner` (a client, or any object with the
-- client API) already recognised, and resumes the vendor tasks a killed run left pending.
-- See README "Cache and resume".
function ocr.cache(inner, opts)
  return require("ocr.cache").new(inner, opts)
end

--- Creates a client for provider `name`. Raises on programmer mistakes (unknown provider, a
-- missing credential, an option of the wrong type or an unknown option).
function ocr.new(name, opts)
  if type(name) ~= "string" then error("ocr.new: provider name expected", 2) end
  local def = registry.get(name)
  if not def then
    error(("ocr.new: unknown provider %q (known: %s)"):format(name, table.concat(registry.names(), ", ")), 2)
  end
  return client.new(name, def, opts)
end

--- Adds (or replaces) a provider; see README "Write a provider".
function ocr.register(name, definition)
  return registry.register(name, definition)
end

--- The names of all providers, built-in and registered.
function ocr.providers()
  return registry.names()
end

--- Constructs an ocr.error (for providers and transports of your own).
function ocr.error(fields)
  return errors.new(fields)
end

function ocr.is_error(v)
  return errors.is_error(v)
end

--- Pipelines: objects with the client API made of clients (and of pipelines); see README
-- "Pipelines". Each raises on a programmer mistake (no member, a member that is not a client,
-- an unknown option).
local pipeline = require "ocr.pipeline"

--- `ocr.fallback{c1, c2, ..., on = {kinds...}}`: the next member after an error it may not have.
ocr.fallback = pipeline.fallback

--- `ocr.race{c1, c2, ..., hedge_after = s}`: the first success of hedged members wins.
ocr.race = pipeline.race

--- `ocr.cascade{c1, c2, ..., accept = fn(res)}`: escalates until a result is accepted.
ocr.cascade = pipeline.cascade

--- Advances every job (client:submit) without blocking longer than `timeout` seconds (default
-- 0: never blocks; call it once per frame in a game loop). Returns the number of jobs in flight.
function ocr.step(timeout)
  if timeout ~= nil and type(timeout) ~= "number" then
    error("ocr.step: timeout must be a number of seconds, got " .. type(timeout), 2)
  end
  return scheduler.step(timeout)
end

--- Sets how many seconds of job resumptions one step may spend (default 0.0005) before leaving
-- the remaining ready jobs for the next step; returns the previous value.
function ocr.step_budget(seconds)
  assert(type(seconds) == "number" and seconds > 0, "ocr.step_budget: seconds > 0 expected")
  local old = scheduler.budget
  scheduler.budget = seconds
  return old
end

--- Steps until no job is in flight.
function ocr.run()
  return scheduler.run()
end

--- The number of jobs in flight.
function ocr.in_flight()
  return scheduler.in_flight()
end

return ocr
