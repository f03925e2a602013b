-- What every database adapter shares (spec/feathers.md §8.1-§8.5, Feathers'
-- adapter-commons): per-call options, the multi rule, query sanitising with its exact
-- errors, $limit and pagination, Mongo-style matching (what `sift` does for Feathers'
-- memory adapter), the sort order of values, and $select.

local errors = require "plume.errors"
local json = require "plume.json"
local util = require "plume.util"


local type = type
local next = next
local pairs = pairs
local ipairs = ipairs
local tostring = tostring
local error = error
local rawequal = rawequal
local tonumber = tonumber
local math_min = math.min
local math_huge = math.huge
local string_sub = string.sub
local string_find = string.find
local table_sort = table.sort
local is_array = util.is_array
local is_null = util.is_null
local truthy = util.truthy
local deep_equal = util.deep_equal
local parse_int = util.parse_int
local json_null = util.null


-- object_with_order(t, keys) marks t as an object listing its keys in that order (a codec
-- that records no key order has no such function: a plain object mark then).
local object_with_order = json.object_with_order or function(t)
  return json.object(t)
end


local _M = {}


_M.OPERATORS = { "$in", "$nin", "$lt", "$lte", "$gt", "$gte", "$ne", "$or" }


local ALWAYS_MULTI = { find = true, get = false, update = false }


-- Resolved options of one call: service options, `paginate` from params.paginate when
-- given, then every field of params.adapter (the options table itself when params change
-- nothing: treat the result as read-only).
function _M.get_options(options, params)
  if params == nil or (params.paginate == nil and params.adapter == nil) then
    return options
  end

  local resolved = {}
  for k, v in pairs(options) do
    resolved[k] = v
  end

  if params.paginate ~= nil then
    resolved.paginate = params.paginate
  end

  local adapter = params.adapter
  if type(adapter) == "table" then
    for k, v in pairs(adapter) do
      resolved[k] = v
    end
  end

  return resolved
end


-- Whether method may work on several records (null id, array data).
function _M.allows_multi(options, method)
  local always = ALWAYS_MULTI[method]
  if always ~= nil then
    return always
  end

  local multi = options.multi
  if multi == true then
    return true
  end

  if type(multi) ~= "table" then
    return false
  end

  for i = 1, #multi do
    if multi[i] == method then
      return true
    end
  end

  return false
end


local function is_nan(v)
  return v ~= v
end


-- $limit from its raw value and the paginate option (§8.3).
function _M.get_limit(raw, paginate)
  local limit = parse_int(raw)

  if type(paginate) == "table" and (truthy(paginate.default) or truthy(paginate.max)) then
    local base = truthy(paginate.default) and paginate.default or 0
    local lower = base
    if type(limit) == "number" and not is_nan(limit) and limit >= 0 then
      lower = limit
    end

    local upper = type(paginate.max) == "number" and paginate.max or math_huge

    return math_min(lower, upper)
  end

  return limit
end


local function starts_with_dollar(key)
  return type(key) == "string" and string_sub(key, 1, 1) == "$"
end


local function is_plain_object(v)
  return type(v) == "table" and not rawequal(v, json_null) and not is_array(v)
    and not errors.is_error(v)
end


local validate_property

-- Raises for the first (in key order) "$" key of query that is no allowed operator.
local function check_operators(query, operators)
  local bad
  for key in pairs(query) do
    if starts_with_dollar(key) and not operators[key] and (bad == nil or key < bad) then
      bad = key
    end
  end

  if bad then
    error(errors.BadRequest("Invalid query parameter " .. bad, query))
  end
end


-- Checks the operators of a property condition (recursively); returns it (a copy when it
-- is an object).
validate_property = function(value, operators)
  if is_array(value) then
    local copy = util.array({})
    for i = 1, #value do
      copy[i] = validate_property(value[i], operators)
    end

    return copy
  end

  if not is_plain_object(value) then
    return value
  end

  check_operators(value, operators)

  local copy = util.object({})
  for key, item in pairs(value) do
    if is_plain_object(item) or is_array(item) then
      copy[key] = validate_property(item, operators)
    else
      copy[key] = item
    end
  end

  return copy
end


