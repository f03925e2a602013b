-- Hooks of every kind and level, each recording itself (lib/trace.lua), so that the
-- client gets the order of feathers.md §6.3 in the result (or the error's data). The
-- data's `mode` picks the path: "ok", "fail" (the method raises), "skip" (before create
-- sets the result), "recover" (the method raises, error create sets a result).
local errors = require "plume.errors"
local trace = require "lib.trace"


local type = type


local function skip(context)
  trace.add(context, "svc before create")
  if type(context.data) == "table" and context.data.mode == "skip" then
    context.result = { trace = trace.of(context), skipped = true }
  end

  return context
end


local function recover(context)
  trace.add(context, "svc error create")
  if type(context.data) == "table" and context.data.mode == "recover" then
    context.result = { trace = trace.of(context), recovered = true }
  end

  return context
end


return {
  service = {
    find = function(_, params)
      params.trace[#params.trace + 1] = "find method"
      return { trace = params.trace }
    end,

    create = function(_, data, params)
      params.trace[#params.trace + 1] = "create method"
      if data.mode == "fail" or data.mode == "recover" then
        error(errors.Unprocessable("method failed", { trace = params.trace }))
      end

      return { trace = params.trace }
    end,

    -- Around hooks registered as a list and as a table keyed by method (§6.2), which
    -- the service file's `hooks` cannot express.
    setup = function(self)
      self:hooks({ trace.around("svc around list") })
      self:hooks({ create = trace.around("svc around table create") })
    end,
  },
  hooks = {
    around = {
      all = { trace.around("svc around all") },
      create = { trace.around("svc around create") },
    },
    before = {
      all = { trace.regular("svc before all") },
      create = { skip },
    },
    after = {
      all = { trace.regular("svc after all") },
      create = { trace.regular("svc after create") },
    },
    error = {
      all = { trace.regular("svc error all") },
      create = { recover },
    },
  },
}
