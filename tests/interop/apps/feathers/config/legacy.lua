-- `plume tests/interop/apps/feathers --env legacy`: also accept the calls of Feathers v2
-- clients, emit("<path>::<method>", ...) (feathers.md §3.8; transport.lua reads this).
return {
  legacy_socket_calls = true,
}
