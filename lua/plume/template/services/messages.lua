-- services/messages.lua: the messages of {{name}}, kept in memory. Edit this file
-- while the server runs: the next call runs the new code and the messages stay.
local memory = require "plume.adapters.memory"
local hooks = require "plume.hooks"


local function add_timestamp(context)
  context.data.created_at = os.time()
  return context
end


return {
  path = "messages",
  service = memory.new({ paginate = { default = 10, max = 50 } }),
  hooks = {
    before = {
      create = { hooks.require_fields("text"), add_timestamp },
    },
  },
}
