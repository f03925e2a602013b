-- Allocates without bound: the memory cap stops it.
return {
  find = function(_, params)
    if params.query.kind == "table" then
      local t = {}
      for i = 1, math.huge do
        t[i] = string.rep("x", 1024 * 1024) .. i
      end
      return #t
    end
    return #string.rep("x", 512 * 1024 * 1024)
  end,
}
