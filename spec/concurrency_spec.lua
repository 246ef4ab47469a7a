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
    local LIST = "sales.LogisticsSync.getSyncListExt"
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
  end)

  -- 12 windows of 30 min, 25 rows each in pages of 10: every key once, in window order
  local function scan_all(c, n)
    local to = os.time() - 7200
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
  end

  it("a scan of many windows at 8 in flight against a seller's limit of 2: paced down, every row once", function()
    trade_rows(emu, LIMITED)
    emu:faults { mode = "delay", delay_ms = 50, count = 10000, method = TRADES }
    local limited = fixtures.client(emu, { sid = LIMITED, key = "lk", secret = "ls:lsalt" })
    local ok, rows = pcall(scan_all, limited, 8)
    limited:close()
    assert(ok, rows)
    assert.equal(300, rows)
    local t = tenant(emu, LIMITED)
    assert.equal(2, t.in_flight.most)
    assert.is_true(t.in_flight.refused > 0)
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
      trade_rows(e2, SID)
      assert.equal(300, scan_all(paced, 8))
      st = e2:state()
      assert.equal(0, st.tenants[SID].rate_limited)
      assert.equal(36, st.calls[SID][TRADES])
    end)
    paced:close()
    e2:stop()
    if not ok then error(err, 0) end
  end)
end)
