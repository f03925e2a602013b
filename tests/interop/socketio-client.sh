#!/bin/sh
# The real socket.io-client v4 (websocket, polling, upgrade) against
# tests/interop/apps/sio-features on port 3203. Needs PLUME_BIN and tests/node_modules.
cd "$(dirname "$0")" || exit 1
exec node socketio-client.js
