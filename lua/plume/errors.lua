-- Feathers errors (spec/feathers.md §7): one class per HTTP status, raised with error(),
-- serialised for the wire with err:toJSON(); plus the normalisation of any other Lua error
-- value for hooks (a plain error object with `message` and `stack`) and for the wire (§3.6).
--
--   error(errors.NotFound("No record", { id = 1 }))
--   local ok, err = pcall(...); errors.is_error(err); err.code; err:toJSON()

local util = require "plume.util"


local type = type
local pairs = pairs
local ipairs = ipairs
local pcall = pcall
local rawget = rawget
local tostring = tostring
local setmetatable = setmetatable
local getmetatable = getmetatable
local traceback = debug.traceback
local is_array = util.is_array
local json_object = util.object


local _M = {}


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


-- Methods shared by every Feathers error instance.
local Base = {}
Base.__index = Base


-- The wire form: { name, message, code, className [, data] [, errors] }.
function Base:toJSON()
  local result = json_object({
    name = self.name,
    message = self.message,
    code = self.code,
    className = self.className,
  })

  if self.data ~= nil then
    result.data = self.data
  end

  if self.errors ~= nil then
    result.errors = self.errors
  end

  return result
end

Base.to_json = Base.toJSON


local function error_tostring(err)
  return tostring(rawget(err, "name")) .. ": " .. tostring(rawget(err, "message"))
end


-- Registry of instance metatables: mt -> class.
local is_class = {}


-- Fills name/code/className/message/data/errors of a new error (§7.2).
local function build(message, name, code, class_name, data)
  local msg = type(message) == "string" and message or "Error"
  local errs
  local props

  if type(data) == "table" and is_array(data) then
    props = data
  elseif type(message) == "table" or data ~= nil then
    local source = type(message) == "table" and message or data
    props = json_object({})

    if type(source) == "table" then
      for k, v in pairs(source) do
        if k == "message" then
          if type(v) == "string" and v ~= "" then
            msg = v
          elseif type(v) == "number" then
            msg = util.number_to_string(v)
          end
        elseif k == "errors" then
          errs = v
        else
          props[k] = v
        end
      end
    end
  end

  return {
    name = name,
    code = code,
    className = class_name,
    type = "FeathersError",
    message = msg,
    data = props,
    errors = errs,
  }
end


-- The base constructor: errors.FeathersError(message, name, code, className, data).
function _M.FeathersError(message, name, code, class_name, data)
  local err = build(message, name or "GeneralError", code or 500,
                    class_name or "general-error", data)
  local cls = _M[err.name]
  local mt = type(cls) == "table" and is_class[cls] and cls or Base

  return setmetatable(err, mt)
end


local CLASS_MT = {
  __call = function(cls, message, data)
    if data ~= nil and util.is_null(data) then
      data = nil
    end

    if message ~= nil and util.is_null(message) then
      message = nil
    end

    return setmetatable(build(message, cls.name, cls.code, cls.className, data), cls)
  end,
  __tostring = function(cls)
    return "plume.errors." .. cls.name
  end,
}


for _, def in ipairs(CLASSES) do
  local cls = setmetatable({
    name = def[1],
    code = def[2],
    className = def[3],
  }, CLASS_MT)

  cls.__index = Base
  cls.__tostring = error_tostring
  cls.__name = "plume.error"
  is_class[cls] = true
  _M[def[1]] = cls
  _M[def[2]] = cls
end


-- True when err is a Feathers error instance (or a table shaped like one).
function _M.is_error(err)
  if type(err) ~= "table" then
    return false
  end

  local mt = getmetatable(err)
  if is_class[mt] or mt == Base then
    return true
  end

  return rawget(err, "type") == "FeathersError" and type(rawget(err, "name")) == "string"
    and type(rawget(err, "code")) == "number"
end


-- A non-Feathers error, as JavaScript's plain Error: `message` and optional `stack`.
local Plain = {}
Plain.__index = Plain
Plain.__name = "plume.plain_error"
Plain.__tostring = function(err)
  return "Error: " .. tostring(rawget(err, "message"))
end


-- Removes the "file:line: " position Lua adds to error messages.
function _M.strip_position(msg)
  local rest = msg:match("^[^\n]-:%d+: (.*)$")
  if rest then
    return rest
  end

  return msg
end


local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then
    return s
  end

  return "Error"
end


function _M.is_plain(err)
  return type(err) == "table" and getmetatable(err) == Plain
end


-- Makes a plain error (JavaScript Error) from a message and an optional traceback.
function _M.plain(message, stack)
  return setmetatable({ message = message, stack = stack }, Plain)
end


-- Turns any error value into what hooks see in context.error: Feathers errors and plain
-- errors unchanged, a Feathers-shaped table into an instance of its class, a string into
-- a plain error without its position prefix, other tables into a plain error carrying
-- their scalar fields.
function _M.normalize(err)
  if type(err) == "table" then
    local mt = getmetatable(err)
    if is_class[mt] or mt == Base or mt == Plain then
      return err
    end

    if _M.is_error(err) then
      local cls = _M[err.name]
      if type(cls) == "table" and is_class[cls] then
        local converted = cls(err.message, err.data)
        converted.errors = err.errors
        return converted
      end

      local converted = _M.FeathersError(err.message, err.name, err.code, err.className,
                                         err.data)
      converted.errors = err.errors
      return converted
    end

    local plain = setmetatable({}, Plain)
    if mt == nil then
      for k, v in pairs(err) do
        local t = type(v)
        if type(k) == "string" and k ~= "hook"
            and (t == "string" or t == "number" or t == "boolean") then
          plain[k] = v
        end
      end
    end

    if type(plain.message) ~= "string" then
      plain.message = mt ~= nil and safe_tostring(err) or "Error"
    end

    return plain
  end

  if type(err) == "string" then
    return setmetatable({ message = _M.strip_position(err) }, Plain)
  end

  if err == nil then
    return setmetatable({ message = "error object is a nil value" }, Plain)
  end

  return setmetatable({ message = safe_tostring(err) }, Plain)
end


-- Message handler for xpcall: normalises the error and records the traceback of plain
-- errors (for the log, and for the wire outside production).
function _M.handler(err)
  local normalized = _M.normalize(err)
  if getmetatable(normalized) == Plain and normalized.stack == nil then
    local text = type(err) == "string" and err or normalized.message
    normalized.stack = traceback(text, 2)
  end

  return normalized
end


-- Converts any error value into a Feathers error; non-Feathers errors become GeneralError
-- and their traceback goes to log(level, msg) when given.
function _M.convert(err, log)
  local normalized = _M.normalize(err)
  if getmetatable(normalized) ~= Plain then
    return normalized
  end

  if log then
    log("error", normalized.stack or normalized.message)
  end

  return _M.GeneralError(normalized.message)
end


-- The JSON sent in an error acknowledgement (§3.6): toJSON() of a Feathers error, else the
-- plain error's fields (`stack` only outside production), never a `hook` field.
function _M.to_wire(err, production)
  local normalized = _M.normalize(err)
  if getmetatable(normalized) ~= Plain then
    local result = normalized:toJSON()
    result.hook = nil
    return result
  end

  local result = json_object({})
  for k, v in pairs(normalized) do
    result[k] = v
  end

  result.hook = nil
  if production then
    result.stack = nil
  end

  return result
end


return _M
