-- Publisher choice (feathers.md §4.3 step 1): this service's "created" publisher, then
-- its all-events publisher, win over the app's; each marks the payload.
local memory = require "plume.adapters.memory"


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


local service = memory.new()


-- The all-events publisher (the service file's `publish` table names events only).
function service.setup(self, app)
  self:publish(function(data)
    return app:channel("everybody"):send(marked(data, "service all"))
  end)
end


return {
  service = service,
  publish = {
    created = function(data, context)
      return context.app:channel("everybody"):send(marked(data, "service created"))
    end,
  },
}
