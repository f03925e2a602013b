-- Small helpers shared by the Feathers model (application, hooks, transport, adapters):
-- JSON-shaped value tests (null, array, object), JavaScript truthiness, copies, path
-- normalisation and number formatting the way JavaScript prints numbers.
-- Values follow plume.json: JSON null is json.null, arrays/objects carry its marks.

local json = require "plume.json"


local type = type
local pairs = pairs
local rawequal = rawequal
local getmetatable = getmetatable
local setmetatable = setmetatable
local tostring = tostring
local tonumber = tonumber
local error = error
local math_type = math.type
local math_floor = math.floor
local math_huge = math.huge
local string_format = string.format
local string_rep = string.rep
local string_sub = string.sub
local string_find = string.find
local json_null = json.null
local json_is_array = json.is_array
local json_array = json.array
local json_object = json.object


local _M = {}


_M.null = json_null
_M.MAX_DEPTH = 128


-- True for Lua nil and JSON null: both are JavaScript's `null`/`undefined`.
function _M.is_null(v)
  return v == nil or rawequal(v, json_null)
end


-- True when t is a JSON array: marked by plume.json, or an unmarked sequence 1..n (n > 0),
-- the rule the encoder applies.
function _M.is_array(t)
  if type(t) ~= "table" then
    return false
  end

  if json_is_array(t) then
    return true
  end

  if getmetatable(t) ~= nil then
    return false
  end

  local n = #t
  if n == 0 then
    return false
  end

  local count = 0
  for _ in pairs(t) do
    count = count + 1
    if count > n then
      return false
    end
  end

  return count == n
end


-- JavaScript truthiness: nil, null, false, 0, NaN and "" are falsy.
function _M.truthy(v)
  if v == nil or v == false or v == 0 or v == "" or rawequal(v, json_null) then
    return false
  end

  if v ~= v then
    return false
  end

  return true
end


function _M.array(t)
  return json_array(t or {})
end


function _M.object(t)
  return json_object(t or {})
end


local function deep_copy(v, depth)
  if type(v) ~= "table" then
    return v
  end

  if depth > _M.MAX_DEPTH then
    error("value is nested too deeply (or cyclic)", 0)
  end

  local copy = {}
  for k, item in pairs(v) do
    copy[k] = deep_copy(item, depth + 1)
  end

  return setmetatable(copy, getmetatable(v))
end


-- Deep copy of a JSON-shaped value (what a JSON round trip gives), marks kept.
function _M.deep_copy(v)
  return deep_copy(v, 0)
end


local deep_equal

local function table_equal(a, b)
  local a_array = _M.is_array(a)
  if a_array ~= _M.is_array(b) then
    return false
  end

  local count = 0
  for k, v in pairs(a) do
    count = count + 1
    if not deep_equal(v, b[k]) then
      return false
    end
  end

  for _ in pairs(b) do
    count = count - 1
  end

  return count == 0
end


-- Deep equality of JSON-shaped values; nil and null are equal.
deep_equal = function(a, b)
  if rawequal(a, b) or a == b then
    return true
  end

  if _M.is_null(a) then
    return _M.is_null(b)
  end

  if type(a) ~= "table" or type(b) ~= "table" then
    return false
  end

  return table_equal(a, b)
end

_M.deep_equal = deep_equal


-- Strips leading and trailing slashes; the empty path becomes "/".
function _M.normalize_path(path)
  local first = 1
  local last = #path
  while first <= last and string_sub(path, first, first) == "/" do
    first = first + 1
  end

  while last >= first and string_sub(path, last, last) == "/" do
    last = last - 1
  end

  if first > last then
    return "/"
  end

  return string_sub(path, first, last)
end


