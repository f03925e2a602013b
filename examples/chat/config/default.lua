-- config/default.lua: the default app's settings (the repository root is an app
-- folder: `make run` serves it). config/<PLUME_ENV>.lua, when there is one, is merged
-- over them; keys that name a Plume option (`plume --help`) set that option.
return {
  -- Authentication as a new Feathers app generates it: log in with an email and a
  -- password (strategy "local"), or with the token a login returned (strategy "jwt").
  authentication = {
    -- DEVELOPMENT SECRET. Whoever knows the secret can sign a token for any user: set
    -- FEATHERS_SECRET in the environment (a long random string) anywhere that matters.
    -- app.lua refuses to start with this one when PLUME_ENV is "production".
    secret = os.getenv("FEATHERS_SECRET") or "development-secret-of-the-plume-default-app",
    entity = "user",
    service = "users",
    authStrategies = { "jwt", "local" },
    jwtOptions = {
      header = { typ = "access" },
      audience = "https://yourdomain.com",
      algorithm = "HS256",
      expiresIn = "1d",
    },
    ["local"] = { usernameField = "email", passwordField = "password" },
  },
}
