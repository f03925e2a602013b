-- A Socket.IO chat: public/index.html loads the browser client from /socket.io/socket.io.js
-- (served by Plume, serveClient), then
--   req   acknowledged with "hello world" (the page shows the answer),
--   chat  sent to everyone, the sender included (io:emit),
--   hi    sent to everyone else when someone joins (socket.broadcast).
--   plume examples/socketio-chat --port 3030, then open http://localhost:3030/
local plume = require "plume"
local socketio = require "plume.socketio"


return function(app)
  local io = socketio.attach(app, { serveClient = true })

  io:on("connection", function(socket)
    local name = "client_" .. socket.id
    plume.log("info", "chat", name .. " connected")

    socket.broadcast:emit("hi", "I'm coming, my name: " .. name .. ".")

    socket:on("req", function(_, ack)
      if type(ack) == "function" then
        ack("hello world")
      end
    end)

    socket:on("chat", function(msg)
      if type(msg) ~= "string" or msg == "" then
        return
      end
      io:emit("chat", name .. " says: " .. msg)
    end)

    socket:on("disconnect", function(reason)
      plume.log("info", "chat", name .. " disconnected (" .. tostring(reason) .. ")")
    end)
  end)
end
