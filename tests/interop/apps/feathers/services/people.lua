-- Read-only records for the query operator tests (feathers.md §8.2, §8.4, §8.5), without
-- pagination: find returns a plain list. Only find and get are exposed, so create
-- answers MethodNotAllowed (§3.3 step 4).
local memory = require "plume.adapters.memory"
local people = require "lib.people"


return {
  service = memory.new({ store = people() }),
  methods = { "find", "get" },
}
