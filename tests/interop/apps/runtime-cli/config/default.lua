-- Every environment: a port, an app setting, and a nested one that config/test.lua
-- merges into.
return {
  port = 3411,
  greeting = "from default.lua",
  limits = { a = 1, b = 2 },
}
