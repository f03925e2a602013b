-- Authentication strategies (spec/feathers.md §9.2, §9.6): the base every strategy shares
-- (Feathers' AuthenticationBaseStrategy) and the JWT strategy: it checks access tokens,
-- loads the entity they name, reads tokens from the Authorization header of a handshake,
-- and keeps a connection's login: connection.authentication and connection[entity], and
-- a timer that acts when the token expires.
--
--   local jwt_strategy = auth.JWTStrategy()
--   function jwt_strategy:get_entity_query(params) return { active = true } end
--   authentication:register("jwt", jwt_strategy)
--
-- Configuration: app:get("authentication").jwt = { header = "Authorization", schemes =
-- { "Bearer", "JWT" }, entity, entityId, service, expiry = "disconnect" | "logout" }.
-- expiry (a Plume option, reliability.md §4.5 #37) says what an expired token does to a
-- live connection: "disconnect" (Feathers: the app event disconnect, the socket closes)
-- or "logout" (its login is dropped, it leaves every channel, the socket stays).

local core = require "plume.core"
local errors = require "plume.errors"
local jwt = require "plume.authentication.jwt"
local util = require "plume.util"


local type = type
local pairs = pairs
local ipairs = ipairs
local error = error
local pcall = pcall
local xpcall = xpcall
local tostring = tostring
local setmetatable = setmetatable
local string_lower = string.lower
local string_find = string.find
local math_max = math.max
local math_min = math.min
local math_floor = math.floor
local truthy = util.truthy
local json_object = util.object
local NotAuthenticated = errors.NotAuthenticated


local _M = {}


-- Runs fn in a task of its own after ms milliseconds (plume.core.after). Returns a
-- function that cancels it, or nil where the core has no timers (stock Lua); specs may
-- replace it.
function _M.after(ms, fn)
  local after = core.after
  if type(after) ~= "function" then
    return nil
  end

  local ok, timer = pcall(after, ms, fn)
  if not ok or timer == nil then
    return nil
  end

  return function()
    timer:cancel()
  end
end


local function copy(t)
  local result = {}
  if type(t) == "table" then
    for k, v in pairs(t) do
      result[k] = v
    end
  end

  return result
end


local function without(t, key)
  local result = copy(t)
  result[key] = nil
  return result
end


-- A class whose instances are made by calling it: Class(fields) -> instance.
local function class(parent)
  local cls = {}
  cls.__index = cls
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, fields)
      local instance = setmetatable(fields or {}, c)
      if type(instance.init) == "function" then
        instance:init()
      end

      return instance
    end,
  })
end

_M.class = class


-- {{ AuthenticationBaseStrategy ---------------------------------------------------------


local Base = class(nil)
Base.__name = "plume.authentication.strategy"
_M.BaseStrategy = Base


function Base:set_authentication(authentication)
  self.authentication = authentication
end


function Base:set_application(app)
  self.app = app
end


function Base:set_name(name)
  self.name = name
end


-- This strategy's section of the authentication configuration.
function Base:configuration()
  return self.authentication:configuration()[self.name]
end


-- The entity service (configuration().service), or nil.
function Base:entity_service()
  local config = self:configuration() or {}
  local service = config.service
  if not truthy(service) then
    return nil
  end

  return (self.app:service(service))
end


-- }} JWTStrategy -------------------------------------------------------------------------


local JWT = class(Base)
JWT.__name = "plume.authentication.jwt_strategy"
_M.JWTStrategy = JWT


local JWT_KEYS = {
  entity = true, entityId = true, service = true, header = true, schemes = true,
  expiry = true,
}


-- app -> strategy name -> connection -> function that cancels its expiry timer. Kept per
-- app and name, not per strategy object, so that a strategy made anew (a reloaded
-- service file) still finds the timers of the connections logged in before.
local TIMERS = setmetatable({}, { __mode = "k" })


function JWT:expiration_timers()
  local by_name = TIMERS[self.app]
  if by_name == nil then
    by_name = {}
    TIMERS[self.app] = by_name
  end

  local timers = by_name[self.name]
  if timers == nil then
    timers = setmetatable({}, { __mode = "k" })
    by_name[self.name] = timers
  end

  return timers
end


function JWT:configuration()
  local auth_config = self.authentication:configuration()
  local config = {
    service = auth_config.service,
    entity = auth_config.entity,
    entityId = auth_config.entityId,
    header = "Authorization",
    schemes = { "Bearer", "JWT" },
    expiry = "disconnect",
  }

  local own = auth_config[self.name]
  if type(own) == "table" then
    for k, v in pairs(own) do
      config[k] = v
    end
  end

  return config
end


function JWT:verify_configuration()
  local config = self:configuration()
  for key in pairs(config) do
    if not JWT_KEYS[key] then
      error("Invalid JwtStrategy option 'authentication." .. tostring(self.name) .. "."
            .. tostring(key) .. "'. Did you mean to set it in "
            .. "'authentication.jwtOptions'?", 0)
    end
  end

  if type(config.header) ~= "string" then
    error("The 'header' option for the " .. tostring(self.name)
          .. " strategy must be a string", 0)
  end

  if config.expiry ~= "disconnect" and config.expiry ~= "logout" then
    error("The 'expiry' option for the " .. tostring(self.name)
          .. " strategy must be \"disconnect\" or \"logout\"", 0)
  end
