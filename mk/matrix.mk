# The Lua versions the rockspec claims (lua >= 5.1), included by the Makefile:
#
#   make matrix       build the C core for Lua 5.1, 5.2 and 5.3 (build-lua5.x/) and run the
#                     specs with that interpreter as the client's host (make matrix-5.3: one)
#
# Lua 5.4 and LuaJIT (inside nginx) are `make specs`. The emulator is nginx + LuaJIT in every
# case: only the client's side changes host. Lua 5.3 runs every spec. Lua 5.1 and 5.2 run the
# specs that need no emulator (codec, core, signing, store): the others, and the independent
# MD5 in spec/support/signer.lua, use 5.3 syntax (bitwise operators, //); the library itself
# is written in the 5.1 subset and runs them all under LuaJIT.
MATRIX_LUAS ?= 5.1 5.2 5.3
MATRIX_SPECS_5.3 ?= spec
MATRIX_SPECS_5.1 ?= spec/json_spec.lua spec/core_spec.lua spec/sign_spec.lua spec/store_spec.lua
MATRIX_SPECS_5.2 ?= $(MATRIX_SPECS_5.1)
MATRIX_DEB_PACKAGES = lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev

.PHONY: matrix matrix-deps $(addprefix matrix-,$(MATRIX_LUAS))

matrix-deps: deps
	@sh mk/apt-install $(MATRIX_DEB_PACKAGES)

matrix: $(addprefix matrix-,$(MATRIX_LUAS))

# build-luajit is what spec/openresty_spec.lua loads inside nginx; build/ is what the specs'
# subprocesses (bin/wdt, the examples: lua5.4) load.
$(addprefix matrix-,$(MATRIX_LUAS)): matrix-%: matrix-deps build build-luajit $(LOCALE_DIR)/de_DE.UTF-8
	cmake -S . -B build-lua$* -DWDT_LUA=$* -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-lua$* -j2
	@echo "== specs with Lua $* as the client's host"
	LOCPATH=$(LOCALE_DIR) lua$* /usr/bin/busted --ignore-lua --cpath='./build-lua$*/?.so' -o utfTerminal \
	  $(MATRIX_SPECS_$*)
