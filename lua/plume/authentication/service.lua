-- The authentication service (spec/feathers.md §9.1-§9.3, §2.1 step 3): Feathers'
-- AuthenticationBase and AuthenticationService in Lua. It keeps the strategies, makes and
-- checks access tokens, and as a service answers create (log in) and remove (log out).
-- Around create and remove it emits the app events login/logout for calls from clients
-- and lets every strategy update the connection (§9.6). It also gives the transport its
-- handshake authentication (app.handshake_authentication) and the app its
-- app:default_authentication([path]).
--
--   local auth = require "plume.authentication"
--   app:set("authentication", {
--     secret = "…", authStrategies = { "jwt", "local" },
--     ["local"] = { usernameField = "email", passwordField = "password" },
--   })
--   local authentication = auth.AuthenticationService(app)
--   authentication:register("jwt", auth.JWTStrategy())
--   authentication:register("local", auth.LocalStrategy())
--   app:use("authentication", authentication)
--
-- Configuration is read at each use from app:get(config_key) over the defaults below, a
-- shallow merge as in Feathers: a `jwtOptions` table given replaces the default one.
-- `entity = false` (or json.null) means tokens carry no entity.

local core = require "plume.core"
local application = require "plume.application"
local errors = require "plume.errors"
local jwt = require "plume.authentication.jwt"
local util = require "plume.util"


local type = type
local pairs = pairs
local ipairs = ipairs
local error = error
local xpcall = xpcall
local tostring = tostring
local select = select
local setmetatable = setmetatable
local table_unpack = table.unpack
local is_array = util.is_array
local is_null = util.is_null
local truthy = util.truthy
local to_string = util.to_string
local json_object = util.object
local contains = util.contains
local log_failure = util.log_failure
local crypto = core.crypto
local NotAuthenticated = errors.NotAuthenticated


local _M = {}


-- Feathers' defaultOptions, plus entity/service as the generator writes them (§9.1).
function _M.defaults()
  return {
    authStrategies = {},
    entity = "user",
    service = "users",
    jwtOptions = {
      header = { typ = "access" },
      audience = "https://yourdomain.com",
      issuer = "feathers",
      algorithm = "HS256",
      expiresIn = "1d",
    },
  }
end


-- lodash's merge for configuration tables: nested objects merge into fresh copies, lists
-- and other values replace.
local function merge(target, ...)
  for i = 1, select("#", ...) do
    local source = select(i, ...)
    if type(source) == "table" then
      for k, v in pairs(source) do
        if type(v) == "table" and not is_array(v) then
          local current = target[k]
          if type(current) ~= "table" or is_array(current) then
            current = {}
          end

          target[k] = merge(current, v)
        else
          target[k] = v
        end
      end
    end
  end

  return target
end

_M.merge = merge


local function copy(t)
  local result = {}
  if type(t) == "table" then
    for k, v in pairs(t) do
      result[k] = v
    end
  end

  return result
end


local Service = {}
Service.__index = Service
Service.__name = "plume.authentication.service"


-- True when value is an authentication service (or a registered wrapper of one).
function _M.is_service(value)
  return type(value) == "table" and type(value.authenticate) == "function"
    and type(value.get_strategies) == "function" and value.config_key ~= nil
end


-- The authentication service at path, or the first one registered whose configuration
-- key is app:get("defaultAuthentication"); nil when there is none.
function _M.default_authentication(app, path)
  if path ~= nil then
    local service = app:service(path)
    return service
  end

  local key = app:get("defaultAuthentication")
  for _, location in ipairs(application.paths(app)) do
    local service = app.services[location]
    if _M.is_service(service) and service.config_key == key then
      return service
    end
  end

  return nil
end


