-- The fixed records of services/people.lua and services/paged.lua (read-only services,
-- so every run of the query tests sees the same data). Frank's age is a string on
-- purpose: comparisons and equality are typed (feathers.md §8.4).
local json = require "plume.json"


local array = json.array


return function()
  return {
    { id = 1, name = "Alice", age = 30, active = true, tags = array({ "admin", "dev" }),
      address = { city = "Paris", zip = "75001" } },
    { id = 2, name = "Bob", age = 25, active = false, tags = array({ "dev" }),
      address = { city = "Berlin", zip = "10115" } },
    { id = 3, name = "Carol", age = 35, active = true, tags = array({ "ops" }),
      address = { city = "Paris", zip = "75002" } },
    { id = 4, name = "Dave", age = 25, active = true, tags = array({ "qa" }),
      address = { city = "Lyon", zip = "69001" } },
    { id = 5, name = "Eve", age = 41, active = false, tags = array({ "dev", "ops" }),
      address = { city = "Berlin", zip = "10117" } },
    { id = 6, name = "Frank", age = "30", active = true, address = { city = "Rome" } },
  }
end
