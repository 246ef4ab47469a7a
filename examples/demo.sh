#!/bin/sh
# The demo behind `make demo`: the whole own-platform cycle against the local emulator.
#
#   1. generates a sample platform's orders as JSON lines (examples/sample_platform.lua:
#      2,000 orders, a few broken on purpose, a few refunded before shipping), its refunds
#      and its goods catalog;
#   2. starts bin/wdt-emulator on a free loopback port (the demo tenant, shop s1);
#   3. pushes the orders and the refunds (`wdt push`), ships every pushed order that was not
#      refunded (POST /__emulator/ship: what the warehouse does in the ERP), and reports the
#      shipments back with `wdt sync logistics` and examples/handler.lua;
#   4. uploads the goods (`wdt push goods`), changes their stock in the ERP
#      (POST /__emulator/stock) and syncs it with `wdt sync stock`;
#   5. scans the ERP's orders modified during the run (examples/reconcile.lua, client:scan)
#      and checks that every pushed tid is there;
#   6. checks that every order is accounted for at each step, against the emulator's state;
#   7. stops the emulator (also on failure or Ctrl-C).
#
# Needs `make build` first (the Makefile's demo target does it). Run from anywhere.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
LUA=${LUA:-lua5.4}
SID=apidevnew2 KEY=test2-xx APPSECRET=12345:abcde SHOP=s1 ORDERS=${WDT_DEMO_ORDERS:-2000}

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
started=$(date +%s)

# A free port: bind port 0 and read what the kernel gave.
port=$("$LUA" -e 'local s = assert(require("socket").bind("127.0.0.1", 0)); local _, p = s:getsockname(); s:close(); io.write(p)')
[ -n "$port" ] || die "could not find a free port"

say "generating the sample platform's data: $ORDERS orders, their refunds, the goods catalog"
"$LUA" "$root/examples/sample_platform.lua" "$tmp" "$ORDERS"
wc -l "$tmp/orders.jsonl" "$tmp/refunds.jsonl" "$tmp/goods.jsonl" | sed "s|$tmp/||"

cat > "$tmp/emulator.json" <<JSON
{"tenants":[{"sid":"$SID","key":"$KEY","secret":"$APPSECRET"}],
 "logistics":{"$SID":{"pending":0,"shop_no":"$SHOP"}},
 "stock":{"$SID":{"pending":0}}}
JSON

say "starting the emulator on port $port (shop $SHOP, self-owned platform, empty queues)"
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
base="http://127.0.0.1:$port"

export WDT_URL="$base/openapi" WDT_SID="$SID" WDT_KEY="$KEY" WDT_SECRET="$APPSECRET"
export WDT_DEMO_LATENCY_MS=${WDT_DEMO_LATENCY_MS:-1}   # each pretend platform call takes 1 ms

# run NAME COMMAND...: the command's stdout in $tmp/NAME.txt, printed unless it is JSON;
# exit 0 or 1 (1: something refused or invalid, listed) is expected, others are not
run() {
  name=$1; shift
  set +e
  "$@" >"$tmp/$name.txt"
  rc=$?
  set -e
  case "$*" in *--json*) ;; *) cat "$tmp/$name.txt" ;; esac
  [ "$rc" -le 1 ] || die "$* exited with $rc"
}
# summary FILE FORMAT FIELD...: one line from a JSON summary
summary() {
  file=$1; shift
  "$LUA" -e 'local s = require("cjson").decode(io.read("a"))
local fmt, out = arg[1], {}
for i = 2, #arg do local v = s[arg[i]] out[#out + 1] = type(v) == "table" and #v or math.tointeger(v) or v end
print(fmt:format(table.unpack(out)))' /dev/null "$@" <"$file"
}

scan_from=$(date +%s)   # the reconcile step below scans the ERP's orders modified since now

say "wdt push orders --shop $SHOP orders.jsonl"
run push_orders "$root/bin/wdt" push orders --shop "$SHOP" "$tmp/orders.jsonl"

say "the same file again (a re-run after a crash would do this): the ERP updates, creates nothing"
run push_orders_again "$root/bin/wdt" push orders --shop "$SHOP" --json "$tmp/orders.jsonl"
summary "$tmp/push_orders_again.txt" "orders: %d read: %d new, %d changed, %d invalid" read new changed invalid

