-- The hot-reload interop app (tests/interop/runtime-reload.js): every connection joins
-- "everybody", every service event is published to it. The suite copies this folder to
-- tests/artifacts/ and edits the copy's service files while clients stay connected.
return function(app)
  app:on("connection", function(connection)
    app:channel("everybody"):join(connection)
  end)

  app:publish(function()
    return app:channel("everybody")
  end)
end
