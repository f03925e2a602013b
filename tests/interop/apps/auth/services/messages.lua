-- Chat messages: only for logged-in users; each records who wrote it.
local memory = require "plume.adapters.memory"
local auth = require "plume.authentication"


local function set_author(context)
  local user = context.params.user
  if user ~= nil then
    context.data.userId = user.id
  end

  return context
end


return {
  service = memory.new(),
  hooks = {
    around = { all = { auth.hooks.authenticate("jwt") } },
    before = { create = { set_author } },
  },
}
