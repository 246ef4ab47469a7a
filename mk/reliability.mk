# Reliability passes (doc/reliability.md), included by the Makefile:
#
#   make sanitize      build the module with AddressSanitizer + UndefinedBehaviorSanitizer
#                      (build-asan/) and run the specs that exercise C under them
#   make valgrind      a memcheck pass over the C-facing specs: zero errors, zero definite leaks
#   make fuzz          build the libFuzzer targets with clang (build-fuzz/) and run each for
#                      FUZZ_SECONDS (default 60), starting from the seeds in fuzz/corpus/
#   make reliability   sanitize + valgrind + a brief fuzz (RELIABILITY_FUZZ_SECONDS each)
#
# The specs that start the emulator need nginx with its Lua module, as for `make specs`.

ASAN_BUILD   ?= build-asan
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
RELIABILITY_FUZZ_SECONDS ?= 10
FUZZ_CC      ?= clang
FUZZ_TARGETS  = json_decode json_roundtrip parse_answer push_encode push_batch
LUA_INC      ?= $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIB      ?= $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
RELIABILITY_DEB_PACKAGES = valgrind clang libclang-rt-14-dev openssl

# The specs that drive the C core (codec, signing, libcurl, the client's error paths).
# Left out: the emulator's own spec (its 10k-request load test is nginx, not our C), the
# OpenResty spec (LuaJIT inside nginx) and the crash test (separate processes).
SANITIZE_SPECS ?= $(wildcard spec/core_spec.lua spec/json_spec.lua spec/sign_spec.lua \
                    spec/client_spec.lua spec/batch_spec.lua spec/sync_spec.lua \
                    spec/faults_spec.lua spec/reliability_spec.lua spec/cli_spec.lua \
                    spec/push_check_spec.lua spec/push_batch_spec.lua spec/push_spec.lua \
                    spec/transport_spec.lua)
VALGRIND_SPECS ?= $(wildcard spec/core_spec.lua spec/json_spec.lua spec/sign_spec.lua \
                    spec/client_spec.lua spec/batch_spec.lua spec/sync_spec.lua \
                    spec/faults_spec.lua spec/reliability_spec.lua spec/push_check_spec.lua \
                    spec/push_batch_spec.lua)

# halt on the first report; no leak is tolerated (LeakSanitizer runs at exit).
# No LOCPATH here (unlike `make specs`): with it set, p11-kit's start-up leaks one
# newlocale() buffer, which both LeakSanitizer and valgrind would rightly report.
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
VALGRIND_FLAGS = --tool=memcheck --leak-check=full --show-leak-kinds=definite \
                 --errors-for-leak-kinds=definite --error-exitcode=1 --num-callers=40 -q

.PHONY: reliability sanitize valgrind fuzz fuzz-build reliability-deps

reliability-deps: deps
	@sh mk/apt-install $(RELIABILITY_DEB_PACKAGES)

# The module with -fsanitize=address,undefined, and a Lua host linked with the same
# runtime (fuzz/host/lua_host.c): the runtime is not LD_PRELOADed, so the programs the
# specs start (sh, mktemp, nginx) run without it. The host is built by the compiler CMake
# used for the module, so that both share one sanitizer runtime.
$(ASAN_BUILD)/lua-asan: fuzz/host/lua_host.c $(ASAN_BUILD)/wdt/core.so
	cc=$$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' $(ASAN_BUILD)/CMakeCache.txt); \
	$${cc:-cc} -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer $(LUA_INC) $< $(LUA_LIB) -o $@

$(ASAN_BUILD)/wdt/core.so: FORCE_ASAN
	cmake -S . -B $(ASAN_BUILD) -DWDT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build $(ASAN_BUILD) -j2

.PHONY: FORCE_ASAN
FORCE_ASAN:

sanitize: reliability-deps build $(ASAN_BUILD)/lua-asan
	@echo "== specs under AddressSanitizer + UndefinedBehaviorSanitizer: $(SANITIZE_SPECS)"
	$(SAN_ENV) $(ASAN_BUILD)/lua-asan /usr/bin/busted --ignore-lua --cpath='./$(ASAN_BUILD)/?.so' \
	  -o utfTerminal $(SANITIZE_SPECS)

