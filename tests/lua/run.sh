#!/bin/sh
# Runs every tests/lua/*_spec.lua with busted on Lua 5.4 (TAP output), against lua/ and the
# C module build/lua/plume/core.so, and ends with the line "N passed, N failed" that
# tests/run.sh sums. Skipped (pending) specs count as neither; a busted run that fails
# without reporting a failed test (a crash, a spec that does not load) counts as one.

cd "$(dirname "$0")/../.." || exit 1

LUA_PATH="lua/?.lua;lua/?/init.lua;;"
LUA_CPATH="build/lua/?.so;;"
export LUA_PATH LUA_CPATH

out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT

busted --lua=lua5.4 -o TAP tests/lua >"$out" 2>&1
rc=$?
cat "$out"

passed=$(grep -E '^ok [0-9]+' "$out" | grep -c -v '# SKIP')
skipped=$(grep -E '^ok [0-9]+' "$out" | grep -c '# SKIP')
failed=$(grep -c -E '^not ok [0-9]+' "$out")
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
fi

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
