-- Messages in memory: the records must survive edits of this file.
local memory = require "plume.adapters.memory"

return memory.new({ paginate = { default = 50, max = 100 } })
