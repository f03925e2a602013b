-- Says who the server thinks the caller is (login required).
local auth = require "plume.authentication"


return {
  service = {
    find = function(_, params)
      local authentication = params.authentication or {}
      return {
        email = params.user and params.user.email,
        authenticated = params.authenticated == true,
        strategy = authentication.strategy,
      }
    end,
  },
  hooks = {
    before = { find = { auth.hooks.authenticate("jwt") } },
  },
}
