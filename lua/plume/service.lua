-- Registered services (spec/feathers.md §5.1, §6.5, §4.2): option normalisation, the
-- protected names, and the hook-enabled wrapper app:use() puts in front of a service table.
--
-- The wrapper has the service as its __index (like Feathers' Object.create(service)), so
-- unhooked fields and methods stay reachable and methods run with self = the wrapper.
-- Hooked methods build a context and run the cached chain of their method:
--   event hook (outermost) -> app hooks -> service hooks -> the method.

local errors = require "plume.errors"
local events = require "plume.events"
local hooks = require "plume.hooks"
local util = require "plume.util"


local type = type
local error = error
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local setmetatable = setmetatable
local string_sub = string.sub
local is_array = util.is_array


local _M = {}


_M.STANDARD_METHODS = { "find", "get", "create", "update", "patch", "remove" }
_M.EVENT_MAP = { create = "created", update = "updated", patch = "patched", remove = "removed" }
_M.STANDARD_EVENTS = { "created", "updated", "patched", "removed" }


-- Argument names of each method; custom methods take (data, params).
_M.SIGNATURES = {
  find = { "params" },
  get = { "id", "params" },
  create = { "data", "params" },
  update = { "id", "data", "params" },
  patch = { "id", "data", "params" },
  remove = { "id", "params" },
}
local CUSTOM_SIGNATURE = { "data", "params" }


-- Position of params in the arguments (0-based, as in the wire format of §3.1).
function _M.params_position(method)
  local signature = _M.SIGNATURES[method] or CUSTOM_SIGNATURE
  return #signature - 1
end


-- Names that can never be service methods: the emitter's (Node's and ours), Feathers' own
-- and, in Lua, every metamethod-looking name ("__index", ...).
local PROTECTED = {}
for _, name in ipairs({
  "_events", "_eventsCount", "_maxListeners", "setMaxListeners", "getMaxListeners", "emit",
  "addListener", "on", "prependListener", "once", "prependOnceListener", "removeListener",
  "off", "removeAllListeners", "listeners", "rawListeners", "listenerCount", "eventNames",
  "all", "around", "before", "after", "error", "hooks", "setup", "teardown", "publish",
}) do
  PROTECTED[name] = true
end

for _, name in ipairs(events.METHODS) do
  PROTECTED[name] = true
end


function _M.is_protected(name)
  return PROTECTED[name] == true or string_sub(name, 1, 2) == "__"
end


-- Private key of a wrapper's state: { app, path, service, options, store, ... }.
local KEY = setmetatable({}, { __tostring = function() return "plume.service" end })
_M.KEY = KEY


local function set_of(list)
  local set = {}
  for i = 1, #list do
    set[list[i]] = true
  end

  return set
end


local function string_list(value, what)
  if type(value) ~= "table" then
    error("'" .. what .. "' must be a list of names", 0)
  end

  local list = {}
  for i = 1, #value do
    if type(value[i]) ~= "string" then
      error("'" .. what .. "' must be a list of names", 0)
    end

    list[i] = value[i]
  end

  return list
end