-- Splits path on "/", keeping empty segments (like JavaScript's split).
function _M.split_path(path)
  local segments = {}
  local n = 0
  local start = 1
  while true do
    local pos = string_find(path, "/", start, true)
    n = n + 1
    if not pos then
      segments[n] = string_sub(path, start)
      return segments, n
    end

    segments[n] = string_sub(path, start, pos - 1)
    start = pos + 1
  end
end


local function js_float(x)
  local s
  for precision = 1, 17 do
    s = string_format("%." .. precision .. "e", x)
    if tonumber(s) == x then
      break
    end
  end

  local sign, int, frac, exp = s:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (int .. frac):gsub("0+$", "")
  if digits == "" then
    digits = "0"
  end

  local e = tonumber(exp)
  local n = #digits
  if e >= 21 or e <= -7 then
    local mantissa = string_sub(digits, 1, 1)
    if n > 1 then
      mantissa = mantissa .. "." .. string_sub(digits, 2)
    end

    return sign .. mantissa .. "e" .. (e > 0 and "+" or "-") .. (e < 0 and -e or e)
  end

  if e < 0 then
    return sign .. "0." .. string_rep("0", -e - 1) .. digits
  end

  if n <= e + 1 then
    return sign .. digits .. string_rep("0", e + 1 - n)
  end

  return sign .. string_sub(digits, 1, e + 1) .. "." .. string_sub(digits, e + 2)
end


-- Formats a number as JavaScript's String(n) does.
function _M.number_to_string(x)
  if math_type(x) == "integer" then
    return tostring(x)
  end

  if x ~= x then
    return "NaN"
  end

  if x == math_huge then
    return "Infinity"
  end

  if x == -math_huge then
    return "-Infinity"
  end

  if x == 0 then
    return "0"
  end

  if x == math_floor(x) and x > -1e21 and x < 1e21 then
    return string_format("%.0f", x)
  end

  return js_float(x)
end


-- Formats any value as a JavaScript template string would (`${v}`).
function _M.to_string(v)
  local t = type(v)
  if t == "string" then
    return v
  end

  if t == "number" then
    return _M.number_to_string(v)
  end

  if v == nil then
    return "undefined"
  end

  if rawequal(v, json_null) then
    return "null"
  end

  if t == "boolean" then
    return v and "true" or "false"
  end

  if t == "table" and _M.is_array(v) then
    local parts = {}
    for i = 1, #v do
      local item = v[i]
      parts[i] = _M.is_null(item) and "" or _M.to_string(item)
    end

    return table.concat(parts, ",")
  end

  return "[object Object]"
end


-- JavaScript parseInt(value, 10): nil stays nil; anything unparsable gives NaN (0/0).
function _M.parse_int(v)
  if v == nil then
    return nil
  end

  local t = type(v)
  if t == "number" then
    if v ~= v or v == math_huge or v == -math_huge then
      return 0 / 0
    end

    if math_type(v) == "integer" then
      return v
    end

    v = _M.number_to_string(v)
  elseif t ~= "string" then
    if t == "table" and _M.is_array(v) then
      v = _M.to_string(v)
    else
      return 0 / 0
    end
  end

  local digits = v:match("^%s*([-+]?%d+)")
  if not digits then
    return 0 / 0
  end

  return tonumber(digits)
end


local function index_key(k)
  if math_type(k) == "integer" then
    return k >= 0 and k < 4294967295 and k or nil
  end

  if type(k) == "string" and (k == "0" or k:match("^[1-9]%d*$")) and #k <= 10 then
    local n = tonumber(k)
    return n < 4294967295 and n or nil
  end
end

_M.index_key = index_key


local function key_less(a, b)
  local ia, ib = index_key(a), index_key(b)
  if ia or ib then
    if not ia then
      return false
    end

    if not ib then
      return true
    end

    if ia ~= ib then
      return ia < ib
    end

    return type(a) == "number" and type(b) ~= "number"
  end

  local sa, sb = tostring(a), tostring(b)
  if sa ~= sb then
    return sa < sb
  end

  return type(a) < type(b)
end


-- Keys of t in JavaScript's listing order where known (plume.json.keys, when the codec
-- records it), otherwise the encoder's order: array-index keys ascending, then the rest
-- by bytes.
function _M.ordered_keys(t)
  if json.keys then
    return json.keys(t)
  end

  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end

  table.sort(keys, key_less)
  return keys
end


-- True when the array list holds value.
function _M.contains(list, value)
  for i = 1, #list do
    if list[i] == value then
      return true
    end
  end

  return false
end


-- Logs "what: <the error's stack, or its message>" at level "error" through app.log,
-- when the app has one.
function _M.log_failure(app, what, err)
  local log = app.log
  if log then
    log("error", what .. ": " .. tostring(type(err) == "table"
                                           and (err.stack or err.message) or err))
  end
end


return _M
