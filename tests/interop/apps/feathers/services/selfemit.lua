-- A service that lists the standard event "created" in its own events: Feathers then
-- leaves that event to the service (feathers.md §4.2), which emits it itself with data
-- of its choosing; the automatic one is not sent. (As in Feathers, "created" is then
-- listed twice among the service events, so it is published twice.)
local memory = require "plume.adapters.memory"


local store = memory.new()


return {
  service = {
    events = { "created" },

    create = function(self, data, params)
      local record = store:create(data, params)
      self:emit("created", { manual = true, id = record.id })
      return record
    end,
  },
}
