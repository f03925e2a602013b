-- The Plume side of the benchmarks: the same server as bench/node-peer.js (engine.io echo at
-- /engine.io/, Socket.IO message-back and message-with-ack at /socket.io/), with the
-- default heartbeat (pingInterval 25 s), so idle connections stay idle while measured.
local engineio = require "plume.engineio"
local socketio = require "plume.socketio"


return function(app)
  local eio = engineio.attach(app, "/engine.io/", { cors = { origin = "*" } })
  eio:on("connection", function(socket)
    socket:on("message", function(data)
      socket:send(data)
    end)
  end)

  local io = socketio.attach(app, { cors = { origin = "*" } })
  io:on("connection", function(socket)
    socket:on("message", function(...)
      socket:emit("message-back", ...)
    end)
    socket:on("message-with-ack", function(...)
      return ...
    end)
  end)
end
