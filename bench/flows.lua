-- `make bench`'s flow rows (bench/run.lua --only flows): push, scan, stock sync and logistics
-- sync over a modelled link, one call at a time against N in flight (wdt.flow's window).
-- The emulator's `delay` fault holds every call of the flow's methods for a fixed time (the
-- server's own time plus the round trip of a distant ERP: loopback adds well under 1 ms),
-- so a flow's rate is bounded by calls in flight × items per call / time per call. The
-- emulator is one nginx worker, though: its own work on a call (checking and storing 100
-- orders, filtering a window's rows) is done one call at a time, which a real ERP's many
-- servers do not. Each row's reference is the lower of the two bounds: N × items per call
-- / (sequential wall time / sequential calls), and the emulator's own rate (the same flow
-- with no delay at N in flight); the ratio says how much of it wdt reaches. One run per
-- setting (they take seconds, not milliseconds).
--
--   require("bench.flows")(env) with env = { emu, new_client, row, log, now, here, rows }
--   (rows: the set of rows to run, push, scan, stock, logistics; all when nil)
--   -> the push series (N, orders/s) for the chart (empty when push did not run)
return function(env)
  local emu, row, log, now = env.emu, env.row, env.log, env.now
  local platform = dofile(env.here .. "/examples/sample_platform.lua")
  local SID = "apidevnew2"
  local N = 8
  local rows = env.rows or { push = true, scan = true, stock = true, logistics = true }

  local function delay(ms, method)
    emu:reset()
    emu:faults { mode = "delay", delay_ms = ms, count = 100000, method = method }
  end
  local function calls_of(method) return (emu:state().calls[SID] or {})[method] or 0 end

  -- one flow row: seq, par and cap (no delay, N in flight) are { items, wall, calls };
  -- per_round (optional): the most items one round trip can carry whatever N (logistics: a
  -- page, since the next page's rows are known only once its read is back)
  local function flow_row(name, what, unit, per_call, seq, par, cap, goal, per_round)
    local t_call = seq.wall / seq.calls
    local carried = per_round and math.min(N * per_call, per_round) or N * per_call
    local link = carried / t_call
    local emu_rate = cap.items / cap.wall
    local limit = math.min(link, emu_rate)
    local rate = par.items / par.wall
    local speedup = rate / (seq.items / seq.wall)
    local ratio = rate / limit
    local carried_text = ("%d × %d"):format(N, per_call)
    if per_round then carried_text = ("min(%s, %d)"):format(carried_text, per_round) end
    row { name = name, what = what,
          wdt = ("%.0f %s/s at %d in flight"):format(rate, unit, N),
          ref = ("%.0f %s/s: min(%s / %.3f s, the emulator's %.0f)"):format(limit, unit, carried_text,
                                                                            t_call, emu_rate),
          ratio = ratio, goal = goal and goal.ratio, goal_text = goal and goal.text,
          met = goal and goal.met and goal.met(ratio, speedup),
          note = ("one at a time: %.0f %s/s (%d calls in %.2f s); %.1f× with %d in flight (%d calls in %.2f s)")
            :format(seq.items / seq.wall, unit, seq.calls, seq.wall, speedup, N, par.calls, par.wall) }
  end

  -- ---- push: 3,000 orders in calls of 100, 200 ms a pushSelf2 --------------------------------
  local PUSH = "sales.RawTrade.pushSelf2"
  local n_orders = 3000
  local client = env.new_client()
  local series = {}
  local function push_at(n, first, ms)
    delay(ms or 200, PUSH)
    local list = platform.orders(first, first + n_orders - 1)
    local t0 = now()
    local s = assert(client:push_orders { shop_no = "s1", orders = list, concurrency = n })
    local wall = now() - t0
    assert(s.new == n_orders, "not every order was created: " .. s.new)
    return { items = n_orders, wall = wall, calls = calls_of(PUSH) }
  end
  if rows.push then
    log("flows: push 3,000 orders, calls of 100, the emulator's delay 200 ms a pushSelf2")
    local seq
    local cap = push_at(N, 900000, 0)
    log(("  push with no delay at %d in flight: %.0f orders/s (the emulator's own rate)")
      :format(N, cap.items / cap.wall))
    for k, n in ipairs({ 1, 2, 4, 8, 16, 30 }) do
      local r = push_at(n, k * 100000)
      if n == 1 then seq = r end
      series[#series + 1] = { n, r.items / r.wall, math.min((n * 100) / (seq.wall / seq.calls), cap.items / cap.wall) }
      log(("  push at %d in flight: %.0f orders/s"):format(n, r.items / r.wall))
      if n == N then
        flow_row("flow-push", "push_orders 3,000, calls of 100, 200 ms a call", "orders", 100, seq, r, cap,
          { text = "≥ 0.7 of the bound", ratio = 0.7 })
      end
    end
  end

  -- ---- scan: 3,000 rows in one window, pages of 100, 200 ms a page ----------------------------
  local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
  local function scan_at(n, ms)
    delay(ms or 200, TRADES)
    local to = math.floor(os.time() / 3600) * 3600 - 3600
    emu:control("POST", "rows", { method = TRADES, count = 3000, from = to - 3500, to = to - 100 })
    local t0, got = now(), 0
    for r, err in client:scan { method = TRADES, from = to - 3600, to = to, page_size = 100, concurrency = n } do
      assert(r, tostring(err))
      got = got + 1
    end
    local wall = now() - t0
    assert(got == 3000, "the scan delivered " .. got .. " rows")
    return { items = got, wall = wall, calls = calls_of(TRADES) }
  end
  if rows.scan then
    log("flows: scan 3,000 rows, pages of 100, 200 ms a page")
    local s1, s8, s0 = scan_at(1), scan_at(N), scan_at(N, 0)
    flow_row("flow-scan", "scan 3,000 rows, pages of 100, 200 ms a page", "rows", 100, s1, s8, s0,
      { text = "≥ 4× one at a time", met = function(_, speedup) return speedup >= 4 end })
  end

  -- ---- stock sync: 60 goods, 100 ms every call ------------------------------------------------
  -- (the demo tenant starts with goods and rows of its own: they are synced too, and counted)
  local function stock_at(n, ms)
    delay(ms or 100, nil)
    emu:enqueue { sid = SID, stock = 60 }
    local t0 = now()
    local s = assert(client:sync_stock { count = 60, concurrency = n, handler = function() return true end })
    local wall = now() - t0
    assert(s.synced >= 60 and s.reported == s.read, "synced " .. s.synced)
    return { items = s.synced, wall = wall, calls = emu:state().requests }
  end
  if rows.stock then
    log("flows: stock sync of 60 goods, 100 ms every call")
    local k1, k8, k0 = stock_at(1), stock_at(N), stock_at(N, 0)
    flow_row("flow-stock", "sync_stock 60 goods, 100 ms a call", "goods", 1, k1, k8, k0,
      { text = "≥ 4× one at a time", met = function(_, speedup) return speedup >= 4 end })
  end

  -- ---- logistics sync: 2,000 rows, pages of 100, reports of 20, 200 ms every call -----------
  -- A page takes a read and its reports: one call at a time 1 + 5 round trips, at 8 in
  -- flight 1 + 1, or 1 when the next page is read while the reports are out (doc/sync.md).
  local LOGISTICS_ROWS = 2000
  local function logistics_at(n, ms)
    delay(ms or 200, nil)
    emu:enqueue { sid = SID, logistics = LOGISTICS_ROWS, shop_no = "s1" }
    local t0 = now()
    local s = assert(client:sync_logistics { shop_no = "s1", batch = 20, page_size = 100, concurrency = n,
                                             handler = function() return true end })
    local wall = now() - t0
    assert(s.synced >= LOGISTICS_ROWS and s.reported == s.read, "synced " .. s.synced)
    return { items = s.synced, wall = wall, calls = emu:state().requests }
  end
  if rows.logistics then
    log("flows: logistics sync of 2,000 rows, pages of 100, reports of 20, 200 ms every call")
    local l1, l8, l0 = logistics_at(1), logistics_at(N), logistics_at(N, 0)
    flow_row("flow-logistics", "sync_logistics 2,000 rows, pages of 100, reports of 20, 200 ms a call",
      "rows", 20, l1, l8, l0, nil, 100)
  end
  emu:reset()
  emu:faults {}
  client:close()
  return series
end
