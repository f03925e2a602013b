#!/bin/sh
# The default app (the repository root) on port 3331 and examples/chat on port 3332, in
# headless Debian chromium (playwright-core) and through @feathersjs/client in Node.
# Screenshots go to tests/artifacts/chat-app.png and chat-app.default.png. Needs PLUME_BIN
# (tests/run.sh sets it), tests/node_modules (make npm) and /usr/bin/chromium
# (scripts/deps.sh installs it).
cd "$(dirname "$0")/../.." || exit 1
if [ ! -x /usr/bin/chromium ]; then
  echo "not ok 1 - /usr/bin/chromium is not installed (scripts/deps.sh installs it)"
  echo "0 passed, 1 failed"
  exit 1
fi
exec node tests/interop/chat-app.js
