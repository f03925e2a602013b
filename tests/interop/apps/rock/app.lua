-- The app of tests/interop/rock-lua.js, served from stock lua5.4 by the rock
-- (require("plume").run): every connection joins "everybody", which gets every event.
return function(app)
  app:on("connection", function(connection)
    app:channel("everybody"):join(connection)
  end)

  app:publish(function()
    return app:channel("everybody")
  end)
end
