-- plume: the framework's entry point. The C runtime requires it once per instance and
-- calls load_app(dir): app.lua configures the app, services/*.lua become services, and
-- Feathers' real-time transport is set up on Socket.IO. Apps reach the runtime's helpers
-- through it (plume.sleep, plume.log, plume.socketio, plume.errors, plume.json).
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


-- Lazily loaded so that `require "plume"` stays cheap for tools.
setmetatable(_M, {
  __index = function(t, k)
    local v
    if k == "socketio" then
      v = require("plume.transport").socketio
    elseif k == "errors" or k == "json" or k == "hooks" or k == "engineio" then
      v = require("plume." .. k)
    elseif k == "memory" then
      v = require("plume.adapters.memory")
    end
    rawset(t, k, v)
    return v
  end,
})


local function file_exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
    return true
  end
  return false
end


-- The .lua files of a folder, sorted by name (so start-up order is stable).
local function lua_files(dir)
  local files = {}
  for _, name in ipairs(core.list_dir(dir)) do
    if name:match("^[%w_%-%.]+%.lua$") then
      files[#files + 1] = name
    end
  end
  table.sort(files)
  return files
end


-- Loads a Lua file of the app in a fresh environment whose globals fall back to _G, so a
-- service file cannot leak globals into others. Returns what the file returns, or nil, err
-- (with file and line).
function _M.load_file(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then
    return nil, err
  end
  local ok, result = xpcall(chunk, debug.traceback)
  if not ok then
    return nil, result
  end
  return result
end


-- Turns what a service file returned into (path, service, options, hooks).
function _M.service_definition(name, def)
  if type(def) ~= "table" then
    return nil, "a service file must return a table (a service, or { service = ..., path = ... })"
  end
  if type(def.service) == "table" then
    local options = {
      methods = def.methods,
      events = def.events,
    }
    return def.path or name, def.service, options, def.hooks, def.publish
  end
  return name, def, {}, nil, nil
end


-- Registers one service file's definition on the app.
function _M.use_service(app, name, def)
  local path, service, options, hooks, publish = _M.service_definition(name, def)
  if not path then
    return nil, service
  end
  app:use(path, service, options)
  local wrapper = app:service(path)
  if hooks then
    wrapper:hooks(hooks)
  end
  if type(publish) == "function" then
    wrapper:publish(publish)
  elseif type(publish) == "table" then
    for event, fn in pairs(publish) do
      wrapper:publish(event, fn)
    end
  end
  return path
end


-- Loads an app folder. Errors in app.lua or a service file stop the start-up with the
-- file and line in the message.
function _M.load_app(dir)
  local application = require "plume.application"
  local app = application.new()
  app:set("app_dir", dir)
  app.log = function(level, msg)
    core.log(level, "app", tostring(msg))
  end
  _M.app = app

  local path = dir .. "/app.lua"
  if file_exists(path) then
    local configure = assert(_M.load_file(path))
    if type(configure) == "function" then
      configure(app)
    elseif configure ~= nil then
      error(path .. " must return a function(app)")
    end
  end

  local services_dir = dir .. "/services"
  local nservices = 0
  for _, file in ipairs(lua_files(services_dir)) do
    local file_path = services_dir .. "/" .. file
    local def = assert(_M.load_file(file_path))
    local ok, err = _M.use_service(app, file:sub(1, -5), def)
    if not ok then
      error(file_path .. ": " .. tostring(err))
    end
    nservices = nservices + 1
  end

  -- Feathers apps are real-time: serve the services over Socket.IO unless the app opted
  -- out with app:set("socketio", false).
  local sio_options = app:get("socketio")
  if sio_options ~= false and (nservices > 0 or sio_options ~= nil) then
    local socketio = require "plume.socketio"
    local transport = require "plume.transport"
    local io = socketio.attach(app, type(sio_options) == "table" and sio_options or {})
    app.io = io
    transport.setup(app, io)
  end

  app:setup()
  return app
end


return _M
