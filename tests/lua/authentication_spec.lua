-- luacheck: std +busted
local helper = require "tests.lua.helper"
local application = require "plume.application"
local auth = require "plume.authentication"
local core = require "plume.core"
local errors = require "plume.errors"
local json = require "plume.json"
local jwt = require "plume.authentication.jwt"
local memory = require "plume.adapters.memory"
local strategies = require "plume.authentication.strategies"
local transport = require "plume.transport"


local null = json.null
local crypto = core.crypto
local SECRET = "spec-secret-of-some-length"

-- A Feathers (bcryptjs-era) row: the Openwall vector "$2a$05$…" is the hash of "U*U".
local FEATHERS_HASH = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"


-- Expiry timers run when the spec says so.
local timers = {}

local function fake_after(ms, fn)
  local timer = { ms = ms, fn = fn }
  timers[#timers + 1] = timer
  return function()
    timer.cancelled = true
  end
end


local function fire_timers()
  local list = timers
  timers = {}
  local fired = 0
  for _, timer in ipairs(list) do
    if not timer.cancelled then
      fired = fired + 1
      helper.await(timer.fn)
    end
  end

  return fired
end


local function live_timers()
  local n = 0
  for _, timer in ipairs(timers) do
    if not timer.cancelled then
      n = n + 1
    end
  end

  return n
end


-- The app of a generated Feathers chat: users (memory, hashed and protected passwords),
-- authentication (jwt + local), messages (login required), channels "anonymous" and
-- "authenticated" switched on login.
local function make_app(settings)
  local app = application.new()
  app.log = function() end
  local config = {
    secret = SECRET,
    authStrategies = { "jwt", "local" },
    ["local"] = { usernameField = "email", passwordField = "password" },
  }
  for k, v in pairs(settings or {}) do
    config[k] = v
  end

  app:set("authentication", config)
  app:use("users", memory.new({ paginate = { default = 10, max = 50 } }))
  app:service("users"):hooks({
    before = {
      create = { auth.hooks.hash_password("password") },
      patch = { auth.hooks.hash_password("password") },
      find = { auth.hooks.authenticate("jwt") },
    },
    after = { all = { auth.hooks.protect("password") } },
  })
  app:use("authentication", auth.service(app))
  app:use("messages", memory.new())
  app:service("messages"):hooks({ around = { all = { auth.hooks.authenticate("jwt") } } })

  local io = helper.new_io()
  transport.setup(app, io)
  app:on("connection", function(connection)
    app:channel("anonymous"):join(connection)
  end)
  app:on("login", function(_, params)
    if params.connection then
      app:channel("anonymous"):leave(params.connection)
      app:channel("authenticated"):join(params.connection)
    end
  end)
  app:publish(function()
    return app:channel("authenticated")
  end)
  app:setup()

  return app, io
end


local function add_user(app, email, password)
  return helper.await(function()
    return app:service("users"):create({ email = email, password = password or "secret" })
  end)
end


-- Runs fn in a task; returns ok, result-or-error (the error normalised).
local function try(fn, ...)
  local results = table.pack(helper.run(fn, ...))
  if results[1] then
    return true, results[2]
  end

  return false, errors.normalize(results[2])
end


local function wire_error(ack)
  assert.equal(1, ack.n)
  return ack[1]
end


local function login(socket, email, password)
  local ack = socket:call("create", "authentication", {
    strategy = "local", email = email, password = password or "secret" }, {})
  assert.is_truthy(ack)
  return ack
end


describe("plume.authentication", function()
  local saved_after

  before_each(function()
    saved_after = strategies.after
    strategies.after = fake_after
    timers = {}
  end)

  after_each(function()
    strategies.after = saved_after
  end)

  describe("configuration (§9.1)", function()
    it("has Feathers' defaults under app:get('authentication')", function()
      local app = make_app()
      local service = app:service("authentication")
      local config = service:configuration()
      assert.same({
        header = { typ = "access" }, audience = "https://yourdomain.com",
        issuer = "feathers", algorithm = "HS256", expiresIn = "1d",
      }, config.jwtOptions)
      assert.equal("user", config.entity)
      assert.equal("users", config.service)
      assert.equal(SECRET, config.secret)
      assert.equal("authentication", app:get("defaultAuthentication"))
      assert.equal(service, auth.default_authentication(app))
      assert.equal(service, app:default_authentication())
      assert.same({ "jwt", "local" }, service:strategy_names())
      local jwt_config = service:get_strategy("jwt"):configuration()
      assert.equal("Authorization", jwt_config.header)
      assert.same({ "Bearer", "JWT" }, jwt_config.schemes)
      local local_config = service:get_strategy("local"):configuration()
      assert.equal(10, local_config.hashSize)
      assert.equal("Invalid login", local_config.errorMessage)
      assert.equal("email", local_config.entityUsernameField)
    end)

    it("merges constructor options into the settings", function()
      local app = application.new()
      app:set("authentication", { secret = "x", jwtOptions = { expiresIn = "2h" } })
      auth.AuthenticationService(app, { authStrategies = { "jwt" },
                                        jwtOptions = { issuer = "plume" } })
      assert.same({ expiresIn = "2h", issuer = "plume" }, app:get("authentication").jwtOptions)
      assert.same({ "jwt" }, app:get("authentication").authStrategies)
    end)

    it("checks the configuration at setup", function()
      local function setup_error(settings, with_users)
        local app = application.new()
        app:set("authentication", settings)
        if with_users ~= false then
          app:use("users", memory.new())
        end

        app:use("authentication", auth.service(app))
        local ok, err = pcall(app.setup, app)
        assert.is_false(ok)
        return tostring(err)
      end

      assert.matches("A 'secret' must be provided", setup_error({}))
      assert.matches("A 'secret' must be provided", setup_error({ secret = "" }))
      assert.matches("The 'users' entity service does not exist",
                     setup_error({ secret = "x" }, false))
      assert.matches("HS256 tokens only", setup_error({
        secret = "x", jwtOptions = { algorithm = "RS256" } }))
      -- entity = false: no entity service needed.
      local app = application.new()
      app:set("authentication", { secret = "x", entity = false })
      app:use("authentication", auth.service(app))
      app:setup()
      assert.is_nil(app:service("authentication"):configuration().entity)
    end)

    it("checks strategy settings at register", function()
      local app = application.new()
      app:set("authentication", { secret = "x", jwt = { headers = "Authorization" },
                                  ["local"] = { usernameField = "email" } })
      local service = auth.AuthenticationService(app)
      assert.has_error(function() service:register("jwt", auth.JWTStrategy()) end,
                       "Invalid JwtStrategy option 'authentication.jwt.headers'. Did you "
                       .. "mean to set it in 'authentication.jwtOptions'?")
      assert.has_error(function() service:register("local", auth.LocalStrategy()) end,
                       "'local' authentication strategy requires a 'passwordField' setting")
      app:set("authentication", { secret = "x", jwt = { expiry = "never" } })
      assert.has_error(function() service:register("jwt", auth.JWTStrategy()) end)
    end)
  end)

  describe("create (§9.2)", function()
    local app, user

    before_each(function()
      app = make_app()
      user = add_user(app, "ada@example.com", "secret")
    end)

    it("logs in with the local strategy and returns Feathers' result", function()
      local ok, result = try(function()
        return app:service("authentication"):create({
          strategy = "local", email = "ada@example.com", password = "secret" })
      end)
      assert.is_true(ok)
      local token = result.accessToken
      local decoded = jwt.decode(token, { complete = true })
      assert.same({ alg = "HS256", typ = "access" }, decoded.header)
      local payload = decoded.payload
      assert.same(payload, result.authentication.payload)
      assert.equal("local", result.authentication.strategy)
      assert.equal(tostring(user.id), payload.sub)
      assert.equal(payload.iat + 86400, payload.exp)
      assert.equal("https://yourdomain.com", payload.aud)
      assert.equal("feathers", payload.iss)
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", payload.jti)
      assert.equal(user.id, result.user.id)
    end)

    it("says 'Invalid login' for a wrong password, an unknown user, no password", function()
      local service = app:service("authentication")
      for _, data in ipairs({
        { strategy = "local", email = "ada@example.com", password = "wrong" },
        { strategy = "local", email = "nobody@example.com", password = "secret" },
        { strategy = "local", email = "ada@example.com" },
        { strategy = "local", password = "secret" },
        { strategy = "local", email = "ada@example.com", password = 12345 },
      }) do
        local ok, err = try(service.create, service, data)
        assert.is_false(ok)
        assert.equal("NotAuthenticated", err.name)
        assert.equal("Invalid login", err.message)
        assert.equal(401, err.code)
      end
    end)

    it("spends a bcrypt comparison on unknown users too", function()
      local service = app:service("authentication")
      local check = crypto.bcrypt_check
      local calls = 0
      crypto.bcrypt_check = function(...)
        calls = calls + 1
        return check(...)
      end

      try(service.create, service, { strategy = "local", email = "nobody@example.com",
                                     password = "secret" })
      local unknown = calls
      try(service.create, service, { strategy = "local", email = "ada@example.com",
                                     password = "wrong" })
      crypto.bcrypt_check = check
      assert.equal(1, unknown)
      assert.equal(2, calls)
    end)

    it("accepts the bcrypt rows Feathers stored", function()
      helper.await(function()
        app:service("users"):_create({ email = "old@example.com", password = FEATHERS_HASH })
      end)
      local ok, result = try(function()
        return app:service("authentication"):create({
          strategy = "local", email = "old@example.com", password = "U*U" })
      end)
      assert.is_true(ok)
      assert.equal("old@example.com", result.user.email)
    end)

    it("refuses missing, unknown and disallowed strategies", function()
      local service = app:service("authentication")
      local cases = {
        { { email = "x" }, "Invalid authentication information (no `strategy` set)" },
        { "text", "Invalid authentication information (no `strategy` set)" },
        { { strategy = "oauth" },
          "Invalid authentication information (strategy not allowed in authStrategies)" },
      }
      for _, case in ipairs(cases) do
        local ok, err = try(service.create, service, case[1])
        assert.is_false(ok)
        assert.equal("NotAuthenticated", err.name)
        assert.equal(case[2], err.message)
      end

      local ok, err = try(service.create, service, { strategy = "local" },
                          { authStrategies = {} })
      assert.is_false(ok)
      assert.equal("No authentication strategies allowed for creating a JWT "
                   .. "(`authStrategies`)", err.message)
    end)

    it("re-authenticates with a token (jwt strategy)", function()
      local service = app:service("authentication")
      local _, first = try(service.create, service, {
        strategy = "local", email = "ada@example.com", password = "secret" })
      local ok, again = try(service.create, service, {
        strategy = "jwt", accessToken = first.accessToken })
      assert.is_true(ok)
      assert.equal(first.accessToken, again.accessToken)
      assert.same({ strategy = "jwt", accessToken = first.accessToken,
                    payload = first.authentication.payload }, again.authentication)
      assert.equal(user.id, again.user.id)
    end)

    it("gives the verifier's message and data for bad tokens", function()
      local service = app:service("authentication")
      local ok, err = try(service.create, service, { strategy = "jwt" })
      assert.is_false(ok)
      assert.equal("No access token", err.message)

      ok, err = try(service.create, service, { strategy = "jwt", accessToken = "x.y.z" })
      assert.is_false(ok)
      assert.same({ name = "NotAuthenticated", message = "invalid token", code = 401,
                    className = "not-authenticated", data = { name = "JsonWebTokenError" } },
                  err:toJSON())

      local expired = jwt.sign({ iat = 1000 }, SECRET, {
        header = { typ = "access" }, audience = "https://yourdomain.com",
        issuer = "feathers", expiresIn = "1d", subject = tostring(user.id) })
      ok, err = try(service.create, service, { strategy = "jwt", accessToken = expired })
      assert.is_false(ok)
      assert.same({ name = "NotAuthenticated", message = "jwt expired", code = 401,
                    className = "not-authenticated",
                    data = { name = "TokenExpiredError",
                             expiredAt = "1970-01-02T00:16:40.000Z" } }, err:toJSON())

      local foreign = jwt.sign({}, "another-secret", { header = { typ = "access" },
                                                       audience = "https://yourdomain.com",
                                                       issuer = "feathers" })
      ok, err = try(service.create, service, { strategy = "jwt", accessToken = foreign })
      assert.is_false(ok)
      assert.equal("invalid signature", err.message)

      local none = crypto.base64url_encode('{"alg":"none","typ":"access"}') .. "."
        .. crypto.base64url_encode('{"sub":"0"}') .. "."
      ok, err = try(service.create, service, { strategy = "jwt", accessToken = none })
      assert.is_false(ok)
      assert.equal("jwt signature is required", err.message)

      local other_audience = jwt.sign({}, SECRET, { header = { typ = "access" },
                                                    audience = "https://other.example",
                                                    issuer = "feathers" })
      ok, err = try(service.create, service, { strategy = "jwt",
                                               accessToken = other_audience })
      assert.is_false(ok)
      assert.equal("jwt audience invalid. expected: https://yourdomain.com", err.message)
    end)

    it("puts params.payload and params.jwtOptions into the token", function()
      local service = app:service("authentication")
      local _, result = try(service.create, service, {
        strategy = "local", email = "ada@example.com", password = "secret" },
        { payload = { role = "admin" }, jwtOptions = { expiresIn = "2h" } })
      local payload = result.authentication.payload
      assert.equal("admin", payload.role)
      assert.equal(payload.iat + 7200, payload.exp)
    end)
  end)

  describe("remove (§9.3)", function()
    it("returns the current authentication, or refuses another token", function()
      local app = make_app()
      local user = add_user(app, "ada@example.com")
      local service = app:service("authentication")
      local _, result = try(service.create, service, {
        strategy = "local", email = "ada@example.com", password = "secret" })
      local params = { authentication = { strategy = "jwt",
                                          accessToken = result.accessToken } }
      local ok, removed = try(service.remove, service, null, params)
      assert.is_true(ok)
      assert.equal(result.accessToken, removed.accessToken)
      assert.equal(user.id, removed.user.id)
      ok, removed = try(service.remove, service, result.accessToken, params)
      assert.is_true(ok)
      assert.equal(result.accessToken, removed.accessToken)

      local err
      ok, err = try(service.remove, service, "another", params)
      assert.is_false(ok)
      assert.equal("Invalid access token", err.message)
      ok, err = try(service.remove, service, null, {})
      assert.is_false(ok)
      assert.equal("Invalid authentication information (no `strategy` set)", err.message)
    end)
  end)

  describe("the authenticate hook (§9.4)", function()
    local app, token, user

    before_each(function()
      app = make_app()
      user = add_user(app, "ada@example.com")
      local service = app:service("authentication")
      local _, result = try(service.create, service, {
        strategy = "local", email = "ada@example.com", password = "secret" })
      token = result.accessToken
    end)

    it("lets internal calls pass and refuses anonymous external ones", function()
      local ok = try(function() return app:service("messages"):find() end)
      assert.is_true(ok)
      local err
      ok, err = try(function()
        return app:service("messages"):find({ provider = "socketio" })
      end)
      assert.is_false(ok)
      assert.equal("Not authenticated", err.message)
      assert.equal("NotAuthenticated", err.name)
    end)

    it("sets params.user, params.authentication and params.authenticated", function()
      local seen
      app:service("messages"):hooks({ before = { find = function(ctx)
        seen = ctx.params
      end } })
      local ok = try(function()
        return app:service("messages"):find({
          provider = "socketio",
          authentication = { strategy = "jwt", accessToken = token },
        })
      end)
      assert.is_true(ok)
      assert.is_true(seen.authenticated)
      assert.equal(user.id, seen.user.id)
      -- As in Feathers: the entity is loaded internally, hooks see the whole record.
      assert.is_string(seen.user.password)
      assert.is_nil(seen.accessToken)
      assert.equal("jwt", seen.authentication.strategy)
      assert.equal(token, seen.authentication.accessToken)
      assert.equal(tostring(user.id), seen.authentication.payload.sub)
      assert.equal("socketio", seen.provider)
    end)

    it("refuses a bad token and other strategies", function()
      local ok, err = try(function()
        return app:service("messages"):find({
          provider = "socketio", authentication = { strategy = "jwt", accessToken = "x" } })
      end)
      assert.is_false(ok)
      assert.equal("jwt malformed", err.message)
      ok, err = try(function()
        return app:service("messages"):find({
          provider = "socketio",
          authentication = { strategy = "local", email = "ada@example.com",
                             password = "secret" } })
      end)
      assert.is_false(ok)
      assert.equal("Invalid authentication information (strategy not allowed in "
                   .. "authStrategies)", err.message)
    end)

    it("passes params.authenticated = true", function()
      local ok = try(function()
        return app:service("messages"):find({ provider = "socketio", authenticated = true })
      end)
      assert.is_true(ok)
    end)

    it("works as a before hook, not as an after hook, not on the service itself", function()
      app:use("notes", memory.new())
      app:service("notes"):hooks({ before = { find = auth.hooks.authenticate("jwt") },
                                   after = { get = auth.hooks.authenticate("jwt") } })
      local ok, err = try(function()
        return app:service("notes"):find({ provider = "socketio" })
      end)
      assert.is_false(ok)
      assert.equal("Not authenticated", err.message)
      helper.await(function() app:service("notes"):create({ id = 1 }) end)
      ok, err = try(function() return app:service("notes"):get(1) end)
      assert.is_false(ok)
      assert.equal("The authenticate hook must be used as a before hook", err.message)

      app:service("authentication"):hooks({ before = {
        remove = auth.hooks.authenticate("jwt") } })
      ok, err = try(function() return app:service("authentication"):remove(null) end)
      assert.is_false(ok)
      assert.equal("The authenticate hook does not need to be used on the authentication "
                   .. "service", err.message)
      assert.has_error(function() auth.hooks.authenticate() end,
                       "The authenticate hook needs at least one allowed strategy")
      assert.has_error(function() auth.hooks.authenticate({ strategies = {} }) end)
    end)

    it("needs an authentication service", function()
      local bare = application.new()
      bare:use("things", memory.new())
      bare:service("things"):hooks({ before = { all = auth.hooks.authenticate("jwt") } })
      local ok, err = try(function() return bare:service("things"):find() end)
      assert.is_false(ok)
      assert.equal("Could not find a valid authentication service", err.message)
    end)
  end)

  describe("local hooks (§9.5)", function()
    local app

    before_each(function()
      app = make_app()
    end)

    it("hash_password hashes data and each item of array data", function()
      local data = helper.await(function()
        local ctx = { app = app, data = { email = "a", password = "pw" }, params = {} }
        auth.hooks.hash_password("password")(ctx)
        local many = { app = app, params = {},
                       data = json.array({ { password = "one" }, { name = "no password" } }) }
        auth.hooks.hashPassword("password")(many)
        local nested = { app = app, params = {}, data = { auth = { secret = "s" } } }
        auth.hooks.hash_password("auth.secret")(nested)
        return { ctx.data, many.data, nested.data }
      end)
      assert.matches("^%$2b%$10%$", data[1].password)
      assert.is_true(crypto.bcrypt_check("pw", data[1].password))
      assert.is_true(crypto.bcrypt_check("one", data[2][1].password))
      assert.same({ name = "no password" }, data[2][2])
      assert.is_true(crypto.bcrypt_check("s", data[3].auth.secret))
    end)

    it("hash_password uses hashSize and refuses what it cannot hash", function()
      local cheap = make_app({ ["local"] = { usernameField = "email",
                                             passwordField = "password", hashSize = 4 } })
      local user = add_user(cheap, "c@example.com", "pw")
      local stored = helper.await(function()
        return cheap:service("users"):_get(user.id)
      end)
      assert.matches("^%$2b%$04%$", stored.password)

      local ok, err = try(function()
        return app:service("users"):create({ email = "n", password = 5 })
      end)
      assert.is_false(ok)
      assert.equal("BadRequest", err.name)
      local bare = application.new()
      ok, err = try(auth.hooks.hash_password("password"),
                    { app = bare, data = { password = "x" }, params = {} })
      assert.is_false(ok)
      assert.equal("Could not find an authentication service to hash password", err.message)
      ok, err = try(auth.hooks.hash_password("password", { strategy = "ldap" }),
                    { app = app, data = { password = "x" }, params = {} })
      assert.is_false(ok)
      assert.equal("Could not find 'ldap' strategy to hash password", err.message)
      assert.has_error(function() auth.hooks.hash_password() end,
                       "The hashPassword hook requires a field name option")
    end)

    it("protect keeps fields from clients: results, pages, events", function()
      local user = add_user(app, "ada@example.com")
      assert.is_string(user.password) -- internal calls get the result, hash included
      local internal = helper.await(function()
        return app:service("users"):get(user.id)
      end)
      assert.is_string(internal.password)
      local external = helper.await(function()
        return app:service("users"):get(user.id, { provider = "socketio" })
      end)
      assert.is_nil(external.password)
      local page = helper.await(function()
        return app:service("users"):find({ provider = "socketio", authenticated = true })
      end)
      assert.equal(1, page.total)
      assert.is_nil(page.data[1].password)
      assert.equal("ada@example.com", page.data[1].email)
    end)
  end)

  describe("over sockets (§9.6, §10.4)", function()
    local app, io

    before_each(function()
      app, io = make_app()
      add_user(app, "ada@example.com")
    end)

    it("logs the connection in: authentication, user, login event, channels", function()
      local socket = io:connect()
      local logins = {}
      app:on("login", function(result, params, ctx)
        logins[#logins + 1] = { result = result, params = params, ctx = ctx }
      end)
      assert.equal(1, app:channel("anonymous").length)
      local ack = login(socket, "ada@example.com")
      assert.equal(null, ack[1])
      local result = ack[2]
      assert.is_string(result.accessToken)
      assert.is_nil(result.user.password)
      local connection = socket.feathers
      assert.same({ strategy = "jwt", accessToken = result.accessToken },
                  connection.authentication)
      assert.equal("ada@example.com", connection.user.email)
      assert.is_nil(connection.user.password)
      assert.equal(1, #logins)
      assert.equal(connection, logins[1].params.connection)
      assert.equal("create", logins[1].ctx.method)
      assert.equal(0, app:channel("anonymous").length)
      assert.equal(1, app:channel("authenticated").length)
      assert.equal(1, live_timers())

      -- Protected calls now pass, with params.user.
      ack = socket:call("create", "messages", { text = "hi" }, {})
      assert.equal(null, ack[1])
      assert.equal("hi", ack[2].text)
    end)

    it("never sends a password: results and events", function()
      local watcher = io:connect()
      login(watcher, "ada@example.com")
      local socket = io:connect()
      local ack = socket:call("create", "users", { email = "bob@example.com",
                                                  password = "hunter2" }, {})
      assert.equal(null, ack[1])
      assert.is_nil(ack[2].password)
      local events = watcher:events("users created")
      assert.equal(1, #events)
      assert.equal("bob@example.com", events[1][2].email)
      assert.is_nil(events[1][2].password)
      ack = login(socket, "bob@example.com", "hunter2")
      assert.is_nil(ack[2].user.password)
      ack = socket:call("find", "users", {})
      assert.equal(null, ack[1])
      for _, row in ipairs(ack[2].data) do
        assert.is_nil(row.password)
      end

      assert.is_nil(helper.wire(ack):find("%$2b%$"))
    end)

    it("answers a wrong password with Feathers' error", function()
      local socket = io:connect()
      local ack = login(socket, "ada@example.com", "wrong")
      assert.same({ name = "NotAuthenticated", message = "Invalid login", code = 401,
                    className = "not-authenticated" }, wire_error(ack))
      assert.is_nil(socket.feathers.authentication)
      assert.equal(1, app:channel("anonymous").length)
      ack = socket:call("find", "messages", {})
      assert.equal("Not authenticated", wire_error(ack).message)
    end)

    it("only authenticated connections get events", function()
      local anonymous = io:connect()
      local member = io:connect()
      login(member, "ada@example.com")
      member:call("create", "messages", { text = "hello" }, {})
      assert.equal(1, #member:events("messages created"))
      assert.equal(0, #anonymous:events("messages created"))
    end)

    it("logs out: remove, logout event, channels left, login dropped", function()
      local socket = io:connect()
      local token = login(socket, "ada@example.com")[2].accessToken
      local logouts = 0
      app:on("logout", function(result, params)
        logouts = logouts + 1
        assert.equal(token, result.accessToken)
        assert.equal(socket.feathers, params.connection)
      end)
      local ack = socket:call("remove", "authentication", null, {})
      assert.equal(null, ack[1])
      assert.equal(token, ack[2].accessToken)
      assert.equal(1, logouts)
      assert.is_nil(socket.feathers.authentication)
      assert.is_nil(socket.feathers.user)
      assert.equal(0, app:channel("authenticated").length)
      assert.equal(0, live_timers())
      ack = socket:call("find", "messages", {})
      assert.equal("Not authenticated", wire_error(ack).message)
      -- A second logout has nothing to drop.
      ack = socket:call("remove", "authentication", null, {})
      assert.equal("Invalid authentication information (no `strategy` set)",
                   wire_error(ack).message)
    end)

    it("re-authenticates a new connection with the token (reconnect)", function()
      local first = io:connect()
      local token = login(first, "ada@example.com")[2].accessToken
      first:drop("transport close")
      assert.is_nil(first.feathers.authentication)
      assert.equal(0, live_timers())
      assert.equal(0, app:channel("authenticated").length)

      local second = io:connect()
      local ack = second:call("create", "authentication", { strategy = "jwt",
                                                            accessToken = token }, {})
      assert.equal(null, ack[1])
      assert.equal(token, ack[2].accessToken)
      assert.equal("jwt", ack[2].authentication.strategy)
      assert.is_nil(ack[2].user.password)
      assert.equal(token, second.feathers.authentication.accessToken)
      assert.equal(1, app:channel("authenticated").length)
      assert.equal(null, second:call("find", "messages", {})[1])
    end)

    it("disconnects the socket when its token expires (Feathers)", function()
      local socket = io:connect()
      login(socket, "ada@example.com")
      local expires_in = timers[1].ms
      assert.is_true(expires_in > 86390 * 1000 and expires_in <= 86400 * 1000)
      local disconnects = 0
      app:on("disconnect", function() disconnects = disconnects + 1 end)
      assert.equal(1, fire_timers())
      assert.is_false(socket.connected)
      assert.equal("io server disconnect", socket.disconnect_reason)
      assert.equal(1, disconnects)
      assert.is_nil(socket.feathers.authentication)
      assert.equal(0, app:channel("authenticated").length)
    end)

    it("re-arms the timer on a new login and drops it on logout", function()
      local socket = io:connect()
      local token = login(socket, "ada@example.com")[2].accessToken
      socket:call("create", "authentication", { strategy = "jwt", accessToken = token }, {})
      assert.equal(1, live_timers())
      socket:call("remove", "authentication", null, {})
      assert.equal(0, live_timers())
      assert.equal(0, fire_timers())
      assert.is_true(socket.connected)
    end)

    it("with expiry = 'logout' only ends the login", function()
      local app2, io2 = make_app({ jwt = { expiry = "logout" } })
      add_user(app2, "ada@example.com")
      local socket = io2:connect()
      login(socket, "ada@example.com")
      local logouts = {}
      app2:on("logout", function(result, params)
        logouts[#logouts + 1] = { result = result, params = params }
      end)
      assert.equal(1, fire_timers())
      assert.is_true(socket.connected)
      assert.is_nil(socket.feathers.authentication)
      assert.is_nil(socket.feathers.user)
      assert.equal(1, #logouts)
      assert.is_true(logouts[1].params.expired)
      assert.equal("ada@example.com", logouts[1].result.user.email)
      assert.equal(0, app2:channel("authenticated").length)
      assert.equal("Not authenticated", wire_error(socket:call("find", "messages", {})).message)
    end)

    it("authenticates from the handshake's Authorization header (§2.1)", function()
      local token = login(io:connect(), "ada@example.com")[2].accessToken
      local logins = 0
      app:on("login", function() logins = logins + 1 end)
      for _, value in ipairs({ "Bearer " .. token, "JWT " .. token, "bearer " .. token,
                               token }) do
        local socket, refused = io:connect({ headers = { authorization = value } })
        assert.is_nil(refused)
        assert.equal(token, socket.feathers.authentication.accessToken)
        assert.equal("ada@example.com", socket.feathers.user.email)
        assert.equal(null, socket:call("find", "messages", {})[1])
      end

      assert.equal(4, logins)
      local socket, refused = io:connect({ headers = { authorization = "Basic abc" } })
      assert.is_nil(refused)
      assert.is_nil(socket.feathers.authentication)
    end)

    it("refuses a connection whose header token is bad", function()
      local _, refused = io:connect({ headers = { authorization = "Bearer nope.nope.nope" } })
      assert.same({ name = "NotAuthenticated", message = "invalid token", code = 401,
                    className = "not-authenticated", data = { name = "JsonWebTokenError" } },
                  refused:toJSON())
      local expired = jwt.sign({ iat = 1000 }, SECRET, {
        header = { typ = "access" }, audience = "https://yourdomain.com",
        issuer = "feathers", expiresIn = 60, subject = "0" })
      _, refused = io:connect({ headers = { authorization = "Bearer " .. expired } })
      assert.equal("jwt expired", refused.message)
      assert.equal("TokenExpiredError", refused.data.name)
    end)

    it("uses parseStrategies for the handshake when set", function()
      local app2, io2 = make_app({ parseStrategies = {} })
      add_user(app2, "ada@example.com")
      local token = login(io2:connect(), "ada@example.com")[2].accessToken
      local socket = io2:connect({ headers = { authorization = "Bearer " .. token } })
      assert.is_nil(socket.feathers.authentication)
    end)

    it("survives a new service at the same path (a reloaded service file)", function()
      local socket = io:connect()
      login(socket, "ada@example.com")
      local listeners = app:listener_count("disconnect")
      for _ = 1, 100 do
        app:use("authentication", auth.service(app))
      end

      assert.equal(listeners, app:listener_count("disconnect"))
      assert.equal(1, live_timers())
      -- The new service's strategy finds the old login's timer: logout cancels it.
      local ack = socket:call("remove", "authentication", null, {})
      assert.equal(null, ack[1])
      assert.equal(0, live_timers())
      login(socket, "ada@example.com")
      assert.equal(1, live_timers())
      socket:drop()
      assert.is_nil(socket.feathers.authentication)
      assert.equal(0, live_timers())
    end)

    it("publishes no events of its own", function()
      local watcher = io:connect()
      login(watcher, "ada@example.com")
      login(io:connect(), "ada@example.com")
      assert.equal(0, #watcher:events("authentication created"))
    end)
  end)
end)
