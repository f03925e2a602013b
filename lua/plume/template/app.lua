-- app.lua: app-wide set-up of {{name}}, run once at start (services/ and config/
-- reload live; changes here apply at the next start).
local plume = require "plume"


return function(app)
  -- Every connection joins the "everybody" channel, and every service event
  -- (messages created, ...) is published to it.
  app:on("connection", function(connection)
    app:channel("everybody"):join(connection)
  end)

  app:publish(function()
    return app:channel("everybody")
  end)

  plume.log("info", "{{name}} is ready on http://localhost:" .. tostring(app:get("port")) .. "/")
end