# fuzz/host/nodlclose.c: keeps C modules mapped at exit so that valgrind can name them and
# still sees the memory libcurl/OpenSSL hold for the life of the process.
$(BUILD)/nodlclose.so: fuzz/host/nodlclose.c
	@mkdir -p $(BUILD)
	$(CC) -shared -fPIC -O2 -o $@ $<

valgrind: reliability-deps build $(BUILD)/nodlclose.so
	@echo "== specs under valgrind memcheck: $(VALGRIND_SPECS)"
	LD_PRELOAD=$(CURDIR)/$(BUILD)/nodlclose.so valgrind $(VALGRIND_FLAGS) \
	  $(LUA) /usr/bin/busted --ignore-lua -o utfTerminal $(VALGRIND_SPECS)

# libFuzzer targets: the codec, the answer parser, the push's checker and its batch builder,
# with their Lua state (liblua5.4 is linked here only; the module never links Lua).
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
             -fno-omit-frame-pointer -Isrc/core -Ifuzz $(LUA_INC) -DWDT_VERSION='"$(WDT_VERSION)"'
FUZZ_CORE_SRC = src/core/wdt_json_encode.c src/core/wdt_json_path.c src/core/wdt_json_decode.c \
                src/core/wdt_buf.c

$(FUZZ_BUILD)/json_decode: fuzz/json_decode.c fuzz/fuzz_lua.h $(FUZZ_CORE_SRC) src/core/*.h
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) $< $(FUZZ_CORE_SRC) $(LUA_LIB) -lm -o $@

$(FUZZ_BUILD)/json_roundtrip: fuzz/json_roundtrip.c fuzz/fuzz_lua.h $(FUZZ_CORE_SRC) src/core/*.h
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) $< $(FUZZ_CORE_SRC) $(LUA_LIB) -lm -o $@

$(FUZZ_BUILD)/push_encode: fuzz/push_encode.c fuzz/fuzz_lua.h src/core/wdt_core_push.c $(FUZZ_CORE_SRC) src/core/*.h
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) $< src/core/wdt_core_push.c $(FUZZ_CORE_SRC) $(LUA_LIB) -lm -o $@

$(FUZZ_BUILD)/push_batch: fuzz/push_batch.c fuzz/fuzz_lua.h src/core/wdt_core_push.c src/core/wdt_core_push_batch.c $(FUZZ_CORE_SRC) src/core/*.h
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) $< src/core/wdt_core_push.c src/core/wdt_core_push_batch.c $(FUZZ_CORE_SRC) $(LUA_LIB) -lm -o $@

$(FUZZ_BUILD)/parse_answer: fuzz/parse_answer.c fuzz/fuzz_lua.h src/core/*.c src/core/*.h
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_FLAGS) $< $(wildcard src/core/*.c) $(LUA_LIB) -lcurl -lcrypto -lm -o $@

fuzz-build: reliability-deps $(addprefix $(FUZZ_BUILD)/,$(FUZZ_TARGETS))

# Each target runs FUZZ_SECONDS from the committed seeds; what it learns goes to
# $(FUZZ_BUILD)/corpus-<target> (not committed). A crash stops make and leaves the input
# as $(FUZZ_BUILD)/crash-* (reproduce: $(FUZZ_BUILD)/<target> <file>).
fuzz: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  if ! $(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
	      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/ \
	      $(FUZZ_BUILD)/corpus-$$t fuzz/corpus/$$t >$(FUZZ_BUILD)/$$t.log 2>&1; then \
	    tail -n 80 $(FUZZ_BUILD)/$$t.log; echo "fuzz $$t FAILED (log: $(FUZZ_BUILD)/$$t.log)"; exit 1; \
	  fi; \
	  grep -E 'INITED|DONE|stat::number_of_executed_units|stat::peak_rss' $(FUZZ_BUILD)/$$t.log; \
	done

reliability: sanitize valgrind
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(RELIABILITY_FUZZ_SECONDS)
