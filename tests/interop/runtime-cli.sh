#!/bin/sh
# The plume command: --help/--version, option precedence, plume new + plume test, graceful
# shutdown and logs, against tests/interop/apps/runtime-cli on ports 3411-3419. Needs
# PLUME_BIN (tests/run.sh sets it) and tests/node_modules.
cd "$(dirname "$0")/../.." && exec node tests/interop/runtime-cli.js
