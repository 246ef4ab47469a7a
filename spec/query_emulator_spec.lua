-- The emulator's windowed query methods, spoken to directly (signed by spec/support, not wdt):
-- list keys, paging, the window limits and their messages, /__emulator/rows, drift.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"

local HOUR, DAY = 3600, 86400

-- Beijing time, written here without wdt (os.date on UTC, shifted by 8 hours)
local function bj(t) return os.date("!%Y-%m-%d %H:%M:%S", t + 8 * HOUR) end

describe("emulator query methods", function()
  local emu, now

  setup(function() emu = emulator.start {} end)
  teardown(function() emu:stop() end)
  before_each(function()
    emu:reset()
    emu:faults {}
    now = os.time()
  end)

  local function query(method, filter, page)
    local code, body = emu:request { method = method, args_json = cjson.encode({ filter }),
                                     page = page or { page_size = 10, page_no = 0, calc_total = 1 } }
    assert.are.equal(200, code)
    return body
  end

  local cases = {
    { "sales.TradeQuery.querySelfOrderWithDetail", "start_time", "end_time", HOUR, "60分钟", "order", "trade_id" },
    { "sales.RawTrade.searchSelfOrder", "start_time", "end_time", 30 * DAY, "30天", "order", "rec_id" },
    { "aftersales.refund.Refund.search", "modified_from", "modified_to", 30 * DAY, "30天", "order", "refund_id" },
    { "aftersales.refund.RawRefund.search", "start_time", "end_time", 30 * DAY, "30天", "order", "refund_id" },
    { "wms.stockout.Sales.queryWithDetail", "start_time", "end_time", HOUR, "60分钟", "order", "stockout_id",
      { status_type = 3 } },
    { "wms.stockout.Sales.searchLogistics", "start_time", "end_time", DAY, "1天", "order_list", "rec_id",
      { status = 20 } },
    { "goods.ApiGoods.search", "start_time", "end_time", 30 * DAY, "30天", "goods_list", "rec_id" },
  }

  for _, c in ipairs(cases) do
    local method, from, to, limit, text, list, key, extra = c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    it(method .. ": its list key, paging from 0, total_count, and its window limit", function()
      local b = now - HOUR
      local a = b - limit
      emu:control("POST", "rows", { method = method, count = 25, from = a, to = b })
      local f = { [from] = bj(a), [to] = bj(b) }
      for k, v in pairs(extra or {}) do f[k] = v end
      local body = query(method, f)
      assert.are.equal(0, body.status)
      assert.are.equal(25, body.data.total_count)
      assert.are.equal(10, #body.data[list])
      assert.is_true(body.data[list][1][key] > 2 ^ 32)
      local last = query(method, f, { page_size = 10, page_no = 2, calc_total = 1 })
      assert.are.equal(5, #last.data[list])
      f[from] = bj(a - 1)
      body = query(method, f)
      assert.are.same({ status = 100, message = "您的查询时间过宽,查询时间不能大于" .. text }, body)
      f[from] = (bj(a):gsub("-", "/"))
      assert.are.equal(100, query(method, f).status)
      assert.matches("Unparseable date", query(method, f).message)
      f[from], f[to] = nil, nil
      assert.are.equal(100, query(method, f).status)
    end)
  end

  it("refuses searchLogistics without its status; queryWithDetail defaults status_type (its page's example)", function()
    local f = { start_time = bj(now - HOUR), end_time = bj(now) }
    assert.are.same({ status = 100, message = "参数中必须包含状态" },
      query("wms.stockout.Sales.searchLogistics", f))
    assert.are.equal(0, query("wms.stockout.Sales.queryWithDetail", f).status)
  end)

  it("lists the logistics queue's shipments as stockouts and logistics rows, one stockout_id each", function()
    emu:enqueue { logistics = 5 }
    local f = { start_time = bj(now - DAY + 60), end_time = bj(now + 60), status = 20 }
    local body = query("wms.stockout.Sales.searchLogistics", f, { page_size = 100, calc_total = 1 })
    assert.are.equal(emu:state().tenants.apidevnew2.logistics.size, body.data.total_count)
    assert.is_true(body.data.total_count >= 5)
    assert.matches("^CK%d+$", body.data.order_list[1].stockout_no)
    f.start_time, f.status = bj(now - HOUR + 60), nil
    local stockouts = query("wms.stockout.Sales.queryWithDetail", f, { page_size = 100, calc_total = 1 })
    local ids = {}
    for _, r in ipairs(stockouts.data.order) do ids[r.stockout_id] = r.order_no end
    for _, r in ipairs(body.data.order_list) do assert.are.equal(r.stockout_no, ids[r.stockout_id]) end
  end)

  it("rows: explicit rows keep their fields; bad requests are refused with 400", function()
    local r = emu:control("POST", "rows", { method = "sales.RawTrade.searchSelfOrder",
      rows = { { modified = bj(now - 100), tid = "T-1", shop_no = "s9" } } })
    assert.are.equal(1, #r.created)
    local body = query("sales.RawTrade.searchSelfOrder", { start_time = bj(now - 200), end_time = bj(now),
                                                           shop_no = "s9" })
    assert.are.equal("T-1", body.data.order[1].tid)
    assert.are.equal(bj(now - 100), body.data.order[1].modified)
    assert.has_error(function() emu:control("POST", "rows", { method = "nope", count = 1, from = 0, to = 9 }) end)
    assert.has_error(function() emu:control("POST", "rows", { method = "goods.ApiGoods.search", count = 1 }) end)
    assert.has_error(function()
      emu:control("POST", "rows", { method = "goods.ApiGoods.search", rows = { { modified = "2026/01/01" } } })
    end)
    assert.has_error(function() emu:faults { mode = "drift", rows = 0 } end)
    assert.has_error(function() emu:faults { mode = "drift", to = "later" } end)
  end)

  it("drift: while a window is paged, its oldest rows move to its last second", function()
    emu:control("POST", "rows", { method = "goods.ApiGoods.search", count = 30,
                                  from = now - 3 * HOUR, to = now - HOUR })
    emu:faults { mode = "drift", count = 1, rows = 2 }
    local f = { start_time = bj(now - 4 * HOUR), end_time = bj(now - HOUR) }
    local body = query("goods.ApiGoods.search", f)
    assert.are.equal(30, body.data.total_count)
    body = query("goods.ApiGoods.search", f, { page_size = 30, page_no = 0, calc_total = 1 })
    assert.are.equal(bj(now - HOUR - 1), body.data.goods_list[30].modified)
    assert.are.equal(bj(now - HOUR - 1), body.data.goods_list[29].modified)
    assert.are_not.equal(bj(now - HOUR - 1), body.data.goods_list[28].modified)
  end)
end)
