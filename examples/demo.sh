#!/bin/sh
# The demo behind `make demo`: the logistics sync loop against the local emulator.
#
#   1. starts bin/wdt-emulator on a free loopback port with the demo tenant and 2,000
#      shipments waiting to be reported;
#   2. runs `bin/wdt sync logistics` with examples/handler.lua, which pretends to push each
#      shipment to your platform and fails or defers a few on purpose (progress on stderr
#      when it is a terminal, then the summary);
#   3. asks the emulator for its state and checks that what the ERP recorded matches the
#      summary, and that the queue holds exactly the deferred shipments;
#   4. stops the emulator (also on failure or Ctrl-C).
#
# Needs `make build` first (the Makefile's demo target does it). Run from anywhere.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
LUA=${LUA:-lua5.4}
SID=apidevnew2 KEY=test2-xx APPSECRET=12345:abcde SHOP=s1 PENDING=${WDT_DEMO_PENDING:-2000}

say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ -f "$root/build/wdt/core.so" ] || die "build/wdt/core.so is missing: run 'make build' first"
command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install curl)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/wdt-demo.XXXXXX")
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A free port: bind port 0 and read what the kernel gave.
port=$("$LUA" -e 'local s = assert(require("socket").bind("127.0.0.1", 0)); local _, p = s:getsockname(); s:close(); io.write(p)')
[ -n "$port" ] || die "could not find a free port"

cat > "$tmp/emulator.json" <<JSON
{"tenants":[{"sid":"$SID","key":"$KEY","secret":"$APPSECRET"}],
 "logistics":{"$SID":{"pending":$PENDING,"shop_no":"$SHOP"}},
 "stock":{"$SID":{"pending":0}}}
JSON

say "starting the emulator on port $port with $PENDING shipments waiting for shop $SHOP"
"$root/bin/wdt-emulator" --port "$port" --config "$tmp/emulator.json" >"$tmp/emulator.out" 2>"$tmp/emulator.err" &
emu_pid=$!
i=0
until grep -q "listening on" "$tmp/emulator.out" 2>/dev/null; do
  if ! kill -0 "$emu_pid" 2>/dev/null; then
    cat "$tmp/emulator.err" >&2
    emu_pid=""
    die "the emulator did not start"
  fi
  i=$((i + 1))
  [ "$i" -lt 300 ] || die "the emulator did not answer within 30 s"
  sleep 0.1
done
cat "$tmp/emulator.out"

export WDT_URL="http://127.0.0.1:$port/openapi" WDT_SID="$SID" WDT_KEY="$KEY" WDT_SECRET="$APPSECRET"
export WDT_DEMO_LATENCY_MS=${WDT_DEMO_LATENCY_MS:-1}   # each pretend push takes 1 ms

say "wdt sync logistics --shop $SHOP --handler examples/handler.lua"
set +e
"$root/bin/wdt" sync logistics --shop "$SHOP" --handler "$root/examples/handler.lua" >"$tmp/summary.txt"
rc=$?
set -e
cat "$tmp/summary.txt"
[ "$rc" -eq 0 ] || die "wdt sync logistics exited with $rc"

say "checking the ERP's side (GET /__emulator/state)"
curl -fsS "http://127.0.0.1:$port/__emulator/state" >"$tmp/state.json" || die "cannot read the emulator's state"
"$LUA" - "$tmp/summary.txt" "$tmp/state.json" "$SID" "$PENDING" <<'LUA'
local cjson = require "cjson"
local function slurp(p) local f = assert(io.open(p)) local s = f:read("a") f:close() return s end
local summary, state, sid = slurp(arg[1]), cjson.decode(slurp(arg[2])), arg[3]
local function count(name) return math.tointeger(tonumber(summary:match("\n%s*" .. name .. "%s+(%d+)\n"))) end
local q = {}
for k, v in pairs(state.tenants[sid].logistics) do q[k] = math.tointeger(v) or v end
local checks = {
  { "synced shipments the ERP recorded as synced", count("synced"), q.acked },
  { "failed shipments the ERP recorded as failed", count("failed"), q.failed },
  { "deferred shipments still waiting in the queue", count("deferred"), q.size },
  { "deferred outcomes the ERP recorded", count("deferred"), q.kept },
  { "shipments refused by the ERP", count("refused"), 0 },
  { "shipments accounted for (synced + failed + waiting)", tonumber(arg[4]),
    math.tointeger(q.acked + q.failed + q.size) },
}
local ok = true
for _, c in ipairs(checks) do
  local good = c[2] ~= nil and c[2] == c[3]
  ok = ok and good
  print(("  %-52s summary %-5s emulator %-5s %s"):format(c[1], tostring(c[2]), tostring(c[3]),
        good and "ok" or "MISMATCH"))
end
print(("  queue now: %d shipment(s) waiting"):format(#q.pending))
os.exit(ok and 0 or 1)
LUA

say "demo done: every shipment was reported once; the deferred ones wait for the next run"
