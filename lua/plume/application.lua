-- The Feathers application (spec/feathers.md §5, §4, §6): services registered by path,
-- settings, configure(), app-level hooks, channels and publishers, setup/teardown and
-- the app event emitter. Lua idiom of Feathers' Application:
--
--   local app = application.new()
--   app:use("messages", memory.new(), { methods = { "find", "create" } })
--   app:service("messages"):hooks({ before = { create = add_timestamp } })
--   app:on("connection", function(connection) app:channel("everybody"):join(connection) end)
--   app:publish(function(data, context) return app:channel("everybody") end)
--
-- A service registered again at the same path replaces the old one (its teardown runs),
-- which is what hot reload needs; channels and connections live on the app and survive.

local channels = require "plume.channels"
local errors = require "plume.errors"
local events = require "plume.events"
local hooks = require "plume.hooks"
local router = require "plume.router"
local service_mod = require "plume.service"
local util = require "plume.util"


local type = type
local error = error
local pairs = pairs
local ipairs = ipairs
local xpcall = xpcall
local tostring = tostring
local setmetatable = setmetatable
local os_getenv = os.getenv
local io_stderr = io.stderr
local normalize_path = util.normalize_path
local log_failure = util.log_failure


local _M = {}


_M.VERSION = "0.1.0"


-- Private key of the app's internal state.
local KEY = setmetatable({}, { __tostring = function() return "plume.application" end })


local App = {}
App.__index = App
App.__name = "plume.application"


for _, name in ipairs(events.METHODS) do
  App[name] = events[name]
end


local STANDARD_EVENTS_SET = {}
for _, name in ipairs(service_mod.STANDARD_EVENTS) do
  STANDARD_EVENTS_SET[name] = true
end


local function default_log(level, msg)
  io_stderr:write("[plume] ", tostring(level), ": ", tostring(msg), "\n")
end


function _M.new()
  local names = {}
  local app = setmetatable({
    services = {},
    settings = {
      env = os_getenv("PLUME_ENV") or os_getenv("NODE_ENV") or "development",
    },
    channels = names,
    mixins = {},
    log = default_log,
    version = _M.VERSION,
  }, App)

  app[KEY] = {
    store = hooks.new_store(),
    router = router.new(),
    paths = {},
    registry = channels.new_registry(names),
    publishers = {},
    is_setup = false,
    on_use = {},
    version = 0,
    union = nil,
    union_version = -1,
  }

  return app
end


function _M.is_app(value)
  return type(value) == "table" and value[KEY] ~= nil
end


function App:get(name)
  return self.settings[name]
end


function App:set(name, value)
  self.settings[name] = value
  return self
end


-- Calls fn(app) and returns the app (app:configure(plugin)).
function App:configure(fn)
  fn(self)
  return self
end


-- Returns the hook-enabled service at path, or nil and a message.
function App:service(path)
  if type(path) ~= "string" then
    return nil, "Can not find service '" .. tostring(path) .. "'"
  end

  local location = normalize_path(path)
  local wrapper = self.services[location]
  if wrapper == nil then
    return nil, "Can not find service '" .. location .. "'"
  end

  return wrapper
end


-- Resolves a requested path (placeholders, ":__id") to service, route params; nil if none.
function App:lookup(path)
  local route = util.object({})
  local data = self[KEY].router:lookup(path, route)
  if data == nil then
    return nil
  end

  local fixed = data.route_params
  if fixed then
    for k, v in pairs(fixed) do
      if route[k] == nil then
        route[k] = v
      end
    end
  end

  return data.service, route
end


local function call_teardown(app, wrapper, path)
  if type(wrapper.teardown) ~= "function" then
    return
  end

  local ok, err = xpcall(wrapper.teardown, errors.handler, wrapper, app, path)
  if not ok then
    log_failure(app, "teardown of service '" .. path .. "' failed", err)
  end
end


