-- services/messages.lua: messages kept in the memory adapter, text required.
local memory = require "plume.adapters.memory"
local hooks = require "plume.hooks"


return {
  service = memory.new({ paginate = { default = 10, max = 50 } }),
  hooks = {
    before = { create = { hooks.require_fields("text") } },
  },
}
