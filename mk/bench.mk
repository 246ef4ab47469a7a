# make bench: wdt against its references in one run (doc/performance.md).
#   make bench                      the table on stdout; build/bench/{results.md,performance.png}
#   make bench BENCH_ARGS="--time 1 --rounds 2 --memory-calls 20000"   a quicker run
#   make bench-doc                  the same, then copy the chart to doc/performance.png
# Not part of `make test`: it takes a few minutes and its numbers depend on the machine.
BENCH_PACKAGES = wrk gnuplot-nox lua-cjson lua-socket nginx-light libnginx-mod-http-lua libssl-dev \
                 libcurl4-openssl-dev
BENCH_OUT     ?= $(BUILD)/bench
BENCH_ARGS    ?=

.PHONY: bench bench-deps bench-doc

bench-deps:
	@sh mk/apt-install $(BENCH_PACKAGES)

$(BENCH_OUT)/md5ref: bench/md5ref.c
	@mkdir -p $(BENCH_OUT)
	$(CC) -O2 -Wall -Wextra -o $@ $< -lcrypto

$(BENCH_OUT)/curlref: bench/curlref.c
	@mkdir -p $(BENCH_OUT)
	$(CC) -O2 -Wall -Wextra -o $@ $< -lcurl

bench: build bench-deps $(BENCH_OUT)/md5ref $(BENCH_OUT)/curlref
	$(LUA) bench/run.lua --out $(BENCH_OUT) --md5ref $(BENCH_OUT)/md5ref \
	  --curlref $(BENCH_OUT)/curlref $(BENCH_ARGS)

bench-doc: bench
	cp $(BENCH_OUT)/performance.png doc/performance.png
