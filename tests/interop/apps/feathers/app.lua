-- The app of tests/interop/feathers-client.js (Feathers v5 client) and
-- feathers-client-v4.js (Feathers v4 client, and raw "path::method" calls): services that
-- each exercise one part of feathers.md, channels and publishers that the tests can tell
-- apart, and app hooks that trace their order for services/traced.lua.
--
-- Connections: the socket middleware copies the handshake query's `room` and `lobby`
-- onto the connection; every connection joins "everybody", plus "room/<room>" and
-- "lobby" when asked.
--
-- Publishers (feathers.md §4.3): the app's all-events publisher sends to "everybody"; its
-- "removed" publisher does too, but marks the payload `publishedBy = "app removed"`, so
-- the tests see which one was chosen. services/rooms.lua and services/pubsel.lua have
-- publishers of their own.
--
-- config/legacy.lua (`--env legacy`) turns on the legacy "path::method" calls.
local plume = require "plume"
local trace = require "lib.trace"


local pairs = pairs
local type = type


local function marked(data, publisher)
  local copy = {}
  if type(data) == "table" then
    for k, v in pairs(data) do
      copy[k] = v
    end
  end

  copy.publishedBy = publisher
  return copy
end


-- Feathers' app.configure(socketio(io => io.use(...))): handshake query -> connection.
local function copy_query(socket, next_fn)
  local query = socket.handshake.query or {}
  if type(query.room) == "string" and query.room ~= "" then
    socket.feathers.room = query.room
  end

  if query.lobby == "1" then
    socket.feathers.lobby = true
  end

  return next_fn()
end


return function(app)
  app:configure(plume.socketio(function(io)
    io:use(copy_query)
  end))

  app:on("connection", function(connection)
    app:channel("everybody"):join(connection)
    if connection.room then
      app:channel("room/" .. connection.room):join(connection)
    end

    if connection.lobby then
      app:channel("lobby"):join(connection)
    end
  end)

  app:publish(function()
    return app:channel("everybody")
  end)

  app:publish("removed", function(data)
    return app:channel("everybody"):send(marked(data, "app removed"))
  end)

  -- App hooks of every kind, for all methods and for create; they record for "traced"
  -- only (lib/trace.lua).
  app:hooks({
    around = {
      all = { trace.around("app around all") },
      create = { trace.around("app around create") },
    },
    before = {
      all = { trace.regular("app before all") },
      create = { trace.regular("app before create") },
    },
    after = {
      all = { trace.regular("app after all") },
      create = { trace.regular("app after create") },
    },
    error = {
      all = { trace.regular("app error all") },
      create = { trace.regular("app error create") },
    },
  })
end
