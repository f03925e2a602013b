#!/bin/sh
# The C embedding API as a user gets it: `make install DESTDIR=...` of the build in
# PLUME_BUILD (binary, libplume.a, libplume.so with its soname, plume.h, plume.pc, the Lua
# modules); examples/embed-c built against that staged install through pkg-config, shared
# and static; the shared one checked with the Feathers client (embed-c.js, port 3321), the
# static one and the installed plume command served briefly (ports 3323, 3324); `make
# uninstall` leaving nothing behind. Under build-asan the library and the example are the
# sanitizer builds. Needs tests/node_modules (make npm).
cd "$(dirname "$0")/../.." || exit 1
B=${PLUME_BUILD:-build}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
SAN=
XCFLAGS=
case $B in
*asan*)
  SAN=1
  XCFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
  ;;
esac
STAGE=$T/stage
P=$STAGE/usr/local
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

if make --no-print-directory install B="$B" SAN="$SAN" DESTDIR="$STAGE" PREFIX=/usr/local \
  >"$T/install.log" 2>&1; then
  ok "make install DESTDIR=... PREFIX=/usr/local"
else
  not_ok "make install DESTDIR=... PREFIX=/usr/local" "$T/install.log"
  finish
fi

missing=
for f in bin/plume include/plume.h lib/libplume.a lib/libplume.so.0.1.0 lib/libplume.so.0 \
  lib/libplume.so lib/pkgconfig/plume.pc share/lua/5.4/plume/init.lua \
  share/lua/5.4/plume/cservice.lua lib/lua/5.4/plume/core.so; do
  [ -e "$P/$f" ] || missing="$missing $f"
done
soname=$(objdump -p "$P/lib/libplume.so.0.1.0" 2>/dev/null | awk '/SONAME/ {print $2}')
if [ -z "$missing" ] && [ "$soname" = libplume.so.0 ] && [ -L "$P/lib/libplume.so" ] &&
  ! grep -q "$STAGE" "$P/lib/pkgconfig/plume.pc"; then
  ok "installed files, soname libplume.so.0, plume.pc names no staging path"
else
  echo "#   missing:$missing soname: $soname" >"$T/files.log"
  not_ok "installed files" "$T/files.log"
fi

# plume.pc is relative to ${prefix}: point it at the staging folder.
mkdir -p "$T/pc"
sed "s|^prefix=.*|prefix=$P|" "$P/lib/pkgconfig/plume.pc" >"$T/pc/plume.pc"
export PKG_CONFIG_PATH="$T/pc"
if [ "$(pkg-config --modversion plume)" = 0.1.0 ] &&
  pkg-config --cflags plume | grep -q -- "-I$P/include" &&
  [ "$(pkg-config --variable=luadir plume)" = "$P/share/lua/5.4" ]; then
  ok "pkg-config finds plume: version, flags, luadir"
else
  pkg-config --modversion --cflags --libs plume >"$T/pc.log" 2>&1
  not_ok "pkg-config finds plume" "$T/pc.log"
fi

mkdir -p "$T/shared" "$T/static"
if make --no-print-directory -C examples/embed-c OUT="$T/shared" \
  CFLAGS="-O1 -g -Wall -Wextra -Werror $XCFLAGS" >"$T/build.log" 2>&1 &&
  make --no-print-directory -C examples/embed-c OUT="$T/static" STATIC=1 \
    CFLAGS="-O1 -g -Wall -Wextra -Werror $XCFLAGS" >>"$T/build.log" 2>&1; then
  ok "examples/embed-c builds with pkg-config, shared and static"
else
  not_ok "examples/embed-c builds with pkg-config" "$T/build.log"
  finish
fi

if ldd "$T/shared/plume-embed" | grep -q "$P/lib/libplume.so.0" &&
  ! ldd "$T/static/plume-embed" | grep -q libplume &&
  "$T/static/plume-embed" --version | grep -q "libplume 0.1.0"; then
  ok "the shared build loads the staged libplume.so.0, the static one none"
else
  ldd "$T/shared/plume-embed" "$T/static/plume-embed" >"$T/ldd.log" 2>&1
  not_ok "the example links libplume as asked" "$T/ldd.log"
fi

# Serves app on port with a binary for one Socket.IO handshake, then SIGTERM: exit 0.
smoke() { # what, port, binary, app
  "$3" "$4" --port "$2" --no-watch >"$T/smoke.log" 2>&1 &
  pid=$!
  node -e '
    const url = `http://127.0.0.1:${process.argv[1]}/socket.io/?EIO=4&transport=polling`;
    const end = Date.now() + 10000;
    (async function poll() {
      try {
        const text = await (await fetch(url)).text();
        process.exit(text.startsWith("0{") ? 0 : 1);
      } catch (e) {
        if (Date.now() > end) process.exit(1);
        setTimeout(poll, 50);
      }
    })();' "$2" >>"$T/smoke.log" 2>&1
  answered=$?
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
  code=$?
  if [ "$answered" -eq 0 ] && [ "$code" -eq 0 ] &&
    ! grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/smoke.log"; then
    ok "$1"
  else
    echo "exit code $code" >>"$T/smoke.log"
    not_ok "$1" "$T/smoke.log"
  fi
}

smoke "the static example serves (the Lua folder from pkg-config), exits 0 on SIGTERM" 3323 \
  "$T/static/plume-embed" examples/embed-c/app
smoke "the installed plume command finds the installed Lua modules, exits 0 on SIGTERM" 3324 \
  "$P/bin/plume" tests/interop/apps/rock

PLUME_BIN="$T/shared/plume-embed" node tests/interop/embed-c.js >"$T/node.log" 2>&1
cat "$T/node.log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$T/node.log" | tail -n 1)
np=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
nf=$(echo "$line" | sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p')
passed=$((passed + ${np:-0}))
failed=$((failed + ${nf:-1}))

if make --no-print-directory uninstall DESTDIR="$STAGE" PREFIX=/usr/local >"$T/uninstall.log" 2>&1 &&
  [ -z "$(find "$STAGE" -type f -o -type l)" ]; then
  ok "make uninstall removes every installed file"
else
  find "$STAGE" -type f -o -type l >>"$T/uninstall.log"
  not_ok "make uninstall removes every installed file" "$T/uninstall.log"
fi
finish
