-- luacheck: std +busted
-- Query sanitising of $sort and $select as Feathers' adapter-commons does it (found by
-- tests/interop/feathers-client.js): an object in $sort or a non-list $select is checked
-- for operators like a property condition, with the same error.
require "tests.lua.helper"
local json = require "plume.json"
local memory = require "plume.adapters.memory"


local function refusal(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return err
end


local function people()
  return memory.new({ store = {
    { id = 1, name = "Alice" },
    { id = 2, name = "Bob" },
  } })
end


describe("feathers: $sort and $select sanitising (§8.2)", function()
  it("refuses an unknown operator in a $sort object", function()
    local err = refusal(function()
      people():find({ query = { ["$sort"] = { name = { ["$bad"] = 1 } } } })
    end)
    assert.equal("BadRequest", err.name)
    assert.equal("Invalid query parameter $bad", err.message)
    assert.same({ ["$bad"] = 1 }, err.data)
  end)

  it("refuses an unknown operator in a $select object", function()
    local err = refusal(function()
      people():find({ query = { ["$select"] = { ["$bad"] = 1 } } })
    end)
    assert.equal("BadRequest", err.name)
    assert.equal("Invalid query parameter $bad", err.message)
    assert.same({ ["$bad"] = 1 }, err.data)
  end)

  it("still parses plain directions and accepts lists and strings in $select", function()
    local svc = people()
    local sorted = svc:find({ query = { ["$sort"] = { id = "-1" } } })
    assert.same({ 2, 1 }, { sorted[1].id, sorted[2].id })
    assert.same({ { id = 1, name = "Alice" } },
                svc:find({ query = { ["$select"] = json.array({ "name" }), id = 1 } }))
    assert.same({ { id = 2, name = "Bob" } },
                svc:find({ query = { ["$select"] = "name", id = 2 } }))
  end)
end)


describe("feathers: $sort key precedence through sanitising (§8.5)", function()
  -- The order of a $sort's keys is the order the client sent them, which only a codec
  -- that records key order (plume.json keys/object_with_order) can know.
  local ordered = json.keys ~= nil and json.object_with_order ~= nil

  local function sorted_ids(query_text)
    local svc = memory.new({ store = {
      { id = 1, tags = json.array({ "b" }) },
      { id = 2, tags = json.array({ "a" }) },
      { id = 3 },
    } })
    local result = {}
    for i, record in ipairs(svc:find({ query = json.decode(query_text) })) do
      result[i] = record.id
    end

    return result
  end

  if not ordered then
    pending("plume.json records no key order here")
    return
  end

  it("sorts by the first key the client sent, not the first by name", function()
    assert.same({ 3, 2, 1 }, sorted_ids([[{"$sort":{"tags":1,"id":1}}]]))
    assert.same({ 1, 2, 3 }, sorted_ids([[{"$sort":{"id":1,"tags":1}}]]))
    assert.same({ 1, 2, 3 }, sorted_ids([[{"$sort":{"tags":-1,"id":"1"}}]]))
  end)
end)
