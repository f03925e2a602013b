-- services/messages.lua: the default app's messages, kept in memory, for logged-in users
-- only. A new message gets its author (userId) and time (createdAt, ms since 1970);
-- every message a client gets carries its author's public fields as `user`, the way a
-- Feathers resolver adds them.
local memory = require "plume.adapters.memory"
local errors = require "plume.errors"
local auth = require "plume.authentication"


local MAX_LENGTH = 400


-- Keeps the text (at most MAX_LENGTH characters) and nothing else a client sent.
local function check_text(context)
  local text = context.data.text
  if type(text) ~= "string" or not text:find("%S") or not utf8.len(text) then
    error(errors.BadRequest("A message needs some text", { field = "text" }))
  end

  if utf8.len(text) > MAX_LENGTH then
    text = text:sub(1, utf8.offset(text, MAX_LENGTH + 1) - 1)
  end

  context.data = { text = text }
end


local function set_author(context)
  context.data.userId = context.params.user.id
  context.data.createdAt = os.time() * 1000
end


-- Adds `user` = { id, email } to each message of the result.
local function add_user(context)
  local users = context.app:service("users")
  local known = {}
  local function with_user(message)
    local id = message.userId
    if known[id] == nil then
      local ok, user = pcall(users.get, users, id)
      known[id] = ok and { id = user.id, email = user.email } or false
    end

    message.user = known[id] or nil
  end

  local result = context.result
  if context.method == "find" then
    for _, message in ipairs(result.data or result) do
      with_user(message)
    end
  else
    with_user(result)
  end
end


return {
  service = memory.new({ paginate = { default = 20, max = 50 } }),
  methods = { "find", "get", "create" },
  hooks = {
    around = {
      all = { auth.hooks.authenticate("jwt") },
    },
    before = {
      create = { check_text, set_author },
    },
    after = {
      all = { add_user },
    },
  },
}
