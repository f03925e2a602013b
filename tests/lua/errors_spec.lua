-- luacheck: std +busted
local helper = require "tests.lua.helper"
local errors = require "plume.errors"
local json = require "plume.json"


local CLASSES = {
  { "BadRequest", 400, "bad-request" },
  { "NotAuthenticated", 401, "not-authenticated" },
  { "PaymentError", 402, "payment-error" },
  { "Forbidden", 403, "forbidden" },
  { "NotFound", 404, "not-found" },
  { "MethodNotAllowed", 405, "method-not-allowed" },
  { "NotAcceptable", 406, "not-acceptable" },
  { "Timeout", 408, "timeout" },
  { "Conflict", 409, "conflict" },
  { "Gone", 410, "gone" },
  { "LengthRequired", 411, "length-required" },
  { "Unprocessable", 422, "unprocessable" },
  { "TooManyRequests", 429, "too-many-requests" },
  { "GeneralError", 500, "general-error" },
  { "NotImplemented", 501, "not-implemented" },
  { "BadGateway", 502, "bad-gateway" },
  { "Unavailable", 503, "unavailable" },
}


describe("plume.errors", function()
  describe("classes", function()
    for _, def in ipairs(CLASSES) do
      local name, code, class_name = def[1], def[2], def[3]

      it(name .. " has code " .. code .. " and className " .. class_name, function()
        local err = errors[name]("boom")
        assert.equal(name, err.name)
        assert.equal(code, err.code)
        assert.equal(class_name, err.className)
        assert.equal("boom", err.message)
        assert.equal("FeathersError", err.type)
        assert.is_nil(err.data)
        assert.is_nil(err.errors)
        assert.is_true(errors.is_error(err))
        assert.equal(errors[name], errors[code])
        assert.equal(name .. ": boom", tostring(err))
        assert.same({ name = name, message = "boom", code = code, className = class_name },
                    err:toJSON())
      end)
    end
  end)

  describe("constructor (§7.2)", function()
    it("defaults the message to 'Error'", function()
      assert.equal("Error", errors.NotFound().message)
      assert.equal("Error", errors.NotFound(nil, nil).message)
      assert.equal("Error", errors.NotFound(json.null).message)
    end)

    it("keeps an array data as is, ignoring an object message", function()
      local err = errors.NotFound({ message = "m" }, json.array({ 9 }))
      assert.equal("Error", err.message)
      assert.same({ 9 }, err.data)
      assert.is_nil(err.errors)
      assert.equal('{"className":"not-found","code":404,"data":[9],"message":"Error",'
                   .. '"name":"NotFound"}', helper.encode(err:toJSON()))
    end)

    it("takes message, errors and data from an object message", function()
      local err = errors.BadRequest({ message = "From object", errors = { email = "taken" },
                                      field = "email" }, { ignored = true })
      assert.equal("From object", err.message)
      assert.same({ email = "taken" }, err.errors)
      assert.same({ field = "email" }, err.data)
    end)

    it("an object message without message keeps 'Error'", function()
      local err = errors.BadRequest({ field = "x" })
      assert.equal("Error", err.message)
      assert.same({ field = "x" }, err.data)
    end)

    it("data replaces the message when it has a non-empty one", function()
      local err = errors.Conflict("Thrown", { message = "From data", id = 3 })
      assert.equal("From data", err.message)
      assert.same({ id = 3 }, err.data)

      err = errors.Conflict("Thrown", { message = "", id = 3 })
      assert.equal("Thrown", err.message)
    end)

    it("an empty data table still gives data {}", function()
      local err = errors.BadRequest("x", {})
      assert.same({}, err.data)
      assert.equal('{"className":"bad-request","code":400,"data":{},"message":"x",'
                   .. '"name":"BadRequest"}', helper.encode(err:toJSON()))
    end)

    it("serialises data and errors as observed on Feathers", function()
      local err = errors.BadRequest("Thrown BadRequest",
                                    { field = "email", errors = { email = "taken" } })
      assert.equal('{"className":"bad-request","code":400,"data":{"field":"email"},'
                   .. '"errors":{"email":"taken"},"message":"Thrown BadRequest",'
                   .. '"name":"BadRequest"}', helper.encode(err:toJSON()))

      err = errors.Unprocessable("Thrown Unprocessable", json.array({ 1, "two" }))
      assert.equal('{"className":"unprocessable","code":422,"data":[1,"two"],'
                   .. '"message":"Thrown Unprocessable","name":"Unprocessable"}',
                   helper.encode(err:toJSON()))
    end)

    it("has a base constructor", function()
      local err = errors.FeathersError("m", "NotFound", 404, "not-found")
      assert.equal(404, err.code)
      assert.is_true(errors.is_error(err))
      assert.equal(getmetatable(errors.NotFound("x")), getmetatable(err))
    end)

    it("is raised and caught with error()/pcall", function()
      local ok, err = pcall(function()
        error(errors.Forbidden("nope"))
      end)
      assert.is_false(ok)
      assert.equal("Forbidden", err.name)
    end)
  end)

  describe("normalize / convert / to_wire", function()
    it("strips the position from Lua error strings", function()
      local _, raw = pcall(error, "broken thing")
      local ok, err = pcall(function()
        error("broken thing")
      end)
      assert.is_false(ok)
      assert.matches("^.-:%d+: broken thing$", err)
      local plain = errors.normalize(err)
      assert.is_true(errors.is_plain(plain))
      assert.equal("broken thing", plain.message)
      assert.equal("broken thing", errors.normalize(raw).message)
      assert.equal("Error: broken thing", tostring(plain))
    end)

    it("turns any value into an error", function()
      assert.equal("error object is a nil value", errors.normalize(nil).message)
      assert.equal("42", errors.normalize(42).message)
      local plain = errors.normalize({ code = 404, hook = "x", fn = print })
      assert.equal(404, plain.code)
      assert.is_nil(plain.hook)
      assert.is_nil(plain.fn)
      assert.equal("Error", plain.message)
    end)

    it("survives a __tostring that throws", function()
      local weird = setmetatable({}, { __tostring = function() error("no") end })
      assert.equal("Error", errors.normalize(weird).message)
    end)

    it("converts Feathers-shaped tables into their class", function()
      local err = errors.normalize({ type = "FeathersError", name = "NotFound", code = 404,
                                     message = "gone", data = { a = 1 } })
      assert.equal(errors.NotFound, getmetatable(err))
      assert.equal("gone", err.message)
      assert.same({ a = 1 }, err.data)
    end)

    it("convert gives GeneralError for non-Feathers errors and logs the stack", function()
      local logged = {}
      local _, err = xpcall(function()
        error("kaput")
      end, errors.handler)
      local converted = errors.convert(err, function(level, msg)
        logged[#logged + 1] = { level, msg }
      end)
      assert.equal("GeneralError", converted.name)
      assert.equal(500, converted.code)
      assert.equal("kaput", converted.message)
      assert.equal("error", logged[1][1])
      assert.matches("stack traceback", logged[1][2])

      local nf = errors.NotFound("x")
      assert.equal(nf, errors.convert(nf))
    end)

    it("to_wire sends Feathers errors as toJSON and plain ones as { message }", function()
      assert.same({ name = "NotFound", message = "x", code = 404, className = "not-found" },
                  errors.to_wire(errors.NotFound("x")))

      local _, err = xpcall(function()
        error("Something went wrong")
      end, errors.handler)
      local dev = errors.to_wire(err, false)
      assert.equal("Something went wrong", dev.message)
      assert.matches("stack traceback", dev.stack)
      assert.is_nil(dev.name)
      assert.is_nil(dev.code)
      assert.is_nil(dev.className)

      local prod = errors.to_wire(err, true)
      assert.same({ message = "Something went wrong" }, prod)
      assert.equal('{"message":"Something went wrong"}', helper.encode(prod))
    end)
  end)
end)