-- Feathers' normalizeServiceOptions: methods (clients may call), events (custom, emitted
-- by the service itself), service_events (published), route_params.
function _M.normalize_options(service, options)
  options = options or {}

  local methods
  if options.methods ~= nil then
    methods = string_list(options.methods, "methods")
  else
    methods = {}
    for _, name in ipairs(_M.STANDARD_METHODS) do
      if type(service[name]) == "function" then
        methods[#methods + 1] = name
      end
    end
  end

  local custom_events = options.events
  if custom_events == nil then
    custom_events = type(service.events) == "table" and service.events or {}
  end

  custom_events = string_list(custom_events, "events")

  local service_events = options.service_events or options.serviceEvents
  if service_events ~= nil then
    service_events = string_list(service_events, "serviceEvents")
  else
    service_events = {}
    for i, name in ipairs(_M.STANDARD_EVENTS) do
      service_events[i] = name
    end

    for _, name in ipairs(custom_events) do
      service_events[#service_events + 1] = name
    end
  end

  local normalized = {}
  for k, v in pairs(options) do
    normalized[k] = v
  end

  normalized.methods = methods
  normalized.methods_set = set_of(methods)
  normalized.events = custom_events
  normalized.events_set = set_of(custom_events)
  normalized.service_events = service_events
  normalized.serviceEvents = service_events
  normalized.service_events_set = set_of(service_events)
  normalized.route_params = options.route_params or options.routeParams

  return normalized
end


-- Standard methods the service implements plus every listed method (getHookMethods).
local function hook_methods(service, options)
  local list = {}
  for _, name in ipairs(_M.STANDARD_METHODS) do
    if type(service[name]) == "function" and not options.methods_set[name] then
      list[#list + 1] = name
    end
  end

  for _, name in ipairs(options.methods) do
    list[#list + 1] = name
  end

  return list
end


-- Context: `self` is the service, `arguments` a live view of id/data/params.
local CONTEXT_MT = {}

local function arguments_view(ctx, signature)
  return setmetatable({}, {
    __index = function(_, i)
      local name = signature[i]
      return name and ctx[name]
    end,
    __newindex = function(_, i, v)
      local name = signature[i]
      if name then
        ctx[name] = v
      end
    end,
    __len = function()
      return #signature
    end,
  })
end


local function context_mt(signature)
  local mt = CONTEXT_MT[signature]
  if mt then
    return mt
  end

  mt = {
    __index = function(ctx, key)
      if key == "self" then
        return ctx.service
      end

      if key == "arguments" then
        return arguments_view(ctx, signature)
      end
    end,
    __name = "plume.hook_context",
  }
  CONTEXT_MT[signature] = mt

  return mt
end


-- Builds the innermost step of a chain: call the method unless a result is already set.
local function make_final(raw, signature)
  local n = #signature
  if n == 1 then
    return function(ctx)
      if ctx.result == nil then
        ctx.result = raw(ctx.service, ctx.params)
      end
    end
  end

  if n == 2 then
    local first = signature[1]
    return function(ctx)
      if ctx.result == nil then
        ctx.result = raw(ctx.service, ctx[first], ctx.params)
      end
    end
  end

  return function(ctx)
    if ctx.result == nil then
      ctx.result = raw(ctx.service, ctx.id, ctx.data, ctx.params)
    end
  end
end


-- The built-in outermost hook: presets context.event, emits it after a successful call
-- (one event per element of an array result) unless the service emits it itself.
local function event_hook(ctx, next_fn)
  ctx.event = _M.EVENT_MAP[ctx.method]
  next_fn()

  local event = ctx.event
  if type(event) ~= "string" then
    return
  end

  local service = ctx.service
  local state = service[KEY]
  if state and state.options.events_set[event] then
    return
  end

  local result = ctx.result
  if is_array(result) then
    for i = 1, #result do
      service:emit(event, result[i], ctx)
    end
  else
    service:emit(event, result, ctx)
  end
end

local EVENT_LAYER = { around = event_hook }


-- The layers of method's chain, rebuilt when app or service hooks changed.
local function chain(state, method)
  local app_store = state.app_store
  local store = state.store
  local cached = state.chains[method]
  if cached and cached.app_version == app_store.version
      and cached.version == store.version then
    return cached.layers
  end

  local layers = { EVENT_LAYER }
  hooks.collect(app_store, method, layers)
  hooks.collect_service(store, method, layers)

  state.chains[method] = {
    app_version = app_store.version,
    version = store.version,
    layers = layers,
  }

  return layers
end


-- Runs method of the wrapper through its hooks; returns the final context.
-- params is the caller's params table (a new {} when nil).
function _M.invoke(wrapper, method, id, data, params)
  local state = type(wrapper) == "table" and wrapper[KEY]
  if not state then
    error("service methods are called with ':' (service:" .. tostring(method) .. "(...))", 3)
  end

  local entry = state.entries[method]
  if not entry then
    error(errors.MethodNotAllowed("Method '" .. tostring(method)
                                  .. "' is not a hook-enabled method of service '"
                                  .. state.path .. "'"))
  end

  local ctx = setmetatable({
    app = state.app,
    service = wrapper,
    path = state.path,
    method = method,
    type = "around",
    params = params or {},
    id = id,
    data = data,
    event = _M.EVENT_MAP[method],
  }, entry.context_mt)

  hooks.run(ctx, chain(state, method), entry.final)

  return ctx
end

local invoke = _M.invoke


local function make_method(name, signature)
  local n = #signature
  if n == 1 then
    return function(self, params)
      return invoke(self, name, nil, nil, params).result
    end
  end

  if n == 3 then
    return function(self, id, data, params)
      return invoke(self, name, id, data, params).result
    end
  end

  if signature[1] == "id" then
    return function(self, id, params)
      return invoke(self, name, id, nil, params).result
    end
  end

  return function(self, data, params)
    return invoke(self, name, nil, data, params).result
  end
end


local function service_hooks(self, map)
  local state = self[KEY]
  hooks.register_service(state.store, map, state.hook_methods_set)
  return self
end


-- Wraps service for app at path (already normalised). Raises on invalid services and on
-- protected or missing method names. app_store is the app's hook store.
function _M.wrap(app, app_store, path, service, options)
  if type(service) ~= "table" then
    error("Invalid service object passed for path `" .. path .. "`", 0)
  end

  local opts = _M.normalize_options(service, options)

  if #opts.methods == 0 then
    local usable = type(service.setup) == "function" or type(service.teardown) == "function"
    for _, name in ipairs(_M.STANDARD_METHODS) do
      usable = usable or type(service[name]) == "function"
    end

    if not usable then
      error("Invalid service object passed for path `" .. path .. "`", 0)
    end
  end

  for _, name in ipairs(opts.methods) do
    if _M.is_protected(name) then
      error("'" .. name .. "' on service '" .. path
            .. "' is not allowed as a custom method name", 0)
    end
  end

  local list = hook_methods(service, opts)
  local entries = {}
  for _, name in ipairs(list) do
    local raw = service[name]
    if type(raw) ~= "function" then
      error("Can not apply hooks. '" .. name .. "' is not a function", 0)
    end

    local signature = _M.SIGNATURES[name] or CUSTOM_SIGNATURE
    entries[name] = {
      raw = raw,
      signature = signature,
      final = make_final(raw, signature),
      context_mt = context_mt(signature),
      method = make_method(name, signature),
    }
  end

  local state = {
    app = app,
    app_store = app_store,
    path = path,
    service = service,
    options = opts,
    store = hooks.new_store(),
    chains = {},
    entries = entries,
    hook_methods = list,
    hook_methods_set = set_of(list),
    publishers = {},
  }

  local wrapper = setmetatable({ [KEY] = state }, {
    __index = service,
    __name = "plume.service",
    __tostring = function()
      return "plume.service(" .. path .. ")"
    end,
  })

  if type(service.on) ~= "function" or type(service.emit) ~= "function" then
    events.mixin(wrapper)
  end

  wrapper.hooks = service_hooks
  for name, entry in pairs(entries) do
    wrapper[name] = entry.method
  end

  return wrapper
end


-- The state of a wrapper (nil for other values).
function _M.state(wrapper)
  return type(wrapper) == "table" and wrapper[KEY] or nil
end


return _M
