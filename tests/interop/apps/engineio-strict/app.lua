-- The second Engine.IO app of the interop suites: the echo server with what
-- examples/engineio-echo turns on turned off (no allowEIO3, no CORS), a short
-- upgradeTimeout, slow heartbeats so that idle sessions survive a test, and one message,
-- "close-me", on which the server closes the session (the deferred close of protocol.md §2.6).
local engineio = require "plume.engineio"

return function(app)
  local server = engineio.attach(app, "/engine.io/", {
    pingInterval = 2000,
    pingTimeout = 2000,
    maxPayload = 1000000,
    upgradeTimeout = 500,
    allowEIO3 = false,
  })

  server:on("connection", function(socket)
    socket:on("message", function(data)
      if data == "close-me" then
        socket:close()
      else
        socket:send(data)
      end
    end)
  end)
end
