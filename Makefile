# Thin wrapper for the README commands. CMakeLists.txt is the build definition.
#   make demo   install what is missing, build, run the whole cycle against the emulator
#   make check  the quick path: build, lint, run the specs (about 4 minutes)
#   make test   check, then the specs under Lua 5.1, 5.2 and 5.3, under sanitizers and valgrind,
#               and a brief fuzz (installs clang and valgrind; several minutes)
#   eval "$$(make env)"   LUA_PATH/LUA_CPATH/PATH for using this checkout without installing
MAKEFLAGS  += --no-print-directory
LUA        ?= lua5.4
BUSTED     ?= $(LUA) /usr/bin/busted
BUILD      ?= build
DEB_PACKAGES = lua5.4 liblua5.4-dev lua-cjson lua-busted luarocks libcurl4-openssl-dev \
               libssl-dev nginx-light libnginx-mod-http-lua libluajit2-5.1-dev lua-socket \
               lua-check cmake gcc make curl zlib1g-dev locales gettext-base openssl procps \
               redis-server faketime strace

# The version, from its one source (CMakeLists.txt's project line).
WDT_VERSION := $(shell sed -n "/^project.wdt VERSION/s/.*VERSION \([0-9.]*\) .*/\1/p" CMakeLists.txt)

.PHONY: all deps build build-luajit check test lint specs demo bench fuzz clean env version

all: build

# Installs only the Debian packages that are missing (apt-get needs root).
deps:
	@sh mk/apt-install $(DEB_PACKAGES)

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j2

build-luajit: deps
	cmake -S . -B build-luajit -DWDT_LUA=luajit -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-luajit -j2

lint: deps
	luacheck -q src emulator spec examples bench bin/wdt

# A decimal-comma locale, so the codec's locale independence is really tested.
LOCALE_DIR = $(CURDIR)/$(BUILD)/locale
$(LOCALE_DIR)/de_DE.UTF-8:
	mkdir -p $(LOCALE_DIR)
	localedef -i de_DE -f UTF-8 $@

# The run locks of the specs' syncs in this tree's build folder: two checkouts running
# their specs at once do not share /tmp/wdt-locks-UID.
# spec/emulator_doc_spec.lua waits out a real 60-second rate window, idle: it runs beside the
# others (its own lock folder and log, shown after them), so the suite takes that minute less.
SLOW_SPEC = spec/emulator_doc_spec.lua
specs: build build-luajit $(LOCALE_DIR)/de_DE.UTF-8
	@LOCPATH=$(LOCALE_DIR) WDT_LOCK_DIR=$(CURDIR)/$(BUILD)/locks-slow $(BUSTED) $(SLOW_SPEC) \
	  >$(BUILD)/slow-spec.log 2>&1 & slow=$$!; \
	LOCPATH=$(LOCALE_DIR) WDT_LOCK_DIR=$(CURDIR)/$(BUILD)/locks $(BUSTED) --exclude-pattern=emulator_doc_spec; \
	rc=$$?; wait $$slow; slow_rc=$$?; \
	echo "== $(SLOW_SPEC) (run beside the others)"; cat $(BUILD)/slow-spec.log; \
	test $$rc = 0 && test $$slow_rc = 0

# The quick path: build (Lua 5.4 and LuaJIT), lint, the specs.
check: lint specs

# Then the specs under the other Lua versions the rockspec claims (mk/matrix.mk), under
# ASan/UBSan and valgrind, and a brief fuzz (mk/reliability.mk).
test: check matrix reliability

# For using a checkout without installing:  eval "$$(make env)"
env:
	@test -f $(BUILD)/wdt/core.so || echo "make env: no $(BUILD)/wdt/core.so yet, run 'make build'" >&2
	@echo 'export LUA_PATH="$(CURDIR)/src/?.lua;$(CURDIR)/src/?/init.lua;;"'
	@echo 'export LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"'
	@echo 'export PATH="$(CURDIR)/bin:$$PATH"'

version:
	@echo $(WDT_VERSION)

# The main job against the emulator: 2,000 shipments, a few failed and deferred on purpose.
demo: build
	sh examples/demo.sh

clean:
	rm -rf $(BUILD) build-luajit build-asan build-fuzz build.luarocks build-lua5.1 build-lua5.3

# Targets of their own topics (reliability: sanitizers, valgrind, fuzz; bench).
include $(wildcard mk/*.mk)
