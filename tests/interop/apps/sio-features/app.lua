-- The Socket.IO app of the client suites (socketio-client, socketio-client-v2,
-- python-socketio) and of the raw ack checks in socketio-conformance. Each event below
-- exercises one part of the plume.socketio API; the tests drive them from real clients.
--
-- Namespaces:
--   /         everything below; io:use refuses auth.token == "bad" with data { code = 42 }
--   /custom   echoes handshake.auth as "auth", "message" → "message-back"
--   /private  refused unless auth.token == "secret" (v2 clients: ?token=secret)
--   /dyn-N    a Lua-pattern namespace; "welcome" with its name; "nsp-emit" to that child only
--   /fn-*     a namespace accepted by a function
local socketio = require "plume.socketio"
local json = require "plume.json"

local null = json.null
local binary = json.binary
local pack = table.pack
local unpack = table.unpack
local sort = table.sort
local tostring = tostring
local type = type

-- Lists built here are marked with json.array() so that an empty one is [] on the wire
-- (an unmarked empty table is {}).

-- disconnect reasons by socket id, for tests that check what the server saw
local reasons = {}


local function or_null(v)
  if v == nil then
    return null
  end
  return v
end


-- Splits a handler's arguments into the values and the ack function, which is the last
-- argument when the client asked for an acknowledgement.
local function split_ack(...)
  local args = pack(...)
  local ack = args[args.n]
  if type(ack) == "function" then
    args[args.n] = nil
    args.n = args.n - 1
    return args, ack
  end
  return args, nil
end


