-- Several calls in flight (wdt.flow's window, doc/push.md "Calls in flight"): against the
-- emulator, whose `delay` fault keeps calls in the server long enough to overlap, and whose
-- tenant `concurrency` limit refuses a call too many (status 100, the vendor's message).
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"

local platform = dofile(sh.repo_root() .. "/examples/sample_platform.lua")
local SID, LIMITED = fixtures.SID, "limitedsid"
local PUSH = "sales.RawTrade.pushSelf2"
local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
local LIST, UPDATE = "sales.LogisticsSync.getSyncListExt", "sales.LogisticsSync.update"

local CONFIG = {
  tenants = { { sid = SID, key = fixtures.KEY, secret = fixtures.APPSECRET },
              { sid = LIMITED, key = "lk", secret = "ls:lsalt", concurrency = 2 } },
  logistics = { [SID] = { pending = 0, shop_no = "s1" } },
}

local function tenant(emu, sid) return emu:state().tenants[sid or SID] end

-- The lines of tid as the emulator stored them (sales.RawTrade.searchSelfOrder).
local function stored_nums(client, tid)
  local now = os.time()
  local page = assert(client:page_call("sales.RawTrade.searchSelfOrder", { page_size = 10 }, {
    start_time = os.date("!%Y-%m-%d %H:%M:%S", now + 8 * 3600 - 600),
    end_time = os.date("!%Y-%m-%d %H:%M:%S", now + 8 * 3600 + 60), tid = tid }))
  for _, r in ipairs(page.rows) do
    if r.tid == tid then
      local nums = {}
      for i, l in ipairs(r.trade_orders) do nums[i] = l.num end
      return nums
    end
  end
end

-- A client that counts the queue's reads made while an update is out (its hooks see each
-- request of a window once, around all its tries): client, function() -> reads, most updates out.
local function counting_client(emu)
  local out, most, overlapped = 0, 0, 0
  local c = fixtures.client(emu, {
    on_request = function(i)
      if i.method == UPDATE then
        out = out + 1
        if out > most then most = out end
      elseif i.method == LIST and out > 0 then
        overlapped = overlapped + 1
      end
    end,
    on_response = function(i) if i.method == UPDATE then out = out - 1 end end })
  return c, function() return overlapped, most end
end

local sorted = fixtures.sorted

describe("calls in flight", function()
  local emu, client
  setup(function()
    emu = emulator.start { config = CONFIG }
    client = fixtures.client(emu)
  end)
  teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
  end)
  before_each(function() emu:reset(); emu:faults {} end)

  it("the emulator refuses a call over the tenant's limit of calls at once, applying nothing", function()
    emu:faults { mode = "delay", delay_ms = 200, count = 10, method = LIST }
    local limited = fixtures.client(emu, { sid = LIMITED, key = "lk", secret = "ls:lsalt", retries = 0 })
    local reqs = {}
    for i = 1, 4 do reqs[i] = { LIST, { shop_no = "s" .. i, is_own_platform = true }, pager = { page_size = 10 } } end
    local results, failed = limited:call_many(reqs, { concurrency = 4 })
    limited:close()
    assert.equal(2, failed)
    for _, r in ipairs(results) do
      if r.err then
        assert.same({ "api", 100 }, { r.err.kind, r.err.status })
        assert.matches("超过每分钟最大并发次数限制", r.err.message)
        assert.is_true(r.err.retryable)                 -- a rate-limit answer: nothing applied
      end
    end
    local f = tenant(emu, LIMITED).in_flight
    assert.same({ 0, 2, 2, 2 }, { f.now, f.most, f.refused, f.limit })
  end)

  it("a push runs its batches N at a time", function()
    emu:faults { mode = "delay", delay_ms = 100, count = 100, method = PUSH }
    local s = assert(client:push_orders { shop_no = "s1", batch = 10, concurrency = 4,
                                          orders = platform.orders(1, 120) })
    assert.same({ 120, 120, 12, 0 }, { s.read, s.new, s.calls, s.unreported })
    assert.equal(4, tenant(emu).in_flight.most)
    assert.equal(120, tenant(emu).raw_trades)
  end)

  it("answers that arrive out of order are settled in input order", function()
    -- the first call is held 300 ms, the next ones answered at once: they come back first
    emu:faults { { mode = "delay", delay_ms = 300, count = 1, method = PUSH },
                 { mode = "delay", delay_ms = 0, count = 100, method = PUSH } }
    local list, order = platform.orders(1, 60), {}
    local s = assert(client:push_orders { shop_no = "s1", batch = 10, concurrency = 4, orders = list,
                                          on_outcome = function(r) order[#order + 1] = r.key end })
    assert.same({ 60, 60 }, { s.new, #order })
    for i, o in ipairs(list) do assert.equal(o.tid, order[i]) end
  end)

  it("the same tid twice (A then B) ends as B under every concurrency", function()
    for _, n in ipairs({ 1, 2, 3, 4, 8 }) do
      emu:reset()
      emu:faults { mode = "delay", delay_ms = 20, count = 100, method = PUSH }
      local list = platform.orders(1, 90)
      local tid = list[3].tid                   -- A at position 3, B at 60: batches of 10
      local b = platform.order(3, { lines = #list[3].orders })
      b.receivable = 0
      for i, l in ipairs(b.orders) do
        l.num, l.total_amount = 40 + i, (40 + i) * l.price
        b.receivable = b.receivable + l.total_amount
      end
      table.insert(list, 60, b)
      local s = assert(client:push_orders { shop_no = "s1", batch = 10, concurrency = n, orders = list })
      assert.same({ 91, 90, 1, 0 }, { s.read, s.new, s.changed, s.unreported }, "concurrency " .. n)
      local want = {}
      for i = 1, #b.orders do want[i] = 40 + i end
      assert.same(want, stored_nums(client, tid), "concurrency " .. n)
    end
  end)

  it("a push asking more calls at once than the seller allows is paced down and loses nothing", function()
    emu:faults { mode = "delay", delay_ms = 50, count = 1000, method = PUSH }
    local limited = fixtures.client(emu, { sid = LIMITED, key = "lk", secret = "ls:lsalt" })
    local s = assert(limited:push_orders { shop_no = "s1", batch = 10, concurrency = 8,
                                           orders = platform.orders(1, 200) })
    limited:close()
    assert.same({ 200, 200, 0, 0 }, { s.read, s.new, s.failed, s.unreported })
    local t = tenant(emu, LIMITED)
    assert.equal(200, t.raw_trades)
    assert.equal(2, t.in_flight.most)
    assert.is_true(t.in_flight.refused > 0)
    -- found, the limit is kept: the window grows back only now and then (wdt.flow.pacer;
    -- growing at each call that got through, it was refused 97-162 times here)
    assert.is_true(t.in_flight.refused <= 80, t.in_flight.refused)
  end)

  it("a stock sync at 8 in flight against a seller's limit of 2: paced down, every good reported once", function()
    emu:enqueue { sid = LIMITED, stock = 60 }
    emu:faults { mode = "delay", delay_ms = 50, count = 1000, method = "sales.StockSync.syncSuccess" }
    local limited = fixtures.client(emu, { sid = LIMITED, key = "lk", secret = "ls:lsalt" })
    local seen = {}
    local s, err = limited:sync_stock { count = 30, concurrency = 8, handler = function(item)
      seen[#seen + 1] = item.api_goods_id
      return true
    end }
    limited:close()
    assert(s, tostring(err))
    assert.same({ 60, 60, 60, 0 }, { #seen, s.synced, s.reported, #s.unreported })
    local t = tenant(emu, LIMITED)
    assert.equal(0, t.stock.size)
    assert.equal(60, t.stock.synced)
    assert.equal(2, t.in_flight.most)
    assert.is_true(t.in_flight.refused > 0)
    assert.is_true(s.resent > 0)
    -- the limit found is kept from page to page (the run's wdt.flow.pacer; 28-31 here,
    -- where rounds of call_many narrowed to the calls that got through made 868)
    assert.is_true(t.in_flight.refused <= 60, t.in_flight.refused)
  end)

  -- 12 windows of 30 min, 25 rows each in pages of 10: every key once, in window order
  -- `to`: the end trade_rows gave (one clock reading for both: a second that begins between
  -- two readings would move the scan past the first row)
  local function scan_all(c, n, to)
    local from = to - 6 * 3600
    local keys, last, rows = {}, nil, 0
    for r, err in c:scan { method = TRADES, from = from, to = to, window = 1800, page_size = 10, concurrency = n } do
      assert(r, tostring(err))
      assert.is_nil(keys[r.trade_id])
      assert.is_true(last == nil or r.modified >= last)
      keys[r.trade_id], last, rows = true, r.modified, rows + 1
    end
    return rows, from, to
  end
  local function trade_rows(e, sid)
    local to = os.time() - 7200
    e:control("POST", "rows", { sid = sid, method = TRADES, count = 300, from = to - 6 * 3600, to = to })
    return to
  end

  it("a scan of many windows at 8 in flight against a seller's limit of 2: paced down, every row once", function()
    local to = trade_rows(emu, LIMITED)
    emu:faults { mode = "delay", delay_ms = 50, count = 10000, method = TRADES }
    local limited = fixtures.client(emu, { sid = LIMITED, key = "lk", secret = "ls:lsalt" })
    local ok, rows = pcall(scan_all, limited, 8, to)
    limited:close()
    assert(ok, rows)
    assert.equal(300, rows)
    local t = tenant(emu, LIMITED)
    assert.equal(2, t.in_flight.most)
    assert.is_true(t.in_flight.refused > 0)
    -- found, the limit is kept: the window grows back only now and then (wdt.flow.pacer;
    -- growing at each call that got through, it was refused 97-162 times here)
    assert.is_true(t.in_flight.refused <= 80, t.in_flight.refused)
  end)

  it("a push inside a scan's loop on the same client: each flight gets its own answers", function()
    local to = trade_rows(emu, SID)
    emu:faults { { mode = "delay", delay_ms = 30, count = 10000, method = TRADES },
                 { mode = "delay", delay_ms = 30, count = 10000, method = PUSH } }
    local pushed, n = 0, 0
    for r, err in client:scan { method = TRADES, from = to - 6 * 3600, to = to, window = 1800, page_size = 10,
                                concurrency = 8 } do
      assert(r, tostring(err))
      n = n + 1
      if n % 60 == 1 then          -- the scan's windows ahead are out meanwhile
        local s = assert(client:push_orders { shop_no = "s1", batch = 5, concurrency = 4,
                                              orders = platform.orders(n, n + 19) })
        pushed = pushed + s.new
      end
    end
    assert.same({ 300, 100 }, { n, pushed })
  end)

  it("with a rate budget, concurrent calls never exceed per_minute (counted at the emulator)", function()
    local e2 = emulator.start { config = {
      tenants = { { sid = SID, key = fixtures.KEY, secret = fixtures.APPSECRET } },
      rate_limit = { per_minute = 6, window = 1 } } }
    local paced = fixtures.client(e2, { rate = { per_minute = 6, window = 1, backend = "local" } })
    local ok, err = pcall(function()
      local s = assert(paced:push_orders { shop_no = "s1", batch = 10, concurrency = 8,
                                           orders = platform.orders(1, 180) })
      assert.same({ 180, 0 }, { s.new, s.unreported })
      local st = e2:state()
      assert.equal(0, st.tenants[SID].rate_limited)
      assert.equal(18, st.calls[SID][PUSH])
      -- a scan of windows read ahead, 8 in flight: 12 windows of 3 pages, under the same budget
      assert.equal(300, scan_all(paced, 8, trade_rows(e2, SID)))
      st = e2:state()
      assert.equal(0, st.tenants[SID].rate_limited)
      assert.equal(36, st.calls[SID][TRADES])
    end)
    paced:close()
    e2:stop()
    if not ok then error(err, 0) end
  end)

  -- sync_logistics at 4 and 8 reads the queue's next page while a page's reports are out
  -- (doc/sync.md, "Calls in flight"): reads of a queue that moves under them (every update
  -- held 30 ms), rows arriving during the run, pages that do not divide the queue, deferred
  -- rows that stay and push the pages on. The end of the run must not depend on those reads.
  it("sync_logistics reads ahead while reports are out: each row handed over once, the queue emptied", function()
    -- held: the updates only (a read is answered before the reports out are applied), or
    -- every call (after some: the pages have moved)
    local runs = {}
    for _, size in ipairs({ 9, 25 }) do
      runs[#runs + 1] = { size, 1, UPDATE }
      for _, n in ipairs({ 4, 8 }) do
        runs[#runs + 1] = { size, n, UPDATE }
        runs[#runs + 1] = { size, n, false }
      end
    end
    for _, r in ipairs(runs) do
      local size, n, held = r[1], r[2], r[3]
      do
        local what = ("page_size %d, concurrency %d, %s held"):format(size, n, held or "every call")
        emu:reset()
        emu:faults { mode = "delay", delay_ms = 20, count = 100000, method = held or nil }
        emu:enqueue { sid = SID, logistics = 137, shop_no = "s1" }
        local first = tenant(emu).logistics.pending
        local c, overlapped = counting_client(emu)
        local handed, kept, count, added = {}, {}, 0, 0
        local s = assert(c:sync_logistics { shop_no = "s1", page_size = size, batch = 4, concurrency = n,
          handler = function(row)
            handed[row.sync_id] = (handed[row.sync_id] or 0) + 1
            count = count + 1
            if count % 25 == 0 and added < 60 then            -- the queue grows meanwhile
              emu:enqueue { sid = SID, logistics = 12, shop_no = "s1" }
              added = added + 12
            end
            if row.sync_id % 7 == 0 then kept[#kept + 1] = row.sync_id return nil, "later" end
            return true
          end })
        c:close()
        local reads, most = overlapped()
        local total = #first + added
        assert.equal(60, added, what)
        local ids = {}
        for id, times in pairs(handed) do
          assert.equal(1, times, what .. ": row handed over twice")
          ids[#ids + 1] = id
        end
        assert.equal(total, #ids, what)
        for _, id in ipairs(first) do assert.truthy(handed[id], what .. ": a row never handed over") end
        assert.same({ total, total, total - #kept, #kept, 0, 0, 0 },
          { s.read, s.reported, s.synced, s.deferred, s.failed, s.refused, #s.unreported }, what)
        assert.equal(total, s.total, what)
        local q = tenant(emu).logistics
        assert.same(sorted(kept), sorted(q.pending), what .. ": the queue holds the deferred rows only")
        assert.same({ total - #kept, #kept, 0 }, { q.acked, q.kept, q.repeated }, what)
        if n == 1 then
          assert.same({ 0, 1 }, { reads, most }, what)        -- one call at a time, as before
        else
          assert.is_true(reads > 0, what .. ": no page was read while reports were out")
          assert.is_true(most > 1, what)
        end
      end
    end
  end)

  it("sync_logistics drops a read-ahead that fails after retries, and the pass reads again", function()
    emu:enqueue { sid = SID, logistics = 60, shop_no = "s1" }
    local count = 0
    local s = assert(client:sync_logistics { shop_no = "s1", page_size = 20, batch = 5, concurrency = 4,
      handler = function()
        count = count + 1
        -- the page of rows 1..20 is full: the next read goes out beside its reports, and
        -- fails 4 times (the client's 3 retries)
        if count == 20 then emu:faults { mode = "http_500", count = 4, method = LIST } end
        return true
      end })
    -- (a quiet read failing 4 times would have stopped the run)
    assert.same({ 60, 60, 60, 0 }, { s.read, s.reported, s.synced, #s.unreported })
    assert.equal(0, #emu:state().faults, "the read-ahead did not take the faults")
    assert.same({ 0, 60 }, { tenant(emu).logistics.size, tenant(emu).logistics.acked })
  end)

  it("sync_logistics stops on a report that fails while a read-ahead is out, and loses nothing", function()
    emu:enqueue { sid = SID, logistics = 80, shop_no = "s1" }
    local handed, count = {}, 0
    local s, err = client:sync_logistics { shop_no = "s1", page_size = 20, batch = 5, concurrency = 4,
      handler = function(row)
        handed[#handed + 1] = row.sync_id
        count = count + 1
        -- from the second page's reports on, every update fails (4 tries each)
        if count == 40 then emu:faults { mode = "http_500", count = 1000, method = UPDATE } end
        return true
      end }
    assert.is_nil(s)
    assert.equal("http", err.kind)
    s = err.summary
    local q = tenant(emu).logistics
    assert.equal(s.read, #handed)
    assert.equal(s.read, s.reported + #s.unreported)
    assert.same({ 20, 20 }, { s.synced, q.acked })
    assert.equal(80 - 20, q.size)
    local waiting = {}
    for _, id in ipairs(q.pending) do waiting[id] = true end
    for _, it in ipairs(s.unreported) do assert.is_true(waiting[it.sync_id]) end
    emu:faults {}
    local again = assert(client:sync_logistics { shop_no = "s1", handler = function() return true end })
    assert.same({ 60, 0 }, { again.synced, tenant(emu).logistics.size })
  end)
end)
