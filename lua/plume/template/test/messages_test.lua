-- test/messages_test.lua: run with `plume test {{name}}`. Each function gets the
-- running app; an error fails the test.
local plume = require "plume"


return {
  ["messages: create needs a text"] = function(app)
    local messages = app:service("messages")
    local ok, err = pcall(messages.create, messages, {})
    assert(not ok, "create without a text must fail")
    assert(err.name == "BadRequest", "a BadRequest, got " .. tostring(err.name))
  end,

  ["messages: create, then find"] = function(app)
    local messages = app:service("messages")
    local created = messages:create({ text = "hello" })
    assert(created.text == "hello" and created.created_at, "created with a time")
    local page = messages:find({ query = { text = "hello" } })
    assert(page.total >= 1, "found again")
  end,

  ["the page is served"] = function(app)
    local url = "http://127.0.0.1:" .. tostring(app:get("port")) .. "/"
    local status, _, body = plume.http.request(url)
    assert(status == 200, "status " .. tostring(status))
    assert(body:find("{{name}}", 1, true), "the page names the app")
  end,
}
