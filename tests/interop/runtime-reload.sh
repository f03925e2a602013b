#!/bin/sh
# Hot reload with the real Feathers client connected (DESIGN.md §5, reliability.md §4.8),
# against copies of tests/interop/apps/runtime-reload on ports 3401 (watching) and 3402
# (--no-watch, SIGHUP). Needs PLUME_BIN (tests/run.sh sets it) and tests/node_modules.
cd "$(dirname "$0")/../.." && exec node tests/interop/runtime-reload.js