say "wdt push refunds --shop $SHOP refunds.jsonl"
run push_refunds "$root/bin/wdt" push refunds --shop "$SHOP" "$tmp/refunds.jsonl"

say "the warehouse ships every pushed order that was not refunded (POST /__emulator/ship)"
curl -fsS -X POST -d "{\"count\":$ORDERS}" "$base/__emulator/ship" >"$tmp/ship.json" || die "ship failed"
summary "$tmp/ship.json" "%d orders shipped in %d shipments (three lines or more ship in two parts)" trades shipped

say "wdt sync logistics --shop $SHOP --handler examples/handler.lua"
run sync_logistics "$root/bin/wdt" sync logistics --shop "$SHOP" --json --handler "$root/examples/handler.lua"
summary "$tmp/sync_logistics.txt" "logistics sync: %d shipments read: %d synced, %d failed, %d deferred" read synced failed deferred

say "wdt push goods --shop $SHOP goods.jsonl; the ERP's stock of every good changes"
run push_goods "$root/bin/wdt" push goods --shop "$SHOP" --json "$tmp/goods.jsonl"
summary "$tmp/push_goods.txt" "goods upload: %d read: %d taken, %d failed, %d invalid" read changed failed invalid
curl -fsS -X POST -d '{"count":100000}' "$base/__emulator/stock" >"$tmp/stock.json" || die "stock change failed"
summary "$tmp/stock.json" "%d goods now wait for a stock sync" changed

say "wdt sync stock --handler examples/stock_handler.lua"
run sync_stock "$root/bin/wdt" sync stock --json --handler "$root/examples/stock_handler.lua"
summary "$tmp/sync_stock.txt" "stock sync: %d goods read: %d synced, %d failed, %d deferred" read synced failed deferred

say "reconcile: scan the ERP's orders modified during the demo; every pushed tid must be there"
# The pushed tids: the lines of orders.jsonl the push neither found invalid nor saw refused
# or unreported (its JSON summary lists those), as many as it counted new + changed.
"$LUA" - "$tmp" <<'LUA'
local cjson = require "cjson"
local dir = arg[1]
local f = assert(io.open(dir .. "/push_orders_again.txt")) local s = cjson.decode(f:read("a")) f:close()
local skip_line, skip_tid = {}, {}
for _, x in ipairs(s.invalids) do skip_line[math.tointeger(x.line)] = true end
for _, list in ipairs({ s.failures, s.unreported_items }) do
  for _, x in ipairs(list) do skip_tid[x.key] = true end
end
local out, n, line = assert(io.open(dir .. "/pushed.jsonl", "wb")), 0, 0
for l in io.lines(dir .. "/orders.jsonl") do
  line = line + 1
  local tid = not skip_line[line] and cjson.decode(l).tid
  if tid and not skip_tid[tid] then
    out:write(cjson.encode({ tid = tid }), "\n")
    n = n + 1
  end
end
out:close()
if n ~= s.new + s.changed then
  io.stderr:write(("demo: %d pushed tids derived, but the push counted %d new + changed\n"):format(
    n, s.new + s.changed))
  os.exit(1)
end
LUA
sleep 1   # a whole second after the last change: the scan's window [from, to) covers it
scan_to=$(date +%s)
set +e
"$LUA" "$root/examples/reconcile.lua" "$tmp/pushed.jsonl" "$scan_from" "$scan_to" "$SHOP" >"$tmp/reconcile.txt"
rc=$?
set -e
cat "$tmp/reconcile.txt"
[ "$rc" -le 1 ] || die "examples/reconcile.lua exited with $rc"

say "checking every order at each step against the ERP's side (GET /__emulator/state)"
curl -fsS "$base/__emulator/state" >"$tmp/state.json" || die "cannot read the emulator's state"
"$LUA" - "$tmp" "$SID" "$ORDERS" <<'LUA'
local cjson = require "cjson"
local dir, sid, total = arg[1], arg[2], tonumber(arg[3])
local function load(name)
  local f = assert(io.open(dir .. "/" .. name)) local s = f:read("a") f:close() return cjson.decode(s)
