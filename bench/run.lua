-- `make bench`: wdt against the references that bound it, measured in one run, printed as
-- one table of ratios (doc/performance.md explains each row).
--
--   lua5.4 bench/run.lua [--time S] [--rounds N] [--out DIR] [--md5ref PATH] [--curlref PATH]
--                        [--memory-calls N] [--chart-rounds N]
--                        [--only sign,codec,network,push,memory,chart,flows]
--                        [--flows push,scan,windows,stock,logistics]   (which rows of `flows`)
--
-- Each pair (wdt, reference) is measured in alternation, `rounds` times, for about `time`
-- seconds each; the best of the rounds counts on both sides (the least disturbed run:
-- other processes on the machine only ever slow a side down). Writes to DIR (default
-- build/bench): results.md (the table), concurrency.dat and performance.png (calls per
-- second against concurrency, for wdt's call_many and for wrk).
local here = (debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]*$")) or "."
package.path = here .. "/src/?.lua;" .. here .. "/src/?/init.lua;" .. here .. "/?.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local wdt = require "wdt"
local core = require "wdt.core"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"

-- ---- options ----------------------------------------------------------------------------
local opt = { time = 2, rounds = 3, out = here .. "/build/bench", md5ref = nil,
              memory_calls = 100000, chart_rounds = 2, only = "sign,codec,network,push,memory,chart,flows",
              flows = "push,scan,windows,stock,logistics" }
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i]:match("^%-%-([%w-]+)=?(.*)$")
    if not k then error("unknown argument " .. arg[i]) end
    if v == "" then v = arg[i + 1]; i = i + 1 end
    k = k:gsub("-", "_")
    if opt[k] == nil and k ~= "md5ref" and k ~= "curlref" then error("unknown option --" .. k) end
    opt[k] = tonumber(v) or v
    i = i + 1
  end
end
opt.md5ref = opt.md5ref or (opt.out .. "/md5ref")
opt.curlref = opt.curlref or (opt.out .. "/curlref")
os.execute("mkdir -p '" .. opt.out .. "'")

local SID, KEY, APPSECRET = "apidevnew2", "test2-xx", "12345:abcde"
local LIST = "sales.LogisticsSync.getSyncListExt"
local FILTER = { shop_no = "s1", is_own_platform = true }
local PAGER1 = { page_size = 1 }

local now = core.unix_time

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function log(...)
  io.stderr:write(table.concat({ ... }, " "), "\n")
end

-- Operations per second of f(n) (n operations per call), for about `seconds`.
local function rate(f, seconds)
  local n, done, t0 = 1, 0, now()
  while true do
    f(n)
    done = done + n
    local dt = now() - t0
    if dt >= seconds then return done / dt end
    if dt < seconds / 8 then n = n * 2 end
  end
end

-- Best of `rounds` alternated runs of each function (wdt, reference, ...): ops/s each.
-- The order turns every round, so no side always runs first.
local function pair(rounds, ...)
  local fns, best = { ... }, {}
  for k = 1, #fns do best[k] = 0 end
  for r = 1, rounds do
    for j = 0, #fns - 1 do
      local k = (r + j - 1) % #fns + 1
      local x = fns[k]()
      if x > best[k] then best[k] = x end
    end
  end
  return table.unpack(best)
end

-- ---- data ---------------------------------------------------------------------------------
-- Rows shaped like the emulator's getSyncListExt rows (and the vendor's).
local function sync_row(i)
  return {
    sync_id = 5000000000 + i, tid = ("T%010d"):format(i), logistics_no = ("YTO88%010d"):format(i),
    logistics_code = "YTO", logistics_name = "圆通速递", is_part_sync = i % 10 == 0 and 1 or 0,
    oids = i % 10 == 0 and ("T%010d-1,T%010d-2"):format(i, i) or "", trade_id = 6000000000 + i,
    platform_id = 127, created = "2026-11-28 18:03:51", shop_no = "s1",
  }
end

local function rows(n)
  local t = {}
  for i = 1, n do t[i] = sync_row(i) end
  return t
