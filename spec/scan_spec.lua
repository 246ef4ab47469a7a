-- client:scan against the emulator's query methods: many windows, the drift fault (and a
-- naive reader that it defeats), checkpoints and restarts, the window limits.
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"
local compat = require "spec.support.compat"
local time = require "wdt.scan.time"
local socket = require "socket"

local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
local HOUR = 3600

local function id(v) return ("%.0f"):format(v) end

-- key text -> true for the rows the control call made
local function keys_of(created)
  local out = {}
  for _, c in ipairs(created) do out[id(c.key)] = true end
  return out
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("client:scan", function()
  local emu, client, now, from, to

  setup(function()
    emu = emulator.start {}
    client = fixtures.client(emu)
  end)
  teardown(function()
    client:close()
    emu:stop()
  end)
  before_each(function()
    emu:reset()
    emu:faults {}
    now = os.time()
    to = now - 2 * HOUR
    from = to - 6 * HOUR
  end)

  local function rows(o) return emu:control("POST", "rows", o).created end

  -- every row of a scan: list of rows, key text -> times delivered, the scan's state
  local function run_scan(o)
    local list, times = {}, {}
    local it, s = client:scan(o)
    for row, err in it do
      assert(row, tostring(err))
      list[#list + 1] = row
      local k = id(row[s.facts.key])
      times[k] = (times[k] or 0) + 1
    end
    return list, times, s
  end

  -- reads [a, b) window by window as most integrations do: pages 0, 1, … until a short one
  local function naive(a, b, size)
    local seen = {}
    for w = a, b - 1, HOUR do
      local params = { start_time = time.format(w), end_time = time.format(math.min(w + HOUR, b)) }
      local no = 0
      while true do
        local page = assert(client:page_call(TRADES, { page_size = size, page_no = no }, params))
        for _, r in ipairs(page.rows) do
          if time.parse(r.modified) < math.min(w + HOUR, b) then seen[id(r.trade_id)] = true end
        end
        if #page.rows < size then break end
        no = no + 1
      end
    end
    return seen
  end

  it("returns exactly the rows modified in a range of many windows, each once", function()
    local inside = keys_of(rows { method = TRADES, count = 600, from = from, to = to })
    rows { method = TRADES, count = 20, from = from - HOUR, to = from }   -- before
    rows { method = TRADES, count = 20, from = to, to = to + HOUR }       -- after
    local list, times, s = run_scan { method = TRADES, from = from, to = to, page_size = 25 }
    assert.are.equal(600, #list)
    for k in pairs(inside) do assert.are.equal(1, times[k], k) end
    assert.are.equal(600, count(times))
    assert.are.equal(6, s.stats.windows)
    assert.is_true(s.stats.pages >= 6 * 4)
    -- oldest first, ids exact (64-bit integers above 2^32)
    for i = 2, #list do assert.is_true(list[i - 1].modified <= list[i].modified) end
    assert.is_true(compat.is_integer(list[1].trade_id))
    assert.is_true(list[1].trade_id > 2 ^ 32)
  end)

  it("accepts the ERP's time strings (UTC+8) for from and to", function()
    local inside = keys_of(rows { method = TRADES, count = 30, from = from, to = to })
    local _, times = run_scan { method = TRADES, from = time.format(from), to = time.format(to) }
    assert.are.same(inside, (function() local o = {} for k in pairs(times) do o[k] = true end return o end)())
    assert.are.equal("2026-11-28 08:00:00", time.format(1795824000))
    assert.are.equal(1795824000, time.parse("2026-11-28 08:00:00"))
  end)

  it("drift: a naive page-by-page reader misses rows; scan misses none and repeats none", function()
    local inside = keys_of(rows { method = TRADES, count = 600, from = from, to = to })
    emu:faults { mode = "drift", count = 100000 }
    local seen = naive(from, to, 25)
    local missed = 0
    for k in pairs(inside) do if not seen[k] then missed = missed + 1 end end
    assert.is_true(missed >= 12, "the naive reader missed " .. missed)

    -- one page at a time, and 8 in flight over windows read ahead
    for _, n in ipairs({ 1, 8 }) do
      emu:reset()
      emu:faults { mode = "drift", count = 100000 }
      inside = keys_of(rows { method = TRADES, count = 600, from = from, to = to })
      local list, times, s = run_scan { method = TRADES, from = from, to = to, page_size = 25, concurrency = n }
      assert.are.equal(600, #list)
      for k in pairs(inside) do assert.are.equal(1, times[k], k) end
      assert.is_true(s.stats.rereads > 0)
      -- each row delivered is its newest version: the drift moved it to its window's end
      local moved = 0
      for _, r in ipairs(list) do
        if time.parse(r.modified) % HOUR == (to - 1) % HOUR then moved = moved + 1 end
      end
      assert.is_true(moved > 20, "moved " .. moved)
    end
  end)

  it("windows in flight (concurrency 1, 4, 8): the rows of a sequential scan, in window order", function()
    -- 24 windows of 15 min, 10 rows each: one page each, so only windows read ahead put
    -- calls together; each run's first call is held longest, so later windows answer first
    rows { method = TRADES, count = 240, from = from, to = to }
    local runs, most = {}, {}
    for _, n in ipairs({ 1, 4, 8 }) do
      emu:faults { { mode = "delay", delay_ms = 300, count = 1, method = TRADES },
                   { mode = "delay", delay_ms = 40, count = 1000, method = TRADES } }
      local list, _, s = run_scan { method = TRADES, from = from, to = to, window = 900, page_size = 100,
                                    concurrency = n }
      assert.are.equal(24, s.stats.windows)
      local seq = {}
      for i, r in ipairs(list) do seq[i] = id(r.trade_id) .. "@" .. r.modified end
      runs[n] = seq
      most[n] = emu:state().tenants[fixtures.SID].in_flight.most    -- the most so far
    end
    assert.are.equal(240, #runs[1])
    assert.are.same(runs[1], runs[4])
    assert.are.same(runs[1], runs[8])
    assert.are.equal(1, most[1])
    assert.is_true(most[4] >= 3 and most[4] <= 4, "most in flight at 4: " .. most[4])
    assert.is_true(most[8] >= 6 and most[8] <= 8, "most in flight at 8: " .. most[8])
  end)

  it("a window read ahead and not yet delivered never moves the checkpoint; at concurrency 1 none is", function()
    for _, n in ipairs({ 8, 1 }) do
      emu:reset()
      local inside = keys_of(rows { method = TRADES, count = 240, from = from, to = to })
      emu:faults { mode = "delay", delay_ms = 30, count = 1000, method = TRADES }
      local dir = sh.tmpdir()
      local cp = dir .. "/cp.json"
      local o = { method = TRADES, from = from, to = to, window = 900, page_size = 100, concurrency = n,
                  checkpoint = cp }
      local got, k = {}, 0
      local it, st = client:scan(o)
      for row in it do
        got[id(row.trade_id)] = true
        k = k + 1
        if k % 5 == 0 then socket.sleep(0.03) end   -- a slow consumer: windows are read meanwhile
        if k == 25 then break end                   -- in the third window
      end
      st:close()
      local calls = emu:state().calls[fixtures.SID][TRADES]
      if n == 1 then
        assert.are.equal(3, calls)                    -- one window's page 0 after the other
      else
        assert.is_true(calls >= 8, "calls " .. calls) -- windows read ahead of the third
      end
      assert.are.equal(from + 2 * 900, require("wdt.store").file(cp):load().next)
      local _, times = run_scan(o)
      local again = 0
      for key in pairs(inside) do
        assert.is_true(got[key] or times[key] == 1, key)
        if got[key] and times[key] then again = again + 1 end
      end
      assert.are.equal(5, again)                   -- the third window's rows taken before the break
      os.execute("rm -rf " .. sh.quote(dir))
    end
  end)

  it("drift to now: rows that left the range while read come in the next run, not twice", function()
    local inside = keys_of(rows { method = TRADES, count = 300, from = from, to = to })
    emu:faults { mode = "drift", to = "now", count = 100000 }
    local dir = sh.tmpdir()
    local cp = dir .. "/cp.json"
    local o = { method = TRADES, from = from, checkpoint = cp, page_size = 20, lag = 0 }
    local _, first, s1 = run_scan(o)
    emu:faults {}
    os.execute("sleep 1.2")
    local later, second = run_scan(o)
    for k in pairs(inside) do
      assert.is_true(first[k] ~= nil or second[k] ~= nil, k)
      assert.is_true((first[k] or 0) <= 1 and (second[k] or 0) <= 1, k)
    end
    -- the second run brings the rows the drift moved, each with its new time: a change
    assert.is_true(#later > 0)
    for _, r in ipairs(later) do assert.is_true(time.parse(r.modified) >= s1.to) end
    os.execute("rm -rf " .. sh.quote(dir))
  end)

  it("a checkpoint advances only past windows taken completely; a restart delivers the rest", function()
    local inside = keys_of(rows { method = TRADES, count = 300, from = from, to = to })
    local dir = sh.tmpdir()
    local cp = dir .. "/cp.json"
    local o = { method = TRADES, from = from, to = to, checkpoint = cp, page_size = 20 }
    local got, n = {}, 0
    local it, st = client:scan(o)
    for row in it do
      got[id(row.trade_id)] = (got[id(row.trade_id)] or 0) + 1
      n = n + 1
      if n == 120 then break end                 -- the consumer stops in the third window
    end
    st:close()                                   -- and lets go of the checkpoint's run lock
    local doc = require("wdt.store").file(cp):load()
    assert.are.equal(from + 2 * HOUR, doc.next)  -- two windows taken completely
    local _, times = run_scan(o)
    local twice = 0
    for k in pairs(inside) do
      local total = (got[k] or 0) + (times[k] or 0)
      assert.is_true(total >= 1, k)
      if total > 1 then twice = twice + 1 end
    end
    assert.is_true(twice <= 20, "again: " .. twice)  -- at most the third window's rows taken
    assert.are.equal(to, require("wdt.store").file(cp):load().next)
    os.execute("rm -rf " .. sh.quote(dir))
  end)

  it("a restart re-reads the overlap: drops what it delivered, delivers late commits", function()
    local dir = sh.tmpdir()
    local cp = dir .. "/cp.json"
    rows { method = TRADES, rows = { { modified = to - 10, tid = "early" } } }
    local list = run_scan { method = TRADES, from = from, to = to, checkpoint = cp }
    assert.are.equal(1, #list)
    -- committed late, with a modified time the first run had already passed
    rows { method = TRADES, rows = { { modified = to - 30, tid = "late" },
                                     { modified = to + 10, tid = "next" } } }
    local again, _, s = run_scan { method = TRADES, to = to + 60, checkpoint = cp }
    local tids = {}
    for _, r in ipairs(again) do tids[#tids + 1] = r.src_tids end
    assert.are.same({ "late", "next" }, tids)
    assert.are.equal(1, s.stats.overlap_dropped)
    -- runs that deliver nothing new keep what the overlap must drop, and never move back
    for _ = 1, 2 do
      again, _, s = run_scan { method = TRADES, to = to + 60, checkpoint = cp, window = 30 }
      assert.are.equal(0, #again)
      assert.are.equal(1, s.stats.overlap_dropped)
    end
    again = run_scan { method = TRADES, to = to + 30, checkpoint = cp }
    assert.are.equal(0, #again)
    assert.are.equal(to + 60, require("wdt.store").file(cp):load().next)
    os.execute("rm -rf " .. sh.quote(dir))
  end)

  it("with a checkpoint, `from` only starts a new one; a `from` elsewhere is reported in from_ignored", function()
    local dir = sh.tmpdir()
    local cp = dir .. "/cp.json"
    rows { method = TRADES, rows = { { modified = from + 10, tid = "a" }, { modified = to + 10, tid = "b" } } }
    local list, _, s = run_scan { method = TRADES, from = from, to = to, checkpoint = cp }
    assert.are.equal(1, #list)
    assert.is_nil(s.resumed)                  -- a new checkpoint: `from` is where it starts
    assert.is_nil(s.from_ignored)
    -- the checkpoint decides: it resumes at `to`, whatever `from` says, and says so
    for _, f in ipairs({ from, to + 30, time.format(from) }) do
      local again
      again, _, s = run_scan { method = TRADES, from = f, to = to + 60, checkpoint = cp }
      assert.are.equal(1, #again)
      assert.are.equal("b", again[1].src_tids)
      assert.are.equal(to, s.resumed)
      assert.are.equal(time.value(f), s.from_ignored)
      assert.are.equal(to - 60, s.from)      -- the overlap before the checkpoint's position
      os.execute("rm -f " .. sh.quote(cp))
      run_scan { method = TRADES, from = from, to = to, checkpoint = cp }
    end
    -- a `from` at the checkpoint's position, or none, is not ignored
    _, _, s = run_scan { method = TRADES, from = to, to = to + 60, checkpoint = cp }
    assert.are.equal(to, s.resumed)
    assert.is_nil(s.from_ignored)
    _, _, s = run_scan { method = TRADES, to = to + 90, checkpoint = cp }
    assert.are.equal(to + 60, s.resumed)
    assert.is_nil(s.from_ignored)
    os.execute("rm -rf " .. sh.quote(dir))
  end)

  it("a checkpoint of another method, filter or seller is refused", function()
    local dir = sh.tmpdir()
    local cp = dir .. "/cp.json"
    run_scan { method = TRADES, from = from, to = to, checkpoint = cp }
    local it = client:scan { method = TRADES, filter = { shop_no = "s2" }, checkpoint = cp }
    local row, err = it()
    assert.is_false(row)
    assert.are.equal("store", err.kind)
    assert.matches("another filter", err.message)
    it = client:scan { method = "goods.ApiGoods.search", checkpoint = cp }
    row, err = it()
    assert.is_false(row)
    assert.matches("not one of a scan of goods", err.message)
    assert.is_nil(it())
    os.execute("rm -rf " .. sh.quote(dir))
  end)

  it("never sends a window wider than the method's limit, for every method it knows", function()
    local limits = {}
    for method, f in pairs(require("wdt.scan").methods) do
      limits[method] = f.limit
      local filter = {}
      -- required filters: searchLogistics' status 20 (待结算, a value its page lists) is the
      -- emulated shipments'; queryWithDetail's status_type 3 without a status lists all
      for _, k in ipairs(f.required or {}) do filter[k] = k == "status" and 20 or 3 end
      local span = math.min(f.limit * 3, 70 * 86400)
      local a, b = now - span - HOUR, now - HOUR
      local inside = keys_of(rows { method = method, count = 90, from = a, to = b })
      local _, times, s = run_scan { method = method, filter = filter, from = a, to = b, page_size = 40 }
      assert.are.equal(90, count(times), method)
      for k in pairs(inside) do assert.are.equal(1, times[k], method .. " " .. k) end
      assert.is_true(s.stats.windows >= 3, method)
    end
    assert.are.equal(HOUR, limits[TRADES])
    assert.are.equal(86400, limits["wms.stockout.Sales.searchLogistics"])
    assert.are.equal(30 * 86400, limits["goods.ApiGoods.search"])
    -- the emulator does refuse one second more, with the vendor's message
    local page, err = client:with({ check = false }):page_call(TRADES, { page_size = 10 },
      { start_time = time.format(from), end_time = time.format(from + HOUR + 1) })
    assert.is_nil(page)
    assert.are.equal(100, err.status)
    assert.are.equal("您的查询时间过宽,查询时间不能大于60分钟", err.message)
    assert.has_error(function() client:scan { method = TRADES, from = from, window = HOUR + 1 } end)
  end)

  it("scans a method it does not know from the facts given", function()
    local inside = keys_of(rows { method = "goods.ApiGoods.search", count = 40, from = from, to = to })
    local _, times = run_scan { method = "goods.ApiGoods.search", from = from, to = to,
      facts = { limit = HOUR, page_size = 7 } }
    assert.are.equal(40, count(times))
    for k in pairs(inside) do assert.are.equal(1, times[k]) end
    assert.has_error(function() client:scan { method = "x.Y.unknown", from = from } end,
      "bad argument 'facts' to 'scan' ('x.Y.unknown' is unknown to wdt: give facts.from (a string))")
  end)

  it("stays a lag behind now and raises on bad options", function()
    rows { method = TRADES, rows = { { modified = now - 30 } } }
    local list, _, s = run_scan { method = TRADES, from = now - HOUR }   -- lag 120 s by default
    assert.are.equal(0, #list)
    assert.is_true(s.to <= os.time() - 120)
    list = run_scan { method = TRADES, from = now - HOUR, lag = 0 }
    assert.are.equal(1, #list)
    assert.has_error(function() client:scan { method = TRADES } end,
      "bad argument 'from' to 'scan' (is required without a checkpoint)")
    assert.has_error(function() client:scan { method = TRADES, from = "2026/11/28 00:00:00" } end)
    assert.has_error(function() client:scan { method = TRADES, from = from, filter = { start_time = "x" } } end)
    assert.has_error(function() client:scan { method = "wms.stockout.Sales.searchLogistics", from = from } end,
      "bad argument 'filter' to 'scan' (wms.stockout.Sales.searchLogistics needs 'status')")
    assert.has_error(function() client:scan { method = TRADES, from = from, colour = 1 } end)
    assert.has_error(function() client:scan { method = TRADES, from = from, facts = { key = {} } } end,
      "bad argument 'facts' to 'scan' ('key' must be a string or a list of strings)")
  end)
end)