end
local function int(v) return math.tointeger(v) or v end
local function ints(t) for k, v in pairs(t) do t[k] = int(v) end return t end
local again, ship = ints(load("push_orders_again.txt")), load("ship.json")
-- a push's counts, from its text summary
local function counts(name)
  local f = assert(io.open(dir .. "/" .. name)) local text = f:read("a") f:close()
  local c = { read = tonumber(text:match(": (%d+) read")) }
  for _, b in ipairs({ "new", "changed", "failed", "invalid", "unreported" }) do
    c[b] = tonumber(text:match("\n  " .. b .. " +(%d+)"))
  end
  return c
end
local first, pr = counts("push_orders.txt"), counts("push_refunds.txt")
local sl, pg, ss = ints(load("sync_logistics.txt")), ints(load("push_goods.txt")), ints(load("sync_stock.txt"))
local st = ints(load("state.json").tenants[sid])
ship.trades = int(ship.trades)
local lq, sq = ints(st.logistics), ints(st.stock)
-- reconcile.lua's line: "ok: all N pushed tids ..." or "FAILED: M of N pushed tids missing ..."
local function reconciled()
  local f = assert(io.open(dir .. "/reconcile.txt")) local text = f:read("a") f:close()
  local all = tonumber(text:match("ok: all (%d+) pushed tids"))
  if all then return all end
  local missing, of = text:match("FAILED: (%d+) of (%d+) pushed tids")
  return missing and tonumber(of) - tonumber(missing)
end
local pushed_tids = 0
for _ in io.lines(dir .. "/pushed.jsonl") do pushed_tids = pushed_tids + 1 end
local refunded_orders = math.floor(total / 250)       -- every 250th order, by design
local refunded_in_erp = refunded_orders - ((total % 400 == 0 and total % 250 == 0) and 1 or 0)
local checks = {
  { "orders read = lines in orders.jsonl", first.read, total },
  { "orders read = new + changed + failed + invalid + unreported", first.read,
    first.new + first.changed + first.failed + first.invalid + first.unreported },
  { "orders new = trades in the ERP", first.new, int(st.raw_trades) },
  { "pushed again: none new", again.new, 0 },
  { "pushed again: changed = orders in the ERP", again.changed, int(st.raw_trades) },
  { "pushed again: the ERP updated them, created none", int(st.raw_trades_updated), again.changed },
  { "pushed tids found by scan", reconciled(), pushed_tids },
  { "refunds read = new + changed + failed + invalid + unreported", pr.read,
    pr.new + pr.changed + pr.failed + pr.invalid + pr.unreported },
  { "refunds new = refunds in the ERP", pr.new, int(st.raw_refunds) },
  { "orders in the ERP = shipped + refunded", int(st.raw_trades), ship.trades + refunded_in_erp },
  { "shipments = synced + failed + deferred", #ship.shipped, sl.synced + sl.failed + sl.deferred },
  { "shipments synced = the ERP's acked", sl.synced, int(lq.acked) },
  { "shipments failed = the ERP's failed", sl.failed, int(lq.failed) },
  { "shipments deferred = still in the ERP's queue", sl.deferred, int(lq.size) },
  { "goods read = taken + invalid + failed", pg.read, pg.changed + pg.invalid + pg.failed },
  { "goods taken = platform goods in the ERP", pg.changed, int(st.api_goods) },
  { "stock syncs = synced + failed + deferred", pg.changed, ss.synced + ss.failed + ss.deferred },
  { "stock synced = the ERP's synced", ss.synced, int(sq.synced) },
  { "stock failed = the ERP's failed", ss.failed, int(sq.failed) },
}
local ok = true
for _, c in ipairs(checks) do
  local good = c[2] ~= nil and c[2] == c[3]
  ok = ok and good
  print(("  %-60s %5s %5s  %s"):format(c[1], tostring(c[2]), tostring(c[3]), good and "ok" or "MISMATCH"))
end
os.exit(ok and 0 or 1)
LUA

say "demo done in $(( $(date +%s) - started ))s: every order, shipment and good accounted for"
