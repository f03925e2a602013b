-- Feathers over Socket.IO (spec/feathers.md §2, §3, §4): the layer between the Socket.IO
-- server of plume.socketio (below) and the application model (above). It installs the
-- socket middleware (disconnect wiring, connection object, handshake authentication, then
-- the app's own), per-method call handlers on every socket, the legacy "path::method"
-- handlers when enabled, and the dispatcher that sends published events to connections.
--
--   transport.setup(app, io, { legacy = false })
--   app:configure(transport.socketio(function(io) io:use(function(socket, next) ... end) end))
--
-- What it needs from io and socket: io:use(fn(socket, next)), io:on("connection",
-- fn(socket)); socket.handshake.headers, socket:on(event, fn(...)) with the client's ack
-- as a trailing function argument, socket:emit(event, ...), socket:disconnect(),
-- socket:on("disconnect", fn(reason)). Optional fast path: io:broadcast(sockets, event,
-- data) sends one event to several sockets, encoding it once.

local application = require "plume.application"
local errors = require "plume.errors"
local service_mod = require "plume.service"
local util = require "plume.util"


local type = type
local pairs = pairs
local ipairs = ipairs
local select = select
local xpcall = xpcall
local tostring = tostring
local setmetatable = setmetatable
local rawequal = rawequal
local math_huge = math.huge
local is_array = util.is_array
local is_null = util.is_null
local truthy = util.truthy
local json_null = util.null
local json_object = util.object
local log_failure = util.log_failure
local handler = errors.handler
local invoke = service_mod.invoke
local params_position = service_mod.params_position


local _M = {}


-- Longest string id accepted from a client.
_M.MAX_ID_LENGTH = 1024


local HAS_ID = { get = true, update = true, patch = true, remove = true }


-- Per app: transport state, and socketio(callback) callbacks waiting for setup.
local STATES = setmetatable({}, { __mode = "k" })
local PENDING = setmetatable({}, { __mode = "k" })


local function noop()
end


local function check_id(method, id)
  if id == nil or is_null(id) then
    return
  end

  local t = type(id)
  if t == "number" then
    if id == id and id ~= math_huge and id ~= -math_huge then
      return
    end
  elseif t == "string" then
    if #id <= _M.MAX_ID_LENGTH then
      return
    end
  end

  error(errors.BadRequest("Invalid id for '" .. method .. "' method"))
end


-- Steps 2-8 of §3.3; returns what the acknowledgement carries.
local function call(app, connection, path, method, args, first, last, legacy)
  if type(path) ~= "string" then
    path = nil
  end

  local service, route
  if path ~= nil then
    service, route = app:lookup(path)
  end

  if service == nil then
    error(errors.NotFound(path == nil and "Invalid service path"
                          or "Service '" .. path .. "' not found"))
  end

  local state = service_mod.state(service)
  if not state.options.methods_set[method] then
    error(errors.MethodNotAllowed("Method '" .. method .. "' not allowed on service '"
                                  .. path .. "'"))
  end

  local position = params_position(method)
  local raw_query = args[first + position]
  local query = json_object({})
  if type(raw_query) == "table" and not is_array(raw_query) then
    for k, v in pairs(raw_query) do
      query[k] = v
    end
  end

  if not legacy and last - first + 1 > position + 1 then
    error(errors.BadRequest("Too many arguments for '" .. method .. "' method"))
  end

  local params = { query = query, route = route, connection = connection }
  if connection then
    for k, v in pairs(connection) do
      params[k] = v
    end
  end

  local ctx
  if method == "find" then
    ctx = invoke(service, method, nil, nil, params)
  elseif HAS_ID[method] then
    local id = args[first]
    check_id(method, id)
    if position == 2 then
      ctx = invoke(service, method, id, args[first + 1], params)
    else
      ctx = invoke(service, method, id, nil, params)
    end
  else
    ctx = invoke(service, method, nil, args[first], params)
  end

  local dispatch = ctx.dispatch
  if truthy(dispatch) then
    return dispatch
  end

  return ctx.result
end


local function log_error(app, method, path, err)
  if not errors.is_plain(err) then
    return
  end

  local log = app.log
  if log then
    log("error", "Error in method '" .. tostring(method) .. "' on service '"
        .. tostring(path) .. "': " .. tostring(err.stack or err.message))
  end
end


-- Runs one call from a client (§3.3) and acknowledges it (§3.2). args[first..last] are
-- the method arguments after the path; ack may be nil. legacy: the "path::method" form.
function _M.run_method(app, connection, path, method, args, first, last, ack, legacy)
  ack = ack or noop

  local ok, result = xpcall(call, handler, app, connection, path, method, args, first, last,
                            legacy)
  if ok then
    if result == nil then
      result = json_null
    end

    local sent, err = xpcall(ack, handler, json_null, result)
    if sent then
      return
    end

    -- The result could not be sent (e.g. not serialisable): the client gets an error.
    log_failure(app, "Could not acknowledge method '" .. tostring(method)
                .. "' on service '" .. tostring(path) .. "'", err)
    return ack(errors.GeneralError("result is not serializable"):toJSON())
  end

  log_error(app, method, path, result)

  return ack(errors.to_wire(result, application.is_production(app)))
end


local function method_handler(state, socket, method)
  local app = state.app
  return function(...)
    local n = select("#", ...)
    local args = { ... }
    local ack
    if n > 1 and type(args[n]) == "function" then
      ack = args[n]
      args[n] = nil
      n = n - 1
    end

    return _M.run_method(app, socket.feathers, args[1], method, args, 2, n, ack, false)
  end
end


local function legacy_handler(state, socket, path, method)
  local app = state.app
  return function(...)
    local n = select("#", ...)
    local args = { ... }
    local ack
    if n > 0 and type(args[n]) == "function" then
      ack = args[n]
      args[n] = nil
      n = n - 1
    end

    return _M.run_method(app, socket.feathers, path, method, args, 1, n, ack, true)
  end
end


local function add_handlers(state, socket, handled)
  for _, method in ipairs(application.methods_union(state.app)) do
    if not handled[method] then
      handled[method] = true
      socket:on(method, method_handler(state, socket, method))
    end
  end

  if not state.legacy then
    return
  end

  local app = state.app
  for _, path in ipairs(application.paths(app)) do
    local service = app.services[path]
    for _, method in ipairs(service_mod.STANDARD_METHODS) do
      local event = path .. "::" .. method
      if not handled[event] and type(service[method]) == "function" then
        handled[event] = true
        socket:on(event, legacy_handler(state, socket, path, method))
      end
    end
  end
end


-- Sends an event to the sockets of connections (grouped when io:broadcast exists).
-- Sends an event to sockets: once through io:broadcast when it exists, else socket by
-- socket. A failure (an unserialisable payload) is logged; the other sends go on.
local function send(state, sockets, event, payload)
  local io = state.io
  if #sockets > 1 and type(io.broadcast) == "function" then
    local ok, err = xpcall(io.broadcast, handler, io, sockets, event, payload)
    if not ok then
      log_failure(state.app, "Could not send event '" .. event .. "'", err)
    end

    return
  end

  for i = 1, #sockets do
    local socket = sockets[i]
    local ok, err = xpcall(socket.emit, handler, socket, event, payload)
    if not ok then
      log_failure(state.app, "Could not send event '" .. event .. "'", err)
    end
  end
end


local function index_of(list, value)
  for i = 1, #list do
    if rawequal(list[i], value) then
      return i
    end
  end
end


-- The app "publish" listener (§4.3 step 4): payload per connection, one event name.
local function dispatcher(state)
  return function(event, channel, ctx, data)
    local sockets = state.sockets
    local path = ctx.path
    local name = (path ~= nil and path ~= "") and (path .. " " .. event) or tostring(event)
    local result = ctx.result
    local per_item = not is_array(data) and is_array(result)
    local default = truthy(ctx.dispatch) and ctx.dispatch or result
    local index

    local groups = {}
    local order = {}
    local connections = channel.connections
    for i = 1, #connections do
      local connection = connections[i]
      local socket = sockets[connection]
      if socket then
        local payload = channel:data_for(connection)
        if not truthy(payload) then
          payload = default
        end

        if per_item and is_array(payload) then
          if index == nil then
            index = index_of(result, data) or false
          end

          payload = index and payload[index] or nil
        end

        if payload == nil then
          payload = json_null
        end

        local group = groups[payload]
        if not group then
          group = {}
          groups[payload] = group
          order[#order + 1] = payload
        end

        group[#group + 1] = socket
      end
    end

    for i = 1, #order do
      send(state, groups[order[i]], name, order[i])
    end
  end
end


local function forget(state, socket)
  state.live[socket] = nil
  local connection = socket.feathers
  if connection ~= nil and state.sockets[connection] == socket then
    state.sockets[connection] = nil
  end
end


-- Feathers' socket middleware 1: the app hears about disconnects, and an app
-- "disconnect" of a connection disconnects its socket.
local function disconnect_middleware(state)
  local app = state.app
  return function(socket, next_fn)
    socket:on("disconnect", function()
      if state.gone[socket] then
        forget(state, socket)
        return
      end

      state.gone[socket] = true
      app:emit("disconnect", socket.feathers)
      forget(state, socket)
    end)

    return next_fn()
  end
end


-- Middleware 2: the connection object.
local function params_middleware(state)
  return function(socket, next_fn)
    local handshake = socket.handshake or {}
    local connection = {
      provider = "socketio",
      headers = handshake.headers or json_object({}),
    }

    socket.feathers = connection
    state.sockets[connection] = socket

    return next_fn()
  end
end


-- Middleware 3: handshake authentication, when the app provides
-- app.handshake_authentication(app, socket) (set by the authentication module); an error
-- it raises refuses the connection.
local function authentication_middleware(state)
  local app = state.app
  return function(socket, next_fn)
    local authenticate = app.handshake_authentication
    if type(authenticate) ~= "function" then
      return next_fn()
    end

    local ok, err = xpcall(authenticate, handler, app, socket)
    if not ok then
      return next_fn(err)
    end

    return next_fn()
  end
end


local function on_connection(state)
  local app = state.app
  return function(socket)
    if socket.feathers == nil then
      params_middleware(state)(socket, noop)
    end

    -- Handlers first: a "connection" listener may wait, and calls must not be lost then.
    local handled = {}
    state.live[socket] = handled
    add_handlers(state, socket, handled)
    app:emit("connection", socket.feathers)
  end
end


-- Installs the transport on app for the Socket.IO server io (the main namespace).
function _M.setup(app, io, options)
  options = options or {}
  if STATES[app] then
    return STATES[app]
  end

  local legacy = options.legacy
  if legacy == nil then
    legacy = app:get("legacy_socket_calls") == true
  end

  local state = {
    app = app,
    io = io,
    legacy = legacy,
    sockets = setmetatable({}, { __mode = "k" }),   -- connection -> socket
    live = setmetatable({}, { __mode = "k" }),      -- socket -> handled event names
    gone = setmetatable({}, { __mode = "k" }),      -- sockets that disconnected
  }
  STATES[app] = state
  app.io = io

  app:on("publish", dispatcher(state))
  app:on("disconnect", function(connection)
    if connection == nil then
      return
    end

    application.leave_channels(app, connection)

    local socket = state.sockets[connection]
    if socket and not state.gone[socket] then
      state.gone[socket] = true
      socket:disconnect()
    end
  end)
  app:on("logout", function(_, params)
    local connection = type(params) == "table" and params.connection
    if connection then
      application.leave_channels(app, connection)
    end
  end)

  application.on_use(app, function()
    for socket, handled in pairs(state.live) do
      add_handlers(state, socket, handled)
    end
  end)

  io:use(disconnect_middleware(state))
  io:use(params_middleware(state))
  io:use(authentication_middleware(state))

  local pending = PENDING[app]
  PENDING[app] = nil
  if pending then
    for _, callback in ipairs(pending) do
      callback(io)
    end
  end

  io:on("connection", on_connection(state))

  return state
end


-- Feathers' socketio([port,] [options,] [callback]): a configure function that calls
-- callback(io) once the transport is set up (at once if it already is). options (with
-- `port` when given) go to the app setting "socketio" for the server to read.
function _M.socketio(...)
  local port, options, callback
  local args = table.pack(...)
  local i = 1
  if type(args[i]) == "number" then
    port = args[i]
    i = i + 1
  end

  if type(args[i]) == "table" then
    options = args[i]
    i = i + 1
  end

  if type(args[i]) == "function" then
    callback = args[i]
  end

  if port ~= nil then
    local copy = {}
    for k, v in pairs(options or {}) do
      copy[k] = v
    end

    copy.port = port
    options = copy
  end

  return function(app)
    if options ~= nil then
      app:set("socketio", options)
    end

    if callback == nil then
      return
    end

    local state = STATES[app]
    if state then
      callback(state.io)
      return
    end

    local pending = PENDING[app]
    if not pending then
      pending = {}
      PENDING[app] = pending
    end

    pending[#pending + 1] = callback
  end
end


-- The socket of a connection object (nil once disconnected).
function _M.socket_of(app, connection)
  local state = STATES[app]
  return state and state.sockets[connection]
end


-- Emits a raw Socket.IO event to the socket of connection; false when it has none.
function _M.dispatch(app, connection, event, ...)
  local socket = _M.socket_of(app, connection)
  if not socket then
    return false
  end

  socket:emit(event, ...)
  return true
end


return _M
