-- Never returns: the call budget stops it.
return {
  find = function()
    local n = 0
    while true do
      n = n + 1
    end
  end,
}