-- $sort: directions integer-parsed; an object direction has its operators checked like a
-- condition (Feathers' FILTERS.$sort validates it: { a = { $bad = 1 } } is refused). The
-- copy keeps the keys in the client's order where the codec recorded it: that order is
-- the precedence of the sort keys (§8.5).
local function parse_sort(sort, settings)
  if not is_plain_object(sort) then
    return sort
  end

  local keys = util.ordered_keys(sort)
  local result = {}
  for _, key in ipairs(keys) do
    local value = sort[key]
    if type(value) == "table" then
      result[key] = validate_property(value, settings.operators)
    else
      result[key] = parse_int(value)
    end
  end

  return object_with_order(result, keys)
end


-- $select: a list becomes a list of strings; anything else is checked like a condition
-- (Feathers' FILTERS.$select).
local function to_string_list(select, settings)
  if not is_array(select) then
    return validate_property(select, settings.operators)
  end

  local result = util.array({})
  for i = 1, #select do
    result[i] = util.to_string(select[i])
  end

  return result
end


local function validate_list(list, operators)
  if not is_array(list) then
    return list
  end

  local result = util.array({})
  for i = 1, #list do
    result[i] = validate_property(list[i], operators)
  end

  return result
end


local FILTERS = {
  ["$skip"] = function(value)
    return parse_int(value)
  end,
  ["$sort"] = parse_sort,
  ["$limit"] = function(value, settings)
    return _M.get_limit(value, settings.paginate)
  end,
  ["$select"] = to_string_list,
  ["$or"] = function(value, settings)
    return validate_list(value, settings.operators)
  end,
  ["$and"] = function(value, settings)
    return validate_list(value, settings.operators)
  end,
}
_M.FILTERS = FILTERS


local DEFAULT_OPERATORS = {}
for _, name in ipairs(_M.OPERATORS) do
  DEFAULT_OPERATORS[name] = true
end

-- Sets built from the extra operators/filters options, cached per options table.
local operator_sets = setmetatable({}, { __mode = "k" })
local filter_sets = setmetatable({}, { __mode = "k" })


-- The default set merged with an options table's extras, cached per extras table.
-- add(set, extra) copies the extras in: names of a list, or the pairs of a map.
local function merged_set(cache, defaults, extra, add)
  if type(extra) ~= "table" or next(extra) == nil then
    return defaults
  end

  local set = cache[extra]
  if set then
    return set
  end

  set = {}
  for name, value in pairs(defaults) do
    set[name] = value
  end

  add(set, extra)
  cache[extra] = set
  return set
end


local function add_names(set, names)
  for _, name in ipairs(names) do
    set[name] = true
  end
end


local function add_pairs(set, map)
  for name, value in pairs(map) do
    set[name] = value
  end
end


local function operator_set(extra)
  return merged_set(operator_sets, DEFAULT_OPERATORS, extra, add_names)
end


local function filter_set(extra)
  return merged_set(filter_sets, FILTERS, extra, add_pairs)
end


-- Splits a query into converted filters and validated conditions (Feathers'
-- filterQuery). options: paginate, filters (extra name -> true or converter), operators
-- (extra names). Raises BadRequest "Invalid filter value $x" / "Invalid query parameter
-- $x".
function _M.filter_query(query, options)
  options = options or {}
  if not is_plain_object(query) then
    query = {}
  end

  local operators = operator_set(options.operators)
  local filters = filter_set(options.filters)
  local settings = { paginate = options.paginate, operators = operators }

  local result_filters = {}
  for name, filter in pairs(filters) do
    if filter then
      local value = query[name]
      if type(filter) == "function" then
        value = filter(value, settings)
      end

      if value ~= nil then
        result_filters[name] = value
      end
    end
  end

  local bad
  local conditions = util.object({})
  for key, value in pairs(query) do
    if starts_with_dollar(key) then
      if filters[key] == nil and (bad == nil or key < bad) then
        bad = key
      end
    else
      conditions[key] = validate_property(value, operators)
    end
  end

  if bad then
    error(errors.BadRequest("Invalid filter value " .. bad))
  end

  return result_filters, conditions
end


-- The sanitised query of a public method: filters and conditions in one table.
function _M.sanitize_query(query, options)
  local filters, conditions = _M.filter_query(query, options)
  for k, v in pairs(filters) do
    conditions[k] = v
  end

  return conditions
end


-- {{ Matching --------------------------------------------------------------------------


local MISSING = {}


-- Appends to out the values a key path designates in item (sift's walkKeyPathValues):
-- the elements of arrays met on the way, then the value itself.
local function walk(item, path, depth, n, out)
  local key = path[depth + 1]
  if is_array(item) and (key == nil or tonumber(key) == nil) then
    for i = 1, #item do
      walk(item[i], path, depth, n, out)
    end
  end

  if depth == n or is_null(item) then
    out[#out + 1] = item == nil and MISSING or item
    return out
  end

  local child
  if type(item) == "table" then
    if is_array(item) then
      local index = tonumber(key)
      child = index and item[index + 1]
    else
      child = item[key]
    end
  end

  return walk(child, path, depth + 1, n, out)
end


local function value_of(candidate)
  if candidate == MISSING then
    return nil
  end

  return candidate
end


local function equals(a, b)
  return deep_equal(value_of(a), b)
end


local function split_key(key)
  local path = {}
  local start = 1
  while true do
    local pos = string_find(key, ".", start, true)
    if not pos then
      path[#path + 1] = string_sub(key, start)
      return path
    end

    path[#path + 1] = string_sub(key, start, pos - 1)
    start = pos + 1
  end
end


local compile_query
local compile_condition


local function comparable_type(v)
  local t = type(v)
  if t == "number" or t == "string" or t == "boolean" then
    return t
  end
end


local function ordered(op, param)
  local kind = comparable_type(param)
  if kind == "boolean" then
    param = param and 1 or 0
  end

  return function(candidates)
    if kind == nil then
      return false
    end

    for i = 1, #candidates do
      local v = value_of(candidates[i])
      if type(v) == kind then
        if kind == "boolean" then
          v = v and 1 or 0
        end

        if (op == "$lt" and v < param) or (op == "$lte" and v <= param)
            or (op == "$gt" and v > param) or (op == "$gte" and v >= param) then
          return true
        end
      end
    end

    return false
  end
end


local function list_param(op, param)
  if not is_array(param) then
    if type(param) == "table" and next(param) == nil then
      return {}
    end

    error(errors.BadRequest("'" .. op .. "' needs an array"))
  end

  return param
end


local function any_in(candidates, list)
  for i = 1, #candidates do
    local v = value_of(candidates[i])
    for k = 1, #list do
      if deep_equal(v, list[k]) then
        return true
      end
    end
  end

  return false
end


local function compile_any(sub)
  if is_plain_object(sub) then
    return compile_query(sub)
  end

  return function(item)
    local candidates = walk(item, {}, 0, 0, {})
    for i = 1, #candidates do
      if equals(candidates[i], sub) then
        return true
      end
    end

    return false
  end
end


local function compile_group(op, param)
  local list = list_param(op, param)
  local subs = {}
  for i = 1, #list do
    subs[i] = compile_any(list[i])
  end

  local n = #subs
  return function(candidates)
    for i = 1, #candidates do
      local v = value_of(candidates[i])
      if op == "$and" then
        local all = true
        for k = 1, n do
          if not subs[k](v) then
            all = false
            break
          end
        end

        if all then
          return true
        end
      else
        for k = 1, n do
          if subs[k](v) then
            return op == "$or"
          end
        end
      end
    end

    return op == "$nor"
  end
end


-- Compiles one operator into a test over the candidate values.
local function compile_operator(op, param)
  if op == "$eq" then
    return function(candidates)
      for i = 1, #candidates do
        if equals(candidates[i], param) then
          return true
        end
      end

      return false
    end
  end

  if op == "$ne" then
    return function(candidates)
      for i = 1, #candidates do
        if equals(candidates[i], param) then
          return false
        end
      end

      return true
    end
  end

  if op == "$in" then
    local list = list_param(op, param)
    return function(candidates)
      return any_in(candidates, list)
    end
  end

  if op == "$nin" then
    local list = list_param(op, param)
    return function(candidates)
      return not any_in(candidates, list)
    end
  end

  if op == "$lt" or op == "$lte" or op == "$gt" or op == "$gte" then
    return ordered(op, param)
  end

  if op == "$or" or op == "$and" or op == "$nor" then
    return compile_group(op, param)
  end

  if op == "$not" then
    local inner = compile_condition(param)
    return function(candidates)
      return not inner(candidates)
    end
  end

  if op == "$exists" then
    local wanted = truthy(param)
    return function(candidates)
      for i = 1, #candidates do
        if candidates[i] ~= MISSING then
          return wanted
        end
      end

      return not wanted
    end
  end

  error(errors.BadRequest("Unsupported operation: " .. tostring(op)))
end


local function has_operator(cond)
  for key in pairs(cond) do
    if starts_with_dollar(key) then
      return true
    end
  end

  return false
end


-- Compiles a property condition (a value, or an object of operators) into a test over
-- the candidate values of the property.
compile_condition = function(cond)
  if is_plain_object(cond) and has_operator(cond) then
    local tests = {}
    for key, param in pairs(cond) do
      if not starts_with_dollar(key) then
        error(errors.BadRequest("Property queries must contain only operations, "
                                .. "or exact objects."))
      end

      tests[#tests + 1] = compile_operator(key, param)
    end

    local n = #tests
    return function(candidates)
      for i = 1, n do
        if not tests[i](candidates) then
          return false
        end
      end

      return true
    end
  end

  return compile_operator("$eq", cond)
end


-- Compiles a query object into a predicate over records.
compile_query = function(query)
  local tests = {}
  for key, cond in pairs(query) do
    local path, test
    if starts_with_dollar(key) then
      path = {}
      test = compile_operator(key, cond)
    else
      path = split_key(key)
      test = compile_condition(cond)
    end

    tests[#tests + 1] = { path = path, n = #path, test = test }
  end

  local count = #tests
  return function(item)
    for i = 1, count do
      local t = tests[i]
      if not t.test(walk(item, t.path, 0, t.n, {})) then
        return false
      end
    end

    return true
  end
end


-- A predicate function(record) -> boolean for a query (conditions, $or, $and, ...).
function _M.matcher(query)
  if type(query) ~= "table" or next(query) == nil then
    return function()
      return true
    end
  end

  return compile_query(query)
end


-- }} Sorting ---------------------------------------------------------------------------


local function rank(v)
  if v == nil then
    return 0
  end

  if rawequal(v, json_null) then
    return 1
  end

  local t = type(v)
  if t == "number" then
    return 2
  end

  if t == "string" then
    return 3
  end

  if t == "boolean" then
    return 4
  end

  if t == "table" then
    return is_array(v) and 6 or 7
  end

  return 8
end


local compare

local function compare_scalar(a, b)
  if a < b then
    return -1
  end

  if a > b then
    return 1
  end

  return 0
end


-- Orders two values: missing < null < numbers < strings < booleans < arrays < objects.
compare = function(a, b)
  if rawequal(a, b) then
    return 0
  end

  local ra, rb = rank(a), rank(b)
  if ra ~= rb then
    return ra < rb and -1 or 1
  end

  if ra == 2 or ra == 3 then
    return compare_scalar(a, b)
  end

  if ra == 4 then
    return compare_scalar(a and 1 or 0, b and 1 or 0)
  end

  if ra == 6 then
    local na, nb = #a, #b
    for i = 1, math_min(na, nb) do
      local c = compare(a[i], b[i])
      if c ~= 0 then
        return c
      end
    end

    return compare_scalar(na, nb)
  end

  if ra == 7 then
    local ka, kb = {}, {}
    for k in pairs(a) do
      ka[#ka + 1] = tostring(k)
    end

    for k in pairs(b) do
      kb[#kb + 1] = tostring(k)
    end

    table_sort(ka)
    table_sort(kb)
    for i = 1, math_min(#ka, #kb) do
      local c = compare(a[ka[i]], b[kb[i]])
      if c ~= 0 then
        return c
      end
    end

    return compare_scalar(#ka, #kb)
  end

  return 0
end

_M.compare = compare


local function get_path(value, path)
  for i = 1, #path do
    if type(value) ~= "table" then
      return nil
    end

    value = value[path[i]]
  end

  return value
end


local function sort_keys(sort)
  if is_array(sort) then
    local keys = {}
    for i = 1, #sort do
      local entry = sort[i]
      if type(entry) == "table" then
        for k, v in pairs(entry) do
          keys[#keys + 1] = { k, v }
        end
      end
    end

    return keys
  end

  local keys = {}
  for _, k in ipairs(util.ordered_keys(sort)) do
    keys[#keys + 1] = { k, sort[k] }
  end

  return keys
end


-- A comparator function(a, b) -> -1/0/1 for $sort: { field = 1 | -1, ... } (dotted keys
-- address nested fields; a list of one-key tables gives the keys in order).
function _M.sorter(sort)
  local criteria = {}
  for _, entry in ipairs(sort_keys(sort)) do
    local key, direction = entry[1], entry[2]
    direction = parse_int(direction)
    if type(direction) ~= "number" or direction ~= direction then
      error(errors.BadRequest("Invalid $sort value for '" .. tostring(key) .. "'"))
    end

    criteria[#criteria + 1] = {
      path = split_key(tostring(key)),
      direction = direction,
    }
  end

  local n = #criteria
  return function(a, b)
    for i = 1, n do
      local c = criteria[i]
      local result = c.direction * compare(get_path(a, c.path), get_path(b, c.path))
      if result ~= 0 then
        return result
      end
    end

    return 0
  end
end


-- Sorts list in place with cmp (-1/0/1), keeping the order of equal elements.
function _M.stable_sort(list, cmp)
  local n = #list
  local position = {}
  for i = 1, n do
    position[list[i]] = i
  end

  table_sort(list, function(a, b)
    local c = cmp(a, b)
    if c ~= 0 then
      return c < 0
    end

    return position[a] < position[b]
  end)

  return list
end


-- Picks the $select fields (plus the id field) of a record; the record itself when
-- fields is nil.
function _M.select(record, fields, id_field)
  if fields == nil or type(record) ~= "table" then
    return record
  end

  local result = util.object({})
  for i = 1, #fields do
    local name = fields[i]
    local v = record[name]
    if v ~= nil then
      result[name] = v
    end
  end

  if id_field ~= nil and record[id_field] ~= nil then
    result[id_field] = record[id_field]
  end

  return result
end


return _M
