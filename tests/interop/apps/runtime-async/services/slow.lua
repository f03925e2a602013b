-- Waits query.ms milliseconds (plume.sleep) before answering.
local plume = require "plume"

return {
  find = function(_, params)
    plume.sleep(tonumber(params.query.ms) or 500)
    return "slow"
  end,
}
