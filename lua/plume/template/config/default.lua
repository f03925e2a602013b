-- config/default.lua: settings of {{name}} for every environment. Keys that name a
-- Plume option (see `plume --help`: port, log_level, ...) set it; any other key is an
-- app setting (app:get("paginate")). config/<PLUME_ENV>.lua is read next and wins;
-- PLUME_* environment variables and command-line flags win over both.
return {
  port = 3030,
  paginate = { default = 10, max = 50 },
}
