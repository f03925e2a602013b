-- The Plume rock: the plume.core C module (the whole C runtime) and the Lua framework
-- lua/plume, built by the project's Makefile (`make rock`, `make rock-install`) against
-- system libraries only. From a checkout:
--
--   luarocks --lua-version=5.4 make rockspec/plume-scm-1.rockspec [--tree DIR]
--   lua5.4 -e 'require("plume").run("path/to/app", { port = 3030 })'
--
-- Debian 12: apt-get install luarocks liblua5.4-dev libuv1-dev libwslay-dev libssl-dev
-- libcrypt-dev node-llhttp (llhttp's C sources are compiled into the module).
rockspec_format = "3.0"
package = "plume"
version = "scm-1"

-- `luarocks make` builds the checkout it runs in: there is no public repository yet for
-- `luarocks build` to fetch, so the URL only satisfies the format.
source = {
  url = "git+file://.",
}

description = {
  summary = "Socket.IO server and Feathers-style services in Lua on a C runtime",
  detailed = [[
Plume is a small C runtime (libuv, llhttp, wslay, OpenSSL) that speaks Engine.IO and
Socket.IO v4/v5 and runs Feathers-style services written in Lua: app:use, hooks,
events, channels, the memory adapter and authentication. require("plume").run(dir)
serves an app folder (app.lua, config/, services/, public/) from stock Lua 5.4.
]],
  license = "MIT",
  labels = { "socket.io", "feathers", "websocket", "libuv" },
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

external_dependencies = {
  LIBUV = { header = "uv.h" },
  WSLAY = { header = "wslay/wslay.h" },
  OPENSSL = { header = "openssl/hmac.h" },
}

build = {
  type = "make",
  build_target = "rock",
  install_target = "rock-install",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CPPFLAGS = "-I$(LIBUV_INCDIR) -I$(WSLAY_INCDIR) -I$(OPENSSL_INCDIR)",
    LDFLAGS = "-L$(LIBUV_LIBDIR) -L$(WSLAY_LIBDIR) -L$(OPENSSL_LIBDIR)",
  },
  install_variables = {
    INST_PREFIX = "$(PREFIX)",
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_BINDIR = "$(BINDIR)",
  },
}
