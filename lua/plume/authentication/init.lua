-- plume.authentication: Feathers authentication in Lua (spec/feathers.md §9, §10.4), so
-- the real @feathersjs/authentication-client logs in, re-authenticates after a reconnect
-- and logs out against Plume unchanged. The pieces mirror @feathersjs/authentication and
-- @feathersjs/authentication-local:
--
--   local auth = require "plume.authentication"
--
--   -- app.lua: the usual setup in one call (jwt, plus local when configured) …
--   app:set("authentication", {
--     secret = "a long random string", authStrategies = { "jwt", "local" },
--     ["local"] = { usernameField = "email", passwordField = "password" },
--   })
--   app:use("authentication", auth.service(app))
--
--   -- … or step by step, as in Feathers
--   local authentication = auth.AuthenticationService(app)
--   authentication:register("jwt", auth.JWTStrategy())
--   authentication:register("local", auth.LocalStrategy())
--   app:use("authentication", authentication)
--
--   -- services/users.lua
--   hooks = {
--     before = { create = { auth.hooks.hash_password("password") } },
--     after = { all = { auth.hooks.protect("password") } },
--   }
--   -- services/messages.lua
--   hooks = { around = { all = { auth.hooks.authenticate("jwt") } } }
--
-- Over sockets a successful create logs the connection in (connection.authentication,
-- connection.user, app event "login"), remove logs it out (app event "logout", the
-- connection leaves its channels), the token's expiry ends the login, and an
-- "Authorization: Bearer <token>" handshake header logs a connection in from the start.

local hooks = require "plume.authentication.hooks"
local jwt = require "plume.authentication.jwt"
local local_strategy = require "plume.authentication.local"
local service = require "plume.authentication.service"
local strategies = require "plume.authentication.strategies"


local type = type


local _M = {
  hooks = hooks,
  jwt = jwt,
  authenticate = hooks.authenticate,
  JWTStrategy = strategies.JWTStrategy,
  LocalStrategy = local_strategy.LocalStrategy,
  AuthenticationBaseStrategy = strategies.BaseStrategy,
  default_authentication = service.default_authentication,
  defaults = service.defaults,
}


-- AuthenticationService(app [, config_key] [, options]): a service without strategies.
function _M.AuthenticationService(app, config_key, options)
  return service.new(app, config_key, options)
end


-- auth.service(app [, options]): an AuthenticationService with the JWT strategy as "jwt"
-- and, when the configuration has a "local" section, the local strategy as "local".
-- options are merged into app:get("authentication") first.
function _M.service(app, options)
  local authentication = service.new(app, "authentication", options)
  authentication:register("jwt", strategies.JWTStrategy())
  if type(authentication:configuration()["local"]) == "table" then
    authentication:register("local", local_strategy.LocalStrategy())
  end

  return authentication
end


return _M
