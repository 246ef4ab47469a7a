# Thin wrapper for the README commands. CMakeLists.txt is the build definition.
#   make demo   install what is missing, build, run the logistics sync against the emulator
#   make test   install what is missing, build, lint, run the specs (also under sanitizers,
#               valgrind, and a brief fuzz)
MAKEFLAGS  += --no-print-directory
LUA        ?= lua5.4
BUSTED     ?= $(LUA) /usr/bin/busted
BUILD      ?= build
DEB_PACKAGES = lua5.4 liblua5.4-dev lua-cjson lua-busted luarocks libcurl4-openssl-dev \
               libssl-dev nginx-light libnginx-mod-http-lua libluajit2-5.1-dev lua-socket \
               lua-check cmake gcc make curl zlib1g-dev locales gettext-base openssl procps

.PHONY: all deps build build-luajit test lint specs demo bench fuzz clean

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

specs: build build-luajit $(LOCALE_DIR)/de_DE.UTF-8
	LOCPATH=$(LOCALE_DIR) $(BUSTED)

# The specs, then again under ASan/UBSan and valgrind, and a brief fuzz (mk/reliability.mk).
test: lint specs reliability

# The main job against the emulator: 2,000 shipments, a few failed and deferred on purpose.
demo: build
	sh examples/demo.sh

clean:
	rm -rf $(BUILD) build-luajit build-asan build-fuzz build.luarocks

# Targets of their own topics (reliability: sanitizers, valgrind, fuzz; bench).
include $(wildcard mk/*.mk)
