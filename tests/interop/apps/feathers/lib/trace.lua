-- Hook tracing for services/traced.lua (feathers.md §6.3): every hook of the app and of
-- the service appends "<label> (<context.type>)" to params.trace, a list that the result
-- (or the error's data) carries back to the client, so the test sees the order in which
-- the layers ran. App hooks are shared by every service: they record only for "traced".
local json = require "plume.json"


local type = type
local pcall = pcall
local error = error


local _M = {}


local TRACED = "traced"


-- Appends label and the context's current type to params.trace (created on first use).
function _M.add(ctx, label)
  local params = ctx.params
  local list = params.trace
  if list == nil then
    list = json.array()
    params.trace = list
  end

  list[#list + 1] = label .. " (" .. tostring(ctx.type) .. ")"
end


-- A before, after or error hook recording label.
function _M.regular(label)
  return function(ctx)
    if ctx.path == TRACED then
      _M.add(ctx, label)
    end

    return ctx
  end
end


-- An around hook recording "<label> before", then "<label> after" or "<label> error".
function _M.around(label)
  return function(ctx, next_fn)
    if ctx.path ~= TRACED then
      return next_fn()
    end

    _M.add(ctx, label .. " before")
    local ok, err = pcall(next_fn)
    if not ok then
      _M.add(ctx, label .. " error")
      error(err, 0)
    end

    _M.add(ctx, label .. " after")
  end
end


-- The trace list of a context (nil for other services).
function _M.of(ctx)
  return type(ctx.params) == "table" and ctx.params.trace or nil
end


return _M
