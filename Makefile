# Plume: a C runtime that speaks Socket.IO and runs Feathers-style services in Lua.
#
#   make            build/plume, build/libplume.a, build/libplume.so, build/plume.pc
#   make run        install missing packages, build, serve the default app on port 3030
#                   (npm: the page's @feathersjs/client comes from tests/node_modules)
#   make test       install missing packages, build, run every suite (normal + ASan/UBSan)
#   make asan       the sanitizer build in build-asan/
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS
#   make lint       clang-format check, luacheck, exported-symbol check
#   make install    PREFIX, DESTDIR, BINDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR, LUA_LMOD, LUA_CMOD
#   make rock       the rock's plume/core.so in build-rock/ (luarocks make rockspec/... runs it,
#                   then make rock-install with INST_LIBDIR and INST_LUADIR)

PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
LUA_VERSION  ?= 5.4
LUA_LMOD     ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LUA_CMOD     ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
PKG_CONFIG   ?= pkg-config
LUA_PC       ?= lua5.4
LLHTTP_DIR   ?= /usr/share/llhttp
LLHTTP_INC   ?= /usr/share/include/llhttp
PORT         ?= 3030
FUZZ_SECONDS ?= 20
B            ?= build
SAN          ?=
OPT          ?= -O2 -g
# The rock: luarocks passes these (style.md I); LUA_INCDIR adds -I when set. NO_DEPS=1
# builds without scripts/deps.sh (luarocks builds check their own dependencies).
LUA_INCDIR   ?=
LIBFLAG      ?= -shared
INST_LIBDIR  ?= $(LUA_CMOD)
INST_LUADIR  ?= $(LUA_LMOD)
NO_DEPS      ?=

MAJOR := 0
MINOR := 1
PATCH := 0
VERSION := $(MAJOR).$(MINOR).$(PATCH)

ifeq ($(V),1)
Q :=
else
Q := @
endif

DEPS_OK := $(if $(NO_DEPS),,$(B)/.deps-ok)
DEP_CFLAGS = $(shell $(PKG_CONFIG) --cflags libuv $(LUA_PC) libcrypto 2>/dev/null) -I$(LLHTTP_INC)
DEP_LIBS = $(shell $(PKG_CONFIG) --libs libuv $(LUA_PC) libcrypto 2>/dev/null) -lwslay -lcrypt -lm -ldl -lpthread
# A Lua C module links no Lua: the interpreter that loads it provides the API.
MOD_LIBS = $(shell $(PKG_CONFIG) --libs libuv libcrypto 2>/dev/null) -lwslay -lcrypt -lm -ldl -lpthread

PLUME_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden \
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
  -Wno-unused-parameter -DPLUME_VERSION_STRING='"$(VERSION)"'
ifeq ($(SAN),1)
PLUME_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SAN_LDFLAGS := -fsanitize=address,undefined
OPT := -O1 -g
endif
ALL_CFLAGS = $(OPT) $(PLUME_CFLAGS) -Iruntime $(DEP_CFLAGS) $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) $(CPPFLAGS) $(CFLAGS)

