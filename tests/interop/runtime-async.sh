#!/bin/sh
# Async Lua with real Feathers clients (DESIGN.md §4, reliability.md §4.6 #39-40) against
# tests/interop/apps/runtime-async on port 3403. Needs PLUME_BIN and tests/node_modules.
cd "$(dirname "$0")/../.." && exec node tests/interop/runtime-async.js
