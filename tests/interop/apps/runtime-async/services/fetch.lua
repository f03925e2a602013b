-- Fetches query.url with plume.http.request and answers its status and body.
local plume = require "plume"
local errors = require "plume.errors"

return {
  find = function(_, params)
    local status, headers, body = plume.http.request({ url = params.query.url, timeout = 5000 })
    if not status then
      error(errors.BadGateway(headers))
    end
    return { status = status, body = body, type = headers["content-type"] }
  end,
}
