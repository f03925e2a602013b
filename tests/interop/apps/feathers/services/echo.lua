-- Says what each call received (method, id, data, params.query, params.route, provider)
-- so the tests see the wire arguments as the service got them (feathers.md §3.1, §3.4,
-- §3.5, §5.2), and what the socket middleware put on the connection (`room`). Custom
-- methods: shout (no event), touch (an after hook sets context.event = "patched"),
-- notify (emits the custom event "status" itself), nothing (returns nil), inspect (the
-- handshake's host and x-test headers, and a call counter kept on the connection object,
-- which every call of a socket shares: feathers.md §3.4). A create with
-- data.hide gets a context.dispatch: that is what the ack and the event carry (§3.2,
-- §4.3).
local json = require "plume.json"


local type = type
local null = json.null


local function or_null(v)
  if v == nil then
    return null
  end

  return v
end


local function describe(method, id, data, params)
  return {
    method = method,
    id = or_null(id),
    data = or_null(data),
    query = params.query,
    route = params.route,
    provider = or_null(params.provider),
    room = or_null(params.room),
  }
end


local function set_event(context)
  context.event = "patched"
  return context
end


local function hide(context)
  if type(context.data) == "table" and context.data.hide == true then
    context.dispatch = { hidden = true, method = context.method }
  end

  return context
end


return {
  service = {
    events = { "status" },

    find = function(_, params)
      return describe("find", nil, nil, params)
    end,

    get = function(_, id, params)
      return describe("get", id, nil, params)
    end,

    create = function(_, data, params)
      return describe("create", nil, data, params)
    end,

    update = function(_, id, data, params)
      return describe("update", id, data, params)
    end,

    patch = function(_, id, data, params)
      return describe("patch", id, data, params)
    end,

    remove = function(_, id, params)
      return describe("remove", id, nil, params)
    end,

    shout = function(_, data, params)
      local text = type(data) == "table" and data.text or nil
      return {
        shouted = type(text) == "string" and text:upper() or null,
        query = params.query,
        provider = or_null(params.provider),
      }
    end,

    touch = function(_, data, params)
      return describe("touch", nil, data, params)
    end,

    nothing = function()
      return nil
    end,

    inspect = function(_, _, params)
      local connection = params.connection
      connection.calls = (connection.calls or 0) + 1
      local headers = params.headers or {}
      return {
        host = or_null(headers.host),
        test = or_null(headers["x-test"]),
        calls = connection.calls,
        provider = or_null(params.provider),
        same = params.headers == connection.headers,
      }
    end,

    notify = function(self, data, params)
      local status = { message = or_null(data and data.message), provider = params.provider }
      self:emit("status", status)
      return { sent = true, status = status }
    end,
  },
  methods = { "find", "get", "create", "update", "patch", "remove", "shout", "touch",
              "notify", "nothing", "inspect" },
  hooks = {
    after = { touch = { set_event }, create = { hide } },
  },
}
