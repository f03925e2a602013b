-- The local strategy (spec/feathers.md §9.2, ecosystem.md §1.6): username and password
-- checked against a bcrypt hash stored on the entity, as @feathersjs/authentication-local
-- does. Hashing and comparing run on the thread pool (plume.core.crypto), so a login
-- never blocks the loop. Unknown users cost one bcrypt comparison too: both failures say
-- "Invalid login" after about the same time (reliability.md §4.5 #37).
--
--   authentication:register("local", auth.LocalStrategy())
--   -- app:get("authentication")["local"] = { usernameField = "email",
--   --   passwordField = "password" [, hashSize = 10] [, errorMessage = "Invalid login"]
--   --   [, entityUsernameField] [, entityPasswordField] }
--
-- Stored hashes may be $2a$, $2b$ or $2y$ bcrypt (Feathers' bcryptjs rows work unchanged)
-- or $y$ yescrypt; new hashes are $2b$ with cost hashSize.

local core = require "plume.core"
local errors = require "plume.errors"
local strategies = require "plume.authentication.strategies"
local util = require "plume.util"


local type = type
local pairs = pairs
local ipairs = ipairs
local error = error
local pcall = pcall
local tostring = tostring
local string_find = string.find
local string_sub = string.sub
local crypto = core.crypto
local is_array = util.is_array
local truthy = util.truthy
local json_object = util.object
local NotAuthenticated = errors.NotAuthenticated


local _M = {}


local Local = strategies.class(strategies.BaseStrategy)
Local.__name = "plume.authentication.local_strategy"
_M.LocalStrategy = Local


-- The value at a dotted path of t ("profile.password"), as lodash's get.
function _M.get_path(t, path)
  local current = t
  local start = 1
  while type(current) == "table" do
    local dot = string_find(path, ".", start, true)
    if dot == nil then
      return current[string_sub(path, start)]
    end

    current = current[string_sub(path, start, dot - 1)]
    start = dot + 1
  end

  return nil
end


function Local:init()
  self.dummy_hashes = {} -- cost -> a hash of nothing anybody knows
end


function Local:configuration()
  local auth_config = self.authentication:configuration()
  local own = auth_config[self.name]
  if type(own) ~= "table" then
    own = {}
  end

  local config = {
    hashSize = 10,
    service = auth_config.service,
    entity = auth_config.entity,
    entityId = auth_config.entityId,
    errorMessage = "Invalid login",
    entityPasswordField = own.passwordField,
    entityUsernameField = own.usernameField,
  }

  for k, v in pairs(own) do
    config[k] = v
  end

  return config
end


function Local:verify_configuration()
  local config = self:configuration()
  for _, prop in ipairs({ "usernameField", "passwordField" }) do
    if type(config[prop]) ~= "string" then
      error("'" .. tostring(self.name) .. "' authentication strategy requires a '" .. prop
            .. "' setting", 0)
    end
  end
end


-- The query that finds the entity: { $limit = 1, [entityUsernameField] = username }.
function Local.get_entity_query(_, query)
  local result = json_object({ ["$limit"] = 1 })
  for k, v in pairs(query) do
    result[k] = v
  end

  return result
end


-- The entity whose username field is username (an internal find), or NotAuthenticated.
function Local:find_entity(username, params)
  local config = self:configuration()
  if not truthy(username) then
    error(NotAuthenticated(config.errorMessage))
  end

  local query = self:get_entity_query({ [config.entityUsernameField] = username }, params)
  local find_params = {}
  for k, v in pairs(params) do
    find_params[k] = v
  end

  find_params.query = query

  local entity_service = self:entity_service()
  if entity_service == nil then
    error(NotAuthenticated("Could not find entity service"))
  end

  local result = entity_service:find(find_params)
  local list = is_array(result) and result or (type(result) == "table" and result.data)
  if type(list) ~= "table" or list[1] == nil then
    error(NotAuthenticated(config.errorMessage))
  end

  return list[1]
end


-- The entity as the login returns it: itself for internal calls, else an external get
-- with params[entity] set (the entity service's hooks, e.g. protect, shape it).
function Local:get_entity(result, params)
  local entity_service = self:entity_service()
  local config = self:configuration()
  local entity_id = config.entityId
  if entity_id == nil and entity_service ~= nil then
    entity_id = entity_service.id
  end

  if entity_id == nil or result[entity_id] == nil then
    error(NotAuthenticated("Could not get local entity"))
  end

  if not params.provider then
    return result
  end

  local get_params = {}
  for k, v in pairs(params) do
    get_params[k] = v
  end

  get_params[config.entity] = result
  return entity_service:get(result[entity_id], get_params)
end


-- entity when password matches its stored hash, else NotAuthenticated.
function Local:compare_password(entity, password)
  local config = self:configuration()
  local hash = _M.get_path(entity, config.entityPasswordField)
  if type(hash) ~= "string" or hash == "" or type(password) ~= "string" then
    error(NotAuthenticated(config.errorMessage))
  end

  if crypto.bcrypt_check(password, hash) then
    return entity
  end

  error(NotAuthenticated(config.errorMessage))
end


-- A new bcrypt hash of password with cost hashSize (waits on the thread pool).
function Local:hash_password(password)
  if type(password) ~= "string" then
    error(errors.BadRequest("The password must be a string"))
  end

  if string_find(password, "\0", 1, true) then
    error(errors.BadRequest("The password must not contain NUL characters"))
  end

  local hash, err = crypto.bcrypt_hash(password, self:configuration().hashSize)
  if hash == nil then
    error(errors.GeneralError(err))
  end

  return hash
end


-- Spends the time of one comparison, so an unknown user answers as slowly as a wrong
-- password.
function Local:compare_nothing(password)
  local cost = self:configuration().hashSize
  local dummy = self.dummy_hashes[cost]
  if dummy == nil then
    dummy = crypto.bcrypt_hash(crypto.uuid(), cost)
    self.dummy_hashes[cost] = dummy
  end

  if type(password) == "string" and dummy ~= nil then
    crypto.bcrypt_check(password, dummy)
  end
end


-- { strategy = "local", [usernameField], [passwordField] } ->
-- { authentication = { strategy = "local" }, [entity] = … }.
function Local:authenticate(data, params)
  local config = self:configuration()
  local username = data[config.usernameField]
  local password = data[config.passwordField]
  if not truthy(password) or type(password) ~= "string" then
    error(NotAuthenticated(config.errorMessage))
  end

  local internal = {}
  for k, v in pairs(params) do
    internal[k] = v
  end

  internal.provider = nil

  if config.entity == nil then
    error(errors.GeneralError("The local strategy needs an entity (authentication.entity)"))
  end

  local ok, result = pcall(self.find_entity, self, username, internal)
  if not ok then
    if errors.is_error(result) and result.name == "NotAuthenticated" and truthy(username) then
      self:compare_nothing(password)
    end

    error(result, 0)
  end

  self:compare_password(result, password)

  return json_object({
    authentication = json_object({ strategy = self.name }),
    [config.entity] = self:get_entity(result, params),
  })
end


return _M
