-- Waits query.ms milliseconds: a call in flight during shutdown.
local plume = require "plume"

return {
  find = function(_, params)
    plume.sleep(tonumber(params.query.ms) or 0)
    return "slow"
  end,
}
