#!/bin/sh
# Debian's python3-socketio client against tests/interop/apps/sio-features on port 3205.
# Uses the system /usr/bin/python3 (the Debian package is installed for it, not for a
# pyenv Python that may come first on PATH). Needs PLUME_BIN.
cd "$(dirname "$0")" || exit 1
if ! /usr/bin/python3 -c "import socketio" 2>/dev/null; then
  echo "not ok 1 - python3-socketio is not installed (scripts/deps.sh installs it)"
  echo "0 passed, 1 failed"
  exit 1
fi
exec /usr/bin/python3 python-socketio.py
