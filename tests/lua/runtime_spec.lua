-- luacheck: std +busted
-- The parts of lua/plume/init.lua that need no running server: URL checks of
-- plume.http.request, config files (default then <env>, tables merged), app files in
-- fresh environments, and the `plume new` template. Skipped without the C module
-- (build/lua/plume/core.so, `make`).

local core_ok = pcall(require, "plume.core")


local function tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(require("plume").fs.mkdir(path))
  return path
end


local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end


local function rmdir(path)
  os.execute("rm -rf '" .. path .. "'")
end


local describe_core = core_ok and describe or pending


describe_core("plume (runtime helpers)", function()
  local plume

  setup(function()
    plume = require "plume"
  end)

  describe("http.request", function()
    it("refuses URLs it cannot serve before any I/O", function()
      local cases = {
        { "ftp://example.com/", "unsupported URL scheme 'ftp'" },
        { "https://example.com/", "unsupported URL scheme 'https'" },
        { "example.com/x", "invalid URL" },
        { "http://user@host/", "invalid host" },
        { "http:///path", "invalid host" },
      }
      for _, case in ipairs(cases) do
        local status, err = plume.http.request(case[1])
        assert.is_nil(status)
        assert.truthy(err:find(case[2], 1, true), case[1] .. ": " .. tostring(err))
      end
    end)

    it("needs a url", function()
      assert.has_error(function()
        plume.http.request({})
      end)
    end)
  end)

  describe("load_config", function()
    local dir

    before_each(function()
      dir = tmpdir()
      assert(plume.fs.mkdir(dir .. "/config"))
    end)

    after_each(function()
      rmdir(dir)
    end)

    it("reads default.lua, then <env>.lua over it, merging plain tables", function()
      write(dir .. "/config/default.lua",
            "return { port = 1, paginate = { default = 10, max = 50 }, list = { 1, 2 } }")
      write(dir .. "/config/production.lua",
            "return { port = 2, paginate = { max = 100 }, list = { 3 } }")
      local settings = assert(plume.load_config(dir, "production"))
      assert.same({ port = 2, paginate = { default = 10, max = 100 }, list = { 3 } },
                  settings)
      assert.same({ port = 1, paginate = { default = 10, max = 50 }, list = { 1, 2 } },
                  plume.load_config(dir, "development"))
    end)

    it("is empty without a config folder", function()
      assert.same({}, plume.load_config(dir .. "/nowhere", "development"))
    end)

    it("names the file and line of an error", function()
      write(dir .. "/config/default.lua", "return {\n  port = ,\n}")
      local settings, err = plume.load_config(dir, "development")
      assert.is_nil(settings)
      assert.truthy(err:find("config/default.lua:2:", 1, true), err)
      write(dir .. "/config/default.lua", "return 42")
      settings, err = plume.load_config(dir, "development")
      assert.is_nil(settings)
      assert.truthy(err:find("must return a table", 1, true), err)
    end)
  end)

  describe("load_file", function()
    it("runs a file in a fresh environment: its globals stay its own", function()
      local dir = tmpdir()
      write(dir .. "/a.lua", "leaked = 1 return { value = leaked, has_string = string ~= nil }")
      local result = assert(plume.load_file(dir .. "/a.lua"))
      assert.same({ value = 1, has_string = true }, result)
      assert.is_nil(rawget(_G, "leaked"))
      local none, err = plume.load_file(dir .. "/missing.lua")
      assert.is_nil(none)
      assert.truthy(err:find("cannot open", 1, true))
      rmdir(dir)
    end)
  end)

  describe("service_definition", function()
    it("takes a bare service or { service, path, hooks, methods, events, publish }", function()
      local service = { find = function() end }
      local path, s, options = plume.service_definition("things", service)
      assert.equal("things", path)
      assert.equal(service, s)
      assert.same({}, options)
      path, s, options = plume.service_definition("file", {
        path = "api/things", service = service, methods = { "find" }, events = { "e" },
      })
      assert.equal("api/things", path)
      assert.equal(service, s)
      assert.same({ methods = { "find" }, events = { "e" } }, options)
      local none, err = plume.service_definition("x", 42)
      assert.is_nil(none)
      assert.truthy(err:find("must return a table", 1, true))
    end)
  end)

  describe("new_app", function()
    it("copies the template with the app's name in it", function()
      local parent = tmpdir()
      local dir = parent .. "/shop"
      assert.is_true(plume.new_app(dir))
      for _, file in ipairs({ "app.lua", "config/default.lua", "config/test.lua",
                              "services/messages.lua", "public/index.html",
                              "test/messages_test.lua", "README.md" }) do
        assert.truthy(plume.fs.stat(dir .. "/" .. file), file)
      end
      local page = assert(plume.fs.read(dir .. "/public/index.html"))
      assert.truthy(page:find("<title>shop</title>", 1, true))
      assert.falsy(page:find("{{name}}", 1, true))
      local ok, err = plume.new_app(dir)
      assert.is_nil(ok)
      assert.truthy(err:find("not empty", 1, true))
      ok, err = plume.new_app(parent .. "/bad name")
      assert.is_nil(ok)
      assert.truthy(err:find("not a usable app name", 1, true))
      rmdir(parent)
    end)
  end)

  describe("fs on the main thread (no task)", function()
    it("reads, writes, appends, stats and makes folders inline", function()
      local dir = tmpdir()
      assert(plume.fs.mkdir(dir .. "/a/b"))
      assert(plume.fs.write(dir .. "/a/b/f", "x"))
      assert(plume.fs.append(dir .. "/a/b/f", "y"))
      assert.equal("xy", plume.fs.read(dir .. "/a/b/f"))
      assert.equal(2, plume.fs.stat(dir .. "/a/b/f").size)
      assert.equal("directory", plume.fs.stat(dir .. "/a").type)
      local v, err, code = plume.fs.read(dir .. "/none")
      assert.is_nil(v)
      assert.truthy(err:find(dir .. "/none: ", 1, true))
      assert.equal("ENOENT", code)
      rmdir(dir)
    end)
  end)
end)
