-- plume.socketio: the Socket.IO server API (the socket.io npm package's, v4, in Lua
-- idiom) over the C server of runtime/socketio.c. C owns every byte, connection, room
-- and broadcast; this module owns namespaces (static, Lua-pattern and function
-- parents), middlewares, listeners and acks as Lua values (spec/protocol.md §3-§7).
--
--   local io = require("plume.socketio").attach(app, { cors = { origin = "*" } })
--   io:use(function(socket, next) next() end)
--   io:on("connection", function(socket)
--     socket:on("hello", function(name, ack) ack("hi " .. name) end)
--     socket:join("room1")
--     io:to("room1"):emit("news", { a = 1 })
--     local err, answer = socket:timeout(500):emitWithAck("question", 1)
--   end)
--
-- Every handler runs in a task of its own, so it may wait (emitWithAck, plume.sleep).
-- A client's ack arrives as the last argument (a function); a handler's return values
-- become the ack when it did not call the ack itself.

local core = require "plume.core"
local json = require "plume.json"


local type = type
local error = error
local next = next
local pairs = pairs
local ipairs = ipairs
local select = select
local xpcall = xpcall
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local pack = table.pack
local unpack = table.unpack
local insert = table.insert
local remove = table.remove
local traceback = debug.traceback
local sio = {
  attach = core.sio_attach,
  namespace = core.sio_namespace,
  namespace_free = core.sio_namespace_free,
  set = core.sio_set,
  close = core.sio_close,
  count = core.sio_count,
  client_info = core.sio_client_info,
  client_close = core.sio_client_close,
  handshake = core.sio_handshake,
  bind = core.sio_bind,
  accept = core.sio_accept,
  refuse = core.sio_refuse,
  emit = core.sio_emit,
  emit_ack = core.sio_emit_ack,
  emit_wait = core.sio_emit_wait,
  ack = core.sio_ack,
  later = core.sio_later,
  join = core.sio_join,
  leave = core.sio_leave,
  disconnect = core.sio_disconnect,
  broadcast = core.sio_broadcast,
  broadcast_ack = core.sio_broadcast_ack,
  send_many = core.sio_send_many,
  select = core.sio_select,
}


local _M = {}


