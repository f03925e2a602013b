#!/bin/sh
# The Lua rock as a user gets it: `luarocks make rockspec/plume-scm-1.rockspec` (Debian's
# luarocks, system libraries, nothing downloaded) from a copy of the sources into a
# throw-away tree, then stock lua5.4 serving tests/interop/apps/rock with
# require("plume").run (rock-lua.js checks it with the Feathers client on port 3322) until
# SIGTERM, after which run returns 0. Under build-asan the rock is built with the
# sanitizers (luarocks variables) and lua5.4 runs with libasan preloaded.
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok $((passed + failed)) - $1"; }
not_ok() { # what, log
  failed=$((failed + 1))
  echo "not ok $((passed + failed)) - $1"
  [ -f "$2" ] && tail -n 15 "$2" | sed 's/^/#   /'
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

SANFLAGS=
PRELOAD=
case ${PLUME_BUILD:-build} in
*asan*)
  SANFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
  PRELOAD=$(gcc -print-file-name=libasan.so)
  ;;
esac

mkdir -p "$T/src"
cp -R Makefile runtime lua rockspec "$T/src/"
# luarocks' own variables, with the sanitizers added under build-asan.
set -- "CFLAGS=-O2 -fPIC $SANFLAGS" "LIBFLAG=-shared $SANFLAGS"
if (cd "$T/src" && MAKEFLAGS=-j4 luarocks --lua-version=5.4 make \
  rockspec/plume-scm-1.rockspec --tree "$T/tree" "$@") >"$T/luarocks.log" 2>&1; then
  ok "luarocks make rockspec/plume-scm-1.rockspec --tree (system libraries only)"
else
  not_ok "luarocks make rockspec/plume-scm-1.rockspec --tree" "$T/luarocks.log"
  finish
fi

CORE=$T/tree/lib/lua/5.4/plume/core.so
if [ -f "$CORE" ] && [ -f "$T/tree/share/lua/5.4/plume/init.lua" ] &&
  [ -f "$T/tree/share/lua/5.4/plume/adapters/memory.lua" ] &&
  luarocks --lua-version=5.4 --tree "$T/tree" list 2>/dev/null | grep -q '^plume' &&
  ! ldd "$CORE" | grep -q liblua; then
  ok "the tree has plume/core.so (no liblua linked) and lua/plume; luarocks lists plume"
else
  { ls -R "$T/tree"; ldd "$CORE"; } >"$T/tree.log" 2>&1
  not_ok "the rock's files" "$T/tree.log"
fi

# The launcher the harness starts as `launcher APP --port N --no-watch`.
cat >"$T/serve.lua" <<'LUA'
local dir, port = arg[1], tonumber(arg[3])
ROCK_LAUNCHER = "set by the launcher before plume.run"
local code, err = require("plume").run(dir, { port = port, host = "127.0.0.1", watch = false })
io.stderr:write("plume.run returned ", tostring(code), " ", tostring(err or ""), "\n")
os.exit(code == 0 and 0 or 1)
LUA
cat >"$T/serve" <<SH
#!/bin/sh
LUA_PATH="$T/tree/share/lua/5.4/?.lua;$T/tree/share/lua/5.4/?/init.lua;;" \
LUA_CPATH="$T/tree/lib/lua/5.4/?.so;;" ${PRELOAD:+LD_PRELOAD=$PRELOAD ASAN_OPTIONS=detect_leaks=0:halt_on_error=1} \
exec lua5.4 "$T/serve.lua" "\$@"
SH
chmod +x "$T/serve"

PLUME_BIN="$T/serve" ROCK_TREE="$T/tree" node tests/interop/rock-lua.js >"$T/node.log" 2>&1
cat "$T/node.log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$T/node.log" | tail -n 1)
np=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
nf=$(echo "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
passed=$((passed + ${np:-0}))
failed=$((failed + ${nf:-1}))

LOG=$ROOT/tests/artifacts/rock-lua.server.log
if grep -q '^plume.run returned 0 $' "$LOG" 2>/dev/null; then
  ok "after SIGTERM, plume.run returned 0 to the launcher"
else
  not_ok "after SIGTERM, plume.run returned 0 to the launcher" "$LOG"
fi
finish
