-- luacheck: std +busted
require "tests.lua.helper"
local router = require "plume.router"


describe("plume.router", function()
  local r

  before_each(function()
    r = router.new()
  end)

  it("finds literal paths, ignoring leading and trailing slashes", function()
    r:insert("todos", "T")
    assert.equal("T", r:lookup("todos"))
    assert.equal("T", r:lookup("/todos/"))
    assert.equal("T", r:lookup("///todos"))
    assert.is_nil(r:lookup("todolist"))
    assert.is_nil(r:lookup("todos/x/y"))
  end)

  it("is case-sensitive", function()
    r:insert("Todos", "T")
    assert.is_nil(r:lookup("todos"))
    assert.equal("T", r:lookup("Todos"))
  end)

  it("captures placeholders as strings", function()
    r:insert("users/:userId/messages", "M")
    local data, params = r:lookup("users/5/messages")
    assert.equal("M", data)
    assert.same({ userId = "5" }, params)
    assert.equal("string", type(params.userId))
  end)

  it("returns a new captures table on every lookup", function()
    r:insert("a/:x", "A")
    local _, p1 = r:lookup("a/1")
    p1.x = "changed"
    local _, p2 = r:lookup("a/1")
    assert.equal("1", p2.x)
  end)

  it("tries the literal child first, then placeholders in insertion order", function()
    r:insert("users/:__id", "USER")
    r:insert("users/:userId/messages", "MSG")
    r:insert("users/:userId/messages/:__id", "MSG_ID")
    r:insert("users/me", "ME")

    local data, params = r:lookup("users/me")
    assert.equal("ME", data)
    assert.same({}, params)

    data, params = r:lookup("users/7")
    assert.equal("USER", data)
    assert.same({ __id = "7" }, params)

    -- backtracks out of :__id (which has no messages child) into :userId
    data, params = r:lookup("users/5/messages/9")
    assert.equal("MSG_ID", data)
    assert.same({ userId = "5", __id = "9" }, params)
  end)

  it("backtracks from a literal child that cannot finish the path", function()
    r:insert("a/b", "AB")
    r:insert("a/:x/c", "AXC")
    local data, params = r:lookup("a/b/c")
    assert.equal("AXC", data)
    assert.same({ x = "b" }, params)
  end)

  it("needs the whole path consumed on a node with data", function()
    r:insert("a/b/c", "ABC")
    assert.is_nil(r:lookup("a/b"))
    assert.is_nil(r:lookup("a"))
  end)

  it("keeps empty segments of doubled inner slashes", function()
    r:insert("a/:x", "AX")
    assert.is_nil(r:lookup("a//b"))
    local data, params = r:lookup("a/b")
    assert.equal("AX", data)
    assert.same({ x = "b" }, params)
  end)

  it("stores the root service under the empty segment", function()
    r:insert("/", "ROOT")
    r:insert(":__id", "ROOT")
    assert.equal("ROOT", r:lookup("/"))
    assert.equal("ROOT", r:lookup(""))
    local data, params = r:lookup("/42")
    assert.equal("ROOT", data)
    assert.same({ __id = "42" }, params)
  end)

  it("refuses a duplicate unless replacing", function()
    r:insert("todos", "A")
    assert.has_error(function()
      r:insert("todos", "B")
    end, "Path todos already exists")
    r:insert("todos", "B", true)
    assert.equal("B", r:lookup("todos"))
  end)

  it("removes paths and prunes empty branches", function()
    r:insert("users/:userId/messages", "M")
    r:insert("users/:userId/messages/:__id", "MI")
    assert.equal("M", r:lookup("users/1/messages"))
    r:remove("users/:userId/messages/:__id")
    r:remove("users/:userId/messages")
    assert.is_nil(r:lookup("users/1/messages"))
    assert.is_nil(r:lookup("users/1/messages/2"))
    assert.same({}, r.root.children)
  end)

  it("returns nil for non-string paths", function()
    r:insert("todos", "T")
    assert.is_nil(r:lookup(nil))
    assert.is_nil(r:lookup(42))
    assert.is_nil(r:lookup({}))
  end)

  it("keeps serving correct results with a full cache", function()
    r:insert("items/:id", "I")
    for i = 1, 2000 do
      local data, params = r:lookup("items/" .. i)
      assert.equal("I", data)
      assert.equal(tostring(i), params.id)
    end

    for i = 1, 600 do
      assert.is_nil(r:lookup("nothing/" .. i))
    end

    r:insert("nothing/:x", "N")
    assert.equal("N", r:lookup("nothing/5"))
  end)
end)
