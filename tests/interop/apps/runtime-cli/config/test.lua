-- PLUME_ENV=test: overrides the port and the greeting, merges limits.
return {
  port = 3412,
  greeting = "from test.lua",
  limits = { b = 20 },
}
