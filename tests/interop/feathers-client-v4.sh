#!/bin/sh
# A Feathers v4 client (feathers-v4 + feathers-socketio-client-v4 over socket.io-client 2,
# Engine.IO v3) and raw legacy "path::method" calls against tests/interop/apps/feathers on
# ports 3313 (default) and 3314 (--env legacy). Needs PLUME_BIN (tests/run.sh sets it) and
# tests/node_modules (make npm).
cd "$(dirname "$0")/../.." && exec node tests/interop/feathers-client-v4.js
