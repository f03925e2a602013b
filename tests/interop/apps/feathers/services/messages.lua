-- Standard methods on the memory adapter, multi allowed (null ids, array data): the CRUD
-- and event tests. Tests scope their records with a `run` field of their own.
local memory = require "plume.adapters.memory"


return {
  service = memory.new({ multi = true }),
}
