-- plume.json: the JSON codec of Plume, the same one the C core uses on the wire
-- (runtime/json.c, reached through plume.core.json).
--
-- Arrays and objects carry a mark (array_mt / object_mt), so [] and {} survive a round
-- trip; JSON null is json.null (a light userdata); an unmarked table encodes as an array
-- when its keys are exactly 1..n (n > 0), as an object when they are all strings (so {} is
-- {}), and is refused otherwise. Binary values (json.binary) travel as Socket.IO
-- attachments: encode_placeholders replaces them by {"_placeholder":true,"num":k} and
-- decode(text, attachments) puts them back.
--
-- Key order: decode records the key order of every object with two keys or more (out of
-- sight: pairs() sees the members only), and encode writes keys as JavaScript lists them:
-- array-index keys ("0", "17") first, by value, then the recorded keys the object still
-- has, in wire order, then any others sorted by bytes. So {"b":1,"a":2} comes back as
-- {"b":1,"a":2}, and a key set in Lua comes after the recorded ones.

local core = require "plume.core"


local type = type
local error = error
local getmetatable = getmetatable
local setmetatable = setmetatable

local c = core.json
if type(c) ~= "table" then
  error("plume.core has no json codec (plume__json_open was not called)")
end

local array_mt = c.array_mt
local object_mt = c.object_mt


local _M = {
  null = c.null,              -- JSON null (a light userdata, equal to cjson.null)
  array_mt = array_mt,
  object_mt = object_mt,

  -- encode(v) -> text; raises "result is not serializable: <what> at <path>" or
  -- "number is not serializable: NaN" (also for binaries, which need a packet).
  encode = c.encode,

  -- encode_placeholders(v) -> text, attachments: binaries become placeholders, numbered
  -- depth first; attachments is an array of the binaries in that order.
  encode_placeholders = c.encode_placeholders,

  -- decode(text [, attachments]) -> value | nil, err. attachments (binaries or strings)
  -- replace the placeholders; without them placeholders stay plain objects.
  decode = c.decode,

  -- binary(s) -> a binary value holding the bytes of s (#b, tostring(b), b:sub(i, j)).
  binary = c.binary,
  is_binary = c.is_binary,

  -- keys(t) -> a list of the keys of t in the order encode writes them (for $sort
  -- precedence and anything else that must follow the order a client sent); keys JSON
  -- cannot write (booleans, tables) come last.
  keys = c.keys,

  -- object_with_order(t, keys) -> t, marked as an object whose members encode in the order
  -- of the list keys (copied), then the others sorted: keeps a client's order through a
  -- copy (object_with_order(copy, keys(original))) or sets one ({total, limit, skip, data}).
  object_with_order = c.object_with_order,
}


-- Marks t (a new table when nil) as a JSON array and returns it.
function _M.array(t)
  return setmetatable(t or {}, array_mt)
end


-- Marks t (a new table when nil) as a JSON object and returns it.
function _M.object(t)
  return setmetatable(t or {}, object_mt)
end


-- True when t carries the array mark (decoded arrays and json.array tables).
function _M.is_array(t)
  return type(t) == "table" and getmetatable(t) == array_mt
end


-- True when t carries the object mark (decoded objects and json.object tables).
function _M.is_object(t)
  return type(t) == "table" and getmetatable(t) == object_mt
end


-- True for JSON null.
function _M.is_null(v)
  return v == c.null
end


return _M
