-- Service path router (spec/feathers.md §5.2): a tree of path segments where ":name"
-- segments are placeholders. Lookup tries the literal child first, then the placeholders
-- of that level in insertion order, backtracking until the whole path is consumed on a
-- node holding data; placeholders capture their segment as a string.
--
--   local r = router.new()
--   r:insert("users/:userId/messages", data)
--   local data, captures = r:lookup("users/5/messages")   -- captures.userId == "5"

local util = require "plume.util"


local type = type
local error = error
local next = next
local setmetatable = setmetatable
local string_sub = string.sub
local split_path = util.split_path
local normalize_path = util.normalize_path


local _M = {}


-- Successful and failed lookups are cached per requested path, up to this many entries.
local CACHE_SIZE = 512


local Node = {}
Node.__index = Node


local function new_node(name, depth)
  return setmetatable({
    name = name,
    depth = depth,
    data = nil,
    children = {},
    placeholders = {},
  }, Node)
end


local function segments_of(path)
  local p = normalize_path(path)
  if p == "/" then
    p = ""
  end

  return split_path(p)
end


local function has_children(node)
  return next(node.children) ~= nil or #node.placeholders > 0
end


local function find_placeholder(node, name)
  local list = node.placeholders
  for i = 1, #list do
    if list[i].name == name then
      return list[i], i
    end
  end
end


local function insert(node, segments, n, data, replace)
  if node.depth == n then
    if node.data ~= nil and not replace then
      error("Path " .. table.concat(segments, "/") .. " already exists", 0)
    end

    node.data = data
    return node
  end

  local current = segments[node.depth + 1]
  local next_depth = node.depth + 1

  if string_sub(current, 1, 1) == ":" then
    local name = string_sub(current, 2)
    local placeholder = find_placeholder(node, name)
    if not placeholder then
      placeholder = new_node(name, next_depth)
      node.placeholders[#node.placeholders + 1] = placeholder
    end

    return insert(placeholder, segments, n, data, replace)
  end

  local child = node.children[current]
  if not child then
    child = new_node(current, next_depth)
    node.children[current] = child
  end

  return insert(child, segments, n, data, replace)
end


local function remove(node, segments, n)
  if node.depth == n then
    node.data = nil
    return
  end

  local current = segments[node.depth + 1]
  if string_sub(current, 1, 1) == ":" then
    local placeholder, index = find_placeholder(node, string_sub(current, 2))
    if placeholder then
      remove(placeholder, segments, n)
      if placeholder.data == nil and not has_children(placeholder) then
        table.remove(node.placeholders, index)
      end
    end

    return
  end

  local child = node.children[current]
  if child then
    remove(child, segments, n)
    if child.data == nil and not has_children(child) then
      node.children[current] = nil
    end
  end
end


-- Returns the node's data and fills captures, or nil.
local function lookup(node, segments, n, captures)
  if node.depth == n then
    return node.data
  end

  local current = segments[node.depth + 1]
  local child = node.children[current]
  if child then
    local data = lookup(child, segments, n, captures)
    if data ~= nil then
      return data
    end
  end

  local list = node.placeholders
  for i = 1, #list do
    local placeholder = list[i]
    local data = lookup(placeholder, segments, n, captures)
    if data ~= nil then
      captures[#captures + 1] = placeholder.name
      captures[#captures + 1] = current
      return data
    end
  end

  return nil
end


local Router = {}
Router.__index = Router


function _M.new()
  return setmetatable({
    root = new_node("", 0),
    cache = {},
    cached = 0,
  }, Router)
end


function Router:clear_cache()
  self.cache = {}
  self.cached = 0
end


-- Stores data at path; an existing entry is an error unless replace is true.
function Router:insert(path, data, replace)
  local segments, n = segments_of(path)
  self:clear_cache()
  return insert(self.root, segments, n, data, replace)
end


function Router:remove(path)
  local segments, n = segments_of(path)
  self:clear_cache()
  remove(self.root, segments, n)
end


local MISS = {}


-- Returns data, captures (name -> string) or nil for no match. Captures go into `into`
-- when given, else into a new table.
function Router:lookup(path, into)
  if type(path) ~= "string" then
    return nil
  end

  local hit = self.cache[path]
  if hit == nil then
    local segments, n = segments_of(path)
    local flat = {}
    local data = lookup(self.root, segments, n, flat)
    if data == nil then
      hit = MISS
    else
      hit = { data = data, flat = flat }
    end

    if self.cached >= CACHE_SIZE then
      self:clear_cache()
    end

    self.cache[path] = hit
    self.cached = self.cached + 1
  end

  if hit == MISS then
    return nil
  end

  local captures = into or {}
  local flat = hit.flat
  for i = 1, #flat, 2 do
    captures[flat[i]] = flat[i + 1]
  end

  return hit.data, captures
end


return _M
