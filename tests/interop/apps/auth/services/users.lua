-- Users as the Feathers generator makes them: anybody may sign up (create); everything
-- else needs a login; passwords are stored as bcrypt hashes and never leave the server.
local memory = require "plume.adapters.memory"
local auth = require "plume.authentication"


local authenticate = auth.hooks.authenticate("jwt")


return {
  service = memory.new({ paginate = { default = 10, max = 50 } }),
  hooks = {
    before = {
      find = { authenticate },
      get = { authenticate },
      create = { auth.hooks.hash_password("password") },
      patch = { authenticate, auth.hooks.hash_password("password") },
      update = { authenticate, auth.hooks.hash_password("password") },
      remove = { authenticate },
    },
    after = {
      all = { auth.hooks.protect("password") },
    },
  },
}
