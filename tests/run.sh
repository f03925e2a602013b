#!/bin/sh
# Runs every suite against each build directory given (build, build-asan) and ends with one
# line "N passed, N failed" summing them all. Each suite prints its own closing line
# "N passed, N failed"; a suite that exits non-zero without one counts as one failure.
#
# Suites: C unit tests ($B/tests/test_*), fuzz corpus replays ($B/tests/replay_*), the busted
# specs (tests/lua, once), and the interop scripts tests/interop/*.sh, which get the server
# binary in PLUME_BIN (and PLUME_BUILD) and start what they need on their own ports.
# SUITE=pattern runs only the suites whose name contains it.

cd "$(dirname "$0")/.." || exit 1
total_pass=0
total_fail=0
mkdir -p tests/artifacts
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"

run_suite() { # name, command...
  name=$1; shift
  case "$name" in *"${SUITE:-}"*) ;; *) return ;; esac
  log="tests/artifacts/$(echo "$name" | tr '/ ' '__').log"
  start=$(date +%s)
  "$@" >"$log" 2>&1
  rc=$?
  line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | sed 's/^[A-Za-z]*: //')
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  f=$(echo "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
  [ -n "$p" ] || p=0
  [ -n "$f" ] || f=0
  if grep -q -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
    echo "  sanitizer report in $name:"; grep -m 5 -E 'ERROR:|runtime error:' "$log" | sed 's/^/    /'
    f=$((f + 1))
  elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    f=1
  fi
  if [ "$f" -gt 0 ]; then
    echo "FAIL $name: $p passed, $f failed ($(($(date +%s) - start))s, log $log)"
    grep -E '^not ok|FAIL|#   ' "$log" | head -n 15 | sed 's/^/    /'
  else
    echo "ok   $name: $p passed ($(($(date +%s) - start))s)"
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
}

run_replay() { # binary, corpus dir
  set -- "$1" "$2"/*
  "$@"
}

for B in "$@"; do
  export PLUME_BUILD="$B" PLUME_BIN="$(pwd)/$B/plume"
  for t in "$B"/tests/test_*; do
    [ -x "$t" ] && run_suite "$B/unit/$(basename "$t")" "$t"
  done
  for t in "$B"/tests/replay_*; do
    [ -x "$t" ] || continue
    n=$(basename "$t" | sed 's/^replay_//')
    [ -d "tests/fuzz/corpus/$n" ] && run_suite "$B/replay/$n" run_replay "$t" "tests/fuzz/corpus/$n"
  done
  for s in tests/interop/*.sh; do
    [ -f "$s" ] && run_suite "$B/interop/$(basename "$s" .sh)" sh "$s"
  done
done

if [ -d tests/lua ] && ls tests/lua/*_spec.lua >/dev/null 2>&1; then
  run_suite "lua/busted" sh tests/lua/run.sh
fi

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
