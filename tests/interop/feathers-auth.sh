#!/bin/sh
# The real @feathersjs/authentication-client v5 against tests/interop/apps/auth on port 3301
# (feathers.md §9, §10.4; reliability.md §4.5 #37). Needs PLUME_BIN (tests/run.sh sets it)
# and tests/node_modules (make npm).
cd "$(dirname "$0")/../.." && exec node tests/interop/feathers-auth.js
