-- luacheck: std +busted
-- plume.socketio's Lua side against a recording stand-in for core.sio_* (the C server of
-- runtime/socketio.c is tested in tests/unit/test_socketio.c and the interop suites):
-- middleware chains, dynamic namespaces, acks and handler return values, packet
-- middlewares, operators, listeners, disconnect order.

local real_core = require "plume.core"
local json = require "plume.json"


local pack = table.pack
local unpack = table.unpack


-- The stand-in: every call is recorded as { name, args... }.
local calls = {}
local state = {}
local fake = setmetatable({}, { __index = real_core })


local function record(name, ...)
  calls[#calls + 1] = pack(name, ...)
end


fake.log = function(level, _, msg)
  record("log", level, msg)
end
fake.sio_attach = function(opts, handlers)
  state.handlers = handlers
  state.opts = opts
  return { srv = true }
end
fake.sio_namespace = function(_, name)
  return { nsp = name }
end
fake.sio_namespace_free = function(nsp)
  record("namespace_free", nsp.nsp)
  return true
end
fake.sio_bind = function(box, nsp, socket)
  if box.closed then
    return nil, "closed"
  end
  box.nsp, box.socket = nsp, socket
  return true
end
fake.sio_accept = function(box)
  if box.closed then
    return nil, "closed"
  end
  record("accept", box.id)
  return true
end
fake.sio_refuse = function(box, msg, data, plain)
  record("refuse", box.id, msg, data, plain)
end
fake.sio_emit = function(box, ...)
  record("emit", box.id, ...)
  return true
end
fake.sio_emit_ack = function(box, fn, timeout, err_first, ...)
  record("emit_ack", box.id, timeout, err_first, ...)
  state.ack_fn = fn
  return not box.closed or nil
end
fake.sio_emit_wait = function(box, timeout, ...)
  record("emit_wait", box.id, timeout, ...)
  return nil, "answer"
end
fake.sio_ack = function(box, id, ...)
  for i = 1, select("#", ...) do
    if type((select(i, ...))) == "function" then
      error("result is not serializable: function at [" .. i .. "]")
    end
  end
  record("ack", box.id, id, ...)
  return true
end
fake.sio_later = function(_, fn, err)
  record("later", err)
  state.later = fn
end
fake.sio_join = function(box, room)
  record("join", box.id, room)
  return true
end
fake.sio_leave = function(box, room)
  record("leave", box.id, room)
  return true
end
fake.sio_disconnect = function(box, close)
  record("disconnect", box.id, close)
  return { box.socket }
end
fake.sio_broadcast = function(nsp, rooms, except, ...)
  record("broadcast", nsp.nsp, rooms, except, ...)
  return 1
end
fake.sio_broadcast_ack = function(nsp, rooms, except, timeout, fn, ...)
  record("broadcast_ack", nsp.nsp, rooms, except, timeout, fn, ...)
end
fake.sio_send_many = function(list, ...)
  record("send_many", #list, ...)
  return #list
end
fake.sio_select = function()
  return state.selected or {}
end
fake.sio_client_info = function()
  return "eio-1", 4, "websocket", "127.0.0.1"
end
fake.sio_handshake = function()
  return {
    headers = json.object({ ["x-test"] = "yes" }),
    query = json.object({ EIO = "4" }),
    url = "/socket.io/?EIO=4",
    address = "127.0.0.1",
    issued = 1,
    time = "now",
    secure = false,
    xdomain = false,
    method = "GET",
  }
end
fake.sio_set = function(_, what, fn)
  record("set", what, fn)
end
fake.sio_close = function()
  record("close")
end
fake.sio_count = function()
  return 3
end


package.loaded["plume.core"] = fake
package.loaded["plume.socketio"] = nil
local socketio = require "plume.socketio"
package.loaded["plume.core"] = real_core


local function find(name)
  local out = {}
  for _, c in ipairs(calls) do
    if c[1] == name then
      out[#out + 1] = c
    end
  end
  return out
end


local nboxes = 0

-- A CONNECT from a fresh client, as C hands it up; returns the socket handle.
local function connect(name, auth)
  nboxes = nboxes + 1
  local box = { id = "id" .. nboxes }
  state.handlers.connect({ client = nboxes }, box, name, box.id, auth or json.object())
  return box
end


-- An EVENT from the client, as C hands it up.
local function event(box, id, name, ...)
  state.handlers.event(box.socket, id, name, ...)
end


describe("plume.socketio", function()
  local io

  before_each(function()
    calls = {}
    state = {}
    io = socketio.attach(nil, { connectTimeout = 100, cleanupEmptyChildNamespaces = true })
  end)

  it("passes the options through and serves the client unless told not to", function()
    assert.equal(100, state.opts.connectTimeout)
    assert.equal("/socket.io/", state.opts.path)
    assert.is_true(state.opts.serveClient)
    assert.equal("/socket.io", io:path())
  end)

  it("runs namespace middlewares in order, then accepts and fires connection", function()
    local order = {}
    io:use(function(socket, next_fn)
      order[#order + 1] = "a:" .. tostring(socket.connected)
      next_fn()
    end)
    io:use(function(_, next_fn)
      order[#order + 1] = "b"
      next_fn()
    end)
    io:on("connection", function(socket)
      order[#order + 1] = "connection:" .. tostring(socket.connected)
    end)
    local box = connect("/", json.object({ token = "t" }))
    assert.same({ "a:false", "b", "connection:true" }, order)
    local socket = box.socket
    assert.equal(box.id, socket.id)
    assert.same({ [box.id] = true }, socket.rooms)
    assert.equal(socket, io.sockets.sockets[box.id])
    assert.equal("t", socket.handshake.auth.token)
    assert.equal("yes", socket.handshake.headers["x-test"])
    assert.equal("eio-1", socket.conn.id)
    assert.equal(4, socket.conn.protocol)
    assert.equal("websocket", socket.conn.transport.name)
    assert.equal("127.0.0.1", socket.remoteAddress)
  end)

  it("lets a middleware call next later, once", function()
    local later
    io:use(function(_, next_fn)
      later = next_fn
    end)
    local box = connect("/")
    assert.same({}, find("accept"))
    later()
    later()
    assert.equal(1, #find("accept"))
    assert.is_true(box.socket.connected)
  end)

  it("refuses with next(err): message and data; a raised error counts as next(err)", function()
    io:use(function(socket, next_fn)
      if socket.handshake.auth.token == "raise" then
        error({ message = "raised", data = { code = 7 } })
      end
      next_fn({ message = "not authorized", data = { code = 42 } })
    end)
    local box = connect("/")
    local refusal = find("refuse")[1]
    assert.same({ "refuse", box.id, "not authorized", { code = 42 } }, { unpack(refusal, 1, 4) })
    assert.is_false(box.socket.connected)
    local raised = connect("/", json.object({ token = "raise" }))
    refusal = find("refuse")[2]
    assert.same({ "refuse", raised.id, "raised", { code = 7 } }, { unpack(refusal, 1, 4) })
  end)

  it("refuses an unknown namespace as Invalid namespace, in the v4 shape", function()
    local box = connect("/nope")
    assert.same({ "refuse", box.id, "Invalid namespace", nil, true },
                { unpack(find("refuse")[1], 1, 5) })
  end)

  it("returns the server already attached for the same app and path", function()
    local app = { get = function() return nil end }
    local first = socketio.attach(app, { path = "/rt" })
    assert.equal(first, socketio.attach(app, { path = "/rt/" }))
    local other = socketio.attach(app, {})
    assert.not_equal(first, other)
    assert.equal(other, socketio.attach(app))
  end)

  it("normalises static names and returns the same namespace", function()
    local admin = io:of("admin")
    assert.equal("/admin", admin.name)
    assert.equal(admin, io:of("/admin"))
    assert.equal(io.sockets, io:of("/"))
  end)

  it("makes children of a Lua-pattern parent, sharing its middlewares and listeners", function()
    local parent = io:of("^/dyn%-%d+$")
    local seen = {}
    parent:on("connection", function(socket)
      seen[#seen + 1] = socket.nsp.name
    end)
    local a = connect("/dyn-1")
    parent:use(function(socket, next_fn) -- added after the first child exists
      socket.data.checked = true
      next_fn()
    end)
    local b = connect("/dyn-1")
    connect("/dyn-2")
    connect("/dyn-x")
    assert.same({ "/dyn-1", "/dyn-1", "/dyn-2" }, seen)
    assert.equal(a.socket.nsp, b.socket.nsp)
    assert.is_nil(a.socket.data.checked)
    assert.is_true(b.socket.data.checked)
    assert.equal("Invalid namespace", find("refuse")[1][3])
    -- the parent's emit reaches every child
    parent:emit("news", 1)
    local names = {}
    for _, c in ipairs(find("broadcast")) do
      names[#names + 1] = c[2]
    end
    table.sort(names)
    assert.same({ "/dyn-1", "/dyn-2" }, names)
  end)

  it("asks a function parent, which may answer later", function()
    local answer
    io:of(function(name, auth, next_fn)
      answer = function()
        next_fn(nil, name == "/fn" and auth.ok == true)
      end
    end):on("connection", function(socket)
      socket.data.welcomed = true
    end)
    local box = connect("/fn", json.object({ ok = true }))
    assert.same({}, find("accept"))
    answer()
    assert.is_true(box.socket.data.welcomed)
    -- the child exists now: used at once, as in socket.io
    local again = connect("/fn", json.object({ ok = false }))
    assert.is_true(again.socket.connected)
    connect("/other", json.object({ ok = true }))
    answer()
    assert.equal("Invalid namespace", find("refuse")[1][3])
  end)

  it("drops an empty child namespace with cleanupEmptyChildNamespaces", function()
    io:of("^/room%-%d+$")
    local box = connect("/room-1")
    box.socket:disconnect()
    assert.equal("/room-1", find("namespace_free")[1][2])
    local again = connect("/room-1")
    assert.is_true(again.socket.connected)
    assert.not_equal(box.socket.nsp, again.socket.nsp)
  end)

  describe("events", function()
    local box, socket

    before_each(function()
      io:on("connection", function(s)
        s:on("sum", function(a, b)
          return a + b
        end)
        s:on("two", function()
          return 1, json.null, 3
        end)
        s:on("manual", function(x, ack)
          ack(x, "manual")
          return "ignored"
        end)
        s:on("bad-then-good", function(ack)
          local ok = pcall(ack, function() end)
          assert(not ok)
          ack("error sent instead")
        end)
      end)
      box = connect("/")
      socket = box.socket
      calls = {}
    end)

    it("turns return values into the ack only when the client asked", function()
      event(box, 7, "sum", 2, 3)
      event(box, nil, "sum", 2, 3)
      event(box, 8, "two")
      assert.same({ { "ack", box.id, 7, 5, n = 4 }, { "ack", box.id, 8, 1, json.null, 3, n = 6 } },
                  find("ack"))
    end)

    it("sends an ack once, and a failed send can be retried", function()
      event(box, 1, "manual", "x")
      event(box, 2, "bad-then-good")
      assert.same({ { "ack", box.id, 1, "x", "manual", n = 5 },
                    { "ack", box.id, 2, "error sent instead", n = 4 } }, find("ack"))
    end)

    it("runs packet middlewares: a rewrite reaches the handler, a refusal fires error", function()
      local errors = {}
      socket:use(function(packet, next_fn)
        if packet[1] == "sum" then
          packet[2] = packet[2] * 10
        end
        if packet[1] == "two" then
          return next_fn({ message = "refused" })
        end
        next_fn()
      end)
      socket:on("error", function(err)
        errors[#errors + 1] = err.message
      end)
      event(box, 1, "sum", 2, 3)
      event(box, 2, "two")
      assert.same({ { "ack", box.id, 1, 23, n = 4 } }, find("ack"))
      assert.same({ "refused" }, errors)
    end)

    it("calls onAny listeners with the event name first", function()
      local seen
      socket:onAny(function(...)
        seen = pack(...)
      end)
      event(box, nil, "nobody", 1)
      assert.same({ "nobody", 1, n = 2 }, seen)
    end)

    it("once-listeners run once; off() during an emit is safe", function()
      local n, m = 0, 0
      local function second()
        m = m + 1
      end
      socket:once("ping", function()
        n = n + 1
      end)
      socket:on("ping", function()
        socket:off("ping", second)
      end)
      socket:on("ping", second)
      event(box, nil, "ping")
      event(box, nil, "ping")
      assert.equal(1, n)
      assert.equal(1, m)
      assert.equal(1, socket:listenerCount("ping"))
    end)
  end)

  describe("sending", function()
    local box, socket

    before_each(function()
      box = connect("/")
      socket = box.socket
      calls = {}
    end)

    it("refuses reserved event names", function()
      for _, name in ipairs({ "connect", "disconnect", "disconnecting", "newListener" }) do
        assert.has_error(function()
          socket:emit(name)
        end, '"' .. name .. '" is a reserved event name')
      end
      assert.has_error(function()
        io:emit("connect_error")
      end)
    end)

    it("asks for an ack with a trailing function; timeout() makes it (err, ...)", function()
      local fn = function() end
      socket:emit("q", 1, fn)
      socket:timeout(50):emit("q", 2, fn)
      local emits = find("emit_ack")
      assert.same({ "emit_ack", box.id, nil, false, "q", 1, n = 6 }, emits[1])
      assert.same({ "emit_ack", box.id, 50, true, "q", 2, n = 6 }, emits[2])
      assert.equal(fn, state.ack_fn)
      assert.same({ nil, "answer" }, { socket:timeout(10):emitWithAck("q") })
      assert.same({ "emit_wait", box.id, 10, "q", n = 4 }, find("emit_wait")[1])
    end)

    it("reports a closed socket to a timeout callback as disconnected, later", function()
      box.closed = true
      assert.is_false(socket:timeout(5):emit("q", function() end))
      assert.same({ "later", "disconnected", n = 2 }, find("later")[1])
    end)

    it("builds broadcasts: broadcast leaves the socket out, to/except add up", function()
      socket.broadcast:emit("a")
      socket:to("r1"):to({ "r2", "r3" }):except("r4"):emit("b", 1)
      io:to("r1"):emit("c")
      io:in_("r1"):volatile():compress(false):local_():emit("d")
      io["in"](io, "r9"):emit("e")
      io:emit("f")
      local b = find("broadcast")
      assert.same({ "broadcast", "/", nil, { box.id }, "a", n = 5 }, b[1])
      assert.same({ "broadcast", "/", { "r1", "r2", "r3" }, { box.id, "r4" }, "b", 1, n = 6 }, b[2])
      assert.same({ "broadcast", "/", { "r1" }, nil, "c", n = 5 }, b[3])
      assert.same({ "broadcast", "/", { "r1" }, nil, "d", n = 5 }, b[4])
      assert.same({ "broadcast", "/", { "r9" }, nil, "e", n = 5 }, b[5])
      assert.same({ "broadcast", "/", nil, nil, "f", n = 5 }, b[6])
      -- an operator is never changed by the next one
      local base = io:to("x")
      base:to("y")
      base:emit("g")
      assert.same({ "x" }, find("broadcast")[7][3])
    end)

    it("needs a timeout for a broadcast asking for acks", function()
      assert.has_error(function()
        io:emit("q", function() end)
      end)
      local fn = function() end
      io:to("r"):timeout(20):emit("q", 1, fn)
      assert.same({ "broadcast_ack", "/", { "r" }, nil, 20, fn, "q", 1, n = 8 },
                  find("broadcast_ack")[1])
    end)

    it("sends to a list of sockets at once for the Feathers dispatcher", function()
      assert.equal(1, io:broadcast({ socket }, "created", { id = 1 }))
      assert.same({ "send_many", 1, "created", { id = 1 }, n = 4 }, find("send_many")[1])
    end)

    it("joins and leaves rooms in C and in socket.rooms", function()
      socket:join({ "a", "b" })
      socket:leave("a")
      assert.same({ [box.id] = true, b = true }, socket.rooms)
      assert.same({ "join", box.id, "b", n = 3 }, find("join")[2])
    end)
  end)

  it("disconnects: disconnecting with the rooms, then disconnect without them", function()
    local seen = {}
    io:on("connection", function(socket)
      socket:join("r")
      socket:on("disconnecting", function(reason)
        seen[#seen + 1] = reason .. ":" .. tostring(socket.rooms.r)
      end)
      socket:on("disconnect", function(reason)
        seen[#seen + 1] = reason .. ":" .. tostring(socket.rooms.r)
      end)
    end)
    local a = connect("/")
    local b = connect("/")
    a.socket:disconnect()
    state.handlers.disconnect(b.socket, "ping timeout")
    assert.same({ "server namespace disconnect:true", "server namespace disconnect:nil",
                  "ping timeout:true", "ping timeout:nil" }, seen)
    assert.is_nil(io.sockets.sockets[a.id])
    assert.is_false(a.socket.connected)
    a.socket:disconnect() -- twice: nothing more
    assert.equal(1, #find("disconnect"))
  end)

  it("lets engine.generateId be set and counts clients", function()
    local gen = function() return "x" end
    io.engine.generateId = gen
    assert.same({ "set", "generateId", gen, n = 3 }, find("set")[1])
    assert.equal(3, io.engine.clientsCount)
  end)
end)
