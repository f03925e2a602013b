#!/bin/bash
# Benchmarks (not tests): Plume against the Node.js engine.io/socket.io peers, measured in the
# same run on this machine, printed as ratios. usage: bash bench/run.sh [eio|sio|all]
set -e
cd "$(dirname "$0")/.."
make --no-print-directory all >/dev/null
(cd bench && [ -d node_modules ] || npm install --no-audit --no-fund --loglevel=error >/dev/null)
levels=${1:-all}
[ "$levels" = all ] && levels="eio sio"
ulimit -n 20000 2>/dev/null || true
N=${IDLE_CONNECTIONS:-5000}

start_plume() {
  build/plume bench/app --port 3451 --no-watch --log-level warn &
  plume_pid=$!
}
start_node() {
  node bench/node-peer.js 3452 >/dev/null &
  node_pid=$!
}
wait_port() { for i in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
field() { echo "$1" | sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

for level in $levels; do
  start_plume; wait_port 3451
  p=$(node bench/idle.js $plume_pid 3451 $N $level); kill $plume_pid; wait $plume_pid 2>/dev/null || true
  start_node; wait_port 3452
  n=$(node bench/idle.js $node_pid 3452 $N $level); kill $node_pid; wait $node_pid 2>/dev/null || true
  pb=$(field "$p" bytesPerConnection); nb=$(field "$n" bytesPerConnection)
  echo "idle $level x$N: plume $pb B/conn, node $nb B/conn, node/plume = $(ratio $nb $pb)"

  start_plume; wait_port 3451
  p=$(node bench/throughput.js $plume_pid 3451 $level); kill $plume_pid; wait $plume_pid 2>/dev/null || true
  start_node; wait_port 3452
  n=$(node bench/throughput.js $node_pid 3452 $level); kill $node_pid; wait $node_pid 2>/dev/null || true
  echo "echo $level: plume $(field "$p" perSecond) msg/s ($(field "$p" perCpuSecond)/cpu-s), node $(field "$n" perSecond) msg/s ($(field "$n" perCpuSecond)/cpu-s), plume/node per cpu = $(ratio $(field "$p" perCpuSecond) $(field "$n" perCpuSecond))"
done
