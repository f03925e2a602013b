-- services/messages.lua: the default app's chat messages, kept in the memory adapter.
-- Clients call it over Socket.IO ("find", "create", ... on path "messages") and receive
-- "messages created" events through the channels of the default app.
local memory = require "plume.adapters.memory"
local hooks = require "plume.hooks"


local function add_timestamp(context)
  context.data.createdAt = os.time() * 1000
  return context
end


local function limit_text(context)
  local text = context.data.text
  if type(text) ~= "string" then
    error(require("plume.errors").BadRequest("text must be a string"))
  end
  context.data = { text = text:sub(1, 400), createdAt = context.data.createdAt }
  return context
end


return {
  path = "messages",
  service = memory.new({ paginate = { default = 10, max = 50 } }),
  hooks = {
    before = {
      create = { hooks.require_fields("text"), limit_text, add_timestamp },
      update = { limit_text },
      patch = { limit_text },
    },
  },
}
