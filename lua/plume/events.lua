-- A small EventEmitter for the application and its services (Node's events module, in Lua
-- idiom): obj:on(event, fn), obj:once(event, fn), obj:off(event, fn), obj:emit(event, ...),
-- obj:listeners(event), obj:listener_count(event), obj:remove_all_listeners([event]).
-- Listeners run in registration order; an error in a listener propagates to emit's caller.

local type = type
local error = error
local table_remove = table.remove


local _M = {}


-- Private key of the listener table: no collision with user fields.
local EVENTS = setmetatable({}, { __tostring = function() return "plume.events" end })
_M.KEY = EVENTS


local function check(event, fn)
  if event == nil then
    error("event name expected", 3)
  end

  if type(fn) ~= "function" then
    error("listener must be a function", 3)
  end
end


local function add(self, event, fn, once)
  check(event, fn)

  local all = self[EVENTS]
  if not all then
    all = {}
    self[EVENTS] = all
  end

  local list = all[event]
  if not list then
    list = {}
    all[event] = list
  end

  list[#list + 1] = { fn = fn, once = once }

  return self
end


function _M.on(self, event, fn)
  return add(self, event, fn, false)
end


function _M.once(self, event, fn)
  return add(self, event, fn, true)
end


-- Removes the most recently added registration of fn for event.
function _M.off(self, event, fn)
  local all = self[EVENTS]
  local list = all and all[event]
  if not list then
    return self
  end

  for i = #list, 1, -1 do
    if list[i].fn == fn then
      table_remove(list, i)
      break
    end
  end

  if #list == 0 then
    all[event] = nil
  end

  return self
end


function _M.remove_all_listeners(self, event)
  local all = self[EVENTS]
  if not all then
    return self
  end

  if event == nil then
    self[EVENTS] = nil
  else
    all[event] = nil
  end

  return self
end


-- Calls every listener of event with the arguments; true when there was one.
function _M.emit(self, event, ...)
  local all = self[EVENTS]
  local list = all and all[event]
  if not list then
    return false
  end

  local n = #list
  if n == 1 then
    local entry = list[1]
    if entry.once then
      all[event] = nil
    end

    entry.fn(...)
    return true
  end

  local snapshot = {}
  for i = 1, n do
    snapshot[i] = list[i]
  end

  for i = n, 1, -1 do
    if list[i].once then
      table_remove(list, i)
    end
  end

  if #list == 0 then
    all[event] = nil
  end

  for i = 1, n do
    snapshot[i].fn(...)
  end

  return true
end


function _M.listeners(self, event)
  local all = self[EVENTS]
  local list = all and all[event]
  local result = {}
  if list then
    for i = 1, #list do
      result[i] = list[i].fn
    end
  end

  return result
end


function _M.listener_count(self, event)
  local all = self[EVENTS]
  local list = all and all[event]

  return list and #list or 0
end


-- Every method name of the emitter (also the names services may not use as methods).
_M.METHODS = {
  "on", "once", "off", "emit", "listeners", "listener_count", "remove_all_listeners",
  "add_listener", "remove_listener",
}

_M.add_listener = _M.on
_M.remove_listener = _M.off


-- Copies the emitter methods onto obj (a table) and returns it.
function _M.mixin(obj)
  for i = 1, #_M.METHODS do
    local name = _M.METHODS[i]
    obj[name] = _M[name]
  end

  return obj
end


return _M
