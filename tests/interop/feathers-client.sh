#!/bin/sh
# The real Feathers v5 client (@feathersjs/feathers + @feathersjs/socketio-client over
# socket.io-client v4, websocket and polling) against tests/interop/apps/feathers on ports
# 3311 (development) and 3312 (production). Needs PLUME_BIN (tests/run.sh sets it) and
# tests/node_modules (make npm).
cd "$(dirname "$0")/../.." && exec node tests/interop/feathers-client.js