LIB_SRC    := $(filter-out runtime/main.c,$(wildcard runtime/*.c))
LIB_OBJ    := $(patsubst runtime/%.c,$(B)/obj/%.o,$(LIB_SRC))
LLHTTP_OBJ := $(patsubst $(LLHTTP_DIR)/%.c,$(B)/obj/llhttp/%.o,$(wildcard $(LLHTTP_DIR)/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(patsubst tests/fuzz/%.c,$(B)/tests/replay_%,$(FUZZ_SRC))

.PHONY: all deps run test check asan valgrind fuzz lint check-symbols install uninstall clean npm rock rock-install

all: $(B)/plume $(B)/libplume.a $(B)/libplume.so $(B)/plume.pc $(B)/lua/plume/core.so

deps: $(DEPS_OK)
ifneq ($(DEPS_OK),)
$(DEPS_OK): scripts/deps.sh
	$(Q)sh scripts/deps.sh
	$(Q)mkdir -p $(B) && touch $@
endif

$(B)/obj/%.o: runtime/%.c runtime/internal.h runtime/plume.h | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# llhttp is third-party generated C: compiled into libplume with its own warnings off.
$(B)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $@"
	$(Q)$(CC) $(OPT) -fPIC -fvisibility=hidden -w $(filter -fsanitize%,$(PLUME_CFLAGS)) -I$(LLHTTP_INC) -c $< -o $@

$(B)/libplume.a: $(LIB_OBJ) $(LLHTTP_OBJ)
	@[ "$(V)" = 1 ] || echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/libplume.so: $(LIB_OBJ) $(LLHTTP_OBJ)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) -shared -Wl,-soname,libplume.so.$(MAJOR) $(SAN_LDFLAGS) $(LDFLAGS) -o $(B)/libplume.so.$(VERSION) $^ $(DEP_LIBS)
	$(Q)ln -sf libplume.so.$(VERSION) $(B)/libplume.so.$(MAJOR) && ln -sf libplume.so.$(VERSION) $@

# The Lua rock's C module: the whole runtime as plume/core.so (luaopen_plume_core).
$(B)/lua/plume/core.so: $(LIB_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(LIBFLAG) $(SAN_LDFLAGS) $(LDFLAGS) -o $@ $^ $(MOD_LIBS)

$(B)/plume: runtime/main.c $(B)/libplume.a
	@[ "$(V)" = 1 ] || echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -DPLUME_LUA_PATH='"$(CURDIR)/lua"' -o $@ $< $(B)/libplume.a $(SAN_LDFLAGS) $(LDFLAGS) $(DEP_LIBS) -Wl,-E

# Paths under PREFIX are written relative to ${prefix}, so that pkg-config --define-prefix
# (or --define-variable=prefix=...) finds a staged install (DESTDIR).
# make install writes it afresh, so that it names the PREFIX given to make install.
PC_REL = $(patsubst $(PREFIX)%,$${prefix}%,$(1))
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(call PC_REL,$(LIBDIR))|g' \
  -e 's|@INCLUDEDIR@|$(call PC_REL,$(INCLUDEDIR))|g' -e 's|@LUA_LMOD@|$(call PC_REL,$(LUA_LMOD))|g' \
  -e 's|@LUA_CMOD@|$(call PC_REL,$(LUA_CMOD))|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@LUA_PC@|$(LUA_PC)|g'
$(B)/plume.pc: runtime/plume.pc.in Makefile
	@mkdir -p $(dir $@)
	$(Q)$(PC_SED) $< > $@

# Unit tests may #include a runtime/*.c to reach its statics; the archive fills in the rest.
$(B)/tests/%: tests/unit/%.c tests/unit/check.h $(B)/libplume.a
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Werror -Itests/unit -o $@ $< $(B)/libplume.a $(SAN_LDFLAGS) $(LDFLAGS) $(DEP_LIBS)

# Fuzz targets replayed over their corpus under gcc (part of `make test`).
$(B)/tests/replay_%: tests/fuzz/%.c tests/fuzz/replay.h $(B)/libplume.a
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -DPLUME_FUZZ_MAIN -Itests/unit -o $@ $< $(B)/libplume.a $(SAN_LDFLAGS) $(LDFLAGS) $(DEP_LIBS)

unit: $(UNIT_BIN) $(REPLAY_BIN)

asan:
	$(Q)$(MAKE) --no-print-directory B=build-asan SAN=1 all unit

npm: tests/node_modules/.ok
tests/node_modules/.ok: tests/package.json tests/package-lock.json
	$(Q)cd tests && npm ci --no-audit --no-fund --loglevel=error
	$(Q)touch $@

run: all npm
	$(B)/plume . --port $(PORT)

test check: all unit npm
	$(Q)$(MAKE) --no-print-directory B=build-asan SAN=1 all unit
	$(Q)sh tests/run.sh build build-asan

valgrind:
	$(Q)$(MAKE) --no-print-directory B=build-valgrind OPT='-O0 -g' all unit
	$(Q)VALGRIND=1 sh tests/run.sh build-valgrind

FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE -DPLUME_VERSION_STRING='"$(VERSION)"' -Iruntime -Itests/unit $(DEP_CFLAGS)
fuzz: | $(DEPS_OK)
	$(Q)mkdir -p build-fuzz
	$(Q)set -e; for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "  FUZZ    $$n ($(FUZZ_SECONDS)s)"; \
	  clang $(FUZZ_CFLAGS) -o build-fuzz/$$n $$f $(LIB_SRC) $(wildcard $(LLHTTP_DIR)/*.c) -I$(LLHTTP_INC) $(DEP_LIBS); \
	  mkdir -p build-fuzz/corpus-$$n; \
	  build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	    $$( [ -f tests/fuzz/$$n.dict ] && echo -dict=tests/fuzz/$$n.dict ) \
	    build-fuzz/corpus-$$n tests/fuzz/corpus/$$n >build-fuzz/$$n.log 2>&1 \
	    || { tail -40 build-fuzz/$$n.log; exit 1; }; \
	  tail -1 build-fuzz/$$n.log; done

lint: check-symbols
	$(Q)clang-format --dry-run --Werror runtime/*.c runtime/*.h tests/unit/*.c tests/fuzz/*.c
	$(Q)luacheck -q --std lua54 lua app.lua config services examples tests/lua bench/app

# What the shared library exports: only plume_* and luaopen_plume_* (internals are hidden).
check-symbols: $(B)/libplume.so
	$(Q)bad=$$(nm -D --defined-only $(B)/libplume.so | awk 'NF==3 {print $$3}' | grep -v -E '^(plume_|luaopen_plume)' || true); \
	  if [ -n "$$bad" ]; then echo "exported symbols outside plume_*:"; echo "$$bad"; exit 1; fi; \
	  echo "check-symbols: ok"

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	  $(DESTDIR)$(LUA_LMOD)/plume $(DESTDIR)$(LUA_CMOD)/plume
	install -m 755 $(B)/plume $(DESTDIR)$(BINDIR)/plume
	install -m 644 $(B)/libplume.a $(DESTDIR)$(LIBDIR)/libplume.a
	install -m 755 $(B)/libplume.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libplume.so.$(VERSION)
	ln -sf libplume.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libplume.so.$(MAJOR)
	ln -sf libplume.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libplume.so
	install -m 644 runtime/plume.h $(DESTDIR)$(INCLUDEDIR)/plume.h
	$(PC_SED) runtime/plume.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/plume.pc
	cp -R lua/plume/. $(DESTDIR)$(LUA_LMOD)/plume/
	install -m 755 $(B)/lua/plume/core.so $(DESTDIR)$(LUA_CMOD)/plume/core.so

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/plume $(DESTDIR)$(LIBDIR)/libplume.a $(DESTDIR)$(LIBDIR)/libplume.so* \
	  $(DESTDIR)$(INCLUDEDIR)/plume.h $(DESTDIR)$(PKGCONFIGDIR)/plume.pc $(DESTDIR)$(LUA_CMOD)/plume/core.so
	rm -rf $(DESTDIR)$(LUA_LMOD)/plume
	-rmdir $(DESTDIR)$(LUA_CMOD)/plume 2>/dev/null

# The rock (rockspec/plume-scm-1.rockspec, build.type "make"): plume/core.so from the system
# libraries only, in build-rock/ with luarocks' CFLAGS, LUA_INCDIR and LIBFLAG; then the C
# module and lua/plume into the rock tree. Nothing is downloaded or installed system-wide.
rock:
	$(Q)$(MAKE) --no-print-directory B=build-rock NO_DEPS=1 build-rock/lua/plume/core.so

rock-install:
	install -d $(DESTDIR)$(INST_LIBDIR)/plume $(DESTDIR)$(INST_LUADIR)/plume
	install -m 755 build-rock/lua/plume/core.so $(DESTDIR)$(INST_LIBDIR)/plume/core.so
	cp -R lua/plume/. $(DESTDIR)$(INST_LUADIR)/plume/

clean:
	rm -rf build build-asan build-valgrind build-fuzz build-rock
