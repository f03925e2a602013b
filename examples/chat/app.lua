-- app.lua: the chat's app-wide set-up, run once at start. Like a new Feathers app:
-- the authentication service (its settings are in config/default.lua) and the
-- channels that decide who receives which real-time event.
local auth = require "plume.authentication"


return function(app)
  local settings = app:get("authentication")
  if app:get("env") == "production" and settings.secret:find("^development%-secret") then
    error("the authentication secret is still the development one of config/default.lua: "
          .. "set FEATHERS_SECRET (a long random string)", 0)
  end

  -- A login is a create on "authentication": { strategy = "local", email, password },
  -- or { strategy = "jwt", accessToken } with the token an earlier login returned.
  app:use("authentication", auth.service(app))

  -- Every connection starts in the "anonymous" channel; a login moves it to
  -- "authenticated" (a logout or a disconnect takes it out of every channel).
  app:on("connection", function(connection)
    app:channel("anonymous"):join(connection)
  end)

  app:on("login", function(_, params)
    local connection = params.connection
    if connection then
      app:channel("anonymous"):leave(connection)
      app:channel("authenticated"):join(connection)
    end
  end)

  -- Every event of every service (messages created, online joined and left) goes to
  -- the logged-in connections: in a chat everybody sees everything.
  app:publish(function()
    return app:channel("authenticated")
  end)
end
