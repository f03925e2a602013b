-- Shared by the busted specs of the Feathers model: makes "plume.json" loadable without
-- the C core (a pure-Lua stand-in used only when plume.core, its codec or
-- lua/plume/json.lua is not there), a fake clock and scheduler so specs can run code that yields (sleep), and fake
-- Socket.IO server/socket objects for the transport.

package.path = "lua/?.lua;lua/?/init.lua;" .. package.path

local core_ok = pcall(require, "plume.core")
local has_json = package.searchpath("plume.json", package.path) ~= nil

local helper = {}

helper.real_json = core_ok and has_json


-- {{ plume.json stand-in ---------------------------------------------------------------


local function stub_json()
  local cjson = require "cjson"
  local json = {}

  json.null = cjson.null
  json.array_mt = { __name = "plume.json.array" }
  json.object_mt = { __name = "plume.json.object" }

  function json.array(t)
    return setmetatable(t or {}, json.array_mt)
  end

  function json.object(t)
    return setmetatable(t or {}, json.object_mt)
  end

  function json.is_array(t)
    return type(t) == "table" and getmetatable(t) == json.array_mt
  end

  local function is_sequence(t)
    local n = #t
    if n == 0 then
      return false
    end

    local count = 0
    for _ in pairs(t) do
      count = count + 1
    end

    return count == n
  end

  local encode

  local function encode_number(x)
    if math.type(x) == "integer" then
      return tostring(x)
    end

    if x ~= x or x == math.huge or x == -math.huge then
      error("number is not serializable")
    end

    if x == math.floor(x) and math.abs(x) < 2 ^ 53 then
      return string.format("%d", x)
    end

    for p = 1, 17 do
      local s = string.format("%." .. p .. "g", x)
      if tonumber(s) == x then
        return s
      end
    end
  end

  encode = function(v, out)
    local t = type(v)
    if v == nil or v == json.null then
      out[#out + 1] = "null"
    elseif t == "boolean" then
      out[#out + 1] = tostring(v)
    elseif t == "number" then
      out[#out + 1] = encode_number(v)
    elseif t == "string" then
      out[#out + 1] = cjson.encode(v)
    elseif t == "table" then
      local mt = getmetatable(v)
      local as_array = mt == json.array_mt or (mt ~= json.object_mt and is_sequence(v))
      if as_array then
        out[#out + 1] = "["
        for i = 1, #v do
          if i > 1 then
            out[#out + 1] = ","
          end

          encode(v[i], out)
        end

        out[#out + 1] = "]"
      else
        local keys = {}
        for k in pairs(v) do
          keys[#keys + 1] = k
        end

        table.sort(keys, function(a, b)
          return tostring(a) < tostring(b)
        end)
        out[#out + 1] = "{"
        for i, k in ipairs(keys) do
          if i > 1 then
            out[#out + 1] = ","
          end

          out[#out + 1] = cjson.encode(tostring(k))
          out[#out + 1] = ":"
          encode(v[k], out)
        end

        out[#out + 1] = "}"
      end
    else
      error("value is not serializable: " .. t)
    end
  end

  function json.encode(v)
    local out = {}
    encode(v, out)
    return table.concat(out)
  end

  local function mark(v)
    if type(v) ~= "table" then
      return v
    end

    for k, item in pairs(v) do
      v[k] = mark(item)
    end

    if is_sequence(v) then
      return json.array(v)
    end

    return json.object(v)
  end

  function json.decode(s)
    return mark(cjson.decode(s))
  end

  return json
end


-- A core without its codec yet (plume.json raises on load) also gets the stand-in.
if helper.real_json and not pcall(require, "plume.json") then
  helper.real_json = false
end

if not helper.real_json then
  package.loaded["plume.json"] = nil
  package.preload["plume.json"] = stub_json
end

local json = require "plume.json"
helper.json = json


-- Encodes a value for comparisons in specs.
function helper.encode(v)
  return json.encode(v)
end


-- The JSON text of a packed argument list (an ack or an emitted event), as on the wire.
function helper.wire(packed)
  local list = json.array({})
  for i = 1, packed.n do
    local v = packed[i]
    if v == nil then
      v = json.null
    end

    list[i] = v
  end

  return json.encode(list)
end


-- }} Fake clock and scheduler --------------------------------------------------------


local timers = {}
local seq = 0
helper.clock = 0


local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then
    error(debug.traceback(co, tostring(err)), 0)
  end
end


-- Yields the running task for ms milliseconds of fake time (plume.sleep in specs).
function helper.sleep(ms)
  local co, main = coroutine.running()
  if main then
    error("cannot wait here", 2)
  end

  seq = seq + 1
  timers[#timers + 1] = { at = helper.clock + (ms or 0), seq = seq, co = co }
  coroutine.yield()
end


-- Starts fn(...) as a task; it runs until it first yields.
function helper.spawn(fn, ...)
  local co = coroutine.create(fn)
  resume(co, ...)
  return co
end


-- Runs sleeping tasks in wake-up order until none is left.
function helper.drain()
  while #timers > 0 do
    table.sort(timers, function(a, b)
      if a.at ~= b.at then
        return a.at < b.at
      end

      return a.seq < b.seq
    end)

    local timer = table.remove(timers, 1)
    helper.clock = timer.at
    resume(timer.co)
  end
end


-- Runs fn(...) as a task to completion (draining every other task) and returns
-- ok, results... like pcall.
function helper.run(fn, ...)
  local results
  local args = table.pack(...)
  helper.spawn(function()
    results = table.pack(pcall(fn, table.unpack(args, 1, args.n)))
  end)
  helper.drain()

  if results == nil then
    error("task never finished", 2)
  end

  return table.unpack(results, 1, results.n)
end


-- Like helper.run but raises the task's error.
function helper.await(fn, ...)
  local results = table.pack(helper.run(fn, ...))
  if not results[1] then
    error(results[2], 0)
  end

  return table.unpack(results, 2, results.n)
end


-- }} Fake Socket.IO ------------------------------------------------------------------


local Socket = {}
Socket.__index = Socket

local socket_ids = 0


function helper.new_socket(handshake)
  socket_ids = socket_ids + 1
  return setmetatable({
    id = "socket" .. socket_ids,
    handshake = handshake or {
      headers = { host = "localhost:3030" },
      query = {},
      auth = {},
      address = "127.0.0.1",
    },
    handlers = {},
    emitted = {},
    connected = true,
  }, Socket)
end


function Socket:on(event, fn)
  local list = self.handlers[event]
  if not list then
    list = {}
    self.handlers[event] = list
  end

  list[#list + 1] = fn
  return self
end


function Socket:emit(event, ...)
  if not self.connected then
    return nil, "closed"
  end

  self.emitted[#self.emitted + 1] = table.pack(event, ...)
  return true
end


-- The events emitted to this socket with the given name (each a packed arg list).
function Socket:events(name)
  local result = {}
  for _, e in ipairs(self.emitted) do
    if e[1] == name then
      result[#result + 1] = e
    end
  end

  return result
end


function Socket:fire(event, ...)
  local list = self.handlers[event]
  if not list then
    return false
  end

  for _, fn in ipairs(list) do
    fn(...)
  end

  return true
end


-- Server-side disconnect.
function Socket:disconnect()
  if not self.connected then
    return nil, "closed"
  end

  self.connected = false
  self.disconnect_reason = "io server disconnect"
  self:fire("disconnect", "io server disconnect")
  return true
end


-- The client goes away.
function Socket:drop(reason)
  if not self.connected then
    return
  end

  self.connected = false
  self:fire("disconnect", reason or "transport close")
end


-- A client event without ack; runs the handler as a task. Returns false when the socket
-- has no handler for it.
function Socket:send(event, ...)
  local list = self.handlers[event]
  if not list then
    return false
  end

  local args = table.pack(...)
  for _, fn in ipairs(list) do
    helper.spawn(fn, table.unpack(args, 1, args.n))
  end

  helper.drain()
  return true
end


-- A client event with an ack; returns the ack arguments (packed), or nil when no ack came
-- (no handler, or the handler never acknowledged).
function Socket:call(event, ...)
  local acked
  local args = table.pack(...)
  args.n = args.n + 1
  args[args.n] = function(...)
    acked = table.pack(...)
  end

  self:send(event, table.unpack(args, 1, args.n))
  return acked
end


local IO = {}
IO.__index = IO


function helper.new_io()
  return setmetatable({ middlewares = {}, listeners = {}, sockets = {} }, IO)
end


function IO:use(fn)
  self.middlewares[#self.middlewares + 1] = fn
  return self
end


function IO:on(event, fn)
  local list = self.listeners[event]
  if not list then
    list = {}
    self.listeners[event] = list
  end

  list[#list + 1] = fn
  return self
end


-- A client connects: middlewares in order (a next(err) refuses), then "connection".
-- Returns the socket, and the refusal error if any.
function IO:connect(handshake)
  local socket = helper.new_socket(handshake)
  local refused
  local function step(i)
    local mw = self.middlewares[i]
    if not mw then
      return
    end

    mw(socket, function(err)
      if err ~= nil then
        refused = err
        return
      end

      step(i + 1)
    end)
  end

  helper.await(function()
    step(1)
    if refused == nil then
      self.sockets[#self.sockets + 1] = socket
      for _, fn in ipairs(self.listeners.connection or {}) do
        fn(socket)
      end
    end
  end)

  if refused ~= nil then
    socket.connected = false
  end

  return socket, refused
end


return helper