-- The transport's handshake hook (§2.1 step 3): authenticates a new connection from its
-- handshake headers (Authorization: Bearer …) before "connection" is emitted. An error
-- refuses the connection.
function _M.handshake_authentication(app, socket)
  local service = _M.default_authentication(app)
  if service == nil then
    return
  end

  local config = service:configuration()
  local names = config.parseStrategies or config.authStrategies or {}
  if #names == 0 then
    return
  end

  local authentication = service:parse(socket.handshake or {}, nil, table_unpack(names))
  if authentication == nil then
    return
  end

  local connection = socket.feathers
  connection.authentication = authentication
  service:create(authentication, { provider = "socketio", connection = connection })
end


-- Apps whose "disconnect" listener is installed: one per app, however many services
-- are made (a reloaded service file makes a new one each time).
local LISTENING = setmetatable({}, { __mode = "k" })


-- On the app event "disconnect", every registered authentication service lets its
-- strategies drop the connection's login (§2.3).
local function disconnect_listener(app)
  return function(connection)
    if type(connection) ~= "table" then
      return
    end

    local seen = {}
    for _, location in ipairs(application.paths(app)) do
      local service = app.services[location]
      if _M.is_service(service) and not seen[service.state] then
        seen[service.state] = true
        local ok, err = xpcall(service.handle_connection, errors.handler, service,
                               "disconnect", connection)
        if not ok then
          log_failure(app, "authentication: disconnect handling failed", err)
        end
      end
    end
  end
end


-- AuthenticationService(app [, config_key = "authentication"] [, options]): options are
-- merged into app:get(config_key).
function _M.new(app, config_key, options)
  if type(app) ~= "table" or type(app.use) ~= "function" then
    error("An application instance has to be passed to the authentication service", 2)
  end

  if type(config_key) == "table" and options == nil then
    config_key, options = nil, config_key
  end

  config_key = config_key or "authentication"

  -- Fields live in `state`, shared by the service table and every wrapper app:use puts
  -- in front of it (writes to a wrapper would not reach the service).
  local self = setmetatable({
    app = app,
    config_key = config_key,
    state = {
      strategies = {},
      names = {},
      is_ready = false,
      hooked = setmetatable({}, { __mode = "k" }),
    },
  }, Service)

  app:set("defaultAuthentication", app:get("defaultAuthentication") or config_key)
  app:set(config_key, merge({}, app:get(config_key), options))

  if not LISTENING[app] then
    LISTENING[app] = true
    app:on("disconnect", disconnect_listener(app))
  end

  if app.default_authentication == nil then
    app.default_authentication = _M.default_authentication
  end

  if app.handshake_authentication == nil then
    app.handshake_authentication = _M.handshake_authentication
  end

  return self
end


-- The configuration: the defaults overlaid with app:get(config_key) (a fresh table).
function Service:configuration()
  local config = _M.defaults()
  local settings = self.app:get(self.config_key)
  if type(settings) == "table" then
    for k, v in pairs(settings) do
      config[k] = v
    end

    local entity = settings.entity
    if entity == false or (entity ~= nil and is_null(entity)) then
      config.entity = nil
    end
  end

  return config
end


