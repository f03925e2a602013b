#!/bin/sh
# socket.io-client 2.x (Engine.IO v3, allowEIO3) against tests/interop/apps/sio-features on
# port 3204. Needs PLUME_BIN and tests/node_modules.
cd "$(dirname "$0")" || exit 1
exec node socketio-client-v2.js