end

-- ---- results ------------------------------------------------------------------------------
local results = {}
local function row(r) results[#results + 1] = r; log("  " .. r.name .. ": done") end

local function thousands(n)
  local s = ("%d"):format(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function fmt_rate(x, unit)
  if x >= 1e6 then return ("%.2f M%s"):format(x / 1e6, unit) end
  if x >= 1e4 then return ("%.1f k%s"):format(x / 1e3, unit) end
  if x >= 100 then return ("%.0f %s"):format(x, unit) end
  return ("%.1f %s"):format(x, unit)
end

-- ---- 1. sign ------------------------------------------------------------------------------
local function bench_sign()
  log("sign: wdt.sign over a 1 MiB body against OpenSSL MD5 (" .. opt.md5ref .. ")")
  local body = core.encode(rows(4000))
  body = (body .. string.rep(" ", 1048576)):sub(1, 1048576)     -- exactly 1 MiB
  local path = opt.out .. "/sign-body.bin"
  write_file(path, body)
  local params = { sid = SID, key = KEY, salt = "abcde", method = "sales.LogisticsSync.update",
                   v = "1.0", timestamp = 468000000, body = body }
  local w, m = pair(opt.rounds, function()
    return rate(function(n) for _ = 1, n do wdt.sign("12345", params) end end, opt.time / 2)
  end, function()
    local out = sh(("'%s' '%s' %s"):format(opt.md5ref, path, opt.time / 2))
    return assert(tonumber(out:match("^(%S+)")), "md5ref failed: " .. out)
  end)
  os.remove(path)
  local mib = #body / 1048576
  row { name = "sign", what = "wdt.sign, 1 MiB body", wdt = fmt_rate(w * mib, "MiB/s"),
        ref = fmt_rate(m * mib, "MiB/s") .. " (OpenSSL MD5, C)", ratio = w / m, goal = 0.9 }
end

-- ---- 2, 3. codec --------------------------------------------------------------------------
local function bench_codec()
  log("encode: a 1,000-row sync list, wdt against lua-cjson " .. (cjson._VERSION or ""))
  local list = rows(1000)
  local size = #core.encode(list)
  local w, c = pair(opt.rounds, function()
    return rate(function(n) for _ = 1, n do core.encode(list) end end, opt.time / 2)
  end, function()
    return rate(function(n) for _ = 1, n do cjson.encode(list) end end, opt.time / 2)
  end)
  row { name = "encode", what = ("encode 1,000 rows (%d KiB)"):format(size // 1024),
        wdt = fmt_rate(w * size / 1048576, "MiB/s"), ref = fmt_rate(c * size / 1048576, "MiB/s")
        .. " (lua-cjson)", ratio = w / c, goal = 1.0 }

  log("decode: a 1 MiB getSyncListExt answer, wdt against lua-cjson")
  local n, answer = 3000
  repeat
    n = n + 100
    answer = core.encode { status = 0, total = n, data = rows(n) }
  until #answer >= 1048576
  local w2, c2 = pair(opt.rounds, function()
    return rate(function(k) for _ = 1, k do core.decode(answer) end end, opt.time / 2)
  end, function()
    return rate(function(k) for _ = 1, k do cjson.decode(answer) end end, opt.time / 2)
  end)
  local mib = #answer / 1048576
  row { name = "decode", what = ("decode a %.2f MiB answer (%d rows)"):format(mib, n),
        wdt = fmt_rate(w2 * mib, "MiB/s"), ref = fmt_rate(c2 * mib, "MiB/s") .. " (lua-cjson)",
        ratio = w2 / c2, goal = 1.0 }
end

-- ---- network: emulator, wrk -----------------------------------------------------------------
local emu
local function new_client()
  return wdt.client { sid = SID, key = KEY, secret = APPSECRET, url = emu.url, timeout = 10 }
end

local request_file = opt.out .. "/request.txt"

-- A fresh signed request for wrk (the emulator accepts a timestamp for 120 s).
local function prepare_for_wrk(client)
  local p = client:prepare(LIST, { FILTER }, PAGER1)
  local answer = client._core:send(p.url, p.body)
  local resp = answer and core.parse(answer.status, answer.body)
  assert(resp and resp.status == 0, "the prepared request is not answered status 0")
  write_file(request_file, p.url:match("^https?://[^/]+(.*)$") .. "\n" .. p.body)
end

local function wrk(client, conns, seconds)
  prepare_for_wrk(client)
  local out = sh(("WDT_BENCH_REQUEST='%s' wrk -t1 -c%d -d%ds -s '%s/bench/replay.lua' '%s' 2>&1")
    :format(request_file, conns, math.max(1, math.floor(seconds + 0.5)), here, emu.base))
  local rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)"))
  assert(rps, "wrk failed: " .. out)
  assert(not out:find("Non%-2xx"), "wrk got error answers: " .. out)
  assert(not out:find("Socket errors"), "wrk got socket errors: " .. out)
  return rps
end

-- libcurl alone, in C (bench/curlref.c), on the same request: the floor of any libcurl client
local function curlref(client, conns, seconds)
  prepare_for_wrk(client)
  local out = sh(("WDT_BENCH_REQUEST='%s' '%s' '%s' %s %d 2>&1")
    :format(request_file, opt.curlref, emu.base, seconds, conns))
  return assert(tonumber(out:match("^([%d%.]+)")), "curlref failed: " .. out)
end

local function seq_rate(client, seconds)
  return rate(function(n)
    for _ = 1, n do assert(client:page_call(LIST, PAGER1, FILTER)) end
  end, seconds)
end

local function many_rate(client, conc, seconds)
  local reqs = {}
  for i = 1, math.max(256, conc * 64) do reqs[i] = { LIST, FILTER, pager = PAGER1 } end
  local t0, done = now(), 0
  repeat
    local _, failed = client:call_many(reqs, { concurrency = conc })
    assert(failed == 0, "call_many had failures")
    done = done + #reqs
  until now() - t0 >= seconds
  return done / (now() - t0)
end

local function bench_network()
  local client = new_client()
  log("overhead: client:prepare + client:parse of a 10-row page, no network")
  local p10 = client:prepare(LIST, { FILTER }, { page_size = 10 })
  local answer = assert(client._core:send(p10.url, p10.body))
  local typical = answer.body
  assert(answer.status == 200 and core.parse(answer.status, typical), "no 10-row page")
  local over = 0
  for _ = 1, opt.rounds do
    local r = rate(function(n)
      for _ = 1, n do
        client:prepare(LIST, { FILTER }, { page_size = 10 })
        client:parse(200, typical)
      end
    end, opt.time / 2)
    if r > over then over = r end
  end

  log("sequential: client:page_call on one kept-alive connection against wrk -t1 -c1")
  local seq, w1, c1 = pair(opt.rounds, function() return seq_rate(client, opt.time) end,
                           function() return wrk(client, 1, opt.time) end,
                           function() return curlref(client, 1, opt.time) end)
  row { name = "overhead", what = ("prepare + parse (%.1f KiB answer), no network"):format(#typical / 1024),
        wdt = fmt_rate(over, "calls/s"), ref = fmt_rate(w1, "req/s") .. " (wrk -c1 round trip)",
        ratio = over / w1, ratio_fmt = "%.1f×", note = "share of a loopback round trip: "
        .. ("%.0f%%"):format(100 * w1 / over) }
  row { name = "sequential", what = "sequential calls, one connection", wdt = fmt_rate(seq, "calls/s"),
        ref = fmt_rate(w1, "req/s") .. " (wrk -t1 -c1)", ratio = seq / w1, goal = 0.7 }
  row { name = "curl1", what = "(context) libcurl alone in C, sequential", wdt = fmt_rate(c1, "req/s"),
        ref = fmt_rate(w1, "req/s") .. " (wrk -t1 -c1)", ratio = c1 / w1,
        note = ("wdt reaches %.2f of it"):format(seq / c1) }

  log("call_many, 16 in flight, against wrk -t1 -c16")
  local many, w16, c16 = pair(opt.rounds, function() return many_rate(client, 16, opt.time) end,
                              function() return wrk(client, 16, opt.time) end,
                              function() return curlref(client, 16, opt.time) end)
  row { name = "call_many", what = "call_many, concurrency 16", wdt = fmt_rate(many, "calls/s"),
        ref = fmt_rate(w16, "req/s") .. " (wrk -t1 -c16)", ratio = many / w16, goal = 0.6 }
  row { name = "curl16", what = "(context) libcurl alone in C, 16 in flight", wdt = fmt_rate(c16, "req/s"),
        ref = fmt_rate(w16, "req/s") .. " (wrk -t1 -c16)", ratio = c16 / w16,
        note = ("wdt reaches %.2f of it"):format(many / c16) }
  client:close()

  log("connections: one client, sequential calls then call_many at 16")
  local c0 = emu:state().connections
  local c = new_client()
  for _ = 1, 200 do assert(c:page_call(LIST, PAGER1, FILTER)) end
  local n1 = emu:state().connections
  for _ = 1, 3 do many_rate(c, 16, 0.01) end
  for _ = 1, 200 do assert(c:page_call(LIST, PAGER1, FILTER)) end
  local n2 = emu:state().connections
  c:close()
  row { name = "connections", what = "connections: 200 calls / + call_many at 16",
        wdt = ("%d / %d"):format(n1 - c0, n2 - c0), ref = "1 / 16", ratio = (n2 - c0) / 16,
        ratio_fmt = "%.2f", goal_text = "1 / ≤ 16", met = (n1 - c0) == 1 and (n2 - c0) <= 16 }
end

local function bench_chart()
  log("chart: calls per second against concurrency (wdt call_many, wrk -t1 -cN)")
  local client = new_client()
  local lines = { "# concurrency  wdt_call_many  wrk  wdt_sequential_call" }
  for _, conc in ipairs({ 1, 2, 4, 8, 16, 32, 64 }) do
    local w, r = pair(opt.chart_rounds, function() return many_rate(client, conc, opt.time) end,
                      function() return wrk(client, conc, opt.time) end)
    local s = "NaN"
    if conc == 1 then
      local best = 0
      for _ = 1, opt.chart_rounds do best = math.max(best, seq_rate(client, opt.time)) end
      s = ("%.0f"):format(best)
    end
    lines[#lines + 1] = ("%d %.0f %.0f %s"):format(conc, w, r, s)
    log(("  c=%d wdt %.0f wrk %.0f"):format(conc, w, r))
  end
  client:close()
  local dat = opt.out .. "/concurrency.dat"
  write_file(dat, table.concat(lines, "\n") .. "\n")
  local png = opt.out .. "/performance.png"
  local rc = os.execute(("gnuplot -e \"datafile='%s'; outfile='%s'\" '%s/bench/chart.gp'")
    :format(dat, png, here))
  if rc ~= true and rc ~= 0 then log("gnuplot failed: no chart") end
  return lines
end

local function bench_memory()
  log(("memory: resident size after 1,000 and after %s calls (a separate process)"):format(thousands(opt.memory_calls)))
  local out = sh(("lua5.4 '%s/bench/memory.lua' '%s' %d 2>&1"):format(here, emu.url, opt.memory_calls))
  local r1, r2, secs = out:match("rss_1000_kib=(%d+) rss_last_kib=(%d+) seconds=([%d%.]+)")
  assert(r1, "bench/memory.lua failed: " .. out)
  r1, r2 = tonumber(r1), tonumber(r2)
  row { name = "memory", what = ("resident size, 1,000 → %s calls"):format(thousands(opt.memory_calls)),
        wdt = ("%.1f → %.1f MiB"):format(r1 / 1024, r2 / 1024), ref = "growth < 1 MiB",
        ratio = r2 / r1, ratio_fmt = "%.3f", goal_text = "+< 1 MiB", met = (r2 - r1) < 1024,
        note = ("growth %+d KiB (%.0f calls/s)"):format(r2 - r1, opt.memory_calls / tonumber(secs)) }
end

-- CPU seconds (user + system) of a process and its descendants, from /proc (the
-- emulator's launcher, its nginx master and worker); nil where /proc cannot tell.
local function tree_cpu(pid)
  local f = io.open(("/proc/%d/stat"):format(pid))
  if not f then return nil end
  local stat = f:read("a")
  f:close()
  local fields = {}
  for x in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
  local total = (tonumber(fields[12]) + tonumber(fields[13])) / 100    -- utime, stime (ticks)
  local c = io.open(("/proc/%d/task/%d/children"):format(pid, pid))
  if c then
    for child in c:read("a"):gmatch("%d+") do total = total + (tree_cpu(tonumber(child)) or 0) end
    c:close()
  end
  return total
end

-- Pushing 10,000 orders (examples/sample_platform.lua, 1-3 lines each) in calls of 100:
-- wdt's own CPU time against the wall time of the push, the emulator doing the ERP's side.
-- Goal: under 10%. wdt's CPU is os.clock(): the user + system time of this process (all
-- its threads: checks, copies, encoding, signing, libcurl, the kernel's send and receive,
-- decoding, matching, the garbage collector); the emulator runs in processes of its own,
-- whose CPU is shown for context. A full collection before each round keeps the garbage
-- of building the orders out of the push's account. The least disturbed round counts on
-- each side (least CPU, least wall), as everywhere in this bench.
-- The calls of a push alone (the body put together, sign, libcurl, the kernel, decode),
-- the orders checked and written into each call's lists beforehand (core.push_batch, one
-- builder per call, all kept): what the push costs wdt with its own checks and records
-- free, the floor under the push row.
local function push_calls_cpu(client, platform, first, n)
  local push_run = require "wdt.push.run"
  local args = {}
  for b = 1, n / 100 do        -- a run (and its lists' builder) per batch: all are kept
    local r = push_run.new("orders", { shop_no = "s1" })
    for i = 1, 100 do assert(r.add_fast(platform.order(first + (b - 1) * 100 + i), {})) end
    args[b] = r:arguments()
  end
  local view = client:with { idempotent = true }     -- as push_orders calls: one connection
  collectgarbage()
  collectgarbage()
  local cpu0, wall0 = os.clock(), now()
  for _, a in ipairs(args) do
    local data = assert(view:call("sales.RawTrade.pushSelf2", a[1], a[2], a[3]))
    assert(data.new_count == 100, "not every order was created")
  end
  return os.clock() - cpu0, now() - wall0
end

-- The push's goal as a fixed budget, which does not move with the emulator's speed: wdt's
-- CPU an order at most 10% of the ERP's time an order when a pushSelf2 of 100 orders takes
-- 200 ms (the flow rows' model of the real call) and 8 calls are in flight:
-- 0.10 x 0.2 s / (8 x 100) = 25 µs. (doc/performance.md, "Goals", says why.)
local PUSH_BUDGET_US = 0.10 * 0.2 / (8 * 100) * 1e6

-- wdt's instructions an order in a push (callgrind, user space of the pushing process:
-- exact, whatever the machine's load): bench/push_profile.lua's runs of 2,500 and 500
-- orders, their difference over 2,000. nil without valgrind.
local function push_instructions()
  if not sh("command -v valgrind"):match("%S") then return nil end
  local lua = arg[-1] or "lua5.4"
  local counts = {}
  for _, k in ipairs { 500, 2500 } do
    local out = sh(("valgrind --tool=callgrind --callgrind-out-file=/dev/null '%s' '%s/bench/push_profile.lua' %d 2>&1")
      :format(lua, here, k))
    counts[k] = tonumber((out:match("Collected : (%d+)")))
    if not counts[k] then return nil end
  end
  return (counts[2500] - counts[500]) / 2000
end

local function bench_push()
  local n = 10000
  log(("push: %s orders with client:push_orders against the emulator"):format(thousands(n)))
  local platform = dofile(here .. "/examples/sample_platform.lua")
  local client = new_client()
  local cpu, wall, emu_cpu, calls_cpu, calls_wall
  for round = 1, opt.rounds do
    local list = {}
    for i = 1, n do list[i] = platform.order(round * n + i) end
    collectgarbage()
    collectgarbage()
    local e0, cpu0, wall0 = tree_cpu(emu.pid), os.clock(), now()
    -- one call at a time, as the row has always measured (the flow rows take N in flight)
    local s = assert(client:push_orders { shop_no = "s1", orders = list, concurrency = 1 })
    local c, w, e1 = os.clock() - cpu0, now() - wall0, tree_cpu(emu.pid)
    assert(s.new == n, "not every order was created: " .. s.new)
    list = nil                                           -- luacheck: ignore
    local cc, cw = push_calls_cpu(client, platform, (opt.rounds + round) * n, n)
    log(("  round %d: wdt CPU %.3f s, wall %.3f s (%.1f%%), emulator CPU %s; the calls alone: CPU %.3f s, wall %.3f s")
        :format(round, c, w, 100 * c / w, e0 and e1 and ("%.2f s"):format(e1 - e0) or "?", cc, cw))
    cpu, wall = math.min(cpu or c, c), math.min(wall or w, w)
    calls_cpu, calls_wall = math.min(calls_cpu or cc, cc), math.min(calls_wall or cw, cw)
    if e0 and e1 then emu_cpu = math.min(emu_cpu or (e1 - e0), e1 - e0) end
  end
  client:close()
  local share = cpu / wall
  row { name = "push", what = ("push_orders: %s orders, calls of 100"):format(thousands(n)),
        wdt = ("%.0f orders/s"):format(n / wall), ref = ("wdt CPU %.2f s of %.2f s"):format(cpu, wall),
        ratio = share, ratio_fmt = "%.3f", goal_text = "CPU < 10% of wall (local emulator)", met = share < 0.10,
        note = ("wdt's CPU %.1f µs an order, %.1f%% of the wall time; the emulator's CPU %s an order")
          :format(cpu / n * 1e6, 100 * share, emu_cpu and ("%.0f µs"):format(emu_cpu / n * 1e6) or "?") }
  local us = cpu / n * 1e6
  row { name = "push-budget", what = "push: wdt's CPU an order against a fixed budget",
        wdt = ("%.1f µs an order"):format(us),
        ref = ("%.0f µs: 10%% of a 200 ms call of 100 at 8 in flight"):format(PUSH_BUDGET_US),
        ratio = us / PUSH_BUDGET_US, goal_text = "≤ 1.0", met = us <= PUSH_BUDGET_US,
        note = ("wdt would be the bottleneck of such a push above %.0f calls in flight")
          :format(0.2 / (100 * us * 1e-6)) }
  row { name = "push-calls", what = "(context) the same calls alone, orders checked and written beforehand",
        wdt = ("%.0f orders/s"):format(n / calls_wall), ref = ("CPU %.2f s of %.2f s"):format(calls_cpu, calls_wall),
        ratio = calls_cpu / calls_wall, ratio_fmt = "%.3f", goal_text = "—",
        note = ("records' JSON written beforehand; sign, libcurl, kernel, decode: %.1f µs an order")
          :format(calls_cpu / n * 1e6) }
  log("push: instructions an order (callgrind, bench/push_profile.lua)")
  local instructions = push_instructions()
  if instructions then
    row { name = "push-instructions", what = "(context) push: wdt's instructions an order (callgrind)",
          wdt = ("%.0f"):format(instructions), ref = "48,600 at the third pass (0041d7c)",
          ratio = instructions / 48600, goal_text = "—",
          note = "exact, whatever the load: the push's regression check (doc/performance.md)" }
  end
end

-- ---- run ----------------------------------------------------------------------------------
local function loadavg()
  local f = io.open("/proc/loadavg")
  local s = f and f:read("l") or "?"
  if f then f:close() end
  return s:match("^(%S+)") or "?"
end
local load_start = loadavg()
local t_start = now()
log(("wdt bench: %s, %s, lua-cjson %s, %s rounds of ~%s s"):format(_VERSION, core.curl_version,
    cjson._VERSION or "?", opt.rounds, opt.time))
local only = {}
for part in tostring(opt.only):gmatch("[^,]+") do only[part] = true end
if only.sign then bench_sign() end
if only.codec then bench_codec() end
emu = emulator.start {}
local ok, err = pcall(function()
  if only.network then bench_network() end
  if only.push then bench_push() end
  if only.memory then bench_memory() end
  if only.chart then bench_chart() end
  if only.flows then     -- bench/flows.lua: the flows over a modelled link, N calls in flight
    local flow_rows = {}
    for part in tostring(opt.flows):gmatch("[^,]+") do flow_rows[part] = true end
    local series = require("bench.flows") { emu = emu, new_client = new_client, row = row, log = log,
                                            now = now, here = here, rows = flow_rows }
    if series[1] then              -- (the push row ran: its chart)
      local lines = { "# in flight, orders/s, the bound N x 100 / (time of a call)" }
      for _, p in ipairs(series) do lines[#lines + 1] = ("%d %.1f %.1f"):format(p[1], p[2], p[3]) end
      write_file(opt.out .. "/flows.dat", table.concat(lines, "\n") .. "\n")
      local rc = os.execute(("gnuplot -e \"datafile='%s'; outfile='%s'\" '%s/bench/flows.gp'")
        :format(opt.out .. "/flows.dat", opt.out .. "/flows.png", here))
      if rc ~= true and rc ~= 0 then log("gnuplot failed: no flows chart") end
    end
  end
end)
local emu_state = emu:state()
emu:stop()
if not ok then error(err, 0) end

-- ---- the table ----------------------------------------------------------------------------
local function verdict(r)
  if r.met ~= nil then return r.met and "met" or "MISSED" end
  if not r.goal then return "" end
  return r.ratio >= r.goal and "met" or ("MISSED by %.0f%%"):format(100 * (r.goal - r.ratio) / r.goal)
end

local header = { "row", "wdt", "reference", "ratio", "goal", "" }
local md = { "| " .. table.concat(header, " | ") .. " |", "|---|---:|---|---:|---|---|" }
local plain = {}
local widths = { 0, 0, 0, 0, 0, 0 }
local cells = {}
for _, r in ipairs(results) do
  local c = { r.what, r.wdt, r.ref, (r.ratio_fmt or "%.2f"):format(r.ratio),
              r.goal_text or (r.goal and ("≥ %.1f"):format(r.goal) or "—"),
              verdict(r) .. (r.note and ((verdict(r) ~= "" and "; " or "") .. r.note) or "") }
  cells[#cells + 1] = c
  md[#md + 1] = "| " .. table.concat(c, " | ") .. " |"
end
local function ulen(s) return utf8.len(s) or #s end
for _, c in ipairs({ header, table.unpack(cells) }) do
  for i, s in ipairs(c) do widths[i] = math.max(widths[i], ulen(s)) end
end
for _, c in ipairs({ header, table.unpack(cells) }) do
  local parts = {}
  for i, s in ipairs(c) do parts[i] = s .. string.rep(" ", widths[i] - ulen(s)) end
  plain[#plain + 1] = table.concat(parts, "  ")
end

local meta = ("%s; %s; lua-cjson %s; %d CPUs (load average %s at the start, %s at the end); "
  .. "best of %d alternated runs of ~%s s; %.0f s in all; the emulator served %s requests")
  :format(_VERSION, core.curl_version:match("^(%S+)") or core.curl_version, cjson._VERSION or "?",
  tonumber(sh("nproc")) or 0, load_start, loadavg(), opt.rounds, opt.time, now() - t_start,
  thousands(emu_state.requests))
print(table.concat(plain, "\n"))
print(meta)
write_file(opt.out .. "/results.md", table.concat(md, "\n") .. "\n\n" .. meta .. "\n")
log("written: " .. opt.out .. "/results.md, concurrency.dat, performance.png")
