-- plume.cservice: the Lua side of the C embedding API (runtime/plume.h). A service whose
-- methods are C callbacks (plume_use_service) becomes a Feathers service like any other:
-- app:use registers it, so app hooks, service hooks, events, channels and the Socket.IO
-- transport treat it as they treat a Lua service. Each method encodes its arguments as
-- JSON, calls C through core.cservice_call and, when C answers later, waits in its task
-- (the loop goes on serving others). plume_service_emit and plume_io_emit land here too.
-- Used by runtime/embed.c only; apps never require it.

local core = require "plume.core"
local errors = require "plume.errors"
local json = require "plume.json"
local service_mod = require "plume.service"


local type = type
local pcall = pcall
local ipairs = ipairs
local tostring = tostring
local unpack = table.unpack
local encode = json.encode
local decode = json.decode
local cservice_call = core.cservice_call


local _M = {}


-- The members of params a C method gets, as one JSON object (anything else, such as the
-- connection object, stays in Lua).
local PARAMS = { "query", "route", "provider", "user", "authentication" }


local function app_of()
  local plume = package.loaded["plume"]
  return type(plume) == "table" and rawget(plume, "app") or nil
end


-- JSON text of a value for C, or nil when absent.
local function to_json(v)
  if v == nil then
    return nil
  end

  return encode(v)
end


-- JSON text of the serialisable part of params (members that do not encode are left out).
local function params_json(params)
  local out = json.object()
  if type(params) == "table" then
    for _, k in ipairs(PARAMS) do
      local v = params[k]
      if v ~= nil and pcall(encode, v) then
        out[k] = v
      end
    end
  end

  if out.query == nil then
    out.query = json.object()
  end

  return encode(out)
end


-- The value of an answer: (true, json) returns the decoded result, (false, code,
-- message, data_json) raises the Feathers error of that code (GeneralError for codes
-- Feathers has no class for).
local function result(ok, a, message, data)
  if ok then
    if a == nil then
      return nil
    end

    local value, err = decode(a)
    if value == nil and err ~= nil then
      error(errors.GeneralError("the C service answered invalid JSON: " .. tostring(err)))
    end

    return value
  end

  local cls = errors[a] or errors.GeneralError
  local payload
  if data ~= nil then
    payload = decode(data)
  end

  error(cls(message, payload))
end


-- One Lua method calling C method number index of handle, with the method's signature.
local function method(handle, index, name)
  local signature = service_mod.SIGNATURES[name] or { "data", "params" }
  local n = #signature
  if n == 1 then
    return function(_, params)
      return result(cservice_call(handle, index, nil, nil, params_json(params)))
    end
  end

  if n == 3 then
    return function(_, id, data, params)
      return result(cservice_call(handle, index, to_json(id), to_json(data),
                                  params_json(params)))
    end
  end

  if signature[1] == "id" then
    return function(_, id, params)
      return result(cservice_call(handle, index, to_json(id), nil, params_json(params)))
    end
  end

  return function(_, data, params)
    return result(cservice_call(handle, index, nil, to_json(data), params_json(params)))
  end
end


-- Serves Feathers over Socket.IO when the app does not yet (an app whose only services
-- are written in C), unless it opted out with app:set("socketio", false).
local function ensure_transport(app)
  local options = app:get("socketio")
  if app.io ~= nil or options == false then
    return
  end

  local socketio = require "plume.socketio"
  local transport = require "plume.transport"
  local io = socketio.attach(app, type(options) == "table" and options or {})
  app.io = io
  transport.setup(app, io)
end


-- Registers the C service handle at path: names lists its methods (index order of the C
-- table), events its custom events. Returns true, or false, "state" when no app is
-- loaded. Raises when app:use refuses the service (a reserved method name).
function _M.use(path, handle, names, events)
  local app = app_of()
  if app == nil then
    return false, "state"
  end

  local service = {}
  for i, name in ipairs(names) do
    service[name] = method(handle, i, name)
  end

  app:use(path, service, { methods = names, events = events })
  ensure_transport(app)
  return true
end


-- nil when plume_service_emit may go ahead, or why not: "state" (no app), "service"
-- (no service at path), "event" (not an event the service publishes).
function _M.check_emit(path, event)
  local app = app_of()
  if app == nil then
    return "state"
  end

  local wrapper = app:service(path)
  if wrapper == nil then
    return "service"
  end

  local state = service_mod.state(wrapper)
  if not state.options.service_events_set[event] then
    return "event"
  end

  return nil
end


-- Emits event with the value of the JSON text on the service at path; its publishers
-- send it to their channels (runs in a task of its own).
function _M.emit(path, event, text)
  local app = app_of()
  local wrapper = app and app:service(path)
  if wrapper == nil then
    return
  end

  wrapper:emit(event, assert(decode(text)))
end


-- nil when plume_io_emit may go ahead, or why not: "state" (no Socket.IO server),
-- "event" (a reserved event name).
function _M.check_io(event)
  local app = app_of()
  if app == nil or type(app.io) ~= "table" then
    return "state"
  end

  if require("plume.socketio").RESERVED_EVENTS[event] then
    return "event"
  end

  return nil
end


-- Emits event with the arguments of the JSON array text to namespace nsp, to everyone or
-- to room (runs in a task of its own).
function _M.io_emit(nsp, room, event, text)
  local app = app_of()
  local io = app and app.io
  if type(io) ~= "table" then
    return
  end

  local target = io:of(nsp or "/")
  if room ~= nil then
    target = target:to(room)
  end

  local args = text ~= nil and assert(decode(text)) or {}
  target:emit(event, unpack(args, 1, #args))
end


return _M