end


local function cancel_timer(self, connection)
  local timers = self:expiration_timers()
  local cancel = timers[connection]
  timers[connection] = nil
  if cancel then
    cancel()
  end
end


local function forget_login(self, connection)
  local entity = self:configuration().entity
  if entity ~= nil then
    connection[entity] = nil
  end

  connection.authentication = nil
  cancel_timer(self, connection)
end


-- The token of connection expired: the app event "disconnect" (the transport closes the
-- socket), or with expiry = "logout" the login is dropped and the app event "logout"
-- makes the connection leave its channels.
function JWT:expire(connection)
  local app = self.app
  self:expiration_timers()[connection] = nil
  if self:configuration().expiry == "logout" then
    local entity = self:configuration().entity
    local result = json_object({ authentication = connection.authentication })
    if entity ~= nil then
      result[entity] = connection[entity]
    end

    forget_login(self, connection)
    app:emit("logout", result, { connection = connection, provider = connection.provider,
                                 expired = true })
    return
  end

  app:emit("disconnect", connection)
end


-- Arms (or re-arms) the expiry timer of connection for the token expiring at exp.
function JWT:watch_expiry(connection, exp)
  cancel_timer(self, connection)
  if type(exp) ~= "number" then
    return
  end

  -- Whole milliseconds, at most 2^52 (a float exp from far in the future still fits).
  local delay = math_floor(math_min(math_max(0, exp * 1000 - jwt.now() * 1000), 2 ^ 52))
  local timers = self:expiration_timers()
  local cancel
  cancel = _M.after(delay, function()
    if timers[connection] ~= cancel then
      return
    end

    local ok, err = xpcall(self.expire, errors.handler, self, connection)
    if not ok and self.app.log then
      self.app.log("error", "authentication: token expiry failed: "
                   .. tostring(err.stack or err.message))
    end
  end)

  timers[connection] = cancel
end


-- §9.6: "login" with a token stores it (and the entity) on the connection and watches its
-- expiry; "logout" of that token and "disconnect" drop it.
function JWT:handle_connection(event, connection, result)
  local token = type(result) == "table" and result.accessToken or nil
  local current = connection.authentication
  local valid_logout = event == "logout" and type(current) == "table"
    and type(result) == "table" and current.accessToken == result.accessToken

  if truthy(token) and event == "login" then
    local authentication = result.authentication
    local payload = type(authentication) == "table" and authentication.payload
    if type(payload) ~= "table" then
      payload = self.authentication:verify_access_token(token)
    end

    self:watch_expiry(connection, payload.exp)

    connection.authentication = json_object({ strategy = self.name, accessToken = token })
    local entity = self:configuration().entity
    if entity ~= nil then
      connection[entity] = result[entity]
    end
  elseif event == "disconnect" or valid_logout then
    forget_login(self, connection)
  end
end


-- The query used to load the entity ({}; override to restrict it).
function JWT.get_entity_query()
  return {}
end


-- The entity with id: an internal get, then for calls from clients an external get with
-- params[entity] set, so that the entity service's hooks (protect) shape it.
function JWT:get_entity(id, params)
  local entity_service = self:entity_service()
  local entity = self:configuration().entity
  if entity_service == nil then
    error(NotAuthenticated("Could not find entity service"))
  end

  local internal = without(params, "provider")
  internal.query = self:get_entity_query(params)
  local result = entity_service:get(id, internal)
  if not params.provider then
    return result
  end

  local external = copy(params)
  external[entity] = result
  return entity_service:get(id, external)
end


function JWT.get_entity_id(_, result)
  return result.authentication.payload.sub
end


-- { strategy = "jwt", accessToken } -> { accessToken, authentication = { strategy,
-- accessToken, payload }, [entity] = … }.
function JWT:authenticate(authentication, params)
  local token = authentication.accessToken
  local entity = self:configuration().entity
  if not truthy(token) then
    error(NotAuthenticated("No access token"))
  end

  local payload = self.authentication:verify_access_token(token, params.jwt)
  local result = json_object({
    accessToken = token,
    authentication = json_object({
      strategy = "jwt",
      accessToken = token,
      payload = payload,
    }),
  })

  if entity == nil then
    return result
  end

  local id = self:get_entity_id(result, params)
  result[entity] = self:get_entity(id, params)

  return result
end


-- The authentication request in req.headers[header]: "<scheme> <token>" with one of the
-- schemes (case-insensitive), or a bare token; nil for another scheme or no header.
function JWT:parse(req)
  local config = self:configuration()
  local headers = type(req) == "table" and req.headers
  local value = type(headers) == "table" and headers[string_lower(config.header)] or nil
  if type(value) ~= "string" or value == "" then
    return nil
  end

  local scheme, token = value:match("(%S+)%s+(%S+)")
  local known = false
  if scheme ~= nil then
    local lower = string_lower(scheme)
    for _, name in ipairs(config.schemes or {}) do
      if string_find(lower, string_lower(name), 1, true) then
        known = true
        break
      end
    end

    if not known then
      return nil
    end
  end

  return json_object({
    strategy = self.name,
    accessToken = known and token or value,
  })
end


return _M