-- Registers strategy under name (set_name, set_application, set_authentication,
-- verify_configuration are called when the strategy has them).
function Service:register(name, strategy)
  if type(name) ~= "string" or type(strategy) ~= "table" then
    error("register(name, strategy) takes a name and a strategy table", 2)
  end

  if type(strategy.set_name) == "function" then
    strategy:set_name(name)
  end

  if type(strategy.set_application) == "function" then
    strategy:set_application(self.app)
  end

  if type(strategy.set_authentication) == "function" then
    strategy:set_authentication(self)
  end

  if type(strategy.verify_configuration) == "function" then
    strategy:verify_configuration()
  end

  local state = self.state
  if state.strategies[name] == nil then
    state.names[#state.names + 1] = name
  end

  state.strategies[name] = strategy

  if state.is_ready and type(strategy.setup) == "function" then
    strategy:setup(self, name)
  end

  return self
end


-- Names of the registered strategies, in registration order.
function Service:strategy_names()
  return copy(self.state.names)
end


-- The registered strategies among the given names, in that order.
function Service:get_strategies(...)
  local list = {}
  local strategies = self.state.strategies
  for i = 1, select("#", ...) do
    local name = select(i, ...)
    local strategy = type(name) == "string" and strategies[name] or nil
    if strategy then
      list[#list + 1] = strategy
    end
  end

  return list
end


function Service:get_strategy(name)
  if type(name) ~= "string" then
    return nil
  end

  return self.state.strategies[name]
end


-- A new access token for payload; options extend jwtOptions (jwtid defaults to a UUID).
function Service:create_access_token(payload, options, secret)
  local config = self:configuration()
  local merged = merge({}, config.jwtOptions, options)
  if merged.jwtid == nil then
    merged.jwtid = crypto.uuid()
  end

  return jwt.sign(payload or {}, secret or config.secret, merged)
end


-- The payload of a valid access token, or raises NotAuthenticated with the verifier's
-- message and data ({ name = "TokenExpiredError", expiredAt = … }, §9.2).
function Service:verify_access_token(token, options, secret)
  local config = self:configuration()
  local merged = merge({}, config.jwtOptions, options)
  if merged.algorithm ~= nil and merged.algorithms == nil then
    merged.algorithms = type(merged.algorithm) == "table" and merged.algorithm
      or { merged.algorithm }
    merged.algorithm = nil
  end

  local payload, err = jwt.verify(token, secret or config.secret, merged)
  if payload == nil then
    error(NotAuthenticated(err.message, err))
  end

  return payload
end


-- Authenticates the request `authentication` ({ strategy = name, ... }) with one of the
-- allowed strategy names; the strategy gets params with authenticated = true.
function Service:authenticate(authentication, params, ...)
  local name = type(authentication) == "table" and authentication.strategy or nil
  local strategy = self:get_strategy(name)
  local allowed = contains({ ... }, name)

  if type(authentication) ~= "table" or strategy == nil or not allowed then
    local info = ""
    if not truthy(name) then
      info = " (no `strategy` set)"
    elseif not allowed then
      info = " (strategy not allowed in authStrategies)"
    end

    error(NotAuthenticated("Invalid authentication information" .. info))
  end

  local strategy_params = copy(params)
  strategy_params.authenticated = true

  return strategy:authenticate(authentication, strategy_params)
end


-- Lets every strategy that can handle the connection event ("login", "logout",
-- "disconnect") update connection.
function Service:handle_connection(event, connection, result)
  local state = self.state
  for _, name in ipairs(state.names) do
    local strategy = state.strategies[name]
    if type(strategy.handle_connection) == "function" then
      strategy:handle_connection(event, connection, result)
    end
  end
end


-- The first authentication request the named strategies find in req (a request or a
-- Socket.IO handshake: { headers = … }), or nil.
function Service:parse(req, res, ...)
  for _, strategy in ipairs(self:get_strategies(...)) do
    if type(strategy.parse) == "function" then
      local value = strategy:parse(req, res)
      if value ~= nil then
        return value
      end
    end
  end

  return nil
end


-- The JWT payload for a login result: params.payload or {}.
function Service.get_payload(_, _, params)
  local payload = params.payload
  if type(payload) == "table" then
    return payload
  end

  return {}
end


-- The JWT options for a login result: params.jwtOptions / params.jwt, with the subject
-- set to the entity's id.
function Service:get_token_options(result, params)
  local config = self:configuration()
  local options = merge({}, params.jwtOptions, params.jwt)
  local entity, service = config.entity, config.service
  local value = truthy(service) and entity and result[entity] or nil

  if truthy(value) and options.subject == nil then
    local id_property = config.entityId
    if id_property == nil then
      local entity_service = self.app:service(service)
      id_property = entity_service and entity_service.id
    end

    local subject = type(value) == "table" and id_property ~= nil and value[id_property]
      or nil
    if subject == nil or is_null(subject) then
      error(NotAuthenticated("Can not set subject from " .. entity .. "."
                             .. to_string(id_property)))
    end

    options.subject = to_string(subject)
  end

  return options
end


-- service:create(data, params): logs in (§9.2). Returns { accessToken, authentication =
-- { strategy, …, payload }, [entity] = … }.
function Service:create(data, params)
  params = params or {}
  local config = self:configuration()
  local names = params.authStrategies or config.authStrategies or {}
  if #names == 0 then
    error(NotAuthenticated("No authentication strategies allowed for creating a JWT "
                           .. "(`authStrategies`)"))
  end

  local result = self:authenticate(data, params, table_unpack(names))
  if truthy(result.accessToken) then
    return result
  end

  local payload = self:get_payload(result, params)
  local options = self:get_token_options(result, params)
  local token = self:create_access_token(payload, options, params.secret)

  local answer = json_object({})
  for k, v in pairs(result) do
    answer[k] = v
  end

  answer.accessToken = token

  local authentication = json_object({})
  if type(result.authentication) == "table" then
    for k, v in pairs(result.authentication) do
      authentication[k] = v
    end
  end

  authentication.payload = jwt.decode(token)
  answer.authentication = authentication

  return answer
end


-- service:remove(id, params): logs out (§9.3). id, when given, must be the current
-- access token. Returns the authentication result of the token being dropped.
function Service:remove(id, params)
  params = params or {}
  local authentication = params.authentication
  if id ~= nil and not is_null(id) then
    if type(authentication) ~= "table" or id ~= authentication.accessToken then
      error(NotAuthenticated("Invalid access token"))
    end
  end

  local config = self:configuration()
  return self:authenticate(authentication, params, table_unpack(config.authStrategies or {}))
end


-- Around create/remove: the app event for calls from clients (Feathers' event hook).
local function event_hook(event)
  return function(ctx, next_fn)
    next_fn()
    local params = ctx.params
    if params.provider and truthy(ctx.result) then
      ctx.app:emit(event, ctx.result, params, ctx)
    end
  end
end


-- Around create/remove: the strategies update the connection (Feathers' connection hook).
local function connection_hook(event)
  return function(ctx, next_fn)
    next_fn()
    local connection = ctx.params.connection
    if type(connection) == "table" then
      ctx.service:handle_connection(event, connection, ctx.result)
    end
  end
end

_M.event_hook = event_hook
_M.connection_hook = connection_hook


local function check_setup(self, app)
  local config = self:configuration()
  if type(config.secret) ~= "string" or config.secret == "" then
    error("A 'secret' must be provided in your authentication configuration", 0)
  end

  if config.jwtOptions and config.jwtOptions.algorithm ~= nil
      and config.jwtOptions.algorithm ~= jwt.ALGORITHM then
    error("Plume signs and verifies HS256 tokens only (jwtOptions.algorithm)", 0)
  end

  local entity, service = config.entity, config.service
  if entity ~= nil then
    if service == nil or service == false then
      error("The 'service' option is not set in the authentication configuration", 0)
    end

    local entity_service = app:service(service)
    if entity_service == nil then
      error("The '" .. tostring(service) .. "' entity service does not exist (set to "
            .. "'null' if it is not required)", 0)
    end

    if entity_service.id == nil and config.entityId == nil then
      error("The '" .. tostring(service) .. "' service does not have an 'id' property "
            .. "and no 'entityId' option is set.", 0)
    end
  end
end


-- Called by the app (app:setup(), or app:use after it): checks the configuration, sets
-- up the strategies, installs the login/logout hooks and publishes no events.
function Service:setup(app)
  app = app or self.app
  local state = self.state
  state.is_ready = true
  for _, name in ipairs(state.names) do
    local strategy = state.strategies[name]
    if type(strategy.setup) == "function" then
      strategy:setup(self, name)
    end
  end

  check_setup(self, app)

  -- self is the wrapper app:use registered; each wrapper gets the hooks once.
  if type(self.hooks) == "function" and not state.hooked[self] then
    state.hooked[self] = true
    self:hooks({
      create = { event_hook("login"), connection_hook("login") },
      remove = { event_hook("logout"), connection_hook("logout") },
    })
  end

  if type(self.publish) == "function" then
    self:publish(function()
      return nil
    end)
  end
end


_M.Service = Service


return _M
