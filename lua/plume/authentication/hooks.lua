-- The authentication hooks (spec/feathers.md §9.4, §9.5): authenticate (before or around,
-- on the services a login protects), hash_password (before create/update/patch of the
-- entity service) and protect (after: the listed fields never reach a client).
--
--   local auth = require "plume.authentication"
--   app:service("messages"):hooks({ around = { all = { auth.hooks.authenticate("jwt") } } })
--   app:service("users"):hooks({
--     before = { create = { auth.hooks.hash_password("password") } },
--     after = { all = { auth.hooks.protect("password") } },
--   })
--
-- hashPassword is another name of hash_password (Feathers' spelling).

local errors = require "plume.errors"
local local_strategy = require "plume.authentication.local"
local service_mod = require "plume.authentication.service"
local util = require "plume.util"


local type = type
local pairs = pairs
local error = error
local select = select
local getmetatable = getmetatable
local setmetatable = setmetatable
local string_find = string.find
local string_sub = string.sub
local table_unpack = table.unpack
local is_array = util.is_array
local is_null = util.is_null
local truthy = util.truthy
local json_array = util.array
local default_authentication = service_mod.default_authentication
local NotAuthenticated = errors.NotAuthenticated


local _M = {}


local function copy(t)
  local result = setmetatable({}, getmetatable(t))
  for k, v in pairs(t) do
    result[k] = v
  end

  return result
end


-- authenticate("jwt" [, "api-key", …]) or authenticate({ strategies = { … }, service =
-- path }): a before or around hook. Calls carrying params.authentication are
-- authenticated with one of the strategies and get params.authenticated = true plus the
-- result (params.user, params.authentication …); other calls from clients fail with
-- NotAuthenticated "Not authenticated"; internal calls pass.
function _M.authenticate(settings, ...)
  local strategies, path
  if type(settings) == "string" then
    strategies = { settings, ... }
  elseif type(settings) == "table" then
    strategies = settings.strategies
    path = settings.service
  end

  if type(strategies) ~= "table" or #strategies == 0 then
    error("The authenticate hook needs at least one allowed strategy", 2)
  end

  return function(ctx, next_fn)
    local app, params = ctx.app, ctx.params
    local kind = ctx.type
    if kind ~= nil and kind ~= "before" and kind ~= "around" then
      error(NotAuthenticated("The authenticate hook must be used as a before hook"))
    end

    local auth_service = default_authentication(app, path)
    if auth_service == nil or type(auth_service.authenticate) ~= "function" then
      error(NotAuthenticated("Could not find a valid authentication service"))
    end

    if ctx.service == auth_service then
      error(NotAuthenticated("The authenticate hook does not need to be used on the "
                             .. "authentication service"))
    end

    if params.authenticated == true then
      if next_fn then
        return next_fn()
      end

      return ctx
    end

    local authentication = params.authentication
    if authentication ~= nil and not is_null(authentication) then
      local auth_params = copy(params)
      auth_params.provider = nil
      auth_params.authentication = nil

      local result = auth_service:authenticate(authentication, auth_params,
                                               table_unpack(strategies))
      local new_params = copy(params)
      for k, v in pairs(result) do
        if k ~= "accessToken" then
          new_params[k] = v
        end
      end

      new_params.authenticated = true
      ctx.params = new_params
    elseif params.provider then
      error(NotAuthenticated("Not authenticated"))
    end

    if next_fn then
      return next_fn()
    end

    return ctx
  end
end


-- A copy of data with the value at the dotted path replaced (nested tables copied).
local function set_path(data, path, value)
  local result = copy(data)
  local dot = string_find(path, ".", 1, true)
  if dot == nil then
    result[path] = value
    return result
  end

  local head = string_sub(path, 1, dot - 1)
  local inner = result[head]
  if type(inner) ~= "table" then
    inner = {}
  end

  result[head] = set_path(inner, string_sub(path, dot + 1), value)
  return result
end


-- hash_password(field [, { authentication = path, strategy = "local" }]): replaces
-- data[field] (each item's for array data) by its bcrypt hash, made by the local
-- strategy of the authentication service on the thread pool. Absent fields are left.
function _M.hash_password(field, options)
  if type(field) ~= "string" or field == "" then
    error("The hashPassword hook requires a field name option", 2)
  end

  options = options or {}

  return function(ctx, next_fn)
    local data = ctx.data
    if data ~= nil and not is_null(data) then
      local auth_service = default_authentication(ctx.app, options.authentication)
      local name = options.strategy or "local"
      if auth_service == nil or type(auth_service.get_strategies) ~= "function" then
        error(errors.BadRequest("Could not find an authentication service to hash password"))
      end

      local strategy = auth_service:get_strategies(name)[1]
      if strategy == nil or type(strategy.hash_password) ~= "function" then
        error(errors.BadRequest("Could not find '" .. name .. "' strategy to hash password"))
      end

      local function add_hash(item)
        if type(item) ~= "table" then
          return item
        end

        local password = local_strategy.get_path(item, field)
        if password == nil then
          return item
        end

        return set_path(item, field, strategy:hash_password(password, ctx.params))
      end

      if is_array(data) then
        local hashed = json_array({})
        for i = 1, #data do
          hashed[i] = add_hash(data[i])
        end

        ctx.data = hashed
      else
        ctx.data = add_hash(data)
      end
    end

    if next_fn then
      return next_fn()
    end

    return ctx
  end
end

_M.hashPassword = _M.hash_password


-- A copy of record without the fields (dotted paths reach into nested tables); arrays
-- and other values unchanged.
local function omit(record, fields)
  if type(record) ~= "table" or is_array(record) then
    return record
  end

  local result = copy(record)
  for i = 1, #fields do
    local path = fields[i]
    local dot = string_find(path, ".", 1, true)
    if dot == nil then
      result[path] = nil
    else
      local head = string_sub(path, 1, dot - 1)
      if type(result[head]) == "table" then
        result[head] = omit(result[head], { string_sub(path, dot + 1) })
      end
    end
  end

  return result
end


-- protect("password", …): an after (or around) hook; context.dispatch becomes a copy of
-- the result without the fields (each item of arrays and of a find page's data), and for
-- calls from clients context.result too. Events carry the dispatch, so the fields never
-- reach a client.
function _M.protect(...)
  local fields = { ... }
  for i = 1, select("#", ...) do
    if type(fields[i]) ~= "string" then
      error("protect takes field names", 2)
    end
  end

  return function(ctx, next_fn)
    if next_fn then
      next_fn()
    end

    local result = ctx.dispatch
    if not truthy(result) then
      result = ctx.result
    end

    if truthy(result) then
      local dispatch
      if is_array(result) then
        dispatch = json_array({})
        for i = 1, #result do
          dispatch[i] = omit(result[i], fields)
        end
      elseif type(result) == "table" and ctx.method == "find" and truthy(result.data) then
        dispatch = copy(result)
        local page = json_array({})
        local data = result.data
        for i = 1, #data do
          page[i] = omit(data[i], fields)
        end

        dispatch.data = page
      else
        dispatch = omit(result, fields)
      end

      ctx.dispatch = dispatch
      local params = ctx.params
      if type(params) == "table" and params.provider then
        ctx.result = dispatch
      end
    end

    return ctx
  end
end


return _M
