-- services/state.lua: what the tests check about where the app runs: the Lua version,
-- the file plume.core was loaded from, and a global the launcher set before
-- require("plume").run (the app runs in the launcher's own state, not a second one).
return {
  find = function()
    return {
      lua = _VERSION,
      core = package.searchpath("plume.core", package.cpath),
      framework = package.searchpath("plume", package.path),
      shared = rawget(_G, "ROCK_LAUNCHER"),
    }
  end,
}
