-- services/status.lua: a Lua service next to the C one. find() reports the host's
-- counters (through "host", the Lua module main.c preloads) and the sensors, read
-- through the C service like any other service.
local host = require "host"


local app


return {
  setup = function(_, the_app)
    app = the_app
  end,

  find = function()
    local sensors = app:service("sensors")
    return {
      readings = host.readings(),
      interval = host.interval(),
      sensors = sensors and #sensors:find({}) or 0,
    }
  end,
}
