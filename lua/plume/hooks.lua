-- Hook registration and execution (spec/feathers.md §6), shaped like Kong's hooks.lua:
-- a store per hook-enabled object (the app, each service), register() validates and
-- appends, layers() turns a store into the ordered layers of one method's chain, run()
-- executes a chain around the method.
--
-- A chain is a list of layers, outermost first. A layer is either { around = fn } or a
-- "collected" layer { before = {...}, after = {...}, error = {...} } whose error hooks
-- cover its own before and after hooks and everything inside (Feathers' collect()).
-- Hooks run inside the caller's coroutine and may yield.

local errors = require "plume.errors"
local util = require "plume.util"


local type = type
local pairs = pairs
local error = error
local xpcall = xpcall
local tostring = tostring
local getmetatable = getmetatable
local setmetatable = setmetatable
local handler = errors.handler


local _M = {}


_M.TYPES = { before = true, after = true, error = true, around = true }


-- A fresh store. `version` grows with every registration so cached chains know to rebuild.
function _M.new_store()
  return {
    around = {},
    before = {},
    after = {},
    error = {},
    list = {},       -- service:hooks({ fn, ... }): around hooks for every method
    methods = {},    -- service:hooks({ find = ... }): around hooks per method
    setup = {},      -- app:hooks({ setup = ... })
    teardown = {},   -- app:hooks({ teardown = ... })
    version = 0,
  }
end


local function is_list(t)
  return type(t) == "table" and t[1] ~= nil
end


local function check_functions(list, what)
  for i = 1, #list do
    if type(list[i]) ~= "function" then
      error(what .. " hook #" .. i .. " is not a function", 0)
    end
  end

  return list
end


-- A function or a list of functions as a list.
local function as_list(value, what)
  if type(value) == "function" then
    return { value }
  end

  if type(value) == "table" then
    return check_functions(value, what)
  end

  error(what .. " hooks must be a function or a list of functions", 0)
end


-- Feathers' convertHookData: a function or list means "all", else a map method -> list.
local function convert(input, what)
  if type(input) == "function" or is_list(input) then
    return { all = as_list(input, what) }
  end

  if type(input) ~= "table" then
    error(what .. " hooks must be a function, a list or a table of methods", 0)
  end

  local result = {}
  for method, value in pairs(input) do
    if type(method) ~= "string" then
      error(what .. " hooks must be keyed by method name", 0)
    end

    result[method] = as_list(value, what .. " '" .. method .. "'")
  end

  return result
end


local function append(target, list)
  local n = #target
  for i = 1, #list do
    target[n + i] = list[i]
  end
end


-- Registers a { before=, after=, error=, around= } map; validates everything first.
local function register_types(store, map)
  local converted = {}
  for kind, value in pairs(map) do
    if not _M.TYPES[kind] then
      error("'" .. tostring(kind) .. "' is not a valid hook type", 0)
    end

    converted[kind] = convert(value, kind)
  end

  for kind, by_method in pairs(converted) do
    local target = store[kind]
    for method, list in pairs(by_method) do
      local existing = target[method]
      if not existing then
        existing = {}
        target[method] = existing
      end

      append(existing, list)
    end
  end

  store.version = store.version + 1
end


local function has_type_key(map)
  return map.before ~= nil or map.after ~= nil or map.error ~= nil or map.around ~= nil
end


-- service:hooks(map). hook_methods: set of the service's hook-enabled method names.
function _M.register_service(store, map, hook_methods)
  if type(map) ~= "table" then
    error("hooks must be given as a table", 0)
  end

  if has_type_key(map) then
    return register_types(store, map)
  end

  if is_list(map) then
    append(store.list, check_functions(map, "around"))
    store.version = store.version + 1
    return
  end

  local converted = {}
  for method, value in pairs(map) do
    if not hook_methods[method] then
      error("Method " .. tostring(method)
            .. " is not a Feathers hooks enabled service method", 0)
    end

    converted[method] = as_list(value, "around '" .. method .. "'")
  end

  for method, list in pairs(converted) do
    local existing = store.methods[method]
    if not existing then
      existing = {}
      store.methods[method] = existing
    end

    append(existing, list)
  end

  store.version = store.version + 1
end


-- app:hooks(map): typed map, { setup=, teardown= }, or around hooks (list or per method).
function _M.register_app(store, map)
  if type(map) ~= "table" then
    error("hooks must be given as a table", 0)
  end

  if has_type_key(map) then
    return register_types(store, map)
  end

  if map.setup ~= nil or map.teardown ~= nil then
    for kind, value in pairs(map) do
      if kind ~= "setup" and kind ~= "teardown" then
        error("'" .. tostring(kind) .. "' can not be mixed with setup/teardown hooks", 0)
      end

      append(store[kind], as_list(value, kind))
    end

    store.version = store.version + 1
    return
  end

  return register_types(store, { around = map })
end


-- Appends the layers of store for method to out (Feathers' collectHooks order).
function _M.collect(store, method, out)
  local n = #out
  local around = store.around
  local before = store.before
  local after = store.after
  local err = store.error

  local list = around.all
  if list then
    for i = 1, #list do
      n = n + 1
      out[n] = { around = list[i] }
    end
  end

  list = around[method]
  if list then
    for i = 1, #list do
      n = n + 1
      out[n] = { around = list[i] }
    end
  end

  if before.all or err.all then
    n = n + 1
    out[n] = { before = before.all, error = err.all and #err.all > 0 and err.all or nil }
  end

  if before[method] or after[method] or err[method] then
    local method_errors = err[method]
    n = n + 1
    out[n] = {
      before = before[method],
      after = after[method],
      error = method_errors and #method_errors > 0 and method_errors or nil,
    }
  end

  if after.all then
    n = n + 1
    out[n] = { after = after.all }
  end

  return out
end


-- Service level: list-registered around hooks, per-method around tables, then collect().
function _M.collect_service(store, method, out)
  local n = #out
  local list = store.list
  for i = 1, #list do
    n = n + 1
    out[n] = { around = list[i] }
  end

  list = store.methods[method]
  if list then
    for i = 1, #list do
      n = n + 1
      out[n] = { around = list[i] }
    end
  end

  return _M.collect(store, method, out)
end


-- Runs one regular hook as `kind`; a returned table other than ctx is merged into ctx.
local function run_hook(hook, ctx, kind)
  local previous = ctx.type
  ctx.type = kind
  local res = hook(ctx)
  ctx.type = previous

  if type(res) == "table" and res ~= ctx then
    for k, v in pairs(res) do
      ctx[k] = v
    end
  end
end

_M.run_hook = run_hook


local function snapshot(ctx)
  local copy = {}
  for k, v in pairs(ctx) do
    copy[k] = v
  end

  return setmetatable(copy, getmetatable(ctx))
end


local run_from

local function run_collected(ctx, layers, i, final, layer)
  local list = layer.before
  if list then
    for k = 1, #list do
      run_hook(list[k], ctx, "before")
    end
  end

  run_from(ctx, layers, i + 1, final)

  list = layer.after
  if list then
    for k = 1, #list do
      run_hook(list[k], ctx, "after")
    end
  end
end


local function run_errors(ctx, list, err)
  if ctx.error ~= err or ctx.result ~= nil then
    ctx.original = snapshot(ctx)
    ctx.error = err
    ctx.result = nil
  end

  local previous = ctx.type
  ctx.type = "error"
  for k = 1, #list do
    local res = list[k](ctx)
    if type(res) == "table" and res ~= ctx then
      for key, v in pairs(res) do
        ctx[key] = v
      end
    end
  end

  ctx.type = previous

  if ctx.result == nil and ctx.error ~= nil then
    error(ctx.error, 0)
  end
end


run_from = function(ctx, layers, i, final)
  local layer = layers[i]
  if layer == nil then
    return final(ctx)
  end

  local around = layer.around
  if around then
    local called = false
    around(ctx, function()
      if called then
        error("next() called multiple times", 2)
      end

      called = true
      local ok, err = xpcall(run_from, handler, ctx, layers, i + 1, final)
      if not ok then
        error(err, 0)
      end

      return ctx
    end)

    return
  end

  local list = layer.error
  if not list then
    return run_collected(ctx, layers, i, final, layer)
  end

  local ok, err = xpcall(run_collected, handler, ctx, layers, i, final, layer)
  if not ok then
    run_errors(ctx, list, err)
  end
end


-- Runs the chain `layers` on ctx; final(ctx) is the innermost step (the method).
-- Errors propagate to the caller (normalised where a layer caught them).
function _M.run(ctx, layers, final)
  return run_from(ctx, layers, 1, final)
end


-- Runs around hooks `list` around fn(ctx) (app setup/teardown hooks).
function _M.run_around(ctx, list, fn)
  local layers = {}
  for i = 1, #list do
    layers[i] = { around = list[i] }
  end

  return run_from(ctx, layers, 1, fn)
end


-- The `context.result` value meaning "skip the method, result null" (Lua can't hold nil).
_M.NULL = util.null


local function check_fields(data, names)
  if type(data) ~= "table" then
    error(errors.BadRequest("Data must be an object"))
  end

  for i = 1, #names do
    local name = names[i]
    local v = data[name]
    if v == nil or util.is_null(v) or v == "" then
      error(errors.BadRequest("'" .. name .. "' is required", { field = name }))
    end
  end
end


-- A before hook refusing data (each item of array data) without the named fields, or
-- with them null or "": BadRequest "'<name>' is required" with data { field = name }.
function _M.require_fields(...)
  local names = { ... }
  for i = 1, #names do
    if type(names[i]) ~= "string" then
      error("require_fields takes field names", 2)
    end
  end

  return function(ctx)
    local data = ctx.data
    if util.is_array(data) then
      for i = 1, #data do
        check_fields(data[i], names)
      end
    else
      check_fields(data, names)
    end

    return ctx
  end
end


return _M
