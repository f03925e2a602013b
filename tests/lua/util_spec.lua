-- luacheck: std +busted
require "tests.lua.helper"
local json = require "plume.json"
local util = require "plume.util"


describe("plume.util", function()
  it("tells JSON arrays: marked, or unmarked sequences", function()
    assert.is_true(util.is_array(json.array({})))
    assert.is_true(util.is_array({ 1, 2 }))
    assert.is_false(util.is_array({}))
    assert.is_false(util.is_array({ 1, x = 2 }))
    assert.is_false(util.is_array(json.object({ 1 })))
    assert.is_false(util.is_array("x"))
  end)

  it("follows JavaScript truthiness", function()
    for _, v in ipairs({ false, 0, 0.0, "", json.null }) do
      assert.is_false(util.truthy(v))
    end

    assert.is_false(util.truthy(nil))
    assert.is_false(util.truthy(0 / 0))
    for _, v in ipairs({ true, 1, -1, "0", {}, "false" }) do
      assert.is_true(util.truthy(v))
    end
  end)

  it("prints numbers and values as JavaScript does", function()
    local cases = {
      { 1, "1" }, { -7, "-7" }, { 2.0, "2" }, { 1.5, "1.5" }, { 0.1, "0.1" },
      { 1e21, "1e+21" }, { 1e20, "100000000000000000000" }, { 1.5e-7, "1.5e-7" },
      { 0.000001, "0.000001" }, { -0.0, "0" }, { 123456789.125, "123456789.125" },
      { 1 / 3, "0.3333333333333333" },
    }
    for _, case in ipairs(cases) do
      assert.equal(case[2], util.number_to_string(case[1]))
    end

    assert.equal("NaN", util.number_to_string(0 / 0))
    assert.equal("-Infinity", util.number_to_string(-math.huge))
    assert.equal("undefined", util.to_string(nil))
    assert.equal("null", util.to_string(json.null))
    assert.equal("true", util.to_string(true))
    assert.equal("1,,b", util.to_string(json.array({ 1, json.null, "b" })))
    assert.equal("[object Object]", util.to_string({ a = 1 }))
  end)

  it("parses integers like parseInt(v, 10)", function()
    assert.equal(12, util.parse_int("12px"))
    assert.equal(-3, util.parse_int(" -3.9"))
    assert.equal(5, util.parse_int(5.7))
    assert.is_nil(util.parse_int(nil))
    for _, v in ipairs({ "abc", true, json.null, {} }) do
      local n = util.parse_int(v)
      assert.is_true(n ~= n)
    end
  end)

  it("normalises and splits paths", function()
    assert.equal("a/b", util.normalize_path("//a/b/"))
    assert.equal("/", util.normalize_path("///"))
    assert.equal("/", util.normalize_path(""))
    assert.same({ "a", "", "b" }, util.split_path("a//b"))
  end)

  it("deep-copies keeping marks and compares deeply", function()
    local v = json.object({ list = json.array({ 1, { x = json.null } }) })
    local copy = util.deep_copy(v)
    assert.not_equal(v.list, copy.list)
    assert.is_true(json.is_array(copy.list))
    assert.is_true(util.deep_equal(v, copy))
    assert.is_false(util.deep_equal(json.array({}), json.object({})))
    assert.is_true(util.deep_equal(nil, json.null))
    local cyclic = {}
    cyclic.self = cyclic
    assert.has_error(function() util.deep_copy(cyclic) end)
  end)

  it("orders keys as the encoder does when the codec keeps no order", function()
    assert.same({ 1, "2", 10, "a", "b" }, util.ordered_keys({ b = 1, a = 1, [10] = 1,
                                                              ["2"] = 1, [1] = 1 }))
  end)
end)
