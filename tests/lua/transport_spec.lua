-- luacheck: std +busted
local helper = require "tests.lua.helper"
local application = require "plume.application"
local errors = require "plume.errors"
local json = require "plume.json"
local memory = require "plume.adapters.memory"
local transport = require "plume.transport"


local null = json.null
local encode = helper.encode
local wire = helper.wire


-- The app of the wire captures in spec/feathers.md §3.1: todos (memory), verify (echoes
-- its params), secure (find and create only), errors (no find).
local function make_app(options)
  local app = application.new()
  app.log = function() end
  app:use("todos", memory.new({ multi = { "patch", "remove" } }))
  app:use("verify", {
    find = function(_, params)
      return { query = params.query, route = params.route, provider = params.provider,
               room = params.room, same_connection = params.connection }
    end,
    get = function(_, id, params)
      return { id = id, query = params.query, route = params.route }
    end,
    create = function(_, data, params)
      return { data = data, query = params.query }
    end,
    notify = function(self, data, params)
      local status = { message = data.message, provider = params.provider }
      self:emit("status", status)
      return { sent = true, status = status }
    end,
    customMethod = function(_, data, params)
      return { data = data, provider = params.provider, type = "customMethod" }
    end,
    fail = function()
      error("Something went wrong")
    end,
    nothing = function()
      return nil
    end,
  }, {
    methods = { "find", "get", "create", "notify", "customMethod", "fail", "nothing" },
    events = { "status" },
  })
  app:use("secure", {
    find = function() return {} end,
    create = function(_, d) return d end,
    remove = function() return "removed" end,
  }, { methods = { "find", "create" } })
  app:use("users/:userId/messages", {
    find = function(_, params) return { route = params.route } end,
    get = function(_, id, params) return { id = id, route = params.route } end,
    create = function(_, data, params)
      return { method = "create", data = data, route = params.route }
    end,
  })

  local io = helper.new_io()
  if options and options.before_setup then
    options.before_setup(app, io)
  end

  transport.setup(app, io, options)
  app:on("connection", function(connection)
    app:channel("everybody"):join(connection)
  end)
  app:publish(function()
    return app:channel("everybody")
  end)

  return app, io
end


