#!/bin/sh
# Engine.IO v4 conformance (protocol.md §9.1 and §2) against examples/engineio-echo.
cd "$(dirname "$0")/../.." && exec node tests/interop/engineio-conformance.js
