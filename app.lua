-- app.lua: the chat app's set-up (the repository root is an app folder: `make run`
-- serves it on port 3030), run once at start. As a new Feathers app is generated: the
-- authentication service (settings in config/default.lua) and the channels of its
-- channels.ts. Its services are services/*.lua, its page public/.
local plume = require "plume"
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

  -- Here you can add event publishers to channels set up above; to publish only one
  -- event use app:publish(event, fn). This publishes every service event to every
  -- logged-in connection:
  plume.log("warn", "Publishing all events to all authenticated users. See app.lua and "
            .. "https://dove.feathersjs.com/api/channels.html for more information.")
  app:publish(function()
    return app:channel("authenticated")
  end)
end
