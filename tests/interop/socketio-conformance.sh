#!/bin/sh
# Socket.IO conformance (spec/protocol.md §9.1 at /socket.io/, §9.2, §7, §4.4 transcripts;
# spec/reliability.md §4.4 items 24–29), raw over WebSocket and HTTP, against
# examples/conformance on port 3201 and tests/interop/apps/sio-features on port 3202.
# Needs PLUME_BIN (tests/run.sh sets it) and tests/node_modules (make npm).
cd "$(dirname "$0")" || exit 1
exec node socketio-conformance.js
