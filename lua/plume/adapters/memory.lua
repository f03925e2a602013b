-- In-memory service (spec/feathers.md §8, Feathers' @feathersjs/memory): records kept in
-- a store keyed by the id's text (ids 1 and "1" are one record), listed in JavaScript
-- object-key order (array-index keys ascending, then the others in insertion order).
-- Public methods sanitise the query and check `multi`; _find, _get, _create, _update,
-- _patch and _remove skip sanitising (and create's multi check) and are never reachable
-- from clients. Every result is a deep copy.
--
--   local memory = require "plume.adapters.memory"
--   app:use("messages", memory.new({ paginate = { default = 10, max = 50 } }))
--
-- options: id ("id"), startId (0), store (records keyed by id, a list of records, or the
-- `store` of another memory service to share its data and counter, e.g. across a hot
-- reload), paginate (false), multi (false | true | list of methods), events, filters,
-- operators, matcher (query -> predicate), sorter ($sort -> comparator).

local commons = require "plume.adapters.commons"
local errors = require "plume.errors"
local util = require "plume.util"


local type = type
local next = next
local pairs = pairs
local error = error
local rawget = rawget
local setmetatable = setmetatable
local getmetatable = getmetatable
local math_floor = math.floor
local math_min = math.min
local math_max = math.max
local table_insert = table.insert
local table_remove = table.remove
local is_array = util.is_array
local is_null = util.is_null
local truthy = util.truthy
local deep_copy = util.deep_copy
local to_string = util.to_string
local index_key = util.index_key
local json_array = util.array
local json_object = util.object


local _M = {}


-- The text key of an id (JavaScript's String(id)).
local function key_of(id)
  return to_string(id)
end

_M.key_of = key_of


-- {{ Store ------------------------------------------------------------------------------


local Store = {}
Store.__index = Store
Store.__name = "plume.memory_store"


function _M.new_store(start_id)
  return setmetatable({
    records = {},   -- key -> record
    indexes = {},   -- sorted numeric values of array-index keys
    others = {},    -- the other keys, in insertion order
    counter = start_id or 0,
    size = 0,
  }, Store)
end


local function bisect(list, value)
  local lo, hi = 1, #list + 1
  while lo < hi do
    local mid = math_floor((lo + hi) / 2)
    if list[mid] < value then
      lo = mid + 1
    else
      hi = mid
    end
  end

  return lo
end


function Store:get(key)
  return self.records[key]
end


function Store:set(key, record)
  if self.records[key] == nil then
    local index = index_key(key)
    if index then
      local list = self.indexes
      local n = #list
      if n == 0 or list[n] < index then
        list[n + 1] = index
      else
        table_insert(list, bisect(list, index), index)
      end
    else
      self.others[#self.others + 1] = key
    end

    self.size = self.size + 1
  end

  self.records[key] = record
end


function Store:delete(key)
  if self.records[key] == nil then
    return
  end

  self.records[key] = nil
  self.size = self.size - 1

  local index = index_key(key)
  if index then
    local list = self.indexes
    local pos = bisect(list, index)
    if list[pos] == index then
      table_remove(list, pos)
    end

    return
  end

  local others = self.others
  for i = 1, #others do
    if others[i] == key then
      table_remove(others, i)
      return
    end
  end
end


-- The records in store order (a new list of the stored tables).
function Store:values()
  local result = {}
  local n = 0
  local records = self.records
  local list = self.indexes
  for i = 1, #list do
    n = n + 1
    result[n] = records[key_of(list[i])]
  end

  list = self.others
  for i = 1, #list do
    n = n + 1
    result[n] = records[list[i]]
  end

  return result
end


local function fill_store(store, initial, id_field)
  local list_mode = is_array(initial)
  if list_mode then
    for i = 1, #initial do
      if type(initial[i]) ~= "table" or initial[i][id_field] == nil then
        list_mode = false
        break
      end
    end
  end

  if list_mode then
    for i = 1, #initial do
      local record = initial[i]
      store:set(key_of(record[id_field]), deep_copy(record))
    end

    return
  end

  local keys = util.ordered_keys(initial)
  for i = 1, #keys do
    store:set(key_of(keys[i]), deep_copy(initial[keys[i]]))
  end
end


-- }} Service ----------------------------------------------------------------------------


local Memory = {}
Memory.__index = Memory
Memory.__name = "plume.memory"


local FILTER_NAMES = { ["$skip"] = true, ["$sort"] = true, ["$limit"] = true,
                       ["$select"] = true }


function _M.new(options)
  options = options or {}

  local opts = {
    id = "id",
    paginate = false,
    multi = false,
    events = {},
    filters = {},
    operators = {},
    startId = 0,
  }
  for k, v in pairs(options) do
    opts[k] = v
  end

  if options.start_id ~= nil and options.startId == nil then
    opts.startId = options.start_id
  end

  local store = options.store
  if getmetatable(store) ~= Store then
    local initial = store
    store = _M.new_store(opts.startId)
    if type(initial) == "table" then
      fill_store(store, initial, opts.id)
    end
  end

  opts.store = nil

  return setmetatable({
    options = opts,
    id = opts.id,
    events = opts.events,
    store = store,
  }, Memory)
end


function _M.is_memory(value)
  return getmetatable(value) == Memory
end


-- Query conditions and filters ($skip, $sort, $limit, $select) of params; configured
-- extra filters (options.filters) are left to hooks and take no part in matching.
local function split_query(params, extra)
  local query = params and params.query
  local conditions = {}
  local filters = {}
  if type(query) == "table" then
    for k, v in pairs(query) do
      if FILTER_NAMES[k] then
        filters[k] = v
      elseif not (extra and extra[k]) then
        conditions[k] = v
      end
    end
  end

  return conditions, filters
end


local function selected_fields(params)
  local query = params and params.query
  local select = type(query) == "table" and query["$select"] or nil
  if select == nil then
    return nil
  end

  if is_array(select) then
    return select
  end

  if type(select) == "string" then
    return { select }
  end

  return nil
end


-- A deep copy of record restricted to $select (the id always kept).
local function select_copy(record, fields, id_field)
  if fields == nil then
    return deep_copy(record)
  end

  return deep_copy(commons.select(record, fields, id_field))
end


function Memory:get_options(params)
  return commons.get_options(self.options, params)
end


function Memory:allows_multi(method, params)
  return commons.allows_multi(self:get_options(params), method)
end


function Memory:matcher(conditions)
  local custom = self.options.matcher
  if type(custom) == "function" then
    return custom(conditions)
  end

  return commons.matcher(conditions)
end


function Memory:sorter(sort)
  local custom = self.options.sorter
  if type(custom) == "function" then
    return custom(sort)
  end

  return commons.sorter(sort)
end


local function number_or_nil(v)
  if type(v) == "number" and v == v then
    return v
  end
end


function Memory:_find(params)
  params = params or {}
  local options = self:get_options(params)
  local conditions, filters = split_query(params, self.options.filters)
  local fields = selected_fields(params)
  local id_field = self.id

  local values = self.store:values()
  if filters["$sort"] ~= nil then
    commons.stable_sort(values, self:sorter(filters["$sort"]))
  end

  local has_query = next(conditions) ~= nil
  local match = has_query and self:matcher(conditions) or nil
  local skip = number_or_nil(filters["$skip"])
  if skip ~= nil and skip < 0 then
    skip = 0
  end

  local raw_limit = filters["$limit"]

  if truthy(options.paginate) then
    local matched = values
    if match then
      matched = {}
      for i = 1, #values do
        if match(values[i]) then
          matched[#matched + 1] = values[i]
        end
      end
    end

    local total = #matched
    local first = (skip or 0) + 1
    local last = total
    local limit = number_or_nil(raw_limit)
    if raw_limit ~= nil then
      last = math_min(total, (skip or 0) + math_max(limit or 0, 0))
    end

    local data = json_array({})
    for i = first, last do
      data[#data + 1] = select_copy(matched[i], fields, id_field)
    end

    return json_object({
      total = total,
      limit = limit,
      skip = skip or 0,
      data = data,
    })
  end

  local result = json_array({})
  local limit = number_or_nil(raw_limit)
  if limit == 0 then
    return result
  end

  local skipped = 0
  for i = 1, #values do
    local value = values[i]
    if not match or match(value) then
      if skip ~= nil and skip > skipped then
        skipped = skipped + 1
      else
        result[#result + 1] = select_copy(value, fields, id_field)
        if limit ~= nil and limit == #result then
          break
        end
      end
    end
  end

  return result
end


local function not_found(id)
  return errors.NotFound("No record found for id '" .. to_string(id) .. "'")
end


-- The stored record of id when it matches the query conditions of params, else nil.
function Memory:_lookup(id, params)
  local record = self.store:get(key_of(id))
  if record == nil then
    return nil
  end

  local conditions = split_query(params, self.options.filters)
  if next(conditions) ~= nil and not self:matcher(conditions)(record) then
    return nil
  end

  return record
end


function Memory:_get(id, params)
  local record = self:_lookup(id, params)
  if record == nil then
    error(not_found(id))
  end

  return select_copy(record, selected_fields(params), self.id)
end


local function check_data(data)
  if data == nil or is_null(data) then
    return {}
  end

  if type(data) ~= "table" then
    error(errors.BadRequest("Data must be an object"))
  end

  return data
end


function Memory:_create(data, params)
  if is_array(data) then
    local results = json_array({})
    for i = 1, #data do
      results[i] = self:_create(data[i], params)
    end

    return results
  end

  data = check_data(data)

  local id_field = self.id
  local store = self.store
  local id = data[id_field]
  if not truthy(id) then
    id = store.counter
    store.counter = store.counter + 1
  end

  local record = deep_copy(data)
  record[id_field] = id
  store:set(key_of(id), record)

  return select_copy(record, selected_fields(params), id_field)
end


function Memory:_update(id, data, params)
  if is_null(id) or is_array(data) then
    error(errors.BadRequest("You can not replace multiple instances. Did you mean 'patch'?"))
  end

  local old = self:_lookup(id, params)
  if old == nil then
    error(not_found(id))
  end

  local id_field = self.id
  local old_id = rawget(old, id_field)
  if old_id ~= nil and key_of(old_id) == key_of(id) then
    id = old_id
  end

  local record = deep_copy(check_data(data))
  record[id_field] = id
  self.store:set(key_of(id), record)

  return self:_get(id, params)
end


-- params for looking up every record a multi patch/remove touches: no pagination, the
-- conditions plus $sort and $skip.
local function entries_params(params)
  local lookup = {}
  if params then
    for k, v in pairs(params) do
      lookup[k] = v
    end
  end

  local query = {}
  local source = params and params.query
  if type(source) == "table" then
    for k, v in pairs(source) do
      if k ~= "$limit" and k ~= "$select" then
        query[k] = v
      end
    end
  end

  lookup.query = query
  lookup.paginate = false

  return lookup
end


function Memory:_patch(id, data, params)
  if is_null(id) and not self:allows_multi("patch", params) then
    error(errors.MethodNotAllowed("Can not patch multiple entries"))
  end

  data = check_data(data)

  local id_field = self.id
  local fields = selected_fields(params)
  local store = self.store

  local function patch_record(record)
    for k, v in pairs(data) do
      if k ~= id_field then
        record[k] = deep_copy(v)
      end
    end

    return select_copy(record, fields, id_field)
  end

  if is_null(id) then
    local entries = self:_find(entries_params(params))
    local results = json_array({})
    for i = 1, #entries do
      local record = store:get(key_of(entries[i][id_field]))
      if record ~= nil then
        results[#results + 1] = patch_record(record)
      end
    end

    return results
  end

  local record = self:_lookup(id, params)
  if record == nil then
    error(not_found(id))
  end

  return patch_record(record)
end


function Memory:_remove(id, params)
  if is_null(id) and not self:allows_multi("remove", params) then
    error(errors.MethodNotAllowed("Can not remove multiple entries"))
  end

  if is_null(id) then
    local entries = self:_find(entries_params(params))
    local results = json_array({})
    for i = 1, #entries do
      results[#results + 1] = self:_remove(entries[i][self.id], params)
    end

    return results
  end

  local record = self:_lookup(id, params)
  if record == nil then
    error(not_found(id))
  end

  self.store:delete(key_of(id))

  return select_copy(record, selected_fields(params), self.id)
end


-- params with the sanitised query (and without $limit for patch and remove).
function Memory:sanitize(params, drop_limit)
  local options = self:get_options(params)
  local query = commons.sanitize_query(params and params.query, options)
  if drop_limit then
    query["$limit"] = nil
  end

  local sanitized = {}
  if params then
    for k, v in pairs(params) do
      sanitized[k] = v
    end
  end

  sanitized.query = query

  return sanitized
end


function Memory:find(params)
  return self:_find(self:sanitize(params))
end


function Memory:get(id, params)
  return self:_get(id, self:sanitize(params))
end


function Memory:create(data, params)
  if is_array(data) and not self:allows_multi("create", params) then
    error(errors.MethodNotAllowed("Can not create multiple entries"))
  end

  return self:_create(data, params)
end


function Memory:update(id, data, params)
  return self:_update(id, data, self:sanitize(params))
end


function Memory:patch(id, data, params)
  return self:_patch(id, data, self:sanitize(params, true))
end


function Memory:remove(id, params)
  return self:_remove(id, self:sanitize(params, true))
end


return _M
