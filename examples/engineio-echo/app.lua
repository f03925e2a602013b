-- Bare Engine.IO echo server, configured as the Engine.IO conformance suite expects
-- (spec/protocol.md §8): every message that arrives, text or binary, is sent back unchanged
-- on the same session. Serves /engine.io/ on the port given to `plume`.
local engineio = require "plume.engineio"

return function(app)
  local server = engineio.attach(app, "/engine.io/", {
    pingInterval = 300,
    pingTimeout = 200,
    maxPayload = 1000000,
    cors = { origin = "*" },
    allowEIO3 = true,
  })

  server:on("connection", function(socket)
    -- data is a string for a text message, a plume.binary for a binary one; send keeps the kind
    socket:on("message", function(data)
      socket:send(data)
    end)
  end)
end
