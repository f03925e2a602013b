-- app.lua of plume-embed (examples/embed-c): the app around the C "sensors" service that
-- main.c registers once this folder is loaded. Every connection joins "everybody", which
-- gets every service event ("sensors patched" from the C timer and from patches); the
-- sensors' patch is validated by a hook, in Lua, before it reaches C; a socket that
-- emits "watch" joins the "dashboard" room, where main.c sends raw "reading" events.
local plume = require "plume"
local errors = require "plume.errors"


-- before patch on sensors: only { offset = number within +-50 } reaches the C method.
local function check_offset(context)
  local offset = type(context.data) == "table" and context.data.offset or nil
  if type(offset) ~= "number" or offset ~= offset or offset < -50 or offset > 50 then
    error(errors.BadRequest("offset must be a number between -50 and 50",
                            { field = "offset" }))
  end

  context.data = { offset = offset }
  return context
end


return function(app)
  app:configure(plume.socketio({ serveClient = true }, function(io)
    io:on("connection", function(socket)
      socket:on("watch", function(ack)
        socket:join("dashboard")
        if type(ack) == "function" then
          ack(true)
        end
      end)
    end)
  end))

  -- Services registered later (the C one too) get their hooks from this mixin.
  app.mixins[#app.mixins + 1] = function(service, path)
    if path == "sensors" then
      service:hooks({ before = { patch = { check_offset } } })
    end
  end

  app:on("connection", function(connection)
    app:channel("everybody"):join(connection)
  end)

  app:publish(function()
    return app:channel("everybody")
  end)
end
