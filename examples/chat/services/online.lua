-- services/online.lua: who is online. A user is online while at least one of their
-- connections is logged in. Clients call find() for the list ({ id, email } each, by
-- email) and listen for the events "joined" and "left", which app.lua publishes to
-- the logged-in connections like every other event.
local auth = require "plume.authentication"
local json = require "plume.json"


-- The user of each logged-in connection (a weak table: gone connections drop out).
local users = setmetatable({}, { __mode = "k" })


local function is_online(id)
  for _, user in pairs(users) do
    if user.id == id then
      return true
    end
  end

  return false
end


local online = {}


function online.find()
  local list, seen = json.array(), {}
  for _, user in pairs(users) do
    if not seen[user.id] then
      seen[user.id] = true
      list[#list + 1] = user
    end
  end

  table.sort(list, function(a, b) return a.email < b.email end)
  return list
end


-- Listens to the app's login, logout and disconnect events. A reload of this file
-- starts from the connections logged in at that moment.
function online:setup(app)
  local function arrive(connection, user)
    local was_online = is_online(user.id)
    users[connection] = { id = user.id, email = user.email }
    if not was_online then
      self:emit("joined", users[connection])
    end
  end

  local function depart(connection)
    local user = users[connection]
    users[connection] = nil
    if user and not is_online(user.id) then
      self:emit("left", user)
    end
  end

  for _, connection in ipairs(app:channel("authenticated").connections) do
    if connection.user then
      users[connection] = { id = connection.user.id, email = connection.user.email }
    end
  end

  self.listeners = {
    login = function(result, params)
      local connection = params.connection
      if connection and result.user then
        local current = users[connection]
        if current and current.id ~= result.user.id then
          depart(connection)
        end
        arrive(connection, result.user)
      end
    end,
    logout = function(_, params)
      if params.connection then
        depart(params.connection)
      end
    end,
    disconnect = depart,
  }

  for event, fn in pairs(self.listeners) do
    app:on(event, fn)
  end
end


function online:teardown(app)
  for event, fn in pairs(self.listeners or {}) do
    app:off(event, fn)
  end
end


return {
  service = online,
  methods = { "find" },
  events = { "joined", "left" },
  hooks = {
    before = { find = { auth.hooks.authenticate("jwt") } },
  },
}
