-- create stores a name on the caller's connection (socket.feathers); get reads it back
-- with the file's version, so an edit shows that connection data survived.
local VERSION = "v1"

return {
  create = function(_, data, params)
    params.connection.name = data.name
    return { name = data.name }
  end,
  get = function(_, _, params)
    return VERSION .. ":" .. tostring(params.connection.name)
  end,
}
