-- A service under a path with a placeholder (feathers.md §5.2): params.route carries the
-- captured userId (a string), events are named after the registered path.
local json = require "plume.json"


local null = json.null


return {
  path = "users/:userId/messages",
  service = {
    find = function(_, params)
      return { route = params.route, query = params.query }
    end,

    get = function(_, id, params)
      return { id = id == nil and null or id, route = params.route, query = params.query }
    end,

    create = function(_, data, params)
      return { data = data, route = params.route }
    end,
  },
}
