-- The records of people.lua, paginated with default 2 and max 4 (feathers.md §8.3, §8.6).
local memory = require "plume.adapters.memory"
local people = require "lib.people"


return {
  service = memory.new({ store = people(), paginate = { default = 2, max = 4 } }),
  methods = { "find", "get" },
}
