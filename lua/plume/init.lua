-- plume: the framework's entry point. The C runtime requires it once per instance and
-- calls load_app(dir); apps reach the runtime's helpers through it (plume.sleep, plume.log).
local core = require "plume.core"


local _M = {
  VERSION = core.version,
}


-- Suspends the calling task for ms milliseconds (the loop keeps serving others).
_M.sleep = core.sleep


-- plume.log("info", "message") or plume.log("warn", "subsystem", "message").
function _M.log(level, a, b)
  if b == nil then
    core.log(level, "app", tostring(a))
  else
    core.log(level, tostring(a), tostring(b))
  end
end


local function file_exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
    return true
  end
  return false
end


-- Loads an app folder: app.lua (a function(app) that configures the app), then listens.
function _M.load_app(dir)
  local ok, application = pcall(require, "plume.application")
  local app
  if ok and type(application) == "table" and application.new then
    app = application.new()
  else
    app = {}
  end
  _M.app = app
  local path = dir .. "/app.lua"
  if file_exists(path) then
    local chunk = assert(loadfile(path, "t"))
    local configure = chunk()
    if type(configure) == "function" then
      configure(app)
    elseif configure ~= nil then
      error(path .. " must return a function(app)")
    end
  end
  return app
end


return _M
