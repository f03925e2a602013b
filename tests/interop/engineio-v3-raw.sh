#!/bin/sh
# Engine.IO v3 wire format (protocol.md §7), raw, against examples/engineio-echo (allowEIO3).
cd "$(dirname "$0")/../.." && exec node tests/interop/engineio-v3-raw.js
