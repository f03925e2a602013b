-- luacheck: std +busted
require "tests.lua.helper"
local application = require "plume.application"
local service_mod = require "plume.service"
local memory = require "plume.adapters.memory"


local function methods_of(app, path)
  return service_mod.state(app:service(path)).options.methods
end


describe("plume.application", function()
  local app

  before_each(function()
    app = application.new()
  end)

  describe("use and service (§5.1)", function()
    it("normalises paths and returns the hook-enabled wrapper", function()
      local raw = { find = function() return { "x" } end, extra = 42 }
      assert.equal(app, app:use("/todos/", raw))
      local svc = app:service("todos")
      assert.not_equal(raw, svc)
      assert.equal(svc, app:service("/todos"))
      assert.equal(svc, app.services.todos)
      assert.equal(42, svc.extra)
      assert.same({ "x" }, svc:find())
    end)

    it("registers the empty path as '/'", function()
      app:use("", { find = function() return "root" end })
      assert.equal("root", app:service("/"):find())
      assert.equal("root", app:service("///"):find())
    end)

    it("answers nil and a message for unknown services", function()
      local svc, err = app:service("nope")
      assert.is_nil(svc)
      assert.equal("Can not find service 'nope'", err)
    end)

    it("refuses paths that are not strings", function()
      assert.has_error(function()
        app:use(42, { find = function() end })
      end, "'42' is not a valid service path.")
    end)

    it("refuses invalid service objects", function()
      assert.has_error(function()
        app:use("bad", { nothing = true })
      end, "Invalid service object passed for path `bad`")
      assert.has_error(function()
        app:use("bad", "string")
      end, "Invalid service object passed for path `bad`")
    end)

    it("accepts a service with only setup", function()
      app:use("lifecycle", { setup = function() end })
      assert.same({}, methods_of(app, "lifecycle"))
    end)

    it("defaults methods to the standard methods implemented", function()
      local f = function() return {} end
      app:use("svc", { find = f, get = f, patch = f, custom = f })
      assert.same({ "find", "get", "patch" }, methods_of(app, "svc"))
    end)

    it("takes methods as the complete list, custom methods included", function()
      local f = function() return {} end
      app:use("svc", { find = f, get = f, notify = f }, { methods = { "find", "notify" } })
      assert.same({ "find", "notify" }, methods_of(app, "svc"))
      -- get keeps its hooks for internal calls
      local called = false
      app:service("svc"):hooks({ before = { get = function() called = true end } })
      app:service("svc"):get(1)
      assert.is_true(called)
    end)

    it("refuses listed methods that are not functions", function()
      assert.has_error(function()
        app:use("svc", { find = function() end }, { methods = { "find", "missing" } })
      end, "Can not apply hooks. 'missing' is not a function")
    end)

    it("refuses protected method names", function()
      for _, name in ipairs({ "on", "emit", "once", "off", "removeListener", "listeners",
                              "all", "around", "before", "after", "error", "hooks",
                              "setup", "teardown", "publish", "__index", "__gc" }) do
        local svc = { find = function() end }
        svc[name] = function() end
        assert.has_error(function()
          app:use("svc", svc, { methods = { name } })
        end, "'" .. name .. "' on service 'svc' is not allowed as a custom method name")
      end
    end)

    it("runs custom methods as (data, params) with hooks and no event", function()
      local seen = {}
      app:use("verify", {
        notify = function(_, data, params)
          return { data = data, provider = params.provider, type = "notify" }
        end,
      }, { methods = { "notify" } })
      local svc = app:service("verify")
      svc:hooks({ before = { notify = function(ctx)
        seen.data = ctx.data
        seen.event = ctx.event
      end } })
      svc:on("notified", function() seen.emitted = true end)
      local result = svc:notify({ message = "hi" }, { provider = "test" })
      assert.same({ data = { message = "hi" }, provider = "test", type = "notify" }, result)
      assert.same({ message = "hi" }, seen.data)
      assert.is_nil(seen.event)
      assert.is_nil(seen.emitted)
    end)

    it("keeps unlisted methods callable internally", function()
      app:use("svc", {
        find = function() return "find" end,
        helper = function(self) return self:find() end,
      }, { methods = { "find" } })
      assert.equal("find", app:service("svc"):helper())
    end)

    it("runs methods with self = the wrapper (so self:get goes through hooks)", function()
      local hooked = 0
      app:use("svc", {
        get = function(_, id) return { id = id } end,
        find = function(self) return { self:get(7) } end,
      })
      local svc = app:service("svc")
      svc:hooks({ before = { get = function() hooked = hooked + 1 end } })
      assert.same({ { id = 7 } }, svc:find())
      assert.equal(1, hooked)
    end)

    it("reports a method called with '.' instead of ':'", function()
      app:use("svc", { find = function() end })
      local svc = app:service("svc")
      assert.has_error(function()
        svc.find({})
      end)
      local ok, err = pcall(svc.find, {})
      assert.is_false(ok)
      assert.matches("service methods are called with ':'", err)
    end)

    it("looks up placeholders and merges routeParams (placeholders win)", function()
      app:use("users/:userId/messages", { find = function() end },
              { routeParams = { v = "1", userId = "fixed" } })
      local svc, route = app:lookup("users/5/messages")
      assert.equal(app:service("users/:userId/messages"), svc)
      assert.same({ v = "1", userId = "5" }, route)
      svc, route = app:lookup("users/5/messages/9")
      assert.equal(app:service("users/:userId/messages"), svc)
      assert.same({ v = "1", userId = "5", __id = "9" }, route)
      assert.is_nil(app:lookup("users/5"))
    end)

    it("registers what a registered service wraps (no double hooks or events)", function()
      local created = 0
      local hooked = 0
      app:use("a", { create = function(_, d) return d end }, { methods = { "create" } })
      app:service("a"):hooks({ before = function() hooked = hooked + 1 end })
      app:use("b", app:service("a"))
      local b = app:service("b")
      b:on("created", function() created = created + 1 end)
      b:create({})
      assert.equal(0, hooked)
      assert.equal(1, created)
      assert.same({ "create" }, methods_of(app, "b"))
    end)

    it("mounts the services of another app under a path", function()
      local sub = application.new()
      sub:use("a", { find = function() return "a" end })
      sub:use("b/c", { find = function() return "bc" end }, { methods = { "find" } })
      app:use("api", sub)
      assert.equal("a", app:service("api/a"):find())
      assert.equal("bc", app:service("api/b/c"):find())
    end)
  end)

  describe("replacing and removing services", function()
    it("replaces a service at the same path, tearing the old one down", function()
      local trace = {}
      app:use("svc", {
        find = function() return "old" end,
        setup = function() trace[#trace + 1] = "old setup" end,
        teardown = function() trace[#trace + 1] = "old teardown" end,
      })
      app:setup()
      local old = app:service("svc")
      app:use("svc", {
        find = function() return "new" end,
        setup = function(_, _, path) trace[#trace + 1] = "new setup " .. path end,
      })
      assert.equal("new", app:service("svc"):find())
      assert.not_equal(old, app:service("svc"))
      assert.equal(app:service("svc"), (app:lookup("svc/3")))
      assert.same({ "old setup", "old teardown", "new setup svc" }, trace)
      assert.same({ "svc" }, application.paths(app))
    end)

    it("keeps the old service when the new one is invalid", function()
      app:use("svc", { find = function() return "old" end })
      assert.has_error(function()
        app:use("svc", { find = function() end }, { methods = { "publish" } })
      end)
      assert.equal("old", app:service("svc"):find())
    end)

    it("logs a failing teardown of a replaced service", function()
      local logged
      app.log = function(level, msg) logged = level .. " " .. msg end
      app:use("svc", { find = function() end, teardown = function() error("boom") end })
      app:use("svc", { find = function() end })
      assert.matches("^error teardown of service 'svc' failed: .-boom", logged)
    end)

    it("unuse removes the service and calls teardown", function()
      local torn
      app:use("svc", { find = function() end, teardown = function(_, a, p) torn = { a, p } end })
      local removed = app:unuse("/svc/")
      assert.is_not_nil(removed)
      assert.same({ app, "svc" }, torn)
      assert.is_nil(app:service("svc"))
      assert.is_nil(app:lookup("svc"))
      assert.is_nil(app:lookup("svc/1"))
      assert.is_nil(app:unuse("svc"))
    end)

    it("computes the union of methods over services", function()
      local f = function() end
      app:use("a", { find = f, get = f })
      app:use("b", { create = f, notify = f }, { methods = { "create", "notify" } })
      assert.same({ "find", "get", "create", "notify" }, application.methods_union(app))
      app:unuse("a")
      assert.same({ "create", "notify" }, application.methods_union(app))
    end)
  end)

  describe("setup and teardown", function()
    it("calls setup(app, path) in registration order, later services at once", function()
      local trace = {}
      local function svc(name)
        return {
          find = function() end,
          setup = function(self, a, path)
            assert.equal(app, a)
            assert.is_function(self.hooks)
            trace[#trace + 1] = name .. ":" .. path
          end,
          teardown = function(_, _, path) trace[#trace + 1] = "down " .. path end,
        }
      end

      app:use("one", svc("one"))
      app:use("two", svc("two"))
      assert.same({}, trace)
      assert.equal(app, app:setup())
      app:use("three", svc("three"))
      assert.same({ "one:one", "two:two", "three:three" }, trace)
      app:teardown()
      assert.same({ "down one", "down two", "down three" }, { trace[4], trace[5], trace[6] })
    end)
  end)

  describe("settings, configure and events", function()
    it("sets and gets settings", function()
      assert.equal(app, app:set("port", 3030))
      assert.equal(3030, app:get("port"))
      assert.is_nil(app:get("missing"))
    end)

    it("configure calls the function with the app", function()
      local got
      assert.equal(app, app:configure(function(a) got = a end))
      assert.equal(app, got)
    end)

    it("is an event emitter (on, once, off, emit)", function()
      local seen = {}
      local function listener(x) seen[#seen + 1] = "on " .. x end
      app:on("thing", listener)
      app:once("thing", function(x) seen[#seen + 1] = "once " .. x end)
      assert.is_true(app:emit("thing", 1))
      app:emit("thing", 2)
      app:off("thing", listener)
      assert.is_false(app:emit("thing", 3))
      assert.same({ "on 1", "once 1", "on 2" }, seen)
    end)

    it("services are emitters with their own listeners", function()
      app:use("a", { create = function(_, d) return d end })
      app:use("b", { create = function(_, d) return d end })
      local got = {}
      app:service("a"):on("created", function(d) got[#got + 1] = "a" .. d.v end)
      app:service("b"):on("created", function(d) got[#got + 1] = "b" .. d.v end)
      app:service("a"):create({ v = 1 })
      app:service("b"):create({ v = 2 })
      assert.same({ "a1", "b2" }, got)
      -- the publishing listener installed by app:use, plus ours
      assert.equal(2, app:service("a"):listener_count("created"))
    end)

    it("custom events are emitted by the service itself", function()
      local got
      app:use("verify", {
        notify = function(self, data)
          self:emit("status", { message = data.message })
          return { sent = true }
        end,
      }, { methods = { "notify" }, events = { "status" } })
      app:service("verify"):on("status", function(d) got = d.message end)
      assert.same({ sent = true }, app:service("verify"):notify({ message = "hello" }))
      assert.equal("hello", got)
    end)

    it("works with the memory adapter as a service", function()
      app:use("todos", memory.new())
      local todos = app:service("todos")
      local created = todos:create({ text = "buy milk" })
      assert.same({ text = "buy milk", id = 0 }, created)
      assert.same({ { text = "buy milk", id = 0 } }, todos:find())
      assert.same({ "find", "get", "create", "update", "patch", "remove" },
                  methods_of(app, "todos"))
    end)
  end)
end)
