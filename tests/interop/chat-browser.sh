#!/bin/sh
# examples/socketio-chat in headless Debian chromium (playwright-core) on port 3206; the
# screenshot goes to tests/artifacts/chat.png. Needs PLUME_BIN, tests/node_modules and
# /usr/bin/chromium (scripts/deps.sh installs it).
cd "$(dirname "$0")" || exit 1
if [ ! -x /usr/bin/chromium ]; then
  echo "not ok 1 - /usr/bin/chromium is not installed (scripts/deps.sh installs it)"
  echo "0 passed, 1 failed"
  exit 1
fi
exec node chat-browser.js
