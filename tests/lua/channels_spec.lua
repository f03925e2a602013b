-- luacheck: std +busted
require "tests.lua.helper"
local application = require "plume.application"
local channels = require "plume.channels"
local json = require "plume.json"


local function conn(name)
  return { provider = "socketio", name = name }
end


local function names_of(list)
  local result = {}
  for i, c in ipairs(list) do
    result[i] = c.name
  end

  return result
end


describe("plume.channels", function()
  describe("channel", function()
    it("joins connections once, ignoring nil, in order", function()
      local a, b = conn("a"), conn("b")
      local ch = channels.new()
      assert.equal(ch, ch:join(a, nil, b, a))
      assert.equal(2, ch.length)
      assert.equal(2, #ch)
      assert.same({ "a", "b" }, names_of(ch.connections))
      assert.is_true(ch:has(a))
    end)

    it("leaves connections or those a predicate selects", function()
      local a, b, c = conn("a"), conn("b"), conn("c")
      local ch = channels.new():join(a, b, c)
      ch:leave(b)
      assert.same({ "a", "c" }, names_of(ch.connections))
      ch:leave(function(x) return x.name == "c" end)
      assert.same({ "a" }, names_of(ch.connections))
      ch:leave(conn("stranger"))
      assert.equal(1, ch.length)
    end)

    it("filter gives a new channel with the same data", function()
      local a, b = conn("a"), conn("b")
      local ch = channels.new({ a, b }, "d")
      local only_b = ch:filter(function(x) return x.name == "b" end)
      assert.same({ "b" }, names_of(only_b.connections))
      assert.equal("d", only_b.data)
      assert.equal(2, ch.length)
    end)

    it("send gives a new channel with data attached", function()
      local a = conn("a")
      local ch = channels.new({ a })
      local sent = ch:send({ hidden = true })
      assert.same({ hidden = true }, sent.data)
      assert.is_nil(ch.data)
      assert.same({ "a" }, names_of(sent.connections))
    end)

    it("combines channels: union, first data wins", function()
      local a, b, c = conn("a"), conn("b"), conn("c")
      local one = channels.new({ a, b }, "one")
      local two = channels.new({ b, c }, "two")
      local combined = channels.combine({ one, two })
      assert.same({ "a", "b", "c" }, names_of(combined.connections))
      assert.equal(3, combined.length)
      assert.equal("one", combined:data_for(a))
      assert.equal("one", combined:data_for(b))
      assert.equal("two", combined:data_for(c))
    end)
  end)

  describe("app:channel", function()
    local app

    before_each(function()
      app = application.new()
    end)

    it("creates named channels on first use and lists them", function()
      local ch = app:channel("everybody")
      assert.equal(ch, app:channel("everybody"))
      app:channel("admins")
      assert.same({ "everybody", "admins" }, app.channels)
    end)

    it("combines several names (varargs or a list)", function()
      local a, b = conn("a"), conn("b")
      app:channel("x"):join(a)
      app:channel("y"):join(b, a)
      local combined = app:channel("x", "y")
      assert.same({ "a", "b" }, names_of(combined.connections))
      combined = app:channel({ "y", "x" })
      assert.same({ "b", "a" }, names_of(combined.connections))
    end)

    it("joining or leaving a combined channel changes each member", function()
      local a = conn("a")
      local combined = app:channel("x", "y")
      combined:join(a)
      assert.is_true(app:channel("x"):has(a))
      assert.is_true(app:channel("y"):has(a))
      assert.equal(1, combined.length)
      combined:leave(a)
      assert.equal(0, combined.length)
    end)

    it("deletes a named channel emptied by leave", function()
      local a = conn("a")
      local ch = app:channel("room"):join(a)
      ch:leave(a)
      assert.same({}, app.channels)
      assert.not_equal(ch, app:channel("room"))
    end)

    it("needs at least one name", function()
      assert.has_error(function()
        app:channel()
      end, "app.channel needs at least one channel name")
    end)

    it("leave_channels removes a connection from every channel", function()
      local a, b = conn("a"), conn("b")
      app:channel("one"):join(a, b)
      app:channel("two"):join(a)
      app:channel("three"):join(b)
      application.leave_channels(app, a)
      assert.is_false(app:channel("one"):has(a))
      assert.same({ "one", "three" }, app.channels)
    end)
  end)

  describe("publishing (§4.3)", function()
    local app, svc, published

    before_each(function()
      app = application.new()
      app:use("todos", {
        create = function(_, data) return data end,
        patch = function(_, id, data) data.id = id return data end,
        notify = function(self, data)
          self:emit("status", data)
          return { sent = true }
        end,
      }, { methods = { "create", "patch", "notify" }, events = { "status" } })
      svc = app:service("todos")
      published = {}
      app:on("publish", function(event, channel, ctx, data)
        published[#published + 1] = { event = event, channel = channel, ctx = ctx, data = data }
      end)
      app:channel("all"):join(conn("a"))
      app:channel("other"):join(conn("b"))
    end)

    it("sends nothing without a publisher", function()
      svc:create({ text = "x" })
      assert.same({}, published)
    end)

    it("picks service event, service all, app event, app all, in that order", function()
      local picked = {}
      local function pub(label)
        return function()
          picked[#picked + 1] = label
          return app:channel("all")
        end
      end

      app:publish(pub("app all"))
      svc:create({})
      app:publish("created", pub("app created"))
      svc:create({})
      svc:publish(pub("svc all"))
      svc:create({})
      svc:publish("created", pub("svc created"))
      svc:create({})
      svc:patch(1, {})
      assert.same({ "app all", "app created", "svc all", "svc created", "svc all" }, picked)
      assert.equal(5, #published)
      assert.equal("patched", published[5].event)
    end)

    it("passes data and context, and emits app 'publish'", function()
      local got
      app:publish(function(data, ctx)
        got = { data = data, ctx = ctx }
        return app:channel("all")
      end)
      svc:create({ text = "hello" })
      assert.same({ text = "hello" }, got.data)
      assert.equal("create", got.ctx.method)
      assert.equal("created", published[1].event)
      assert.equal(got.ctx, published[1].ctx)
      assert.same({ "a" }, names_of(published[1].channel.connections))
    end)

    it("accepts nested lists of channels and drops empty entries", function()
      app:publish(function()
        return { app:channel("all"), { json.null, { app:channel("other") } }, false }
      end)
      svc:create({})
      assert.same({ "a", "b" }, names_of(published[1].channel.connections))
    end)

    it("publishes nothing for nil or an empty channel", function()
      app:publish("created", function() end)
      svc:create({})
      app:publish("created", function() return app:channel("nobody") end)
      svc:create({})
      assert.same({}, published)
    end)

    it("swallows and logs publisher errors", function()
      local logged
      app.log = function(level, msg) logged = level .. " " .. msg end
      app:publish(function() error("publisher broke") end)
      assert.same({ text = "still works" }, svc:create({ text = "still works" }))
      assert.matches("^error Error in 'todos created' publisher: .-publisher broke", logged)
    end)

    it("gives custom events without a context a stand-in context", function()
      local got
      svc:publish("status", function(_, ctx)
        got = ctx
        return app:channel("all")
      end)
      svc:emit("status", { message = "direct" })
      assert.equal("todos", got.path)
      assert.equal(svc, got.service)
      assert.equal(app, got.app)
      assert.same({ message = "direct" }, got.result)
      assert.equal("status", published[1].event)
    end)

    it("publishes one event per element of array results", function()
      app:publish(function() return app:channel("all") end)
      svc:create(json.array({ { n = 1 }, { n = 2 } }))
      assert.equal(2, #published)
      assert.same({ n = 1 }, published[1].data)
      assert.same({ n = 2 }, published[2].data)
    end)

    it("refuses publishers for events that are no service events", function()
      assert.has_error(function()
        svc:publish("bogus", function() end)
      end, "'bogus' is not a valid service event")
      assert.has_error(function()
        app:publish("status", function() end)
      end, "'status' is not a valid service event")
      svc:publish("status", function() end)
      app:publish("removed", function() end)
    end)

    it("can wait inside a publisher", function()
      local helper = require "tests.lua.helper"
      app:publish(function()
        helper.sleep(5)
        return app:channel("all")
      end)
      helper.await(function() return svc:create({}) end)
      assert.equal(1, #published)
    end)
  end)
end)
