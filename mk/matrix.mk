# The Lua versions the rockspec claims (lua >= 5.1), included by the Makefile:
#
#   make matrix       build the C core for Lua 5.1, 5.2 and 5.3 (build-lua5.x/) and run every
#                     spec with that interpreter as the client's host (make matrix-5.1: one)
#
# Lua 5.4 and LuaJIT (inside nginx) are `make specs`. The emulator is nginx + LuaJIT in every
# case, and the programs the specs start (bin/wdt, the examples) run under lua5.4 with
# build/: only the host of the library the specs load in-process changes (so
# spec/emulator_doc_spec.lua, a minute of one bin/wdt run, runs under 5.4 only). The specs
# keep to what every version has (spec/support/compat.lua; the independent MD5 of
# spec/support/signer.lua picks 5.3's operators, bit32 or arithmetic).
MATRIX_LUAS ?= 5.1 5.2 5.3
MATRIX_SPECS ?= spec
# Specs whose code under test never runs in the host Lua: the library inside nginx (LuaJIT),
# the crash tests' bin/wdt runs (lua5.4), and the emulator's own specs (nginx; in the host
# they run only the specs' own HTTP and signer, none of wdt). They run once, in `make specs`.
MATRIX_EXCLUDE ?= --exclude-pattern=openresty_ --exclude-pattern=crash_spec \
  --exclude-pattern=emulator_spec --exclude-pattern=emulator_vendor_spec \
  --exclude-pattern=query_emulator_spec --exclude-pattern=emulator_doc_spec
MATRIX_DEB_PACKAGES = lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev

.PHONY: matrix matrix-deps $(addprefix matrix-,$(MATRIX_LUAS))

matrix-deps: deps
	@sh mk/apt-install $(MATRIX_DEB_PACKAGES)

# The versions run at once (their specs mostly wait on the network and on timers), each
# with its own lock folder; make's -Otarget keeps each one's output together.
matrix:
	@$(MAKE) --no-print-directory -j$(words $(MATRIX_LUAS)) -Otarget $(addprefix matrix-,$(MATRIX_LUAS))

# build-luajit is what spec/openresty_spec.lua loads inside nginx; build/ is what the specs'
# subprocesses (bin/wdt, the examples: lua5.4) load.
$(addprefix matrix-,$(MATRIX_LUAS)): matrix-%: matrix-deps build build-luajit $(LOCALE_DIR)/de_DE.UTF-8
	cmake -S . -B build-lua$* -DWDT_LUA=$* -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-lua$* -j2
	@echo "== specs with Lua $* as the client's host"
	LOCPATH=$(LOCALE_DIR) WDT_LOCK_DIR=$(CURDIR)/build-lua$*/locks lua$* /usr/bin/busted --ignore-lua --cpath='./build-lua$*/?.so' -o utfTerminal $(MATRIX_EXCLUDE) \
	  $(MATRIX_SPECS)
