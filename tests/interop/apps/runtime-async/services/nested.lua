-- Waits from a coroutine of its own: a clear error, not a hang.
local plume = require "plume"

return {
  find = function()
    local co = coroutine.wrap(function()
      plume.sleep(1)
    end)
    co()
    return "unreachable"
  end,
}
