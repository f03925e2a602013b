-- plume.engineio: a bare Engine.IO server at a path, for apps that want the transport
-- without Socket.IO. The C core owns the protocol; this module only routes its callbacks
-- to listeners:
--   local server = engineio.attach(app, "/engine.io/", { pingInterval = 300, cors = { origin = "*" } })
--   server:on("connection", function(socket) socket:on("message", function(data) socket:send(data) end) end)
-- data is a string for text messages and a plume.binary for binary ones.
local core = require "plume.core"


local _M = {}


local function add_listener(self, event, fn)
  assert(type(fn) == "function", "listener must be a function")
  local list = self._listeners[event]
  if not list then
    list = {}
    self._listeners[event] = list
  end
  list[#list + 1] = fn
  return self
end


local function emit(self, event, ...)
  local list = self._listeners[event]
  if not list then
    return false
  end
  for i = 1, #list do
    list[i](...)
  end
  return true
end


local Socket = {}
Socket.__index = Socket
Socket.on = add_listener


function Socket:send(data, binary)
  return self._session:send(data, binary)
end


function Socket:close()
  self._session:close()
end


local Server = {}
Server.__index = Server
Server.on = add_listener


-- Attaches a server at path (the app argument is accepted for symmetry with Feathers'
-- configure functions; the runtime owns the listeners). Options use the Engine.IO names.
function _M.attach(app, path, opts)
  if type(app) == "string" then
    app, path, opts = nil, app, path
  end
  opts = opts or {}
  local options = {}
  for k, v in pairs(opts) do
    options[k] = v
  end
  options.path = path or opts.path or "/engine.io/"
  local server = setmetatable({ _listeners = {}, clients = {}, app = app }, Server)
  local sockets = server.clients
  core.eio_attach(options, {
    open = function(session)
      local info = session:info()
      local socket = setmetatable({
        _listeners = {},
        _session = session,
        id = info.id,
        protocol = info.protocol,
        transport = info.transport,
        remote_address = info.remote_address,
        url = info.url,
      }, Socket)
      sockets[session] = socket
      emit(server, "connection", socket)
    end,
    message = function(session, data)
      local socket = sockets[session]
      if socket then
        emit(socket, "message", data)
      end
    end,
    close = function(session, reason)
      local socket = sockets[session]
      if socket then
        sockets[session] = nil
        emit(socket, "close", reason)
      end
    end,
  })
  return server
end


return _M
