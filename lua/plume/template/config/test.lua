-- config/test.lua: what `plume test` (PLUME_ENV=test) changes.
return {
  port = 8998,
  log_level = "warn",
}
