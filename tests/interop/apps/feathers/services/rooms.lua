-- Channels (feathers.md §4.3, §4.4): a message goes to the channel of its room, and a
-- notice without the text to the "lobby". A connection in both gets the message (the
-- first channel holding it decides), a connection in neither gets nothing. For the room
-- "boom" the publisher fails: the call still succeeds and nobody gets the event (§4.3).
local memory = require "plume.adapters.memory"


return {
  service = memory.new(),
  publish = function(data, context)
    if data.room == "boom" then
      error("publisher failed")
    end

    local app = context.app
    return {
      app:channel("room/" .. tostring(data.room)),
      app:channel("lobby"):send({ notice = "a message in " .. tostring(data.room) }),
    }
  end,
}