local function register(app, state, location, service, options)
  local wrapper = service_mod.wrap(app, state.store, location, service, options)
  local wstate = service_mod.state(wrapper)
  local opts = wstate.options
  wstate.raw_options = options

  wrapper.publish = function(self, event, fn)
    channels.register_publisher(self[service_mod.KEY].publishers, opts.service_events_set,
                                event, fn)
    return self
  end

  for _, event in ipairs(opts.service_events) do
    wrapper:on(event, function(data, ctx)
      channels.publish(app, state.publishers, wrapper, location, wstate.publishers, event,
                       data, ctx)
    end)
  end

  for _, mixin in ipairs(app.mixins) do
    mixin(wrapper, location, opts)
  end

  local old = app.services[location]
  local entry = { service = wrapper, route_params = opts.route_params }
  state.router:insert(location, entry, true)
  state.router:insert(location == "/" and ":__id" or location .. "/:__id", entry, true)

  app.services[location] = wrapper
  if old == nil then
    state.paths[#state.paths + 1] = location
  end

  state.version = state.version + 1

  if old ~= nil then
    call_teardown(app, old, location)
  end

  for _, fn in ipairs(state.on_use) do
    fn(wrapper, location)
  end

  if state.is_setup and type(wrapper.setup) == "function" then
    wrapper:setup(app, location)
  end

  return wrapper
end


-- Registers service at path (Feathers app.use). A Plume app as service mounts each of its
-- services under path/. Registering at a used path replaces the service there.
function App:use(path, service, options)
  if type(path) ~= "string" then
    error("'" .. tostring(path) .. "' is not a valid service path.", 2)
  end

  local state = self[KEY]
  local location = normalize_path(path)

  if _M.is_app(service) then
    local sub_state = service[KEY]
    for _, sub_path in ipairs(sub_state.paths) do
      local sub = service_mod.state(service.services[sub_path])
      local full = location == "/" and sub_path or location .. "/" .. sub_path
      self:use(full, sub.service, sub.raw_options)
    end

    return self
  end

  -- A service of this or another app: register what it wraps (hooks are per path).
  local wrapped = service_mod.state(service)
  if wrapped then
    if options == nil then
      options = wrapped.raw_options
    end

    service = wrapped.service
  end

  register(self, state, location, service, options)

  return self
end


-- Removes the service at path (its teardown runs) and returns it.
function App:unuse(path)
  local state = self[KEY]
  local location = normalize_path(path)
  local wrapper = self.services[location]
  if wrapper == nil then
    return nil
  end

  call_teardown(self, wrapper, location)

  state.router:remove(location)
  state.router:remove(location == "/" and ":__id" or location .. "/:__id")
  self.services[location] = nil
  for i, p in ipairs(state.paths) do
    if p == location then
      table.remove(state.paths, i)
      break
    end
  end

  state.version = state.version + 1

  return wrapper
end


-- App hooks: { before=, after=, error=, around= }, { setup=, teardown= }, or around hooks
-- (a list, or a table keyed by method names).
function App:hooks(map)
  hooks.register_app(self[KEY].store, map)
  return self
end


-- app:publish([event,] fn): event must be a standard event (created, updated, ...).
function App:publish(event, fn)
  channels.register_publisher(self[KEY].publishers, STANDARD_EVENTS_SET, event, fn)
  return self
end


function App:channel(...)
  return channels.channel(self[KEY].registry, ...)
end


local function run_lifecycle(app, kind, server, fn)
  local list = app[KEY].store[kind]
  if #list == 0 then
    fn()
    return app
  end

  local ctx = { app = app, server = server, method = kind, type = "around", self = app }
  hooks.run_around(ctx, list, fn)

  return app
end


-- Calls setup(app, path) of every service in registration order (after this, services
-- registered later are set up at once), inside the app's setup hooks.
function App:setup(server)
  local state = self[KEY]
  return run_lifecycle(self, "setup", server, function()
    state.is_setup = true
    for _, path in ipairs(state.paths) do
      local wrapper = self.services[path]
      if wrapper and type(wrapper.setup) == "function" then
        wrapper:setup(self, path)
      end
    end
  end)
end


-- Calls teardown(app, path) of every service, inside the app's teardown hooks.
function App:teardown(server)
  local state = self[KEY]
  return run_lifecycle(self, "teardown", server, function()
    state.is_setup = false
    for _, path in ipairs(state.paths) do
      local wrapper = self.services[path]
      if wrapper and type(wrapper.teardown) == "function" then
        wrapper:teardown(self, path)
      end
    end
  end)
end


-- Internal API for the transport -------------------------------------------------------


-- Union of the `methods` of every registered service (list, registration order).
function _M.methods_union(app)
  local state = app[KEY]
  if state.union_version == state.version then
    return state.union
  end

  local seen = {}
  local union = {}
  for _, path in ipairs(state.paths) do
    local wstate = service_mod.state(app.services[path])
    for _, name in ipairs(wstate.options.methods) do
      if not seen[name] then
        seen[name] = true
        union[#union + 1] = name
      end
    end
  end

  state.union = union
  state.union_version = state.version

  return union
end


-- Registered paths in registration order.
function _M.paths(app)
  return app[KEY].paths
end


-- Calls fn(wrapper, path) after each later app:use.
function _M.on_use(app, fn)
  local list = app[KEY].on_use
  list[#list + 1] = fn
end


-- Removes connection from every channel.
function _M.leave_channels(app, connection)
  channels.leave_all(app[KEY].registry, connection)
end


-- True when the app runs in production (no stacks in error acknowledgements).
function _M.is_production(app)
  return app.settings.env == "production"
end


return _M
