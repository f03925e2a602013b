#!/bin/sh
# Real engine.io-client v6 and 3.x against examples/engineio-echo.
cd "$(dirname "$0")/../.." && exec node tests/interop/engineio-client.js
