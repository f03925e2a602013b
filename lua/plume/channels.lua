-- Channels and publishing (spec/feathers.md §4.3, §4.4). A channel is an ordered set of
-- connection objects (the `socket.feathers` tables) with optional attached data; a
-- combined channel is the union of several, where the data of the first channel holding a
-- connection wins. Publishing picks one publisher per event (service event, service all,
-- app event, app all), combines the channels it returns and emits the app event
-- "publish"(event, channel, context, data) that the transport dispatches.

local errors = require "plume.errors"
local util = require "plume.util"


local type = type
local error = error
local select = select
local xpcall = xpcall
local tostring = tostring
local getmetatable = getmetatable
local setmetatable = setmetatable
local table_remove = table.remove
local is_null = util.is_null


local _M = {}


-- Key of "all events" publishers.
local ALL = setmetatable({}, { __tostring = function() return "all events" end })
_M.ALL_EVENTS = ALL


local Channel = {}
Channel.__index = Channel
Channel.__name = "plume.channel"
Channel.__len = function(self)
  return self.length
end


local Combined = setmetatable({}, { __index = Channel })
Combined.__index = Combined
Combined.__name = "plume.combined_channel"
Combined.__len = Channel.__len


-- A new channel over a list of connections (copied) with optional data.
function _M.new(connections, data)
  local list = {}
  local members = {}
  local n = 0
  if connections then
    for i = 1, #connections do
      local c = connections[i]
      if c ~= nil and not members[c] then
        n = n + 1
        list[n] = c
        members[c] = true
      end
    end
  end

  return setmetatable({
    connections = list,
    members = members,
    length = n,
    data = data,
  }, Channel)
end


function _M.is_channel(value)
  local mt = getmetatable(value)
  return mt == Channel or mt == Combined
end


