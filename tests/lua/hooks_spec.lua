-- luacheck: std +busted
local helper = require "tests.lua.helper"
local application = require "plume.application"
local errors = require "plume.errors"
local json = require "plume.json"


-- A service whose create/find record their calls in `trace`.
local function traced_service(trace, behaviour)
  return {
    find = function(_, params)
      trace[#trace + 1] = "METHOD"
      return { params = params }
    end,
    create = function(_, data)
      trace[#trace + 1] = "METHOD"
      if behaviour == "throw" then
        error(errors.BadRequest("method failed"))
      end

      return { text = data and data.text, id = 1 }
    end,
  }
end


local function tracer(trace, label)
  return function(ctx)
    trace[#trace + 1] = label
    return ctx
  end
end


local function around(trace, label)
  return function(ctx, next_fn)
    trace[#trace + 1] = label .. " before"
    local ok, err = pcall(next_fn)
    if not ok then
      trace[#trace + 1] = label .. " error"
      error(err, 0)
    end

    trace[#trace + 1] = label .. " after"
    return ctx
  end
end


-- An app and a service with hooks of every kind at both levels.
local function full_setup(behaviour)
  local trace = {}
  local app = application.new()
  app:use("items", traced_service(trace, behaviour))
  app:hooks({
    around = { all = around(trace, "app around all"), create = around(trace, "app around create") },
    before = { all = tracer(trace, "app before all"), create = tracer(trace, "app before create") },
    after = { all = tracer(trace, "app after all"), create = tracer(trace, "app after create") },
    error = { all = tracer(trace, "app error all"), create = tracer(trace, "app error create") },
  })

  local svc = app:service("items")
  svc:hooks({ around(trace, "svc list") })
  svc:hooks({ create = around(trace, "svc method table") })
  svc:hooks({
    around = { all = around(trace, "svc around all"), create = around(trace, "svc around create") },
    before = { all = tracer(trace, "svc before all"), create = tracer(trace, "svc before create") },
    after = { all = tracer(trace, "svc after all"), create = tracer(trace, "svc after create") },
    error = { all = tracer(trace, "svc error all"), create = tracer(trace, "svc error create") },
  })

  svc:on("created", function()
    trace[#trace + 1] = "EVENT"
  end)

  return app, svc, trace
end


describe("plume.hooks", function()
  describe("order (§6.3)", function()
    it("runs every layer in order on success, the event last", function()
      local _, svc, trace = full_setup()
      local result = svc:create({ text = "x" })
      assert.same({ text = "x", id = 1 }, result)
      assert.same({
        "app around all before", "app around create before",
        "app before all", "app before create",
        "svc list before", "svc method table before",
        "svc around all before", "svc around create before",
        "svc before all", "svc before create",
        "METHOD",
        "svc after all", "svc after create",
        "svc around create after", "svc around all after",
        "svc method table after", "svc list after",
        "app after all", "app after create",
        "app around create after", "app around all after",
        "EVENT",
      }, trace)
    end)

    it("runs error hooks method first, then all, from the inside out", function()
      local _, svc, trace = full_setup("throw")
      local ok, err = pcall(svc.create, svc, { text = "x" })
      assert.is_false(ok)
      assert.equal("BadRequest", err.name)
      assert.equal("method failed", err.message)
      assert.same({
        "app around all before", "app around create before",
        "app before all", "app before create",
        "svc list before", "svc method table before",
        "svc around all before", "svc around create before",
        "svc before all", "svc before create",
        "METHOD",
        "svc error create", "svc error all",
        "svc around create error", "svc around all error",
        "svc method table error", "svc list error",
        "app error create", "app error all",
        "app around create error", "app around all error",
      }, trace)
    end)

    it("skips the method when a before hook sets the result", function()
      local trace = {}
      local app = application.new()
      app:use("items", traced_service(trace))
      local svc = app:service("items")
      svc:hooks({
        before = { create = function(ctx)
          trace[#trace + 1] = "svc before create"
          ctx.result = { skipped = true }
        end },
        after = { all = tracer(trace, "svc after all"), create = tracer(trace, "svc after create") },
      })
      app:hooks({ after = { all = tracer(trace, "app after all") } })

      assert.same({ skipped = true }, svc:create({}))
      assert.same({ "svc before create", "svc after all", "svc after create", "app after all" },
                  trace)
    end)

    it("a null result also skips the method", function()
      local trace = {}
      local app = application.new()
      app:use("items", traced_service(trace))
      local svc = app:service("items")
      svc:hooks({ before = { find = function(ctx) ctx.result = json.null end } })
      assert.equal(json.null, svc:find())
      assert.same({}, trace)
    end)

    it("recovers when an error hook sets a result (after hooks and event follow)", function()
      local trace = {}
      local app = application.new()
      app:use("items", traced_service(trace, "throw"))
      local svc = app:service("items")
      svc:hooks({
        around = { all = around(trace, "svc around") },
        error = { create = function(ctx)
          trace[#trace + 1] = "svc error create"
          ctx.result = { recovered = true }
        end },
      })
      app:hooks({
        around = { all = around(trace, "app around") },
        after = { all = tracer(trace, "app after all") },
      })
      svc:on("created", function(data)
        trace[#trace + 1] = "EVENT " .. tostring(data.recovered)
      end)

      assert.same({ recovered = true }, svc:create({}))
      assert.same({
        "app around before", "svc around before", "METHOD", "svc error create",
        "svc around after", "app after all", "app around after", "EVENT true",
      }, trace)
    end)

    it("runs hooks of one kind in registration order and appends on re-registration", function()
      local trace = {}
      local app = application.new()
      app:use("items", traced_service(trace))
      local svc = app:service("items")
      svc:hooks({ before = { tracer(trace, "b1"), tracer(trace, "b2") } })
      svc:hooks({ before = tracer(trace, "b3"), after = { tracer(trace, "a1"), tracer(trace, "a2") } })
      svc:find()
      assert.same({ "b1", "b2", "b3", "METHOD", "a1", "a2" }, trace)
    end)

    it("takes hooks registered after a call into account", function()
      local trace = {}
      local app = application.new()
      app:use("items", traced_service(trace))
      local svc = app:service("items")
      svc:find()
      app:hooks({ before = tracer(trace, "late app") })
      svc:hooks({ before = tracer(trace, "late svc") })
      svc:find()
      assert.same({ "METHOD", "late app", "late svc", "METHOD" }, trace)
    end)

    it("accepts a list of around hooks and a method table at app level", function()
      local trace = {}
      local app = application.new()
      app:use("items", traced_service(trace))
      app:hooks({ around(trace, "list") })
      app:hooks({ find = around(trace, "find only") })
      app:service("items"):find()
      app:service("items"):create({})
      assert.same({
        "list before", "find only before", "METHOD", "find only after", "list after",
        "list before", "METHOD", "list after",
      }, trace)
    end)
  end)

  describe("error rules (§6.4)", function()
    it("sets error and original, and removes result", function()
      local seen
      local app = application.new()
      app:use("items", {
        get = function()
          error(errors.NotFound("nope"))
        end,
      })
      local svc = app:service("items")
      svc:hooks({ error = function(ctx)
        seen = { type = ctx.type, error = ctx.error, original = ctx.original,
                 result = ctx.result }
      end })
      local ok, err = pcall(svc.get, svc, 1)
      assert.is_false(ok)
      assert.equal(seen.error, err)
      assert.equal("error", seen.type)
      assert.is_nil(seen.result)
      assert.equal("get", seen.original.method)
      assert.equal(1, seen.original.id)
    end)

    it("lets error hooks mutate or replace the error", function()
      local app = application.new()
      app:use("items", { get = function() error(errors.NotFound("nope")) end })
      local svc = app:service("items")
      svc:hooks({ error = { get = function(ctx) ctx.error.data = { extra = true } end } })
      local _, err = pcall(svc.get, svc, 1)
      assert.same({ extra = true }, err.data)

      svc:hooks({ error = { all = function(ctx) ctx.error = errors.Forbidden("replaced") end } })
      _, err = pcall(svc.get, svc, 1)
      assert.equal("Forbidden", err.name)
    end)

    it("an error thrown by an error hook replaces the error (later hooks skipped)", function()
      local trace = {}
      local app = application.new()
      app:use("items", { get = function() error(errors.NotFound("first")) end })
      local svc = app:service("items")
      svc:hooks({ error = { get = {
        function() error(errors.Conflict("second")) end,
        tracer(trace, "skipped"),
      }, all = function(ctx) trace[#trace + 1] = ctx.error.name end } })
      local _, err = pcall(svc.get, svc, 1)
      assert.equal("Conflict", err.name)
      assert.same({ "Conflict" }, trace)
    end)

    it("normalises Lua errors into plain errors with a message", function()
      local seen
      local app = application.new()
      app:use("items", { get = function() error("low level failure") end })
      local svc = app:service("items")
      svc:hooks({ error = function(ctx) seen = ctx.error end })
      local _, err = pcall(svc.get, svc, 1)
      assert.is_true(errors.is_plain(err))
      assert.equal("low level failure", err.message)
      assert.equal(seen, err)
      assert.matches("stack traceback", err.stack)
    end)

    it("errors in after hooks reach the error hooks around them", function()
      local trace = {}
      local app = application.new()
      app:use("items", traced_service(trace))
      local svc = app:service("items")
      svc:hooks({
        after = { find = function() error(errors.Unprocessable("bad result")) end },
        error = { find = function(ctx) trace[#trace + 1] = "error " .. ctx.error.name end },
      })
      local ok = pcall(svc.find, svc)
      assert.is_false(ok)
      assert.same({ "METHOD", "error Unprocessable" }, trace)
    end)

    it("a failed call emits no event", function()
      local app = application.new()
      local events = 0
      app:use("items", traced_service({}, "throw"))
      app:service("items"):on("created", function() events = events + 1 end)
      pcall(app:service("items").create, app:service("items"), {})
      assert.equal(0, events)
    end)
  end)

  describe("context (§6.5)", function()
    it("has the documented fields", function()
      local seen
      local app = application.new()
      app:use("items", {
        update = function(_, id, data, params)
          return { id = id, data = data, params = params }
        end,
      })
      local svc = app:service("items")
      svc:hooks({ before = function(ctx)
        seen = {
          app = ctx.app, service = ctx.service, self = ctx.self, path = ctx.path,
          method = ctx.method, type = ctx.type, params = ctx.params, id = ctx.id,
          data = ctx.data, event = ctx.event, n = #ctx.arguments, a1 = ctx.arguments[1],
          a2 = ctx.arguments[2], a3 = ctx.arguments[3],
        }
      end })
      svc:update(5, { a = 1 })
      assert.equal(app, seen.app)
      assert.equal(svc, seen.service)
      assert.equal(svc, seen.self)
      assert.equal("items", seen.path)
      assert.equal("update", seen.method)
      assert.equal("before", seen.type)
      assert.same({}, seen.params)
      assert.equal(5, seen.id)
      assert.same({ a = 1 }, seen.data)
      assert.equal("updated", seen.event)
      assert.equal(3, seen.n)
      assert.equal(5, seen.a1)
      assert.same({ a = 1 }, seen.a2)
      assert.equal(seen.params, seen.a3)
    end)

    it("passes changed id, data and params to the method", function()
      local app = application.new()
      app:use("items", {
        patch = function(_, id, data, params)
          return { id = id, data = data, flag = params.flag }
        end,
      })
      local svc = app:service("items")
      svc:hooks({ before = function(ctx)
        ctx.id = 9
        ctx.arguments[2] = { changed = true }
        ctx.params.flag = "set"
      end })
      assert.same({ id = 9, data = { changed = true }, flag = "set" }, svc:patch(1, {}))
    end)

    it("types are around/before/after/error and restored between hooks", function()
      local types = {}
      local app = application.new()
      app:use("items", { find = function() return {} end })
      local svc = app:service("items")
      svc:hooks({
        around = function(ctx, next_fn)
          types[#types + 1] = ctx.type
          next_fn()
          types[#types + 1] = ctx.type
        end,
        before = function(ctx) types[#types + 1] = ctx.type end,
        after = function(ctx) types[#types + 1] = ctx.type end,
      })
      svc:find()
      assert.same({ "around", "before", "after", "around" }, types)
    end)

    it("merges a returned table other than the context", function()
      local app = application.new()
      app:use("items", { find = function() return "from method" end })
      local svc = app:service("items")
      svc:hooks({ before = function() return { result = "from hook" } end })
      assert.equal("from hook", svc:find())
    end)

    it("an event hook can rename or suppress the event", function()
      local seen = {}
      local app = application.new()
      app:use("items", {
        create = function(_, data) return data end,
        remove = function(_, id) return { id = id } end,
      }, { events = { "custom" } })
      local svc = app:service("items")
      svc:on("created", function() seen[#seen + 1] = "created" end)
      svc:on("removed", function() seen[#seen + 1] = "removed" end)
      svc:on("boom", function(data) seen[#seen + 1] = "boom " .. data.x end)
      svc:hooks({
        after = {
          create = function(ctx) ctx.event = "boom" end,
          remove = function(ctx) ctx.event = nil end,
        },
      })
      svc:create({ x = "y" })
      svc:remove(1)
      assert.same({ "boom y" }, seen)
    end)

    it("emits one event per element of an array result", function()
      local seen = {}
      local app = application.new()
      app:use("items", { create = function(_, data) return data end })
      local svc = app:service("items")
      svc:on("created", function(data, ctx)
        seen[#seen + 1] = data.n
        assert.equal("create", ctx.method)
      end)
      svc:create(json.array({ { n = 1 }, { n = 2 } }))
      assert.same({ 1, 2 }, seen)
    end)

    it("does not emit standard events the service declares itself", function()
      local seen = 0
      local app = application.new()
      app:use("items", { create = function(_, data) return data end }, { events = { "created" } })
      app:service("items"):on("created", function() seen = seen + 1 end)
      app:service("items"):create({})
      assert.equal(0, seen)
    end)
  end)

  describe("around hooks", function()
    it("may catch errors of everything inside", function()
      local app = application.new()
      app:use("items", { get = function() error(errors.NotFound("x")) end })
      local svc = app:service("items")
      svc:hooks({ around = function(ctx, next_fn)
        local ok, err = pcall(next_fn)
        if not ok then
          ctx.result = { caught = err.name }
        end
      end })
      assert.same({ caught = "NotFound" }, svc:get(1))
    end)

    it("refuses next() called twice", function()
      local app = application.new()
      app:use("items", { find = function() return {} end })
      local svc = app:service("items")
      svc:hooks({ around = function(_, next_fn)
        next_fn()
        next_fn()
      end })
      local ok, err = pcall(svc.find, svc)
      assert.is_false(ok)
      assert.matches("next%(%) called multiple times", err.message)
    end)

    it("short-circuits when next is not called", function()
      local called = false
      local app = application.new()
      app:use("items", { find = function() called = true end })
      local svc = app:service("items")
      svc:hooks({ around = function(ctx) ctx.result = "cached" end })
      assert.equal("cached", svc:find())
      assert.is_false(called)
    end)
  end)

  describe("waiting", function()
    it("hooks and methods may yield inside the call's coroutine", function()
      local trace = {}
      local app = application.new()
      app:use("items", {
        get = function(_, id)
          helper.sleep(10)
          trace[#trace + 1] = "method " .. id
          return { id = id }
        end,
      })
      local svc = app:service("items")
      svc:hooks({
        around = function(_, next_fn)
          helper.sleep(5)
          local ok, err = pcall(next_fn)
          helper.sleep(5)
          if not ok then
            error(err, 0)
          end
        end,
        before = function(ctx)
          helper.sleep(1)
          trace[#trace + 1] = "before " .. ctx.id
        end,
        error = function(ctx)
          helper.sleep(1)
          ctx.result = { recovered = ctx.error.message }
        end,
      })

      local r1, r2
      local start = helper.clock
      helper.spawn(function() r1 = svc:get(1) end)
      helper.spawn(function() r2 = svc:get(2) end)
      helper.drain()
      assert.same({ id = 1 }, r1)
      assert.same({ id = 2 }, r2)
      assert.same({ "before 1", "before 2", "method 1", "method 2" }, trace)
      assert.equal(21, helper.clock - start)
    end)

    it("a yielding method that fails goes through the error hooks", function()
      local app = application.new()
      app:use("items", {
        get = function()
          helper.sleep(3)
          error("late failure")
        end,
      })
      local svc = app:service("items")
      svc:hooks({ error = function(ctx)
        helper.sleep(1)
        ctx.result = { message = ctx.error.message }
      end })
      assert.same({ message = "late failure" }, helper.await(svc.get, svc, 1))
    end)
  end)

  describe("require_fields", function()
    it("refuses data without the fields, single or multi", function()
      local hooks = require "plume.hooks"
      local app = application.new()
      app:use("messages", { create = function(_, data) return data end })
      local messages = app:service("messages")
      messages:hooks({ before = { create = { hooks.require_fields("text", "room") } } })
      assert.same({ text = "hi", room = "r" }, messages:create({ text = "hi", room = "r" }))

      for _, data in ipairs({ { room = "r" }, { text = "", room = "r" },
                              { text = json.null, room = "r" },
                              json.array({ { text = "a", room = "r" }, { text = "b" } }) }) do
        local ok, err = pcall(messages.create, messages, data)
        assert.is_false(ok)
        assert.equal("BadRequest", err.name)
        assert.matches("^'%a+' is required$", err.message)
      end

      local ok, err = pcall(messages.create, messages, "text")
      assert.is_false(ok)
      assert.equal("Data must be an object", err.message)
    end)
  end)

  describe("registration", function()
    local app, svc

    before_each(function()
      app = application.new()
      app:use("items", { find = function() return {} end, get = function() return {} end })
      svc = app:service("items")
    end)

    it("refuses unknown hook types", function()
      assert.has_error(function()
        svc:hooks({ before = {}, foo = {} })
      end, "'foo' is not a valid hook type")
      assert.has_error(function()
        app:hooks({ after = {}, bar = function() end })
      end, "'bar' is not a valid hook type")
    end)

    it("refuses per-method around hooks for methods without hooks", function()
      assert.has_error(function()
        svc:hooks({ create = function() end })
      end, "Method create is not a Feathers hooks enabled service method")
    end)

    it("refuses hooks that are not functions", function()
      assert.has_error(function()
        svc:hooks({ before = { find = { "nope" } } })
      end)
    end)

    it("returns the service / app for chaining", function()
      assert.equal(svc, svc:hooks({ before = {} }))
      assert.equal(app, app:hooks({ before = {} }))
    end)

    it("runs app setup and teardown hooks around the services' setup", function()
      local trace = {}
      app:use("life", {
        setup = function(_, a, path)
          assert.equal(app, a)
          trace[#trace + 1] = "setup " .. path
        end,
        teardown = function(_, _, path) trace[#trace + 1] = "teardown " .. path end,
        find = function() return {} end,
      })
      app:hooks({
        setup = function(ctx, next_fn)
          assert.equal(app, ctx.app)
          trace[#trace + 1] = "hook setup before " .. tostring(ctx.server)
          next_fn()
          trace[#trace + 1] = "hook setup after"
        end,
        teardown = { function(_, next_fn)
          next_fn()
          trace[#trace + 1] = "hook teardown after"
        end },
      })
      app:setup("srv")
      app:teardown()
      assert.same({
        "hook setup before srv", "setup life", "hook setup after",
        "teardown life", "hook teardown after",
      }, trace)
    end)
  end)
end)
