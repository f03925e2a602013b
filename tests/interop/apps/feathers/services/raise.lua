-- One custom method per Feathers error class (feathers.md §7): raise.<Class>({ args =
-- { message, data } }) raises errors.<Class>(message, data), so the tests check each
-- class's JSON on the wire and the client's conversion. `plain` raises a plain Lua error
-- (§3.6: { message } without the position, a stack outside production only);
-- `hookFailure` fails in a before hook with a Feathers error whose data the error hook
-- completes.
local errors = require "plume.errors"


local CLASSES = {
  "BadRequest", "NotAuthenticated", "PaymentError", "Forbidden", "NotFound",
  "MethodNotAllowed", "NotAcceptable", "Timeout", "Conflict", "Gone", "LengthRequired",
  "Unprocessable", "TooManyRequests", "GeneralError", "NotImplemented", "BadGateway",
  "Unavailable",
}


local service = {}
local methods = {}


for _, name in ipairs(CLASSES) do
  service[name] = function(_, data)
    local args = type(data) == "table" and data.args or {}
    error(errors[name](args[1], args[2]))
  end
  methods[#methods + 1] = name
end


function service.plain()
  error("boom")
end


function service.hookFailure()
  return { unreachable = true }
end


methods[#methods + 1] = "plain"
methods[#methods + 1] = "hookFailure"


local function refuse(context)
  error(errors.Forbidden("refused in a hook", { stage = "before" }))
  return context
end


-- An error hook may mutate the error on its way out (feathers.md §6.4).
local function annotate(context)
  context.error.data.method = context.method
  context.error.data.hadResult = context.result ~= nil
  return context
end


return {
  service = service,
  methods = methods,
  hooks = {
    before = { hookFailure = { refuse } },
    error = { hookFailure = { annotate } },
  },
}
