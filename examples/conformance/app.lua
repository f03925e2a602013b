-- The server both official conformance suites expect (spec/protocol.md §8), in one process:
--   /engine.io/  bare Engine.IO: every message, text or binary, is sent back on its session;
--   /socket.io/  Socket.IO: namespaces "/" and "/custom" echo handshake.auth as an "auth"
--                event; on "/", "message" comes back as "message-back" and
--                "message-with-ack" is acknowledged with its own arguments.
-- Both use pingInterval 300, pingTimeout 200, a 1 MB payload cap and CORS "*"; allowEIO3 is
-- on so that Engine.IO v3 and socket.io-client v2 peers can be tested against it too.
--   plume examples/conformance --port 3000
local engineio = require "plume.engineio"
local socketio = require "plume.socketio"

local pack = table.pack
local unpack = table.unpack


local function echo_auth(socket)
  socket:emit("auth", socket.handshake.auth)
end


return function(app)
  local eio = engineio.attach(app, "/engine.io/", {
    pingInterval = 300,
    pingTimeout = 200,
    maxPayload = 1000000,
    cors = { origin = "*" },
    allowEIO3 = true,
  })

  eio:on("connection", function(socket)
    socket:on("message", function(data)
      socket:send(data)
    end)
  end)

  local io = socketio.attach(app, {
    path = "/socket.io/",
    pingInterval = 300,
    pingTimeout = 200,
    maxHttpBufferSize = 1000000,
    connectTimeout = 1000,
    cors = { origin = "*" },
    allowEIO3 = true,
  })

  io:on("connection", function(socket)
    echo_auth(socket)

    socket:on("message", function(...)
      socket:emit("message-back", ...)
    end)

    -- when the client asked for an ack, the last argument is the ack function
    socket:on("message-with-ack", function(...)
      local args = pack(...)
      local ack = args[args.n]
      if type(ack) == "function" then
        ack(unpack(args, 1, args.n - 1))
      end
    end)
  end)

  io:of("/custom"):on("connection", echo_auth)
end
