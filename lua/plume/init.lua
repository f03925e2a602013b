-- plume: the framework's entry point. The C runtime requires it once per instance and
-- calls load_app(dir): config/ gives the settings, app.lua configures the app,
-- services/*.lua become services, Feathers' real-time transport is set up on Socket.IO.
-- reload(changes) swaps changed service files between calls (DESIGN.md §5), shutdown()
-- disconnects clients and tears services down. Apps reach the runtime's helpers through
-- it: plume.sleep, after, every, spawn, fs, http, log, errors, json, socketio.
local core = require "plume.core"


local type = type
local pairs = pairs
local ipairs = ipairs
local pcall = pcall
local xpcall = xpcall
local error = error
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local getmetatable = getmetatable
local traceback = debug.traceback
local table_sort = table.sort
local io_open = io.open
local io_write = io.write


local _M = {
  VERSION = core.version,
}


-- {{ Runtime helpers -------------------------------------------------------------------


-- Suspends the calling task for ms milliseconds (the loop keeps serving others).
_M.sleep = core.sleep

-- plume.after(ms, fn) / plume.every(ms, fn) -> timer with :cancel(); each run of fn is a
-- task of its own (it may wait). plume.spawn(fn, ...) runs fn(...) as a new task now.
_M.after = core.after
_M.every = core.every
_M.spawn = core.spawn

-- Shuts the server down gracefully; the `plume` command exits with code.
_M.exit = core.exit

-- Milliseconds (a float) from an arbitrary origin, for measuring durations.
_M.now = core.hrtime

-- From stock Lua (the rock): plume.run(dir [, opts]) serves the app folder dir in this
-- Lua state, on a loop of its own, until the server shuts down (SIGINT, SIGTERM,
-- plume.exit), then returns the exit code; nil, err when it cannot start. opts sets
-- options by name ({ port = 3030, watch = false, ... }) over config/ and PLUME_*, and
-- signals = false leaves SIGINT and SIGTERM alone.
_M.run = core.run


-- A call that overruns its time budget fails with a GeneralError (the C runtime raises
-- what this returns; set_limit_error exists only inside the runtime).
if core.set_limit_error then
  core.set_limit_error(function(msg)
    return require("plume.errors").GeneralError(msg)
  end)
end


-- plume.log("info", "message") or plume.log("warn", "subsystem", "message").
function _M.log(level, a, b)
  if b == nil then
    core.log(level, "app", tostring(a))
  else
    core.log(level, tostring(a), tostring(b))
  end
end


-- Files, on libuv's thread pool inside a task (inline during set-up). Each returns a
-- value, or nil, "path: message", "ENAME".
_M.fs = {
  read = core.fs_read,
  stat = core.fs_stat,
  mkdir = core.fs_mkdir,
  write = function(path, data)
    return core.fs_write(path, data, false)
  end,
  append = function(path, data)
    return core.fs_write(path, data, true)
  end,
}


local http = {}
_M.http = http


-- Splits "http://host:port/path?query" into host, port, target.
local function parse_url(url)
  local scheme, rest = url:match("^(%a[%w+.%-]*)://(.*)$")
  if not scheme then
    return nil, "invalid URL '" .. url .. "'"
  end

  if scheme:lower() ~= "http" then
    return nil, "unsupported URL scheme '" .. scheme .. "' (plume.http speaks http)"
  end

  local authority, target = rest:match("^([^/?#]*)(.*)$")
  target = target:gsub("#.*$", "")
  if target == "" or target:sub(1, 1) == "?" then
    target = "/" .. target
  end

  local host, port = authority:match("^%[([%x:.]+)%]:?(%d*)$")
  if not host then
    host, port = authority:match("^([^:@]+):?(%d*)$")
  end

  if not host then
    return nil, "invalid host in URL '" .. url .. "'"
  end

  return host, tonumber(port) or 80, target
end


-- plume.http.request{ method = "GET", url = "http://...", headers = {}, body = "...",
-- timeout = ms, max_body = bytes } -> status, headers (lower-case names), body, or nil,
-- err. A table body is sent as JSON. Only inside a task (it waits).
function http.request(opts)
  if type(opts) == "string" then
    opts = { url = opts }
  end

  if type(opts) ~= "table" or type(opts.url) ~= "string" then
    error("plume.http.request expects { url = ... }", 2)
  end

  local host, port, target = parse_url(opts.url)
  if not host then
    return nil, port
  end

  local headers = opts.headers
  local body = opts.body
  if type(body) == "table" then
    local copy = {}
    for k, v in pairs(headers or {}) do
      copy[k] = v
    end

    local has_type = false
    for k in pairs(copy) do
      if type(k) == "string" and k:lower() == "content-type" then
        has_type = true
      end
    end

    if not has_type then
      copy["Content-Type"] = "application/json"
    end

    headers = copy
    body = core.json.encode(body)
  end

  local method = opts.method or (body ~= nil and "POST" or "GET")
  return core.http_request(method:upper(), host, port, target, headers, body, opts.timeout,
                           opts.max_body)
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


-- }}


-- {{ Files of the app ---------------------------------------------------------------


-- The text of a file, or nil, message, errno (2: it does not exist).
local function read_file(path)
  local f, err, code = io_open(path, "rb")
  if not f then
    return nil, err, code
  end

  local text = f:read("a")
  f:close()
  return text
end


local ENOENT = 2


-- The .lua files of a folder, sorted by name (so start-up order is stable).
local function lua_files(dir)
  local files = {}
  for _, name in ipairs(core.list_dir(dir)) do
    if name:match("^[%w_%-][%w_%-%.]*%.lua$") then
      files[#files + 1] = name
    end
  end
  table_sort(files)
  return files
end


-- Traceback of an error in an app file, without the framework frames below it.
local function app_traceback(err)
  local text = traceback(tostring(err), 2)
  return (text:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end


-- Runs Lua source in a fresh environment whose globals fall back to _G, so a file cannot
-- leak globals into others. name is how messages call it (a path relative to the app
-- folder: "services/messages.lua:12: ..."). Returns what it returns, or nil, err.
local function run_source(source, name)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = load(source, "@" .. name, "t", env)
  if not chunk then
    return nil, err
  end

  local ok, result = xpcall(chunk, app_traceback)
  if not ok then
    return nil, tostring(result)
  end

  return result
end


-- Loads a Lua file of the app in a fresh environment (see run_source).
function _M.load_file(path)
  local source = read_file(path)
  if source == nil then
    return nil, "cannot open " .. path
  end

  return run_source(source, path)
end


local function is_plain_table(t)
  return type(t) == "table" and getmetatable(t) == nil and t[1] == nil
end


-- Copies src into dst; plain tables (not lists) merge key by key, as node-config does.
local function merge(dst, src)
  for k, v in pairs(src) do
    if is_plain_table(v) and is_plain_table(dst[k]) then
      merge(dst[k], v)
    else
      dst[k] = v
    end
  end
  return dst
end


-- config/default.lua, then config/<env>.lua: each returns a table. Returns the merged
-- settings, or nil, err.
function _M.load_config(dir, env)
  local settings = {}
  for _, name in ipairs({ "default", env }) do
    local path = dir .. "/config/" .. name .. ".lua"
    local source = read_file(path)
    if source ~= nil then
      local t, err = run_source(source, "config/" .. name .. ".lua")
      if t == nil and err ~= nil then
        return nil, err
      end

      if type(t) ~= "table" then
        return nil, "config/" .. name .. ".lua: must return a table of settings"
      end

      merge(settings, t)
    end
    if env == "default" then
      break
    end
  end

  return settings
end


-- Turns what a service file returned into (path, service, options, hooks, publish).
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


-- }}


-- {{ The app: load, access log, limits --------------------------------------------------


-- What load_app knows about the app folder: { dir, files = { [file] = { path, def,
-- source } }, app_source }.
local state


local function log(level, subsystem, msg)
  core.log(level, subsystem, msg)
end


local function option(name)
  local ok, value = pcall(core.option, name)
  return ok and value or nil
end


-- Settings from config/ that are not runtime options go to app:set.
local function apply_settings(app, settings)
  for k, v in pairs(settings) do
    if type(k) == "string" and option(k) == nil then
      app:set(k, v)
    end
  end
end


-- The error a runtime limit raised, as the GeneralError the caller gets.
local function limit_error(err)
  if err == "not enough memory" then
    return require("plume.errors").GeneralError("not enough memory")
  end
  return err
end


-- The outermost app hook: one access-log line per external service call (method, path,
-- status, duration), debug lines for internal calls under PLUME_DEBUG=feathers, and the
-- memory cap's error turned into a GeneralError for that call only.
local function call_hook(ctx, next_fn)
  local params = ctx.params
  local provider = type(params) == "table" and params.provider or nil
  local logged = provider and core.access_enabled()
                 or not provider and core.log_wants("debug", "feathers")
  local start = logged and core.hrtime()
  local ok, err = pcall(next_fn)
  if not ok then
    err = limit_error(err)
  end

  if logged then
    local status = 200
    if not ok then
      status = type(err) == "table" and tonumber(err.code) or 500
    end

    if provider then
      core.access("call", tostring(ctx.method), tostring(ctx.path), status, start)
    else
      log("debug", "feathers", "internal call " .. tostring(ctx.path) .. " "
          .. tostring(ctx.method) .. " " .. status .. " "
          .. string.format("%.3fms", core.hrtime() - start))
    end
  end

  if not ok then
    error(err, 0)
  end

  return ctx
end


-- Lets modules of the app folder be required ("lib.util" is dir/lib/util.lua).
local function add_app_path(dir)
  local prefix = dir .. "/?.lua;" .. dir .. "/?/init.lua;"
  if package.path:sub(1, #prefix) ~= prefix then
    package.path = prefix .. package.path
  end
end


-- Forgets the modules loaded from the app folder, so a reload requires them afresh.
local function clear_app_modules(dir)
  local app_path = dir .. "/?.lua;" .. dir .. "/?/init.lua"
  for name in pairs(package.loaded) do
    if type(name) == "string" and not name:match("^plume")
       and package.searchpath(name, app_path) then
      package.loaded[name] = nil
    end
  end
end


-- A start-up failure whose message says it all (file and line, a traceback when
-- the file raised at run time): load_app logs it without another traceback.
local LoadError = {}


local function fail(msg)
  error(setmetatable({ message = msg }, LoadError), 0)
end


local function load_traceback(err)
  if getmetatable(err) == LoadError then
    return err.message
  end
  return app_traceback(err)
end


-- Loads an app folder. Errors in config, app.lua or a service file stop the start-up
-- with the file and line in the message.
local function load_app(dir)
  local application = require "plume.application"
  local app = application.new()
  _M.app = app
  state = { dir = dir, files = {} }

  local env = option("env") or os.getenv("PLUME_ENV") or "development"
  app:set("app_dir", dir)
  app:set("env", env)
  local settings, cerr = _M.load_config(dir, env)
  if not settings then
    fail(cerr)
  end
  apply_settings(app, settings)
  app:set("host", option("host"))
  app:set("port", tonumber(option("port")))

  app.log = function(level, msg)
    core.log(level, "app", tostring(msg))
  end

  app:hooks({ around = { all = { call_hook } } })
  add_app_path(dir)

  local path = dir .. "/app.lua"
  local source = read_file(path)
  if source ~= nil then
    state.app_source = source
    local configure, err = run_source(source, "app.lua")
    if err then
      fail(err)
    end
    if type(configure) == "function" then
      configure(app)
    elseif configure ~= nil then
      fail("app.lua must return a function(app)")
    end
  end

  local services_dir = dir .. "/services"
  local nservices = 0
  for _, file in ipairs(lua_files(services_dir)) do
    local file_path = services_dir .. "/" .. file
    local text = read_file(file_path)
    local def, lerr = run_source(text or "", "services/" .. file)
    if lerr then
      fail(lerr)
    end
    local ok, err = _M.use_service(app, file:sub(1, -5), def)
    if not ok then
      fail("services/" .. file .. ": " .. tostring(err))
    end
    state.files[file] = { path = ok, def = def, source = text }
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

    -- The Feathers browser client at /feathers/feathers.js, found and served the way
    -- Socket.IO serves /socket.io/socket.io.js (public/ may hold its own copy).
    local feathers_dist = io:serveClient()
      and socketio.find_dist(app, "@feathersjs/client", "feathers.js",
                             { "/usr/share/nodejs/@feathersjs/client/dist" })
    if feathers_dist then
      core.static_mount("/feathers/", feathers_dist)
    end
  end

  app:setup()
  return app
end


function _M.load_app(dir)
  local ok, result = xpcall(load_app, load_traceback, dir)
  if ok then
    local names = {}
    for file, entry in pairs(state.files) do
      names[#names + 1] = entry.path .. " (services/" .. file .. ")"
    end
    table_sort(names)
    log("info", "app", "loaded " .. dir .. " (env " .. tostring(result:get("env"))
        .. "): " .. (#names > 0 and table.concat(names, ", ") or "no services"))
    return result
  end

  log("error", "app", "cannot load " .. dir .. ": " .. tostring(result))
  error(core.reported or result, 0)
end


-- }}


-- {{ Hot reload ---------------------------------------------------------------------


local function reload_failed(file, err)
  log("error", "reload", "services/" .. file .. " not reloaded, the old version keeps "
      .. "serving: " .. tostring(err))
  return false
end


-- A memory service reloaded without data of its own keeps the old one's store (records
-- and id counter), so data survives an edit of its file.
local function keep_memory_data(name, old_def, new_def)
  local memory = package.loaded["plume.adapters.memory"]
  if not memory then
    return
  end

  local _, old_service = _M.service_definition(name, old_def)
  local _, new_service = _M.service_definition(name, new_def)
  if memory.is_memory(old_service) and memory.is_memory(new_service)
     and old_service.store ~= new_service.store and new_service.store.size == 0 then
    new_service.store = old_service.store
  end
end


-- Reloads services/<file>: added, replaced or removed. The new version is loaded in a
-- fresh environment and checked on a scratch app first; if anything fails, the old
-- version stays. Returns true when the app now runs what the file says.
local function reload_service(app, file)
  local application = require "plume.application"
  local full = state.dir .. "/services/" .. file
  local name = file:sub(1, -5)
  local old = state.files[file]
  local source, rerr, code = read_file(full)

  if source == nil and code ~= ENOENT then
    return reload_failed(file, rerr)
  end

  if source == nil then
    if old then
      app:unuse(old.path)
      state.files[file] = nil
      log("info", "reload", "services/" .. file .. " removed: service '" .. old.path
          .. "' unregistered")
    end
    return true
  end

  if old and old.source == source then
    return true
  end

  local def, err = run_source(source, "services/" .. file)
  if def == nil then
    return reload_failed(file, err or "the file returned nothing")
  end

  local path, perr = _M.service_definition(name, def)
  if not path then
    return reload_failed(file, perr)
  end

  local ok, verr = xpcall(_M.use_service, traceback, application.new(), name, def)
  if not ok then
    return reload_failed(file, verr)
  end

  if old then
    keep_memory_data(name, old.def, def)
  end

  ok, verr = xpcall(function()
    if old and old.path ~= path then
      app:unuse(old.path)
    end
    _M.use_service(app, name, def)
  end, traceback)

  if not ok then
    if old then
      pcall(_M.use_service, app, name, old.def)
    elseif app:service(path) then
      pcall(app.unuse, app, path)
    end
    return reload_failed(file, verr)
  end

  state.files[file] = { path = path, def = def, source = source }
  log("info", "reload", "services/" .. file .. (old and " reloaded" or " added")
      .. ": service '" .. path .. "'")
  return true
end


local function reload_config(app)
  local env = app:get("env")
  local settings, err = _M.load_config(state.dir, env)
  if not settings then
    log("error", "reload", "config not reloaded, the old settings stay: " .. tostring(err))
    return
  end

  apply_settings(app, settings)
  for k, v in pairs(settings) do
    if type(k) == "string" and option(k) ~= nil and tostring(v) ~= option(k) then
      log("warn", "reload", "option '" .. k .. "' changed in config/: it applies at the "
          .. "next start")
    end
  end
  log("info", "reload", "config reloaded")
end


local function check_app_lua()
  local source = read_file(state.dir .. "/app.lua")
  if source ~= state.app_source then
    log("warn", "reload", "app.lua changed: it applies at the next start (services, "
        .. "config and modules of the app folder reload live)")
  end
end


-- One reload: changes lists paths relative to the app folder, nil means everything.
local function reload_now(app, changes)
  local files = {}
  local config, app_lua, all_services = changes == nil, changes == nil, changes == nil
  for _, path in ipairs(changes or {}) do
    local file = path:match("^services/([^/]+%.lua)$")
    if file then
      files[file] = true
    elseif path:match("^config/") then
      config = true
    elseif path == "app.lua" then
      app_lua = true
    else
      all_services = true -- a module of the app folder: services may require it
    end
  end

  clear_app_modules(state.dir)
  if config then
    reload_config(app)
  end

  if app_lua then
    check_app_lua()
  end

  if all_services then
    for file in pairs(state.files) do
      files[file] = true
    end

    for _, file in ipairs(lua_files(state.dir .. "/services")) do
      files[file] = true
    end

    -- Modules may have changed: reload even the files whose text did not.
    for file in pairs(files) do
      if state.files[file] then
        state.files[file].source = nil
      end
    end
  end

  local list = {}
  for file in pairs(files) do
    list[#list + 1] = file
  end
  table_sort(list)

  local ok_count, failed = 0, 0
  for _, file in ipairs(list) do
    if reload_service(app, file) then
      ok_count = ok_count + 1
    else
      failed = failed + 1
    end
  end

  return ok_count, failed
end


local reloading = false
local queued = false
local queued_changes


-- Reloads what changed (paths relative to the app folder; nil: everything). Runs as a
-- task between calls; a reload asked for while one is waiting runs right after it.
function _M.reload(changes)
  local app = _M.app
  if app == nil or state == nil then
    return
  end

  if reloading then
    if changes == nil or (queued and queued_changes == nil) then
      queued_changes = nil
    else
      queued_changes = queued_changes or {}
      for _, path in ipairs(changes) do
        queued_changes[#queued_changes + 1] = path
      end
    end
    queued = true
    return
  end

  reloading = true
  repeat
    queued = false
    local ok, err = xpcall(reload_now, traceback, app, changes)
    if not ok then
      log("error", "reload", tostring(err))
    end
    changes = queued_changes
    queued_changes = nil
  until not queued
  reloading = false
end


-- Graceful shutdown, after calls in flight had their chance: Socket.IO clients are
-- disconnected, then services and app torn down.
function _M.shutdown()
  local app = _M.app
  if app == nil then
    return
  end

  local io = app.io
  if type(io) == "table" and type(io.close) == "function" then
    local ok, err = xpcall(io.close, traceback, io)
    if not ok then
      log("error", "core", "closing Socket.IO: " .. tostring(err))
    end
  end

  local ok, err = xpcall(app.teardown, traceback, app)
  if not ok then
    log("error", "core", "teardown: " .. tostring(err))
  end
end


-- }}


-- {{ plume new, plume test ---------------------------------------------------------


-- The folder of the app template (lua/plume/template/).
local function template_dir()
  local path = package.searchpath("plume.template.app", package.path)
  return path and path:match("^(.*)/app%.lua$")
end


local function copy_tree(from, to, name)
  assert(_M.fs.mkdir(to))
  for _, entry in ipairs(core.list_dir(from)) do
    local src, dst = from .. "/" .. entry, to .. "/" .. entry
    local st = assert(_M.fs.stat(src))
    if st.type == "directory" then
      copy_tree(src, dst, name)
    else
      local text = assert(_M.fs.read(src))
      assert(_M.fs.write(dst, (text:gsub("{{name}}", name))))
    end
  end
end


-- Scaffolds an app folder at dir from the template: app.lua, config/, one service, a
-- page and a test. Returns true, or nil, err.
function _M.new_app(dir)
  local name = dir:match("([^/]+)/*$")
  if not name or not name:match("^[%w_%-%.]+$") then
    return nil, "'" .. tostring(dir) .. "' is not a usable app name"
  end

  if _M.fs.stat(dir) and #core.list_dir(dir) > 0 then
    return nil, dir .. " exists and is not empty"
  end

  local from = template_dir()
  if not from then
    return nil, "the app template (plume/template) is not installed"
  end

  local ok, err = pcall(copy_tree, from, dir, name)
  if not ok then
    return nil, tostring(err)
  end

  return true
end


-- Runs the test files of the app (dir/test/*.lua), each returning a table of named test
-- functions called with the loaded app, in name order. Prints TAP and "N passed, N
-- failed", then shuts the server down with exit code 1 when anything failed.
function _M.run_tests(dir)
  local app = _M.app
  local n, passed, failed = 0, 0, 0
  for _, file in ipairs(lua_files(dir .. "/test")) do
    local cases, err = _M.load_file(dir .. "/test/" .. file)
    if type(cases) ~= "table" then
      n = n + 1
      failed = failed + 1
      io_write("not ok ", n, " - ", file, "\n#   ",
               tostring(err or "a test file must return a table of functions"), "\n")
    else
      local names = {}
      for k, v in pairs(cases) do
        if type(v) == "function" then
          names[#names + 1] = tostring(k)
        end
      end
      table_sort(names)

      for _, name in ipairs(names) do
        n = n + 1
        local ok, terr = xpcall(cases[name], traceback, app)
        if ok then
          passed = passed + 1
          io_write("ok ", n, " - ", file, ": ", name, "\n")
        else
          failed = failed + 1
          io_write("not ok ", n, " - ", file, ": ", name, "\n#   ",
                   (tostring(terr):gsub("\n", "\n#   ")), "\n")
        end
      end
    end
  end

  io_write("1..", n, "\n", passed, " passed, ", failed, " failed\n")
  io.stdout:flush()
  core.exit(failed > 0 and 1 or 0)
  return failed == 0
end


-- }}


return _M
