-- luacheck: std +busted
-- plume.json against the real codec in plume.core (runtime/json.c): round trips byte for
-- byte (protocol.md §3.3), key order, the marks, numbers and strings as JavaScript writes
-- them, refusals (reliability.md §4.4 #30, §4.6 #41), binaries, and decode cross-checked
-- with lua-cjson on valid inputs.

local core_ok, core = pcall(require, "plume.core")
local has_codec = core_ok and type(core) == "table" and type(core.json) == "table"


describe("plume.json", function()
  it("is backed by plume.core.json", function()
    assert.is_true(core_ok, "plume.core does not load: " .. tostring(core))
    assert.is_table(core.json, "plume.core has no json field")
  end)

  if not has_codec then
    return
  end

  package.loaded["plume.json"] = nil -- never a stand-in from another spec
  local json = require "plume.json"


  describe("round trips", function()
    local same = {
      '["message",1,"2",{"3":[true]}]',
      '["message-back",1,"2",{"3":[false]}]',
      '["auth",{}]',
      '["auth",{"token":"123"}]',
      "{}",
      "[]",
      '[{},[],{"a":[]},[[{}]]]',
      "[null,true,false]",
      "9007199254740993",
      "-9223372036854775808",
      "0.1",
      "5e-324",
      '"\\ud800"',
      '"\\u0000\\u001f\\"\\\\"',
      '{"_placeholder":true,"num":0}',
      '{"b":1,"a":2}',
      '{"c":{"z":1,"y":[{"x":1,"w":2}]},"b":[],"a":{}}',
      '["message",{"b":1,"a":2},[{"d":true,"c":null}]]',
    }
    for _, text in ipairs(same) do
      it(text, function()
        assert.are.equal(text, json.encode(json.decode(text)))
      end)
    end

    local changed = {
      { "-0", "0" },
      { "1.0", "1" },
      { "1e21", "1e+21" },
      { "1E-7", "1e-7" },
      { "12345678901234567890", "12345678901234567000" },
      { " [ 1 , {\"b\":1, \"a\":2} ] ", '[1,{"b":1,"a":2}]' },
      { '{"b":3,"10":1,"9":2,"a":3}', '{"9":2,"10":1,"b":3,"a":3}' },
      { '{"a":1,"a":2}', '{"a":2}' },
      { '{"b":1,"a":2,"b":3}', '{"b":3,"a":2}' },
      { '"\\u00e9\\/\\ud83d\\ude00"', '"\xc3\xa9/\xf0\x9f\x98\x80"' },
    }
    for _, case in ipairs(changed) do
      it(case[1] .. " -> " .. case[2], function()
        assert.are.equal(case[2], json.encode(json.decode(case[1])))
      end)
    end
  end)


  describe("key order", function()
    local function keys(t)
      return table.concat(json.keys(t), ",")
    end

    it("is recorded on decode and listed by json.keys", function()
      assert.are.equal("b,a,c", keys(json.decode('{"b":1,"a":2,"c":3}')))
      assert.are.equal("1,b,a", keys(json.decode('{"b":1,"a":2,"1":3}')))
      assert.are.equal("x", keys(json.decode('{"x":1}')))
      assert.are.equal("", keys(json.decode("{}")))
      assert.are.equal("1,10,a,b", keys({ b = 1, a = 2, [10] = 3, [1] = 4 }))
    end)

    it("leaves pairs() unchanged", function()
      local v = json.decode('{"b":1,"a":2,"c":{"e":1,"d":2}}')
      local seen = {}
      for k, x in pairs(v) do
        seen[#seen + 1] = k
        assert.is_string(k)
        assert.is_not_nil(x)
      end
      table.sort(seen)
      assert.are.same({ "a", "b", "c" }, seen)
      assert.are.equal(json.object_mt, getmetatable(v))
      assert.is_nil(next(json.decode("{}")))
    end)

    it("follows changes made in Lua", function()
      local v = json.decode('{"c":1,"b":{"y":1,"x":2},"a":3}')
      v.b.y = nil
      v.c = "C"
      v.e = 5
      v.d = 4
      assert.are.equal('{"c":"C","b":{"x":2},"a":3,"d":4,"e":5}', json.encode(v))
      assert.are.equal("c,b,a,d,e", keys(v))
      v.a, v.b, v.c = nil, nil, nil
      assert.are.equal('{"d":4,"e":5}', json.encode(v))
    end)

    it("survives encode -> decode -> encode", function()
      local text = '[{"z":1,"y":{"x":[{"w":1,"v":2}],"u":null},"t":[]},"s",{"r":{},"q":[]}]'
      local once = json.encode(json.decode(text))
      assert.are.equal(text, once)
      assert.are.equal(once, json.encode(json.decode(once)))
    end)

    it("can be set with object_with_order", function()
      local page = json.object_with_order({ data = json.array(), skip = 0, limit = 10,
        total = 0 }, { "total", "limit", "skip", "data" })
      assert.is_true(json.is_object(page))
      assert.are.equal('{"total":0,"limit":10,"skip":0,"data":[]}', json.encode(page))
      local original = json.decode('{"text":"hi","user":"u1","id":0}')
      local copy = {}
      for k, x in pairs(original) do
        copy[k] = x
      end
      json.object_with_order(copy, json.keys(original))
      assert.are.equal('{"text":"hi","user":"u1","id":0}', json.encode(copy))
      assert.has_error(function() json.object_with_order({}, { {} }) end)
    end)

    it("gives $sort its precedence (util.ordered_keys)", function()
      package.loaded["plume.util"] = nil
      local util = require "plume.util"
      local sort = json.decode('{"b":1,"a":-1}')
      assert.are.same({ "b", "a" }, util.ordered_keys(sort))
    end)
  end)


  describe("marks", function()
    it("decodes [] and {} to marked tables", function()
      assert.is_true(json.is_array(json.decode("[]")))
      assert.is_true(json.is_object(json.decode("{}")))
      assert.is_false(json.is_array(json.decode("{}")))
      assert.is_false(json.is_array({ 1, 2 }))
    end)

    it("encodes marked and unmarked tables", function()
      assert.are.equal("[]", json.encode(json.array()))
      assert.are.equal("{}", json.encode(json.object()))
      assert.are.equal("{}", json.encode({}))
      assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.are.equal('{"a":1}', json.encode({ a = 1 }))
      assert.are.equal("[1,null,3]", json.encode(json.array({ 1, json.null, 3 })))
      assert.are.equal('{"1":"x"}', json.encode(json.object({ "x" })))
    end)

    it("returns the table it marks", function()
      local t = {}
      assert.are.equal(t, json.array(t))
      assert.are.equal(t, json.object(t))
    end)

    it("has null", function()
      assert.are.equal("userdata", type(json.null))
      assert.is_true(json.is_null(json.decode("null")))
      assert.are.equal(json.null, json.decode("[null]")[1])
      assert.are.equal("null", json.encode(json.null))
      assert.are.equal("null", json.encode(nil))
    end)
  end)


  describe("numbers", function()
    it("keeps integers and floats apart", function()
      assert.are.equal("integer", math.type(json.decode("42")))
      assert.are.equal("float", math.type(json.decode("42.0")))
      assert.are.equal("float", math.type(json.decode("4e1")))
      assert.are.equal("float", math.type(json.decode("9223372036854775808")))
      assert.are.equal(9007199254740993, json.decode("9007199254740993"))
    end)

    it("prints floats as JavaScript does", function()
      assert.are.equal("1", json.encode(1.0))
      assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
      assert.are.equal("1e+21", json.encode(1e21))
      assert.are.equal("100000000000000000000", json.encode(1e20))
      assert.are.equal("1.5e-7", json.encode(1.5e-7))
      assert.are.equal("0.000001", json.encode(1e-6))
      assert.are.equal("9223372036854776000", json.encode(2.0 ^ 63))
    end)

    it("refuses NaN and infinities", function()
      assert.has_error(function() json.encode(0 / 0) end,
        "number is not serializable: NaN")
      assert.has_error(function() json.encode({ x = math.huge }) end,
        "number is not serializable: Infinity at .x")
    end)

    it("refuses numbers a double cannot hold", function()
      local v, err = json.decode("[1e400]")
      assert.is_nil(v)
      assert.are.equal("invalid JSON: number out of range at byte 2", err)
      assert.are.equal(0, json.decode("1e-400"))
    end)
  end)


  describe("strings", function()
    it("escapes as JSON.stringify", function()
      assert.are.equal('"a\\"b\\\\c/\\n\\u0001\x7f"', json.encode('a"b\\c/\n\1\127'))
      assert.are.equal('"\u{2028}"', json.encode("\u{2028}"))
    end)

    it("replaces invalid UTF-8 with U+FFFD", function()
      assert.are.equal('"a\u{FFFD}b"', json.encode("a\255b"))
    end)
  end)


  describe("refusals", function()
    local bad = {
      { "a function", { print }, "result is not serializable: function at [1]" },
      { "a sparse array", { [1] = 1, [1000] = 2 },
        "result is not serializable: sparse array" },
      { "mixed keys", { 1, x = 2 },
        "result is not serializable: mixed array and object keys" },
      { "a coroutine", { a = { coroutine.create(print) } },
        "result is not serializable: thread at .a[1]" },
    }
    for _, case in ipairs(bad) do
      it(case[1], function()
        assert.has_error(function() json.encode(case[2]) end, case[3])
      end)
    end

    it("a cycle", function()
      local t = {}
      t.self = t
      local ok, err = pcall(json.encode, t)
      assert.is_false(ok)
      assert.truthy(err:find("^result is not serializable: cycle at"))
    end)

    local invalid = {
      "", "[1,]", "{\"a\":1,}", "NaN", "Infinity", "-Infinity", "0x10", "01", "[1] x",
      "\"\\x\"", "'a'", "\"\1\"", "\"\255\"", string.rep("[", 129),
      string.rep('{"a":', 200000) .. "1" .. string.rep("}", 200000),
    }
    for i, text in ipairs(invalid) do
      it("invalid input " .. i, function()
        local v, err = json.decode(text)
        assert.is_nil(v)
        assert.truthy(err:find("^invalid JSON: "))
      end)
    end
  end)


  describe("binaries", function()
    it("behave like bytes", function()
      local b = json.binary("\1\2\3")
      assert.is_true(json.is_binary(b))
      assert.is_false(json.is_binary("\1\2\3"))
      assert.are.equal(3, #b)
      assert.are.equal("\1\2\3", tostring(b))
      assert.are.equal("\2\3", b:sub(2):tostring())
      assert.are.equal(json.binary("\1\2\3"), b)
    end)

    it("travel as placeholders", function()
      local text, atts = json.encode_placeholders({ "x", json.binary("a"),
        { k = json.binary("b") } })
      assert.are.equal('["x",{"_placeholder":true,"num":0},{"k":'
        .. '{"_placeholder":true,"num":1}}]', text)
      assert.are.equal(2, #atts)
      assert.are.equal("b", tostring(atts[2]))
      local v = json.decode(text, atts)
      assert.are.equal(atts[1], v[2])
      assert.are.equal("b", tostring(v[3].k))
    end)

    it("check placeholder numbers", function()
      local v, err = json.decode('[{"_placeholder":true,"num":1}]', { "a" })
      assert.is_nil(v)
      assert.truthy(err:find("illegal attachments"))
      assert.has_error(function() json.encode(json.binary("x")) end,
        "result is not serializable: binary value outside a packet")
    end)
  end)


  describe("agrees with lua-cjson", function()
    local has_cjson, cjson = pcall(require, "cjson")

    local function same(a, b)
      if type(a) == "table" and type(b) == "table" then
        for k, v in pairs(a) do
          if not same(v, b[k]) then
            return false
          end
        end
        for k in pairs(b) do
          if a[k] == nil then
            return false
          end
        end
        return true
      end
      return a == b
    end

    local valid = {
      '["message",1,"2",{"3":[true]}]', '{"a":{"b":[1,2.5,-3e2,null]},"c":""}',
      '"\\u00e9\\n\\t\\"x\\""', "[]", "{}", "0", "-0.5", "1e10", "true", "null",
      '[[[[[["deep"]]]]]]', '{"":1,"k":"\xf0\x9f\x98\x80"}', '[1.7976931348623157e308]',
    }
    for _, text in ipairs(valid) do
      it(text, function()
        if not has_cjson then
          pending("lua-cjson is not installed")
          return
        end
        assert.is_true(same(json.decode(text), cjson.decode(text)))
      end)
    end
  end)
end)
