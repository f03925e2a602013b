-- The app of tests/interop/feathers-auth.js: a generated Feathers chat in Plume. Users
-- (memory, hashed and protected passwords), authentication (jwt + local, email and
-- password), messages and whoami that need a login, the generator's channels: every
-- connection starts in "anonymous", a login moves it to "authenticated", and every event
-- goes to "authenticated" only.
--
-- For the tests only: a login may ask for a short-lived token with the query
-- { expiresIn = "2s" } (the client sends nothing else of params).
local auth = require "plume.authentication"


-- The tests sign and check tokens with this secret too.
local SECRET = "plume-interop-auth-secret-4b1d"


-- The query must not reach the entity lookups of the login (feathers.md §9.2: it would
-- filter the user away), so the option is taken out of it.
local function short_tokens(context)
  local params = context.params
  local query = params.query
  if type(query) == "table" and query.expiresIn ~= nil then
    params.jwtOptions = { expiresIn = query.expiresIn }
    local rest = {}
    for k, v in pairs(query) do
      if k ~= "expiresIn" then
        rest[k] = v
      end
    end

    params.query = rest
  end

  return context
end


return function(app)
  app:set("authentication", {
    secret = SECRET,
    entity = "user",
    service = "users",
    authStrategies = { "jwt", "local" },
    jwtOptions = {
      header = { typ = "access" },
      audience = "https://yourdomain.com",
      issuer = "feathers",
      algorithm = "HS256",
      expiresIn = "1d",
    },
    ["local"] = { usernameField = "email", passwordField = "password" },
  })

  app:use("authentication", auth.service(app))
  app:service("authentication"):hooks({ before = { create = { short_tokens } } })

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
end
