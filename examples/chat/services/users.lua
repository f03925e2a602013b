-- services/users.lua: the default app's users, kept in memory. Anybody may sign up (create
-- with an email and a password); everything else needs a login, and a user may change
-- or delete only their own record. Passwords are stored as bcrypt hashes and never
-- reach a client.
local memory = require "plume.adapters.memory"
local errors = require "plume.errors"
local auth = require "plume.authentication"


local authenticate = auth.hooks.authenticate("jwt")


-- Sign-up: a plausible email, a password of 8 characters or more, nothing else.
local function check_sign_up(context)
  local email, password = context.data.email, context.data.password
  if type(email) ~= "string" or not email:match("^[^%s@]+@[^%s@]+$") then
    error(errors.BadRequest("Please enter a valid email address", { field = "email" }))
  end

  if type(password) ~= "string" or #password < 8 then
    error(errors.BadRequest("The password needs at least 8 characters", { field = "password" }))
  end

  context.data = { email = email, password = password }
end


-- One account per email: the login looks users up by it.
local function unique_email(context)
  local users = context.app:service("users")
  local taken = users:find({ query = { email = context.data.email, ["$limit"] = 0 } })
  if taken.total > 0 then
    error(errors.Conflict("This email is already signed up: log in instead",
                          { field = "email" }))
  end
end


-- Clients may patch or remove their own record only.
local function only_self(context)
  local params = context.params
  if params.provider and tostring(context.id) ~= tostring(params.user.id) then
    error(errors.Forbidden("You can only change your own account"))
  end
end


return {
  service = memory.new({ paginate = { default = 10, max = 50 } }),
  methods = { "find", "get", "create", "patch", "remove" },
  hooks = {
    before = {
      find = { authenticate },
      get = { authenticate },
      create = { check_sign_up, auth.hooks.hash_password("password"), unique_email },
      patch = { authenticate, only_self, auth.hooks.hash_password("password") },
      remove = { authenticate, only_self },
    },
    after = {
      all = { auth.hooks.protect("password") },
    },
  },
}