-- Events a server may not emit and a client may not send (socket.io's reserved names).
_M.RESERVED_EVENTS = {
  connect = true,
  connect_error = true,
  disconnect = true,
  disconnecting = true,
  newListener = true,
  removeListener = true,
}

local RESERVED = _M.RESERVED_EVENTS

-- The servers attached per app, by path: attaching again returns the same one.
local ATTACHED = setmetatable({}, { __mode = "k" })

-- Where the socket.io-client bundle is looked for (serveClient), after the app folder
-- and its parents' node_modules and the repository's tests/node_modules.
_M.CLIENT_DIRS = {
  "/usr/share/nodejs/socket.io-client/dist",
  "/usr/lib/node_modules/socket.io-client/dist",
}


local function log(level, msg)
  core.log(level, "socketio", msg)
end


-- Message handler for listener calls: a traceback for strings, the message of error
-- objects (Feathers errors and the like).
local function handler(err)
  if type(err) == "table" then
    local msg = err.message
    return tostring(msg ~= nil and msg or err)
  end
  return traceback(tostring(err), 2)
end


-- Message handler for middlewares and matchers: error objects stay as they are (a
-- refusal carries their message and data), other errors get a traceback.
local function keep(err)
  if type(err) == "table" then
    return err
  end
  return traceback(tostring(err), 2)
end


-- Calls fn(...) protected; a raised error is logged with what. Returns the results
-- packed (r[1] is the success flag).
local function call(what, fn, ...)
  local r = pack(xpcall(fn, handler, ...))
  if not r[1] then
    log("error", what .. ": " .. tostring(r[2]))
  end
  return r
end


local function check_event(event)
  local t = type(event)
  if t ~= "string" and t ~= "number" then
    error("event name must be a string or a number, got " .. t, 3)
  end
  if RESERVED[event] then
    error('"' .. event .. '" is a reserved event name', 3)
  end
end


-- The parts of a middleware error as CONNECT_ERROR sends them: message and data.
local function error_parts(err)
  if type(err) == "table" then
    local msg = err.message
    if msg == nil then
      msg = "Error"
    end
    local data = err.data
    if data == json.null then
      data = nil
    end
    return tostring(msg), data
  end
  return tostring(err), nil
end


local function as_list(v)
  if type(v) == "table" and getmetatable(v) ~= json.object_mt then
    return v
  end
  return { v }
end


local function copy(t)
  local c = {}
  if t then
    for i = 1, #t do
      c[i] = t[i]
    end
  end
  return c
end


-- ------------------------------------------------------------------------------------
-- Listeners (the EventEmitter part of sockets, namespaces and the server)


local Emitter = {}


local function add(self, event, fn, once, first)
  if type(fn) ~= "function" then
    error("listener must be a function", 3)
  end
  local events = self._events
  local list = events[event]
  if not list then
    list = {}
    events[event] = list
  end
  local entry = { fn = fn, once = once }
  if first then
    insert(list, 1, entry)
  else
    list[#list + 1] = entry
  end
  return self
end


function Emitter:on(event, fn)
  return add(self, event, fn, false)
end


function Emitter:once(event, fn)
  return add(self, event, fn, true)
end


function Emitter:prependListener(event, fn)
  return add(self, event, fn, false, true)
end


-- off(event, fn) removes fn; off(event) every listener of event.
function Emitter:off(event, fn)
  local list = self._events[event]
  if not list then
    return self
  end
  if fn == nil then
    self._events[event] = nil
    return self
  end
  for i = #list, 1, -1 do
    if list[i].fn == fn then
      remove(list, i)
      break
    end
  end
  if #list == 0 then
    self._events[event] = nil
  end
  return self
end


function Emitter:removeAllListeners(event)
  if event == nil then
    self._events = {}
  else
    self._events[event] = nil
  end
  return self
end


function Emitter:listeners(event)
  local out = {}
  for i, entry in ipairs(self._events[event] or {}) do
    out[i] = entry.fn
  end
  return out
end


function Emitter:listenerCount(event)
  local list = self._events[event]
  return list and #list or 0
end


function Emitter:eventNames()
  local out = {}
  for event in pairs(self._events) do
    out[#out + 1] = event
  end
  return out
end


Emitter.addListener = Emitter.on
Emitter.removeListener = Emitter.off


-- The listeners of event as they are now (listeners may come and go while they run);
-- once-listeners are removed.
local function snapshot(self, event)
  local list = self._events[event]
  if not list then
    return nil
  end
  local n = #list
  if n == 1 and not list[1].once then
    return list -- callers read list[1] only: no copy needed
  end
  local out = {}
  local once = false
  for i = 1, n do
    out[i] = list[i]
    once = once or list[i].once
  end
  if once then
    for i = n, 1, -1 do
      if list[i].once then
        remove(list, i)
      end
    end
    if #list == 0 then
      self._events[event] = nil
    end
  end
  return out
end


-- Calls every listener of event with the arguments; errors are logged.
local function fire(self, event, ...)
  local list = snapshot(self, event)
  if not list then
    return false
  end
  for i = 1, #list do
    call("'" .. tostring(event) .. "' listener", list[i].fn, ...)
  end
  return true
end


local function mixin(class)
  for k, v in pairs(Emitter) do
    class[k] = v
  end
  class.__index = class
  return class
end


-- ------------------------------------------------------------------------------------
-- Broadcast operators: rooms, except rooms and flags, then emit (encoded once in C)


local Operator = {}
Operator.__index = Operator


local function operator(target, rooms, except, flags)
  return setmetatable({
    _target = target,
    _rooms = rooms,
    _except = except,
    _flags = flags or {},
  }, Operator)
end


local function with_flag(self, k, v)
  local flags = {}
  for name, value in pairs(self._flags) do
    flags[name] = value
  end
  flags[k] = v
  return operator(self._target, self._rooms, self._except, flags)
end


-- to(room) / to({room, ...}): the event goes to sockets in any of the rooms.
function Operator:to(room)
  local rooms = copy(self._rooms)
  for _, r in ipairs(as_list(room)) do
    rooms[#rooms + 1] = tostring(r)
  end
  return operator(self._target, rooms, self._except, self._flags)
end


Operator.in_ = Operator.to
Operator["in"] = Operator.to


-- except(room): no socket in room gets the event.
function Operator:except(room)
  local except = copy(self._except)
  for _, r in ipairs(as_list(room)) do
    except[#except + 1] = tostring(r)
  end
  return operator(self._target, self._rooms, except, self._flags)
end


-- timeout(ms): the event asks every recipient for an ack, the callback gets (err,
-- responses) once all answered or when ms passed ("operation has timed out").
function Operator:timeout(ms)
  return with_flag(self, "timeout", ms)
end


-- volatile(): may be dropped when a client cannot take it now. Plume queues nothing
-- without bound anyway (slow clients are dropped at the output cap), so it is sent.
function Operator:volatile()
  return with_flag(self, "volatile", true)
end


-- compress(v): Plume does not compress messages (no permessage-deflate); accepted.
function Operator:compress(v)
  return with_flag(self, "compress", v ~= false)
end


-- local_(): this node only; Plume is one node.
function Operator:local_()
  return with_flag(self, "local", true)
end


-- The namespaces an operator reaches: one, or every child of a dynamic parent.
local function targets(self)
  local target = self._target
  if target._children then
    local out = {}
    for child in pairs(target._children) do
      out[#out + 1] = child
    end
    return out
  end
  return { target }
end


local function rooms_arg(list)
  if list and #list > 0 then
    return list
  end
  return nil
end


function Operator:emit(event, ...)
  check_event(event)
  local n = select("#", ...)
  local fn = n > 0 and select(n, ...)
  local rooms, except = rooms_arg(self._rooms), rooms_arg(self._except)
  if type(fn) == "function" then
    local timeout = self._flags.timeout
    if timeout == nil then
      error("callbacks are not supported when broadcasting without a timeout", 2)
    end
    local args = pack(...)
    local list = targets(self)
    if #list == 1 then
      sio.broadcast_ack(list[1]._nsp, rooms, except, timeout, fn, event,
                        unpack(args, 1, n - 1))
      return true
    end
    -- several namespaces: one answer made of every namespace's responses
    local pending, all, failure = #list, json.array(), nil
    local function done(err, responses)
      failure = failure or err
      for _, r in ipairs(responses or {}) do
        all[#all + 1] = r
      end
      pending = pending - 1
      if pending == 0 then
        fn(failure, all)
      end
    end
    if pending == 0 then
      sio.later(self._target._server._srv, function()
        fn(nil, json.array())
      end)
      return true
    end
    for _, nsp in ipairs(list) do
      sio.broadcast_ack(nsp._nsp, rooms, except, timeout, done, event,
                        unpack(args, 1, n - 1))
    end
    return true
  end
  for _, nsp in ipairs(targets(self)) do
    sio.broadcast(nsp._nsp, rooms, except, event, ...)
  end
  return true
end


-- emitWithAck(event, ...) -> err, responses: waits (inside a task) for every recipient's
-- answer; needs timeout(ms).
function Operator:emitWithAck(event, ...)
  check_event(event)
  local timeout = self._flags.timeout
  if timeout == nil then
    error("emitWithAck on a broadcast needs timeout(ms)", 2)
  end
  local list = targets(self)
  if #list ~= 1 then
    error("emitWithAck on a dynamic parent namespace: emit with a callback instead", 2)
  end
  return sio.broadcast_ack(list[1]._nsp, rooms_arg(self._rooms), rooms_arg(self._except),
                           timeout, nil, event, ...)
end


function Operator:send(...)
  return self:emit("message", ...)
end


Operator.write = Operator.send


-- The connected sockets this operator reaches (socket.io's fetchSockets, at once).
function Operator:fetchSockets()
  local out = {}
  for _, nsp in ipairs(targets(self)) do
    for _, socket in ipairs(sio.select(nsp._nsp, rooms_arg(self._rooms),
                                       rooms_arg(self._except))) do
      out[#out + 1] = socket
    end
  end
  return out
end


function Operator:socketsJoin(room)
  for _, socket in ipairs(self:fetchSockets()) do
    socket:join(room)
  end
end


function Operator:socketsLeave(room)
  for _, socket in ipairs(self:fetchSockets()) do
    socket:leave(room)
  end
end


function Operator:disconnectSockets(close)
  for _, socket in ipairs(self:fetchSockets()) do
    socket:disconnect(close)
  end
end


-- allSockets() -> set of socket ids.
function Operator:allSockets()
  local ids = {}
  for _, socket in ipairs(self:fetchSockets()) do
    ids[socket.id] = true
  end
  return ids
end


-- ------------------------------------------------------------------------------------
-- Sockets


local Socket = mixin({})
local Emit = {}
Emit.__index = Emit


-- Sends event to one socket; a trailing function asks for an ack (with timeout it is
-- called as fn(err, ...), err nil or "operation has timed out" / "disconnected").
local function emit_one(socket, timeout, event, ...)
  check_event(event)
  local box = socket._box
  local n = select("#", ...)
  local fn = n > 0 and select(n, ...)
  if type(fn) ~= "function" then
    return sio.emit(box, event, ...) ~= nil
  end
  local args = pack(...)
  if timeout == nil then
    return sio.emit_ack(box, fn, nil, false, event, unpack(args, 1, n - 1)) ~= nil
  end
  if sio.emit_ack(box, fn, timeout, true, event, unpack(args, 1, n - 1)) == nil then
    sio.later(socket.server._srv, fn, "disconnected")
    return false
  end
  return true
end


local function emitter(socket, flags)
  return setmetatable({ _socket = socket, _flags = flags }, Emit)
end


local function emit_flag(self, k, v)
  local flags = {}
  for name, value in pairs(self._flags) do
    flags[name] = value
  end
  flags[k] = v
  return emitter(self._socket, flags)
end


function Emit:emit(event, ...)
  return emit_one(self._socket, self._flags.timeout, event, ...)
end


function Emit:emitWithAck(event, ...)
  check_event(event)
  return sio.emit_wait(self._socket._box, self._flags.timeout, event, ...)
end


function Emit:send(...)
  return self:emit("message", ...)
end


function Emit:timeout(ms)
  return emit_flag(self, "timeout", ms)
end


function Emit:volatile()
  return emit_flag(self, "volatile", true)
end


function Emit:compress(v)
  return emit_flag(self, "compress", v ~= false)
end


-- emit(event, ...): to this socket's client; a trailing function gets the client's
-- ack (as fn(...), or fn(err, ...) after timeout(ms)). Returns false once closed.
function Socket:emit(event, ...)
  return emit_one(self, nil, event, ...)
end


-- emitWithAck(event, ...) -> err, ...: waits in the calling task for the client's
-- answer; err is nil, "operation has timed out" (after timeout(ms)) or "disconnected".
function Socket:emitWithAck(event, ...)
  check_event(event)
  return sio.emit_wait(self._box, nil, event, ...)
end


function Socket:send(...)
  return emit_one(self, nil, "message", ...)
end


Socket.write = Socket.send


function Socket:timeout(ms)
  return emitter(self, { timeout = ms })
end


function Socket:volatile()
  return emitter(self, { volatile = true })
end


function Socket:compress(v)
  return emitter(self, { compress = v ~= false })
end


function Socket:local_()
  return emitter(self, { ["local"] = true })
end


-- to(room): a broadcast from this socket (it is left out) to the rooms.
function Socket:to(room)
  return self.broadcast:to(room)
end


Socket.in_ = Socket.to
Socket["in"] = Socket.to


function Socket:except(room)
  return self.broadcast:except(room)
end


-- join(room) / join({room, ...})
function Socket:join(room)
  for _, r in ipairs(as_list(room)) do
    r = tostring(r)
    if sio.join(self._box, r) ~= nil then
      self.rooms[r] = true
    end
  end
  return self
end


function Socket:leave(room)
  room = tostring(room)
  sio.leave(self._box, room)
  self.rooms[room] = nil
  return self
end


-- use(fn(packet, next)): packet middleware; packet is {event, args..., [ack]}, n.
-- next(err) drops the packet and emits "error" on the socket with err.
function Socket:use(fn)
  if type(fn) ~= "function" then
    error("middleware must be a function", 2)
  end
  local fns = self._fns
  if not fns then
    fns = {}
    self._fns = fns
  end
  fns[#fns + 1] = fn
  return self
end


function Socket:onAny(fn)
  local any = self._any or {}
  self._any = any
  any[#any + 1] = fn
  return self
end


function Socket:prependAny(fn)
  local any = self._any or {}
  self._any = any
  insert(any, 1, fn)
  return self
end


function Socket:offAny(fn)
  local any = self._any
  if not any then
    return self
  end
  if fn == nil then
    self._any = nil
    return self
  end
  for i = #any, 1, -1 do
    if any[i] == fn then
      remove(any, i)
    end
  end
  return self
end


function Socket:listenersAny()
  return copy(self._any)
end


-- With cleanupEmptyChildNamespaces, a dynamic child namespace goes once no socket is
-- in it (nor joining it); the next connection to its name makes a new one.
local function cleanup(nsp)
  local parent = nsp._parent
  local io = nsp.server
  if not parent or not io._cleanup or next(nsp.sockets) ~= nil then
    return
  end
  if sio.namespace_free(nsp._nsp) then
    if io._nsps[nsp.name] == nsp then
      io._nsps[nsp.name] = nil
    end
    parent._children[nsp] = nil
  end
end


-- The end of a socket on the Lua side: "disconnecting" (rooms still set), then the
-- rooms go, then "disconnect" (spec/protocol.md §4.3 reasons).
function Socket:_onclose(reason)
  if not self.connected then
    return
  end
  self.connected = false
  self.disconnected = true
  fire(self, "disconnecting", reason)
  for room in pairs(self.rooms) do
    self.rooms[room] = nil
  end
  local sockets = self.nsp.sockets
  if sockets[self.id] == self then
    sockets[self.id] = nil
  end
  fire(self, "disconnect", reason)
  cleanup(self.nsp)
end


-- disconnect(close): DISCONNECT to the client ("io server disconnect" there, "server
-- namespace disconnect" here); with close the whole connection goes.
function Socket:disconnect(close)
  if not self.connected then
    return self
  end
  local gone = sio.disconnect(self._box, close == true)
  for _, socket in ipairs(gone) do
    socket:_onclose("server namespace disconnect")
  end
  return self
end


-- ------------------------------------------------------------------------------------
-- Connections (the Engine.IO session under one or more sockets): socket.conn


local Conn = {}

local Transport = {
  __tostring = function(t)
    return t.name
  end,
}


Conn.__index = function(self, k)
  if k == "transport" then
    local _, _, name = sio.client_info(self._box)
    return setmetatable({ name = name or "closed" }, Transport)
  elseif k == "readyState" then
    return sio.client_info(self._box) and "open" or "closed"
  end
  return nil
end


local function conn_of(io, cbox)
  local conn = io._conns[cbox]
  if conn then
    return conn
  end
  local id, protocol, _, address = sio.client_info(cbox)
  if not id then
    return nil
  end
  local hs = sio.handshake(cbox)
  if not hs then
    return nil
  end
  local request = {
    method = hs.method,
    url = hs.url,
    headers = hs.headers,
    remoteAddress = address,
    connection = { remoteAddress = address },
  }
  conn = setmetatable({
    _box = cbox,
    _hs = hs,
    -- conn:close() and conn.close() alike: the Engine.IO session goes ("forced close")
    close = function()
      sio.client_close(cbox)
    end,
    id = id,
    protocol = protocol,
    remoteAddress = address,
    request = request,
  }, Conn)
  io._conns[cbox] = conn
  return conn
end


local function new_socket(io, nsp, conn, box, id, auth)
  local hs = conn._hs
  local socket = setmetatable({
    id = id,
    nsp = nsp,
    server = io,
    conn = conn,
    client = { id = conn.id, conn = conn, request = conn.request },
    request = conn.request,
    remoteAddress = conn.remoteAddress,
    handshake = {
      auth = auth,
      headers = hs.headers,
      query = hs.query,
      address = hs.address,
      url = hs.url,
      time = hs.time,
      issued = hs.issued,
      secure = hs.secure,
      xdomain = hs.xdomain,
    },
    data = {},
    rooms = {},
    connected = false,
    disconnected = false,
    _box = box,
    _events = {},
  }, Socket)
  socket.broadcast = operator(nsp, nil, { id })
  return socket
end


-- ------------------------------------------------------------------------------------
-- Namespaces


local Namespace = mixin({})
local Parent = mixin({})


local function new_namespace(io, name, parent)
  local nsp = setmetatable({
    name = name,
    server = io,
    sockets = {},
    _events = {},
    _fns = {},
    _parent = parent,
  }, Namespace)
  nsp.connected = nsp.sockets -- the older API's name
  nsp._nsp = sio.namespace(io._srv, name)
  return nsp
end


-- use(fn(socket, next)): namespace middleware, run in order on every connection; it may
-- call next later (from a task that waited). next(err) refuses the connection with
-- err.message (and err.data).
function Namespace:use(fn)
  if type(fn) ~= "function" then
    error("middleware must be a function", 2)
  end
  self._fns[#self._fns + 1] = fn
  return self
end


Parent.use = Namespace.use


local function nsp_operator(self)
  return operator(self, nil, nil)
end


function Namespace:to(room)
  return nsp_operator(self):to(room)
end


Namespace.in_ = Namespace.to
Namespace["in"] = Namespace.to


function Namespace:except(room)
  return nsp_operator(self):except(room)
end


function Namespace:emit(event, ...)
  return nsp_operator(self):emit(event, ...)
end


function Namespace:emitWithAck(event, ...)
  return nsp_operator(self):emitWithAck(event, ...)
end


function Namespace:send(...)
  return nsp_operator(self):emit("message", ...)
end


Namespace.write = Namespace.send


function Namespace:timeout(ms)
  return nsp_operator(self):timeout(ms)
end


function Namespace:volatile()
  return nsp_operator(self):volatile()
end


function Namespace:compress(v)
  return nsp_operator(self):compress(v)
end


function Namespace:local_()
  return nsp_operator(self):local_()
end


function Namespace:fetchSockets()
  return nsp_operator(self):fetchSockets()
end


function Namespace:socketsJoin(room)
  return nsp_operator(self):socketsJoin(room)
end


function Namespace:socketsLeave(room)
  return nsp_operator(self):socketsLeave(room)
end


function Namespace:disconnectSockets(close)
  return nsp_operator(self):disconnectSockets(close)
end


function Namespace:allSockets()
  return nsp_operator(self):allSockets()
end


-- clients(fn): the older API; fn(nil, ids).
function Namespace:clients(fn)
  local ids = {}
  for id in pairs(self:allSockets()) do
    ids[#ids + 1] = id
  end
  fn(nil, ids)
  return self
end


for _, k in ipairs({ "to", "in_", "in", "except", "emit", "emitWithAck", "send", "write",
                     "timeout", "volatile", "compress", "local_", "fetchSockets",
                     "socketsJoin", "socketsLeave", "disconnectSockets", "allSockets",
                     "clients" }) do
  Parent[k] = Namespace[k]
end


-- The middlewares a connection to nsp runs: its parent's (shared by every child,
-- including ones added later), then its own.
local function middlewares(nsp)
  local parent = nsp._parent
  if not parent or #parent._fns == 0 then
    return nsp._fns
  end
  local fns = copy(parent._fns)
  for _, fn in ipairs(nsp._fns) do
    fns[#fns + 1] = fn
  end
  return fns
end


-- Runs fns[i..] on subject; each calls next([err]) now or later, once; done(err) at
-- the end or on the first error (an error raised counts as next(err)).
local function run_chain(fns, i, subject, done)
  local fn = fns[i]
  if not fn then
    return done(nil)
  end
  local called = false
  local function next_fn(err)
    if called then
      return
    end
    called = true
    if err ~= nil then
      return done(err)
    end
    return run_chain(fns, i + 1, subject, done)
  end
  local ok, err = xpcall(fn, keep, subject, next_fn)
  if not ok and not called then
    called = true
    if type(err) ~= "table" then
      log("error", "middleware: " .. tostring(err))
    end
    return done(err)
  end
end


local function fire_connection(nsp, socket)
  fire(nsp, "connect", socket)
  fire(nsp, "connection", socket)
  local parent = nsp._parent
  if parent then
    fire(parent, "connect", socket)
    fire(parent, "connection", socket)
  end
end


-- ------------------------------------------------------------------------------------
-- Events from clients (called by C in a task of their own)


local function handler_failed(event, err)
  log("error", "'" .. tostring(event) .. "' handler: " .. tostring(err))
end


local function deliver(socket, packet, state)
  local event = packet[1]
  local any = socket._any
  if any then
    local list = copy(any)
    for i = 1, #list do
      call("onAny listener", list[i], unpack(packet, 1, packet.n))
    end
  end
  local list = snapshot(socket, event)
  if not list then
    return
  end
  for i = 1, #list do
    local r = pack(xpcall(list[i].fn, handler, unpack(packet, 2, packet.n)))
    if not r[1] then
      handler_failed(event, r[2])
    elseif state and not state.sent and r.n > 1 then
      -- the handler's return values are its answer
      call("ack of '" .. tostring(event) .. "'", state.ack, unpack(r, 2, r.n))
    end
  end
end


local function on_event(socket, id, event, ...)
  if id == nil and socket._any == nil and (socket._fns == nil or #socket._fns == 0) then
    -- no ack, no middleware, no onAny: the listeners get the arguments as they are
    local list = snapshot(socket, event)
    if list then
      for i = 1, #list do
        local ok, err = xpcall(list[i].fn, handler, ...)
        if not ok then
          handler_failed(event, err)
        end
      end
    end
    return
  end
  local state
  local packet = pack(event, ...)
  if id ~= nil then
    local box = socket._box
    state = { sent = false }
    state.ack = function(...)
      if state.sent then
        return
      end
      sio.ack(box, id, ...) -- raises when a value cannot be sent: not sent then
      state.sent = true
    end
    packet.n = packet.n + 1
    packet[packet.n] = state.ack
  end
  local fns = socket._fns
  if not fns or #fns == 0 then
    return deliver(socket, packet, state)
  end
  run_chain(copy(fns), 1, packet, function(err)
    if err ~= nil then
      if not fire(socket, "error", err) then
        log("warn", "socket " .. socket.id .. ": packet refused: "
            .. tostring((error_parts(err))))
      end
      return
    end
    return deliver(socket, packet, state)
  end)
end


local function on_disconnect(socket, reason)
  socket:_onclose(reason)
end


-- Finds the namespace of name: a static one, else the first dynamic parent that
-- accepts it (a new child, or the child made earlier). cb(nsp) or cb(nil).
local function resolve(io, name, auth, cb)
  local nsp = io._nsps[name]
  if nsp then
    return cb(nsp)
  end
  local parents = io._parents
  local function try(i)
    local parent = parents[i]
    if not parent then
      return cb(nil)
    end
    local answered = false
    local function next_fn(err, allow)
      if answered then
        return
      end
      answered = true
      if err ~= nil or not allow then
        return try(i + 1)
      end
      local child = io._nsps[name]
      if not child then
        child = new_namespace(io, name, parent)
        io._nsps[name] = child
        parent._children[child] = true
        fire(io, "new_namespace", child)
      end
      return cb(child)
    end
    local ok, err = xpcall(parent._match, handler, name, auth, next_fn)
    if not ok and not answered then
      log("error", "namespace matcher: " .. tostring(err))
      answered = true
      return try(i + 1)
    end
  end
  return try(1)
end


local function on_connect(io, cbox, box, name, id, auth)
  local conn = conn_of(io, cbox)
  if not conn then
    return
  end
  resolve(io, name, auth, function(nsp)
    if not nsp then
      sio.refuse(box, "Invalid namespace", nil, true)
      return
    end
    local socket = new_socket(io, nsp, conn, box, id, auth)
    if not sio.bind(box, nsp._nsp, socket) then
      return
    end
    run_chain(middlewares(nsp), 1, socket, function(err)
      if err ~= nil then
        local msg, data = error_parts(err)
        local ok = xpcall(sio.refuse, handler, box, msg, data)
        if not ok then
          sio.refuse(box, msg)
        end
        return cleanup(nsp)
      end
      if not sio.accept(box) then
        return cleanup(nsp) -- the connection closed while the middlewares ran
      end
      socket.connected = true
      socket.rooms[id] = true
      nsp.sockets[id] = socket
      fire_connection(nsp, socket)
    end)
  end)
end


-- ------------------------------------------------------------------------------------
-- The server


local Server = mixin({})
local Engine = {}
local EngineMethods = {}


function EngineMethods:on(event, fn)
  local list = self._listeners[event] or {}
  self._listeners[event] = list
  list[#list + 1] = fn
  return self
end


Engine.__index = function(self, k)
  if k == "clientsCount" then
    return sio.count(rawget(self, "_srv"))
  end
  return EngineMethods[k]
end


Engine.__newindex = function(self, k, v)
  if k == "generateId" then
    sio.set(rawget(self, "_srv"), "generateId", v)
  end
  rawset(self, k, v)
end


-- of(name): the namespace of that name (made on first use). of("^/pattern$") (a Lua
-- pattern: a string starting with "^") or of(function(name, auth, next) ... end) define
-- dynamic namespaces: a child per matching name, sharing the parent's middlewares and
-- connection listeners.
function Server:of(name)
  if type(name) == "function" or (type(name) == "string" and name:sub(1, 1) == "^") then
    for _, parent in ipairs(self._parents) do
      if parent._key == name then
        return parent
      end
    end
    local match = name
    if type(name) == "string" then
      local pattern = name
      match = function(nsp_name, _, next_fn)
        next_fn(nil, nsp_name:find(pattern) ~= nil)
      end
    end
    local parent = setmetatable({
      name = type(name) == "string" and name or "/_" .. (#self._parents + 1),
      server = self,
      _key = name,
      _match = match,
      _children = setmetatable({}, { __mode = "k" }),
      _events = {},
      _fns = {},
    }, Parent)
    self._parents[#self._parents + 1] = parent
    return parent
  end
  if type(name) ~= "string" then
    error("namespace must be a string, a Lua pattern or a function", 2)
  end
  if name:sub(1, 1) ~= "/" then
    name = "/" .. name
  end
  local nsp = self._nsps[name]
  if not nsp then
    nsp = new_namespace(self, name, nil)
    self._nsps[name] = nsp
    fire(self, "new_namespace", nsp)
  end
  return nsp
end


-- Listeners: "new_namespace" is the server's own; the others ("connection", ...) belong
-- to the main namespace, as in socket.io.
function Server:on(event, fn)
  if event == "new_namespace" then
    return Emitter.on(self, event, fn)
  end
  self.sockets:on(event, fn)
  return self
end


function Server:once(event, fn)
  if event == "new_namespace" then
    return Emitter.once(self, event, fn)
  end
  self.sockets:once(event, fn)
  return self
end


function Server:off(event, fn)
  if event == "new_namespace" then
    return Emitter.off(self, event, fn)
  end
  self.sockets:off(event, fn)
  return self
end


Server.removeListener = Server.off
Server.addListener = Server.on


for _, k in ipairs({ "use", "to", "in_", "in", "except", "emit", "emitWithAck", "send",
                     "write", "timeout", "volatile", "compress", "local_", "fetchSockets",
                     "socketsJoin", "socketsLeave", "disconnectSockets", "allSockets" }) do
  Server[k] = function(self, ...)
    local sockets = self.sockets
    return sockets[k](sockets, ...)
  end
end


-- broadcast(sockets, event, ...): one event to a list of sockets, encoded once (the
-- Feathers dispatcher's fast path). Returns how many got it.
function Server.broadcast(_, sockets, event, ...)
  check_event(event)
  return sio.send_many(sockets, event, ...)
end


-- path() -> the path, without its trailing slash (set at attach).
function Server:path()
  local p = self._path
  if #p > 1 and p:sub(-1) == "/" then
    p = p:sub(1, -2)
  end
  return p
end


-- serveClient() -> whether <path>/socket.io.js is served (set at attach).
function Server:serveClient()
  return self._serve_client
end


-- origins() -> the CORS origins; origins(v) replaces a function-based policy (the
-- list and "*" forms are fixed at attach).
function Server:origins(v)
  if v == nil then
    return self._origins
  end
  if type(v) ~= "function" or type(self._origins) ~= "function" then
    error("origins: only a function policy given at attach (cors.origin) can be replaced", 2)
  end
  self._origins = v
  sio.set(self._srv, "origins", v)
  return self
end


-- close([fn]): every client goes ("server shutting down") and the path is released,
-- on the next loop turn; fn() runs then.
function Server:close(fn)
  sio.close(self._srv)
  if fn then
    sio.later(self._srv, function()
      fn()
    end)
  end
end


local function file_exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return true
  end
  return false
end


local function read_version(dist)
  local f = io.open(dist .. "/../package.json", "rb")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  local pkg = json.decode(text)
  if type(pkg) == "table" and type(pkg.version) == "string" then
    return pkg.version
  end
  return nil
end


-- find_dist(app, package, file, system_dirs) -> the dist/ folder of an npm package's
-- browser bundle (the one holding file): node_modules of the app folder and its
-- parents, the repository's tests/node_modules, then system_dirs; nil when none has it.
function _M.find_dist(app, package, file, system_dirs)
  local dirs = {}
  local dir = app and app.get and app:get("app_dir")
  if type(dir) == "string" then
    if dir:sub(1, 1) ~= "/" then
      local pwd = os.getenv("PWD")
      dir = pwd and (pwd .. "/" .. dir) or dir
    end
    dir = dir:gsub("/+$", "")
    while dir ~= "" do
      dirs[#dirs + 1] = dir .. "/node_modules/" .. package .. "/dist"
      local up = dir:match("^(.*)/[^/]*$")
      if not up or up == dir then
        break
      end
      dir = up
    end
  end
  local source = debug.getinfo(1, "S").source
  local root = source:match("^@(.*)/lua/plume/socketio%.lua$")
  if root then
    dirs[#dirs + 1] = root .. "/tests/node_modules/" .. package .. "/dist"
  end
  for _, d in ipairs(system_dirs or {}) do
    dirs[#dirs + 1] = d
  end
  for _, d in ipairs(dirs) do
    if file_exists(d .. "/" .. file) then
      return d
    end
  end
  return nil
end


-- The folder of socket.io-client's bundle and its version.
local function find_client(app)
  local dir = _M.find_dist(app, "socket.io-client", "socket.io.js", _M.CLIENT_DIRS)
  if dir then
    return dir, read_version(dir) or "0"
  end
  return nil
end


-- The allowRequest hook: socket.io's allowRequest(req, callback(err, ok)), called
-- synchronously (the callback must be called before it returns).
local function allow_request(fn)
  return function(req)
    local ok, msg = false, "Forbidden"
    local answered = false
    fn(req, function(err, success)
      answered = true
      ok = success and true or false
      if err ~= nil then
        msg = tostring(err)
      end
    end)
    if not answered then
      log("error", "allowRequest must call its callback before it returns")
    end
    return ok, msg
  end
end


-- attach(app, opts) -> io: a Socket.IO server at opts.path ("/socket.io/"). Options use
-- socket.io's names: pingInterval, pingTimeout, upgradeTimeout, maxHttpBufferSize,
-- connectTimeout, transports, allowUpgrades, allowEIO3, cors = { origin, credentials }
-- (origins is an alias of cors.origin), allowRequest, serveClient (true),
-- cleanupEmptyChildNamespaces (false). Attaching again for the same app and path returns
-- the server made first (so app.lua may set Socket.IO up before the Feathers transport
-- does); its options stay.
function _M.attach(app, opts)
  if type(app) == "table" and opts == nil and app.get == nil then
    app, opts = nil, app
  end
  opts = opts or {}
  local options = {}
  for k, v in pairs(opts) do
    options[k] = v
  end
  options.path = opts.path or "/socket.io/"
  if options.path:sub(-1) ~= "/" then
    options.path = options.path .. "/"
  end
  local attached = app and ATTACHED[app]
  if attached and attached[options.path] then
    return attached[options.path]
  end
  if options.cors == nil and opts.origins ~= nil then
    options.cors = { origin = opts.origins }
  end
  if type(opts.allowRequest) == "function" then
    options.allowRequest = allow_request(opts.allowRequest)
  end
  local serve = opts.serveClient ~= false
  options.serveClient = serve
  if serve then
    options.clientDir, options.clientVersion = find_client(app)
  end

  local io = setmetatable({
    app = app,
    _cleanup = opts.cleanupEmptyChildNamespaces == true,
    _path = options.path,
    _serve_client = serve,
    _origins = type(options.cors) == "table" and options.cors.origin or nil,
    _nsps = {},
    _parents = {},
    _events = {},
    _conns = setmetatable({}, { __mode = "k" }),
  }, Server)

  io._srv = sio.attach(options, {
    connect = function(cbox, box, name, id, auth)
      return on_connect(io, cbox, box, name, id, auth)
    end,
    event = on_event,
    disconnect = on_disconnect,
    -- C hands many arguments over as one table: fn(unpack(t)) inside the task
    apply = function(fn, t)
      return fn(unpack(t, 1, t.n))
    end,
  })
  io.engine = setmetatable({ _srv = io._srv, _listeners = {} }, Engine)
  io.sockets = io:of("/")
  if app then
    attached = attached or {}
    ATTACHED[app] = attached
    attached[options.path] = io
  end
  return io
end


-- A Server's methods, for code that extends them.
_M.Server = Server
_M.Namespace = Namespace
_M.Socket = Socket
_M.BroadcastOperator = Operator


return _M