-- Adds connections (nil and duplicates ignored).
function Channel:join(...)
  local list = self.connections
  local members = self.members
  for i = 1, select("#", ...) do
    local c = select(i, ...)
    if c ~= nil and not is_null(c) and not members[c] then
      list[#list + 1] = c
      members[c] = true
    end
  end

  self.length = #list
  return self
end


local function remove_connection(self, c)
  if not self.members[c] then
    return
  end

  local list = self.connections
  for i = 1, #list do
    if list[i] == c then
      table_remove(list, i)
      break
    end
  end

  self.members[c] = nil
end


-- Removes connections, or every connection a predicate function accepts. A channel left
-- empty calls its on_empty (named channels delete themselves).
function Channel:leave(...)
  for i = 1, select("#", ...) do
    local c = select(i, ...)
    if type(c) == "function" then
      local matching = {}
      local list = self.connections
      for k = 1, #list do
        if c(list[k]) then
          matching[#matching + 1] = list[k]
        end
      end

      for k = 1, #matching do
        remove_connection(self, matching[k])
      end
    elseif c ~= nil then
      remove_connection(self, c)
    end
  end

  self.length = #self.connections
  if self.length == 0 and self.on_empty then
    local on_empty = self.on_empty
    self.on_empty = nil
    on_empty(self)
  end

  return self
end


-- A new unnamed channel with the connections fn accepts (same data).
function Channel:filter(fn)
  local selected = {}
  local list = self.connections
  for i = 1, #list do
    if fn(list[i]) then
      selected[#selected + 1] = list[i]
    end
  end

  return _M.new(selected, self.data)
end


-- A new channel with the same connections and data attached to it.
function Channel:send(data)
  return _M.new(self.connections, data)
end


function Channel:has(connection)
  return self.members[connection] == true
end


function Channel:data_for()
  return self.data
end


local function collect(self)
  local list = {}
  local members = {}
  local mappings = {}
  local n = 0
  local children = self.children
  for i = 1, #children do
    local child = children[i]
    local connections = child.connections
    for k = 1, #connections do
      local c = connections[k]
      if not members[c] then
        n = n + 1
        list[n] = c
        members[c] = true
        mappings[c] = child.data
      end
    end
  end

  self.connections = list
  self.members = members
  self.mappings = mappings
  self.length = n
end


-- The union of channels (each connection once, data of the first channel holding it).
function _M.combine(children, data)
  local self = setmetatable({ children = children, data = data }, Combined)
  collect(self)
  return self
end


function Combined:refresh()
  collect(self)
  return self
end


function Combined:data_for(connection)
  return self.mappings[connection]
end


function Combined:join(...)
  local children = self.children
  for i = 1, #children do
    children[i]:join(...)
  end

  return self:refresh()
end


function Combined:leave(...)
  local children = self.children
  for i = 1, #children do
    children[i]:leave(...)
  end

  return self:refresh()
end


-- The app's channel registry: { by_name = {}, names = app.channels (ordered names) }.
function _M.new_registry(names)
  return { by_name = {}, names = names }
end


local function named(registry, name)
  local channel = registry.by_name[name]
  if channel then
    return channel
  end

  channel = _M.new()
  channel.name = name
  channel.on_empty = function(ch)
    if registry.by_name[name] ~= ch then
      return
    end

    registry.by_name[name] = nil
    local names = registry.names
    for i = 1, #names do
      if names[i] == name then
        table_remove(names, i)
        break
      end
    end
  end

  registry.by_name[name] = channel
  registry.names[#registry.names + 1] = name

  return channel
end


-- app:channel(name), app:channel(a, b, ...) or app:channel({ a, b }).
function _M.channel(registry, ...)
  local n = select("#", ...)
  if n == 0 then
    error("app.channel needs at least one channel name", 3)
  end

  local first = ...
  if n == 1 then
    if type(first) == "table" then
      return _M.channel(registry, table.unpack(first))
    end

    if type(first) ~= "string" then
      error("channel names must be strings", 3)
    end

    return named(registry, first)
  end

  local children = {}
  for i = 1, n do
    local name = select(i, ...)
    if type(name) ~= "string" then
      error("channel names must be strings", 3)
    end

    children[i] = named(registry, name)
  end

  return _M.combine(children)
end


-- Removes connection from every named channel (disconnect, logout).
function _M.leave_all(registry, connection)
  local names = registry.names
  local snapshot = {}
  for i = 1, #names do
    snapshot[i] = names[i]
  end

  for i = 1, #snapshot do
    local channel = registry.by_name[snapshot[i]]
    if channel then
      channel:leave(connection)
    end
  end
end


-- Registers publisher fn for event (or all events when event is a function) in
-- publishers; valid_events is the set of names a publisher may be registered for.
function _M.register_publisher(publishers, valid_events, event, fn)
  if fn == nil and type(event) == "function" then
    fn = event
    event = ALL
  end

  if type(fn) ~= "function" then
    error("publisher must be a function", 3)
  end

  if event ~= ALL and not valid_events[event] then
    error("'" .. tostring(event) .. "' is not a valid service event", 3)
  end

  publishers[event] = fn
end


local function flatten(value, out)
  if value == nil or value == false or is_null(value) then
    return out
  end

  if _M.is_channel(value) then
    out[#out + 1] = value
    return out
  end

  if type(value) == "table" then
    for i = 1, #value do
      flatten(value[i], out)
    end
  end

  return out
end


-- Publishes one service event: called with the app, its publishers and channel
-- registry, the service wrapper, its path and publishers, the event, data and context.
function _M.publish(app, app_publishers, service, path, service_publishers, event, data, ctx)
  local publisher = service_publishers[event] or service_publishers[ALL]
                    or app_publishers[event] or app_publishers[ALL]
  if not publisher then
    return
  end

  if ctx == nil then
    ctx = { path = path, service = service, app = app, result = data }
  end

  local ok, result = xpcall(publisher, errors.handler, data, ctx)
  if not ok then
    local log = app.log
    if log then
      log("error", "Error in '" .. path .. " " .. tostring(event) .. "' publisher: "
          .. tostring(result.stack or result.message))
    end

    return
  end

  if result == nil or result == false then
    return
  end

  local list = flatten(result, {})
  if #list == 0 then
    return
  end

  local channel = _M.combine(list)
  if channel.length > 0 then
    app:emit("publish", event, channel, ctx, data)
  end
end


return _M
