#!/bin/sh
# Installs the Debian packages Plume builds and tests with, when any is missing.
# Uses apt-get as root or through sudo; otherwise prints the exact command and stops.
set -e

PKGS="build-essential pkg-config liblua5.4-dev lua5.4 libuv1-dev libwslay-dev lua-cjson \
node-llhttp libssl-dev libcrypt-dev lua-busted lua-check luarocks clang libclang-rt-14-dev clang-format \
nodejs npm python3 python3-socketio python3-websocket python3-requests chromium"

missing=""
for p in $PKGS; do
  # nodejs and npm may come from another Node.js distribution: accept the commands.
  case $p in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
    python3) command -v /usr/bin/python3 >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

[ -z "$missing" ] && exit 0

cmd="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then
  sh -c "$cmd"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo sh -c "$cmd"
else
  echo "plume: missing Debian packages:$missing" >&2
  echo "plume: run as root: $cmd" >&2
  exit 1
fi