describe("plume.transport", function()
  local app, io, socket

  before_each(function()
    app, io = make_app()
    socket = io:connect()
  end)

  describe("connection (§2)", function()
    it("builds the connection object from the handshake", function()
      assert.same({ provider = "socketio", headers = { host = "localhost:3030" } },
                  socket.feathers)
      assert.equal(socket, transport.socket_of(app, socket.feathers))
      assert.equal(app.io, io)
    end)

    it("emits app 'connection' with the connection object", function()
      local got
      app:on("connection", function(c) got = c end)
      local s = io:connect()
      assert.equal(s.feathers, got)
    end)

    it("runs the app's own middleware after the params middleware", function()
      local app2 = application.new()
      app2:use("verify", { find = function(_, params) return { room = params.room } end })
      app2:configure(transport.socketio(function(server)
        server:use(function(s, next_fn)
          s.feathers.room = s.handshake.query.room
          next_fn()
        end)
      end))
      local io2 = helper.new_io()
      transport.setup(app2, io2)
      local s = io2:connect({ headers = {}, query = { room = "red" } })
      assert.same({ null, { room = "red" } }, { s:call("find", "verify", {})[1],
                                                s:call("find", "verify", {})[2] })
    end)

    it("accepts socketio([port,] [options,] [callback]) and keeps the options", function()
      local app2 = application.new()
      app2:configure(transport.socketio({ path = "/ws/" }))
      assert.same({ path = "/ws/" }, app2:get("socketio"))
      app2:configure(transport.socketio(3031, function() end))
      assert.same({ port = 3031 }, app2:get("socketio"))
      local got
      app2:configure(transport.socketio(3032, { path = "/x/" }, function(server) got = server end))
      assert.same({ port = 3032, path = "/x/" }, app2:get("socketio"))
      local io2 = helper.new_io()
      transport.setup(app2, io2)
      assert.equal(io2, got)
    end)

    it("calls a socketio callback at once when the transport is already set up", function()
      local got
      app:configure(transport.socketio(function(server) got = server end))
      assert.equal(io, got)
    end)

    it("installs one handler per method of any service", function()
      for _, name in ipairs({ "find", "get", "create", "update", "patch", "remove", "notify",
                              "customMethod" }) do
        assert.is_table(socket.handlers[name], name)
        assert.equal(1, #socket.handlers[name])
      end

      assert.is_nil(socket.handlers.setup)
      assert.is_nil(socket.handlers["todos::find"])
    end)

    it("adds handlers for methods of services registered later", function()
      assert.is_nil(socket.handlers.later)
      app:use("late", { later = function() return "yes" end }, { methods = { "later" } })
      assert.same({ null, "yes" }, { table.unpack(socket:call("later", "late", {}), 1, 2) })
    end)

    it("refuses the connection when handshake authentication fails", function()
      app.handshake_authentication = function(_, s)
        if s.handshake.headers.authorization ~= "ok" then
          error(errors.NotAuthenticated("invalid token", { name = "JsonWebTokenError" }))
        end

        s.feathers.user = { id = 1 }
      end

      local refused_socket, err = io:connect({ headers = { authorization = "bad" } })
      assert.equal("invalid token", err.message)
      assert.same({ name = "JsonWebTokenError" }, err.data)
      assert.is_false(refused_socket.connected)

      local accepted, err2 = io:connect({ headers = { authorization = "ok" } })
      assert.is_nil(err2)
      assert.same({ id = 1 }, accepted.feathers.user)
    end)
  end)

  describe("calls (§3.1, §3.2)", function()
    it("runs the observed exchange of §3.1", function()
      local ack = socket:call("create", "todos", { text = "some task", complete = false }, {})
      assert.equal('[null,{"complete":false,"id":0,"text":"some task"}]', wire(ack))

      ack = socket:call("find", "todos", { complete = false })
      assert.equal('[null,[{"complete":false,"id":0,"text":"some task"}]]', wire(ack))

      ack = socket:call("create", "todos", { text = "buy milk" }, {})
      assert.equal('[null,{"id":1,"text":"buy milk"}]', wire(ack))
      local created = socket:events("todos created")
      assert.equal(2, #created)
      assert.equal('["todos created",{"id":1,"text":"buy milk"}]',
                   wire(created[2]))

      ack = socket:call("patch", "todos", 1, { complete = true }, {})
      assert.equal('[null,{"complete":true,"id":1,"text":"buy milk"}]', wire(ack))
      assert.equal(1, #socket:events("todos patched"))

      ack = socket:call("customMethod", "verify", { message = "hi" }, {})
      assert.equal('[null,{"data":{"message":"hi"},"provider":"socketio","type":"customMethod"}]',
                   wire(ack))

      ack = socket:call("remove", "todos", 1, {})
      assert.equal('[null,{"complete":true,"id":1,"text":"buy milk"}]', wire(ack))
      assert.equal(1, #socket:events("todos removed"))

      ack = socket:call("get", "todos", 987654321, {})
      assert.equal('[{"className":"not-found","code":404,'
                   .. '"message":"No record found for id \'987654321\'","name":"NotFound"}]',
                   wire(ack))

      ack = socket:call("notify", "verify", { message = "hello" }, {})
      assert.equal('[null,{"sent":true,"status":{"message":"hello","provider":"socketio"}}]',
                   wire(ack))
      local status = socket:events("verify status")
      assert.equal('["verify status",{"message":"hello","provider":"socketio"}]',
                   wire(status[1]))
    end)

    it("acks success with two arguments and errors with one", function()
      local ok = socket:call("find", "secure", {})
      assert.equal(2, ok.n)
      assert.equal(null, ok[1])

      local failed = socket:call("get", "nope", 1, {})
      assert.equal(1, failed.n)
      assert.equal("NotFound", failed[1].name)
    end)

    it("sends null for a nil result", function()
      local ack = socket:call("nothing", "verify", {}, {})
      assert.equal(2, ack.n)
      assert.equal("[null,null]", wire(ack))
    end)

    it("acks context.dispatch instead of the result when a hook sets it", function()
      app:service("verify"):hooks({ after = { create = function(ctx)
        ctx.dispatch = { hidden = true }
      end } })
      local ack = socket:call("create", "verify", { secret = 1 }, {})
      assert.same({ hidden = true }, ack[2])
    end)

    it("runs calls without an ack all the same", function()
      assert.is_true(socket:send("create", "todos", { text = "no ack" }, {}))
      assert.equal(1, #socket:events("todos created"))
      assert.equal(1, #app:service("todos"):find())
    end)

    it("answers GeneralError when the result cannot be sent (§4.6 #41)", function()
      app:use("weird", { find = function() return { fn = print } end })
      local acks = {}
      local function ack(...)
        local args = table.pack(...)
        if args.n == 2 and type(args[2]) == "table" and args[2].fn then
          error("result is not serializable")
        end

        acks[#acks + 1] = args
      end

      helper.await(socket.handlers.find[1], "weird", {}, ack)
      assert.equal(1, #acks)
      assert.equal(1, acks[1].n)
      assert.equal("GeneralError", acks[1][1].name)
      assert.equal("result is not serializable", acks[1][1].message)
    end)

    it("acks concurrent calls in completion order", function()
      app:use("slow", {
        get = function(_, id)
          helper.sleep(id)
          return { id = id }
        end,
      })
      local order = {}
      for _, id in ipairs({ 30, 10, 20 }) do
        helper.spawn(socket.handlers.get[1], "slow", id, {}, function(_, result)
          order[#order + 1] = result.id
        end)
      end
      helper.drain()
      assert.same({ 10, 20, 30 }, order)
    end)
  end)

  describe("call errors (§3.3, §3.6)", function()
    it("answers NotFound for unknown services", function()
      local ack = socket:call("get", "nope", 1, {})
      assert.equal('[{"className":"not-found","code":404,"message":"Service \'nope\' not found",'
                   .. '"name":"NotFound"}]', wire(ack))
    end)

    it("answers 'Invalid service path' for paths that are not strings", function()
      for _, path in ipairs({ 123, { toString = "" }, true }) do
        local ack = socket:call("find", path, {})
        assert.equal("Invalid service path", ack[1].message)
        assert.equal(404, ack[1].code)
      end

      local ack = socket:call("get", null, 1, {})
      assert.equal("Invalid service path", ack[1].message)
    end)

    it("answers MethodNotAllowed for methods the service does not expose", function()
      local ack = socket:call("remove", "secure", 1, {})
      assert.equal('[{"className":"method-not-allowed","code":405,'
                   .. '"message":"Method \'remove\' not allowed on service \'secure\'",'
                   .. '"name":"MethodNotAllowed"}]', wire(ack))

      ack = socket:call("find", "users/1/messages/x/y", {})
      assert.equal("Service 'users/1/messages/x/y' not found", ack[1].message)
    end)

    it("answers BadRequest for too many arguments", function()
      local ack = socket:call("find", "verify", {}, {})
      assert.equal('[{"className":"bad-request","code":400,'
                   .. '"message":"Too many arguments for \'find\' method",'
                   .. '"name":"BadRequest"}]', wire(ack))
      ack = socket:call("get", "verify", 1, {}, {})
      assert.equal("Too many arguments for 'get' method", ack[1].message)
    end)

    it("ignores events that are no method of any service", function()
      assert.is_nil(socket:call("notAMethodAnywhere", "todos", {}))
      assert.is_nil(socket:call("setup", "todos", {}))
      assert.is_nil(socket:call("_find", "todos", {}))
      assert.is_true(socket.connected)
      assert.equal(null, socket:call("find", "secure", {})[1])
    end)

    it("sends plain Lua errors as { message } without position, stack in development", function()
      local ack = socket:call("fail", "verify", {}, {})
      assert.equal(1, ack.n)
      assert.equal("Something went wrong", ack[1].message)
      assert.matches("stack traceback", ack[1].stack)
      assert.is_nil(ack[1].name)
      assert.is_nil(ack[1].code)

      app:set("env", "production")
      ack = socket:call("fail", "verify", {}, {})
      assert.equal('[{"message":"Something went wrong"}]', wire(ack))
    end)

    it("logs plain errors with method and service", function()
      local logged
      app.log = function(level, msg) logged = level .. " " .. msg end
      socket:call("fail", "verify", {}, {})
      assert.matches("^error Error in method 'fail' on service 'verify': ", logged)
    end)

    it("refuses injection-shaped ids before the service runs (§4.5 #35)", function()
      local reached = false
      app:use("ids", {
        get = function() reached = true end,
        remove = function() reached = true end,
      })
      for _, id in ipairs({ { ["$ne"] = null }, json.array({ 1, 2 }), string.rep("x", 5000),
                            true }) do
        local ack = socket:call("get", "ids", id, {})
        assert.equal("BadRequest", ack[1].name)
        assert.equal("Invalid id for 'get' method", ack[1].message)
      end

      local ack = socket:call("remove", "ids", { ["$ne"] = null }, {})
      assert.equal("Invalid id for 'remove' method", ack[1].message)
      assert.is_false(reached)
    end)

    it("refuses injection-shaped queries through the adapter (§4.5 #35-36)", function()
      local ack = socket:call("find", "todos", { ["$where"] = "1 == 1" })
      assert.equal("Invalid filter value $where", ack[1].message)

      ack = socket:call("find", "todos", { name = { ["$where"] = "x" } })
      assert.equal("Invalid query parameter $where", ack[1].message)
      assert.same({ ["$where"] = "x" }, ack[1].data)

      ack = socket:call("find", "todos", { ["$foo"] = 1 })
      assert.equal("Invalid filter value $foo", ack[1].message)

      ack = socket:call("find", "todos", "a string query")
      assert.equal(null, ack[1])
      ack = socket:call("find", "todos", json.array({ 1, 2 }))
      assert.equal(null, ack[1])
    end)
  end)

  describe("edge cases (§3.5)", function()
    it("get without an id reaches the service with id undefined", function()
      local ack = socket:call("get", "todos")
      assert.equal("No record found for id 'undefined'", ack[1].message)
    end)

    it("a path with an id matches :__id", function()
      local ack = socket:call("find", "verify/0", {})
      assert.same({ __id = "0" }, ack[2].route)
    end)

    it("fills route placeholders as strings, the id stays the argument", function()
      local ack = socket:call("get", "users/5/messages/9", 1, {})
      assert.same({ id = 1, route = { userId = "5", __id = "9" } }, ack[2])
    end)

    it("ignores leading and trailing slashes", function()
      local ack = socket:call("find", "/verify/", {})
      assert.equal(null, ack[1])
      assert.same({}, ack[2].route)
    end)

    it("null query gives {}", function()
      local ack = socket:call("find", "verify", null)
      assert.equal('{}', encode(ack[2].query))
      ack = socket:call("find", "verify")
      assert.equal('{}', encode(ack[2].query))
    end)

    it("without a path the callback becomes the path: no ack", function()
      local acked = false
      socket:send("find", function() acked = true end)
      assert.is_false(acked)
    end)
  end)

  describe("params (§3.4)", function()
    it("builds query, route, connection and the connection's fields", function()
      socket.feathers.room = "red"
      local query = { a = 1, flag = true }
      local ack = socket:call("find", "verify", query)
      local result = ack[2]
      assert.same({ a = 1, flag = true }, result.query)
      assert.not_equal(query, result.query)
      assert.same({}, result.route)
      assert.equal("socketio", result.provider)
      assert.equal("red", result.room)
      assert.equal(socket.feathers, result.same_connection)
    end)

    it("passes the same connection object to every call, a new params each time", function()
      local seen = {}
      app:service("verify"):hooks({ before = { find = function(ctx)
        seen[#seen + 1] = ctx.params
        ctx.params.query.mutated = true
      end } })
      local original = { x = 1 }
      socket:call("find", "verify", original)
      socket:call("find", "verify", original)
      assert.not_equal(seen[1], seen[2])
      assert.equal(seen[1].connection, seen[2].connection)
      assert.is_nil(original.mutated)
      assert.same({ "socketio", socket.handshake.headers },
                  { seen[1].provider, seen[1].headers })
    end)

    it("internal calls have no provider", function()
      local result = app:service("verify"):find()
      assert.is_nil(result.provider)
    end)
  end)

  describe("events to clients (§4)", function()
    it("sends the event to every connection of the published channels", function()
      local other = io:connect()
      socket:call("create", "todos", { text = "x" }, {})
      assert.equal(1, #socket:events("todos created"))
      assert.equal(1, #other:events("todos created"))
    end)

    it("uses channel data, else dispatch, else result", function()
      local other = io:connect()
      app:channel("everybody"):leave(other.feathers)
      app:channel("special"):join(other.feathers)
      app:service("verify"):publish("created", function()
        return { app:channel("everybody"), app:channel("special"):send({ special = true }) }
      end)
      app:service("verify"):hooks({ after = { create = function(ctx)
        ctx.dispatch = { dispatched = true }
      end } })
      socket:call("create", "verify", {}, {})
      assert.same({ dispatched = true }, socket:events("verify created")[1][2])
      assert.same({ special = true }, other:events("verify created")[1][2])
    end)

    it("picks the element of an array dispatch by index of the event's data", function()
      app:service("todos"):hooks({ after = { patch = function(ctx)
        local dispatch = json.array({})
        for i, item in ipairs(ctx.result) do
          dispatch[i] = { only_id = item.id }
        end

        ctx.dispatch = dispatch
      end } })
      app:service("todos"):create({ text = "a" })
      app:service("todos"):create({ text = "b" })
      socket:call("patch", "todos", null, { done = true }, {})
      local patched = socket:events("todos patched")
      assert.equal(2, #patched)
      assert.same({ only_id = 0 }, patched[1][2])
      assert.same({ only_id = 1 }, patched[2][2])
    end)

    it("names events after the registered path", function()
      socket:call("create", "users/5/messages", { text = "x" }, {})
      local events = socket:events("users/:userId/messages created")
      assert.equal(1, #events)
      assert.same({ method = "create", data = { text = "x" }, route = { userId = "5" } },
                  events[1][2])
    end)

    it("uses '/ created' for the root service", function()
      app:use("/", { create = function(_, d) return d end })
      socket:call("create", "/", { a = 1 }, {})
      assert.equal(1, #socket:events("/ created"))
    end)

    it("skips connections without a live socket", function()
      local other = io:connect()
      other:drop()
      app:channel("everybody"):join(other.feathers)
      socket:call("create", "todos", {}, {})
      assert.equal(0, #other:events("todos created"))
      assert.equal(1, #socket:events("todos created"))
    end)

    it("encodes once per payload when io:broadcast exists", function()
      local calls = {}
      io.broadcast = function(_, sockets, event, data)
        calls[#calls + 1] = { n = #sockets, event = event, data = data }
      end
      io:connect()
      socket:call("create", "todos", { text = "b" }, {})
      assert.equal(1, #calls)
      assert.equal(2, calls[1].n)
      assert.equal("todos created", calls[1].event)
    end)

    it("logs a failing send; the call and the other sockets are unaffected", function()
      local logged
      app.log = function(level, msg) logged = level .. " " .. msg end
      local bad = io:connect()
      bad.emit = function() error("cannot encode") end
      local good = io:connect()
      local ack = socket:call("create", "todos", { text = "x" }, {})
      assert.equal(null, ack[1])
      assert.equal(1, #good:events("todos created"))
      assert.equal(1, #socket:events("todos created"))
      assert.matches("^error Could not send event 'todos created': .-cannot encode", logged)
    end)

    it("dispatch() emits a raw event to a connection", function()
      assert.is_true(transport.dispatch(app, socket.feathers, "news", { n = 1 }))
      assert.same({ n = 1 }, socket:events("news")[1][2])
      assert.is_false(transport.dispatch(app, {}, "news", 1))
    end)
  end)

  describe("disconnect (§2.3)", function()
    it("emits app 'disconnect' and leaves every channel when the client goes", function()
      local got
      app:on("disconnect", function(c) got = c end)
      app:channel("extra"):join(socket.feathers)
      local connection = socket.feathers
      socket:drop()
      assert.equal(connection, got)
      assert.same({}, app.channels)
      assert.is_nil(transport.socket_of(app, connection))
    end)

    it("disconnects the socket on app 'disconnect' (once)", function()
      local count = 0
      app:on("disconnect", function() count = count + 1 end)
      app:emit("disconnect", socket.feathers)
      assert.is_false(socket.connected)
      assert.equal("io server disconnect", socket.disconnect_reason)
      assert.equal(1, count)
      assert.is_false(app:channel("everybody"):has(socket.feathers))
    end)

    it("leaves every channel on app 'logout'", function()
      app:channel("authenticated"):join(socket.feathers)
      app:emit("logout", {}, { connection = socket.feathers })
      assert.same({}, app.channels)
      assert.is_true(socket.connected)
    end)

    it("a reconnecting client is a new connection", function()
      local first = socket.feathers
      socket:drop()
      local again = io:connect()
      assert.not_equal(first, again.feathers)
      assert.is_true(app:channel("everybody"):has(again.feathers))
    end)
  end)

  describe("replacing services (hot reload)", function()
    it("keeps connections, channels and handler counts over 1000 replacements", function()
      local publish_listeners = app:listener_count("publish")
      local disconnect_listeners = app:listener_count("disconnect")
      app:channel("room"):join(socket.feathers)
      local old = app:service("todos")
      for i = 1, 1000 do
        app:use("todos", memory.new({ store = old.store }))
        app:service("todos"):hooks({ before = { create = function(ctx)
          ctx.data.version = i
        end } })
      end

      assert.equal(1, #socket.handlers.create)
      assert.equal(publish_listeners, app:listener_count("publish"))
      assert.equal(disconnect_listeners, app:listener_count("disconnect"))
      assert.is_true(app:channel("room"):has(socket.feathers))

      local ack = socket:call("create", "todos", { text = "after" }, {})
      assert.same({ text = "after", version = 1000, id = 0 }, ack[2])
      assert.equal(1, #socket:events("todos created"))
      assert.equal(1, #old:find())
    end)

    it("a method removed by a reload answers MethodNotAllowed", function()
      app:use("secure", { find = function() return {} end })
      local ack = socket:call("create", "secure", {}, {})
      assert.equal("Method 'create' not allowed on service 'secure'", ack[1].message)
      assert.is_true(socket.connected)
    end)
  end)

  describe("legacy path::method format (§3.8)", function()
    it("is off by default", function()
      assert.is_nil(socket:call("todos::create", { text = "x" }, {}))
    end)

    it("handles path::method for the standard methods a service implements", function()
      local app2, io2 = make_app({ legacy = true })
      local s = io2:connect()
      local ack = s:call("todos::create", { text = "legacy" }, {})
      assert.same({ null, { text = "legacy", id = 0 } }, { ack[1], ack[2] })
      assert.equal(1, #s:events("todos created"))

      ack = s:call("todos::find", { text = "legacy" })
      assert.equal(1, #ack[2])

      -- v2 clients sent params in the query position; no "Too many arguments" check
      ack = s:call("todos::get", 0, {}, {})
      assert.equal(null, ack[1])

      ack = s:call("secure::remove", 1, {})
      assert.equal("Method 'remove' not allowed on service 'secure'", ack[1].message)

      assert.is_nil(s.handlers["verify::notify"])
      assert.is_table(app2)
    end)
  end)
end)