local function sorted_set(set)
  local list = json.array()
  for k, v in pairs(set) do
    if v then
      list[#list + 1] = k
    end
  end
  sort(list)
  return list
end


local function kind(v)
  if v == null then
    return "null"
  end
  if json.is_binary(v) then
    return "binary"
  end
  local t = type(v)
  if t == "number" then
    return math.type(v)
  end
  return t
end


-- a value built in Lua, with every kind the encoder must handle (binary nested included)
local function server_values()
  return {
    int = 42,
    float = 1.5,
    negative = -7,
    text = "héllo €",
    yes = true,
    no = false,
    none = null,
    list = { 1, "two", { three = 3 } },
    bin = binary("\0\1\2\255"),
    nested = { deep = { bin = binary("xyz") } },
  }
end


local function echo_auth(socket)
  socket:emit("auth", socket.handshake.auth)
end


local function refuse(next)
  next({ message = "not authorized", data = { code = 42 } })
end


local function transport_name(conn)
  local t = conn.transport
  if type(t) == "table" then
    t = t.name
  end
  return tostring(t)
end


local function on_main_connection(io, socket)
  local id = socket.id
  socket.data.calls = 0

  socket:on("disconnect", function(reason)
    reasons[id] = reason
  end)

  -- socket middleware: "forbidden" never reaches its handler, "shout" is rewritten
  socket:use(function(packet, next)
    if packet[1] == "forbidden" then
      next({ message = "forbidden event" })
      return
    end
    if packet[1] == "shout" and type(packet[2]) == "string" then
      packet[2] = packet[2]:upper()
    end
    next()
  end)

  socket:on("forbidden", function()
    return "handler ran"
  end)

  socket:on("shout", function(text)
    return text
  end)

  -- arguments and JSON fidelity
  socket:on("echo", function(...)
    local args = split_ack(...)
    socket:emit("echo-back", unpack(args, 1, args.n))
  end)

  socket:on("echo-ack", function(...)
    local args, ack = split_ack(...)
    if ack then
      ack(unpack(args, 1, args.n))
    end
  end)

  -- the handler's return values become the ack
  socket:on("echo-return", function(...)
    local args = split_ack(...)
    return unpack(args, 1, args.n)
  end)

  socket:on("sum", function(a, b)
    return a + b
  end)

  socket:on("kinds", function(...)
    local args = split_ack(...)
    local out = {}
    for i = 1, args.n do
      out[i] = kind(args[i])
    end
    return unpack(out, 1, args.n)
  end)

  socket:on("server-values", function()
    return server_values()
  end)

  socket:on("server-emit", function()
    socket:emit("server-values", server_values(), binary("top"))
    return true
  end)

  -- server → client acks: mode "cb" uses a callback, "wait" emitWithAck inside the task
  socket:on("ask", function(ms, mode, ack)
    if mode == "wait" then
      local err, answer = socket:timeout(ms):emitWithAck("question", "q1")
      socket.data.calls = socket.data.calls + 1
      if type(ack) == "function" then
        ack(or_null(err), or_null(answer))
      end
      return
    end
    socket:timeout(ms):emit("question", "q1", function(err, answer)
      socket.data.calls = socket.data.calls + 1
      if type(ack) == "function" then
        ack(or_null(err), or_null(answer))
      end
    end)
  end)

  socket:on("calls", function()
    return socket.data.calls
  end)

  -- identity and handshake
  socket:on("whoami", function()
    local h = socket.handshake
    return {
      id = id,
      conn_id = tostring(socket.conn.id),
      transport = transport_name(socket.conn),
      protocol = socket.conn.protocol,
      nsp = socket.nsp.name,
      auth = h.auth,
      query_custom = or_null(h.query and h.query.custom),
      query_eio = or_null(h.query and h.query.EIO),
      header = or_null(h.headers and h.headers["x-plume-test"]),
      url_has_path = type(h.url) == "string" and h.url:find("/socket.io/", 1, true) == 1,
      secure = h.secure,
      issued_type = type(h.issued),
      time_type = type(h.time),
      address_type = type(h.address),
    }
  end)

  socket:on("reason-of", function(other)
    return or_null(reasons[other])
  end)

  socket:on("set-name", function(name)
    socket.data.name = name
    return true
  end)

  -- rooms
  socket:on("join", function(room)
    socket:join(room)
    return sorted_set(socket.rooms)
  end)

  socket:on("leave", function(room)
    socket:leave(room)
    return sorted_set(socket.rooms)
  end)

  socket:on("to", function(room, ...)
    local args = split_ack(...)
    socket:to(room):emit("room-msg", room, unpack(args, 1, args.n))
    return true
  end)

  socket:on("to-two", function(room1, room2, msg)
    socket:to(room1):to(room2):emit("room-msg", room1 .. "+" .. room2, msg)
    return true
  end)

  socket:on("io-to-except", function(room, except, msg)
    io:to(room):except(except):emit("room-msg", room .. "-" .. except, msg)
    return true
  end)

  socket:on("io-in", function(room, msg)
    io:in_(room):emit("room-msg", room, msg)
    return true
  end)

  socket:on("broadcast", function(msg)
    socket.broadcast:emit("bcast", msg)
    return true
  end)

  socket:on("all", function(msg)
    io:emit("all", msg)
    return true
  end)

  socket:on("flags", function(msg)
    socket:volatile():emit("volatile", msg)
    socket:compress(false):emit("uncompressed", msg)
    io:local_():to(id):emit("local", msg)
    return true
  end)

  -- server-side utilities over the sockets of a room
  socket:on("fetch", function(room)
    local list = json.array()
    for _, s in ipairs(io:in_(room):fetchSockets()) do
      list[#list + 1] = { id = s.id, name = or_null(s.data.name), rooms = sorted_set(s.rooms) }
    end
    sort(list, function(a, b)
      return tostring(a.name) < tostring(b.name)
    end)
    return list
  end)

  socket:on("fetch-all", function()
    local ids = json.array()
    for _, s in ipairs(io:fetchSockets()) do
      ids[#ids + 1] = s.id
    end
    sort(ids)
    return ids
  end)

  socket:on("sockets-join", function(room, new_room)
    io:in_(room):socketsJoin(new_room)
    return true
  end)

  socket:on("sockets-leave", function(room, old_room)
    io:in_(room):socketsLeave(old_room)
    return true
  end)

  socket:on("disconnect-sockets", function(room, close)
    io:in_(room):disconnectSockets(close == true)
    return true
  end)

  -- disconnections started by the server
  socket:on("kick", function()
    socket:disconnect()
  end)

  socket:on("kick-close", function()
    socket:disconnect(true)
  end)

  socket:on("drop-transport", function()
    socket.conn:close()
  end)
end


return function(app)
  local io = socketio.attach(app, {
    path = "/socket.io/",
    pingInterval = 1000,
    pingTimeout = 1000,
    maxHttpBufferSize = 1000000,
    connectTimeout = 2000,
    cors = { origin = "*" },
    allowEIO3 = true,
  })

  io:use(function(socket, next)
    local auth = socket.handshake.auth
    if type(auth) == "table" and auth.token == "bad" then
      refuse(next)
      return
    end
    if type(auth) == "table" and type(auth.name) == "string" then
      socket.data.name = auth.name
    end
    next()
  end)

  io:on("connection", function(socket)
    on_main_connection(io, socket)
  end)

  io:of("/custom"):on("connection", function(socket)
    echo_auth(socket)
    socket:on("message", function(...)
      socket:emit("message-back", ...)
    end)
    socket:on("whoami", function()
      return { id = socket.id, nsp = socket.nsp.name, auth = socket.handshake.auth }
    end)
  end)

  local private = io:of("/private")
  private:use(function(socket, next)
    local auth = socket.handshake.auth
    if type(auth) == "table" and auth.token == "secret" then
      next()
    else
      refuse(next)
    end
  end)
  private:on("connection", function(socket)
    socket:emit("welcome", socket.nsp.name)
  end)

  io:of("^/dyn%-%d+$"):on("connection", function(socket)
    socket:emit("welcome", socket.nsp.name)
    socket:on("nsp-emit", function(msg)
      socket.nsp:emit("nsp-news", socket.nsp.name, msg)
      return true
    end)
  end)

  io:of(function(name, _, next)
    next(nil, name:find("^/fn%-") ~= nil)
  end):on("connection", function(socket)
    socket:emit("welcome", socket.nsp.name)
  end)
end
