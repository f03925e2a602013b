-- luacheck: std +busted
local helper = require "tests.lua.helper"
local commons = require "plume.adapters.commons"
local json = require "plume.json"
local memory = require "plume.adapters.memory"


local null = json.null


local function ids(list)
  local result = {}
  for i, record in ipairs(list) do
    result[i] = record.id
  end

  return result
end


local function raises(fn, message, name)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  assert.equal(message, err.message)
  assert.equal(name or "BadRequest", err.name)
  return err
end


local PEOPLE = {
  { name = "Alice", age = 30, tags = json.array({ "admin", "dev" }), address = { city = "Paris" } },
  { name = "Bob", age = 25, tags = json.array({ "dev" }), address = { city = "Berlin" } },
  { name = "Carol", age = 35, tags = json.array({}), address = { city = "Paris" }, nick = null },
  { name = "Dave", age = "40", address = { city = "Rome" } },
  { name = "Eve", age = 28, tags = json.array({ "ops" }), active = true },
}


local function people(options)
  local svc = memory.new(options)
  for _, p in ipairs(PEOPLE) do
    svc:create(p)
  end

  return svc
end


describe("plume.adapters.memory", function()
  describe("create and ids (§8.1, §8.6)", function()
    it("numbers records from startId (default 0)", function()
      local svc = memory.new()
      assert.same({ text = "a", id = 0 }, svc:create({ text = "a" }))
      assert.same({ text = "b", id = 1 }, svc:create({ text = "b" }))
      svc = memory.new({ startId = 10 })
      assert.equal(10, svc:create({}).id)
    end)

    it("keeps truthy explicit ids without advancing the counter", function()
      local svc = memory.new()
      assert.equal("abc", svc:create({ id = "abc" }).id)
      assert.equal(0, svc:create({ id = 0 }).id)
      assert.equal(1, svc:create({ id = "" }).id)
      assert.equal(2, svc:create({}).id)
    end)

    it("honours a custom id field", function()
      local svc = memory.new({ id = "_id" })
      local r = svc:create({ x = 1 })
      assert.same({ x = 1, _id = 0 }, r)
      assert.same(r, svc:get(0))
      assert.same({ _id = 0 }, svc:get(0, { query = { ["$select"] = json.array({}) } }))
    end)

    it("needs multi for array data", function()
      local svc = memory.new()
      raises(function() svc:create(json.array({ {}, {} })) end,
             "Can not create multiple entries", "MethodNotAllowed")
      svc = memory.new({ multi = { "create" } })
      local created = svc:create(json.array({ { n = 1 }, { n = 2 } }))
      assert.same({ { n = 1, id = 0 }, { n = 2, id = 1 } }, created)
      assert.is_true(json.is_array(created))
    end)

    it("_create skips the multi check", function()
      local svc = memory.new()
      assert.equal(2, #svc:_create(json.array({ {}, {} })))
    end)

    it("treats ids 1 and '1' as the same record", function()
      local svc = memory.new()
      svc:create({ id = 1, v = "number" })
      assert.equal("number", svc:get("1").v)
      svc:create({ id = "1", v = "string" })
      assert.equal("string", svc:get(1).v)
      assert.equal(1, #svc:find())
    end)

    it("returns deep copies", function()
      local svc = memory.new()
      local data = { nested = { n = 1 } }
      local created = svc:create(data)
      data.nested.n = 2
      created.nested.n = 3
      assert.equal(1, svc:get(0).nested.n)
      local found = svc:find()
      found[1].nested.n = 4
      assert.equal(1, svc:get(0).nested.n)
    end)

    it("accepts an initial store (map keyed by id, or list of records)", function()
      local svc = memory.new({ store = { [2] = { id = 2, n = "b" }, [1] = { id = 1, n = "a" } } })
      assert.same({ 1, 2 }, ids(svc:find()))
      svc = memory.new({ store = { { id = "x" }, { id = "y" } } })
      assert.same({ "x", "y" }, ids(svc:find()))
      assert.equal(0, svc:create({}).id)
    end)

    it("shares data and counter with another service's store (hot reload)", function()
      local old = memory.new()
      old:create({ text = "kept" })
      local new = memory.new({ store = old.store })
      assert.same({ { text = "kept", id = 0 } }, new:find())
      assert.equal(1, new:create({}).id)
      assert.equal(2, #old:find())
    end)
  end)

  describe("store order (§8.1)", function()
    it("lists index-like keys ascending, then other keys in insertion order", function()
      local svc = memory.new()
      for _, id in ipairs({ "b", 10, "a", 2, "07", 0, "-1", "z" }) do
        svc:create({ id = id })
      end

      svc:create({ id = "3" })
      -- id 0 is falsy: the record takes the counter, which is 0 too
      assert.same({ 0, 2, "3", 10, "b", "a", "07", "-1", "z" }, ids(svc:find()))
    end)

    it("keeps a record's place when it is replaced, and forgets removed ones", function()
      local svc = memory.new()
      svc:create({ id = "x" })
      svc:create({ id = "y" })
      svc:create({ id = "z" })
      svc:update("x", { v = 1 })
      svc:remove("y")
      assert.same({ "x", "z" }, ids(svc:find()))
      svc:create({ id = "y" })
      assert.same({ "x", "z", "y" }, ids(svc:find()))
    end)
  end)

  describe("get, update, patch, remove (§8.6)", function()
    local svc

    before_each(function()
      svc = people({ multi = true })
    end)

    it("get answers NotFound with the id as text", function()
      raises(function() svc:get(99) end, "No record found for id '99'", "NotFound")
      raises(function() svc:get() end, "No record found for id 'undefined'", "NotFound")
      raises(function() svc:get(null) end, "No record found for id 'null'", "NotFound")
    end)

    it("get also needs the query to match", function()
      assert.equal("Alice", svc:get(0, { query = { age = 30 } }).name)
      raises(function() svc:get(0, { query = { age = 31 } }) end,
             "No record found for id '0'", "NotFound")
    end)

    it("update replaces the record, keeping the original id value", function()
      local updated = svc:update("1", { name = "Robert" })
      assert.same({ name = "Robert", id = 1 }, updated)
      assert.same({ name = "Robert", id = 1 }, svc:get(1))
    end)

    it("update refuses multi and non-matching records before changing anything", function()
      local message = "You can not replace multiple instances. Did you mean 'patch'?"
      raises(function() svc:update(null, {}) end, message)
      raises(function() svc:update(nil, {}) end, message)
      raises(function() svc:update(1, json.array({})) end, message)
      raises(function() svc:update(1, { name = "X" }, { query = { name = "Nope" } }) end,
             "No record found for id '1'", "NotFound")
      assert.equal("Bob", svc:get(1).name)
    end)

    it("patch merges data and never changes the id", function()
      local patched = svc:patch(0, { age = 31, id = 99, extra = null })
      assert.equal(31, patched.age)
      assert.equal(0, patched.id)
      assert.equal(null, patched.extra)
      assert.equal("Alice", patched.name)
      assert.equal(31, svc:get(0).age)
    end)

    it("patch with a null id patches every match (multi), honouring $sort", function()
      local patched = svc:patch(null, { checked = true },
                                { query = { city = nil, age = { ["$lt"] = 30 },
                                            ["$sort"] = { age = -1 } } })
      assert.same({ 4, 1 }, ids(patched))
      assert.is_true(svc:get(1).checked)
      assert.is_nil(svc:get(0).checked)
    end)

    it("multi patch and remove need multi", function()
      local single = people()
      raises(function() single:patch(null, {}) end, "Can not patch multiple entries",
             "MethodNotAllowed")
      raises(function() single:remove(null) end, "Can not remove multiple entries",
             "MethodNotAllowed")
      raises(function() single:_patch(null, {}) end, "Can not patch multiple entries",
             "MethodNotAllowed")
      local listed = people({ multi = { "remove" } })
      assert.equal(5, #listed:remove(null))
    end)

    it("reads its options at every call (options changed at run time)", function()
      local single = people({ paginate = { default = 2 } })
      raises(function() single:remove(null) end, "Can not remove multiple entries",
             "MethodNotAllowed")
      single.options.multi = true
      -- every match goes, whatever the pagination
      assert.equal(5, #single:remove(null, { query = {} }))
      single.options.paginate = false
      assert.same({}, single:find())
    end)

    it("patch and remove drop $limit", function()
      local removed = svc:remove(null, { query = { ["$limit"] = 1 } })
      assert.equal(5, #removed)
    end)

    it("remove returns the removed record(s)", function()
      assert.equal("Bob", svc:remove(1).name)
      raises(function() svc:get(1) end, "No record found for id '1'", "NotFound")
      local removed = svc:remove(null, { query = { ["address.city"] = "Paris" } })
      assert.same({ 0, 2 }, ids(removed))
      assert.same({ 3, 4 }, ids(svc:find()))
      raises(function() svc:remove(0) end, "No record found for id '0'", "NotFound")
    end)

    it("applies $select to every result, keeping the id", function()
      local q = { query = { ["$select"] = json.array({ "name" }) } }
      assert.same({ name = "Alice", id = 0 }, svc:get(0, q))
      assert.same({ name = "Alice", id = 0 }, svc:patch(0, { x = 1 }, q))
      assert.same({ name = "Zed", id = 0 }, svc:update(0, { name = "Zed", y = 2 }, q))
      assert.same({ name = "Zed", id = 0 }, svc:remove(0, q))
      assert.same({ name = "New", id = 5 }, svc:create({ name = "New", z = 1 }, q))
    end)

    it("rejects data that is not a table", function()
      raises(function() svc:create("text") end, "Data must be an object")
    end)
  end)

  describe("query matching (§8.4)", function()
    local svc

    before_each(function()
      svc = people()
    end)

    local function find(query)
      return ids(svc:find({ query = query }))
    end

    it("matches equality with strict types", function()
      assert.same({ 0 }, find({ name = "Alice" }))
      assert.same({ 1 }, find({ age = 25 }))
      assert.same({}, find({ age = "25" }))
      assert.same({ 3 }, find({ age = "40" }))
      assert.same({ 4 }, find({ active = true }))
    end)

    it("matches array fields by element or as a whole", function()
      assert.same({ 0, 1 }, find({ tags = "dev" }))
      assert.same({ 0 }, find({ tags = json.array({ "admin", "dev" }) }))
      assert.same({ 2 }, find({ tags = json.array({}) }))
    end)

    it("matches null against null and missing fields", function()
      assert.same({ 2 }, find({ nick = { ["$ne"] = "x" }, name = "Carol" }))
      assert.same({ 0, 1, 2, 3, 4 }, find({ nick = null }))
      assert.same({ 0, 1, 2, 3 }, find({ active = null }))
    end)

    it("$in and $nin", function()
      assert.same({ 0, 1 }, find({ name = { ["$in"] = json.array({ "Alice", "Bob" }) } }))
      assert.same({ 0, 1, 4 }, find({ tags = { ["$in"] = json.array({ "dev", "ops" }) } }))
      assert.same({ 2, 3, 4 }, find({ name = { ["$nin"] = json.array({ "Alice", "Bob" }) } }))
      assert.same({ 2, 3, 4 }, find({ tags = { ["$nin"] = json.array({ "dev" }) } }))
      assert.same({}, find({ name = { ["$in"] = json.array({}) } }))
    end)

    it("$ne excludes arrays containing the value; missing counts as not equal", function()
      assert.same({ 2, 3, 4 }, find({ tags = { ["$ne"] = "dev" } }))
      assert.same({ 0, 1, 2, 3 }, find({ active = { ["$ne"] = true } }))
    end)

    it("$lt $lte $gt $gte compare values of the same kind only", function()
      assert.same({ 1, 4 }, find({ age = { ["$lt"] = 30 } }))
      assert.same({ 0, 1, 4 }, find({ age = { ["$lte"] = 30 } }))
      assert.same({ 2 }, find({ age = { ["$gt"] = 30 } }))
      assert.same({ 0, 2 }, find({ age = { ["$gte"] = 30 } }))
      assert.same({ 3 }, find({ age = { ["$gt"] = "1" } }))
      assert.same({}, find({ missing = { ["$lt"] = 100 } }))
      assert.same({ 2, 3, 4 }, find({ name = { ["$gte"] = "C" } }))
      assert.same({}, find({ age = { ["$lt"] = null } }))
    end)

    it("ANDs several operators and conditions", function()
      assert.same({ 4 }, find({ age = { ["$gt"] = 25, ["$lt"] = 30 } }))
      assert.same({ 0 }, find({ age = { ["$gte"] = 25 }, ["address.city"] = "Paris",
                                name = { ["$ne"] = "Carol" } }))
    end)

    it("$or and $and, nested", function()
      assert.same({ 0, 3 }, find({ ["$or"] = json.array({ { name = "Alice" },
                                                          { ["address.city"] = "Rome" } }) }))
      assert.same({ 1 }, find({ ["$and"] = json.array({ { tags = "dev" },
                                                        { age = { ["$lt"] = 30 } } }) }))
      assert.same({ 0, 4 }, find({ ["$or"] = json.array({
        { ["$or"] = json.array({ { name = "Alice" }, { name = "Eve" } }) },
        { name = "Nobody" },
      }) }))
      assert.same({ 1, 4 }, find({ age = { ["$or"] = json.array({ 25, { ["$gt"] = 27, ["$lt"] = 29 } }) } }))
    end)

    it("dotted keys address nested fields", function()
      assert.same({ 0, 2 }, find({ ["address.city"] = "Paris" }))
      assert.same({ 4 }, find({ ["address.city"] = null }))
      assert.same({ 0 }, find({ ["tags.0"] = "admin" }))
    end)

    it("matches deep-equal objects", function()
      assert.same({ 0, 2 }, find({ address = { city = "Paris" } }))
      assert.same({}, find({ address = { city = "Paris", zip = 1 } }))
    end)
  end)

  describe("sanitising (§8.2)", function()
    local svc

    before_each(function()
      svc = people()
    end)

    it("refuses unknown top-level filters", function()
      raises(function() svc:find({ query = { ["$foo"] = 1 } }) end, "Invalid filter value $foo")
      raises(function() svc:find({ query = { ["$where"] = "1" } }) end,
             "Invalid filter value $where")
      raises(function() svc:get(0, { query = { ["$regex"] = "a" } }) end,
             "Invalid filter value $regex")
    end)

    it("refuses unknown operators in conditions, with the object as data", function()
      local err = raises(function()
        svc:find({ query = { name = { ["$where"] = "x", ["$in"] = json.array({}) } } })
      end, "Invalid query parameter $where")
      assert.same({ ["$where"] = "x", ["$in"] = {} }, err.data)
      raises(function() svc:find({ query = { a = { b = { ["$regex"] = "x" } } } }) end,
             "Invalid query parameter $regex")
      raises(function() svc:find({ query = { a = json.array({ { ["$bad"] = 1 } }) } }) end,
             "Invalid query parameter $bad")
    end)

    it("validates $or and $and members", function()
      raises(function()
        svc:find({ query = { ["$or"] = json.array({ { ["$where"] = "x" } }) } })
      end, "Invalid query parameter $where")
      raises(function()
        svc:find({ query = { ["$and"] = json.array({ { a = { ["$exists"] = true } } }) } })
      end, "Invalid query parameter $exists")
    end)

    it("allows configured extra filters and operators", function()
      local custom = people({ filters = { ["$populate"] = true }, operators = { "$exists" } })
      assert.equal(5, #custom:find({ query = { ["$populate"] = "x" } }))
      assert.same({ 4 }, ids(custom:find({ query = { active = { ["$exists"] = true } } })))
    end)

    it("internal methods skip sanitising", function()
      assert.same({ 4 }, ids(svc:_find({ query = { active = { ["$exists"] = true } } })))
    end)

    it("turns $select items into strings", function()
      local filters = commons.filter_query({ ["$select"] = json.array({ 1, true, "a" }) })
      assert.same({ "1", "true", "a" }, filters["$select"])
    end)

    it("leaves injection-shaped keys as plain data", function()
      local created = svc:create({ ["__proto__"] = { admin = true }, constructor = "x" })
      assert.same({ admin = true }, svc:get(created.id)["__proto__"])
      assert.same({ created.id }, ids(svc:find({ query = { constructor = "x" } })))
    end)
  end)

  describe("sorting (§8.5)", function()
    it("sorts by one key, ascending or descending, stable for ties", function()
      local svc = people()
      assert.same({ 1, 4, 0, 2, 3 }, ids(svc:find({ query = { ["$sort"] = { age = 1 } } })))
      assert.same({ 3, 2, 0, 4, 1 }, ids(svc:find({ query = { ["$sort"] = { age = "-1" } } })))
      assert.same({ 4, 1, 0, 2, 3 },
                  ids(svc:find({ query = { ["$sort"] = { ["address.city"] = 1 } } })))
    end)

    it("orders kinds: missing < null < numbers < strings < booleans < arrays < objects", function()
      local svc = memory.new()
      local values = { json.array({ 1 }), { a = 1 }, true, "s", 5, null, false, json.array({}) }
      for i, v in ipairs(values) do
        svc:create({ id = i, v = v })
      end

      svc:create({ id = 99 })
      assert.same({ 99, 6, 5, 4, 7, 3, 8, 1, 2 },
                  ids(svc:find({ query = { ["$sort"] = { v = 1 } } })))
    end)

    it("compares arrays element-wise then by length, objects by sorted keys", function()
      assert.equal(-1, commons.compare(json.array({ 1, 2 }), json.array({ 1, 3 })))
      assert.equal(-1, commons.compare(json.array({ 1 }), json.array({ 1, 0 })))
      assert.equal(1, commons.compare({ a = 2 }, { a = 1, b = 0 }))
      assert.equal(-1, commons.compare({ a = 1 }, { a = 1, b = 0 }))
      assert.equal(0, commons.compare({ a = 1 }, { a = 1 }))
    end)

    it("sorts by several keys given as an ordered list", function()
      local svc = memory.new()
      for i, r in ipairs({ { a = 1, b = 1 }, { a = 2, b = 1 }, { a = 1, b = 2 } }) do
        r.id = i
        svc:create(r)
      end

      local sort = json.array({ { a = 1 }, { b = -1 } })
      assert.same({ 3, 1, 2 }, ids(svc:find({ query = { ["$sort"] = sort } })))
    end)

    it("refuses a sort direction that is not a number", function()
      raises(function() people():find({ query = { ["$sort"] = { a = "DROP" } } }) end,
             "Invalid $sort value for 'a'")
    end)
  end)

  describe("pagination (§8.3, §8.6)", function()
    it("returns plain lists without paginate, [] encoded as an array", function()
      local svc = memory.new()
      local result = svc:find()
      assert.equal("[]", helper.encode(result))
      svc:create({})
      assert.equal(0, #svc:find({ query = { ["$limit"] = 0 } }))
    end)

    it("applies $skip and $limit without pagination", function()
      local svc = people()
      assert.same({ 1, 2 }, ids(svc:find({ query = { ["$skip"] = 1, ["$limit"] = 2 } })))
      assert.same({ 2, 3, 4 }, ids(svc:find({ query = { ["$skip"] = "2" } })))
      assert.same({ 0, 1, 2, 3, 4 }, ids(svc:find({ query = { ["$limit"] = -1 } })))
      assert.same({ 0, 1, 2, 3, 4 }, ids(svc:find({ query = { ["$limit"] = "abc" } })))
      assert.same({ 0, 1, 2, 3, 4 }, ids(svc:find({ query = { ["$skip"] = -5 } })))
    end)

    it("returns pages with default and max limits", function()
      local svc = people({ paginate = { default = 2, max = 3 } })
      local page = svc:find()
      assert.equal(5, page.total)
      assert.equal(2, page.limit)
      assert.equal(0, page.skip)
      assert.same({ 0, 1 }, ids(page.data))

      page = svc:find({ query = { ["$limit"] = 1e9, ["$skip"] = 1 } })
      assert.equal(3, page.limit)
      assert.same({ 1, 2, 3 }, ids(page.data))

      for _, bad in ipairs({ -1, "abc", null }) do
        page = svc:find({ query = { ["$limit"] = bad } })
        assert.equal(2, page.limit)
      end

      page = svc:find({ query = { ["$limit"] = 0 } })
      assert.equal(0, page.limit)
      assert.same({}, page.data)
      assert.equal('{"data":[],"limit":0,"skip":0,"total":5}', helper.encode(page))

      page = svc:find({ query = { ["$skip"] = -5, age = { ["$lt"] = 30 } } })
      assert.equal(0, page.skip)
      assert.equal(2, page.total)
    end)

    it("filters before counting and sorts before paging", function()
      local svc = people({ paginate = { default = 10 } })
      local page = svc:find({ query = { ["$sort"] = { age = -1 }, ["$skip"] = 1, ["$limit"] = 2,
                                        tags = { ["$ne"] = "ops" } } })
      assert.equal(4, page.total)
      assert.same({ 2, 0 }, ids(page.data))
      assert.equal(1, page.skip)
    end)

    it("takes params.paginate and params.adapter per call", function()
      local svc = people({ paginate = { default = 2 } })
      assert.equal(5, #svc:find({ paginate = false }))
      assert.equal(1, #svc:find({ paginate = { default = 1 } }).data)
      assert.equal(5, #svc:find({ adapter = { paginate = false } }))
      local single = people()
      assert.equal(5, #single:remove(null, { adapter = { multi = true } }))
    end)

    it("applies $select on pages", function()
      local svc = people({ paginate = { default = 1 } })
      local page = svc:find({ query = { ["$select"] = json.array({ "age" }) } })
      assert.same({ { age = 30, id = 0 } }, page.data)
    end)
  end)

  describe("as a Feathers service", function()
    it("works behind app:use with hooks and events", function()
      local application = require "plume.application"
      local app = application.new()
      app:use("messages", memory.new({ paginate = { default = 10, max = 50 } }))
      local messages = app:service("messages")
      local seen = {}
      messages:on("created", function(d) seen[#seen + 1] = d.text end)
      messages:hooks({ before = { create = function(ctx) ctx.data.created_at = 1 end } })
      messages:create({ text = "hi" })
      local page = messages:find({ query = { ["$limit"] = "5" } })
      assert.equal(5, page.limit)
      assert.same({ { text = "hi", created_at = 1, id = 0 } }, page.data)
      assert.same({ "hi" }, seen)
    end)

    it("methods may be called from yielding tasks", function()
      local svc = memory.new()
      local created = helper.await(function()
        helper.sleep(1)
        return svc:create({ x = 1 })
      end)
      assert.same({ x = 1, id = 0 }, created)
    end)
  end)
end)
