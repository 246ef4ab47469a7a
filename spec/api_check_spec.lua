-- The catalogue's checks before sending (wdt.api.check through client:call, page_call, pages,
-- call_many, `wdt call`) and the catalogue's commands (`wdt methods`, `wdt describe`).
local api = require "wdt.api"
local check = require "wdt.api.check"
local cli = require "wdt.cli"
local cjson = require "cjson"
local wdt = require "wdt"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local compat = require "spec.support.compat"

local function sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end return self end,
           text = function() return table.concat(buf) end }
end

-- The page's example request as positional arguments (with n).
local function example_args(e)
  local v = wdt.json.decode(e.examples.request_in_window or e.examples.request)
  local n = 0
  for k in pairs(v) do if type(k) == "number" and k > n then n = k end end
  v.n = n
  return v
end

describe("the catalogue's checks", function()
  it("pass every page's own example request", function()
    local checked = 0
    for _, name in ipairs(api.names()) do
      local e = api.get(name)
      if e.examples.request then
        local ok, err = check.request(name, example_args(e), e.paging and { page_size = 100 } or nil)
        assert.is_true(ok, err and err.message)
        checked = checked + 1
      end
    end
    assert.is_true(checked >= 175)
  end)

  it("name the field, say what is wrong and give the page's meaning", function()
    local function refused(method, ...)
      local ok, err = check.request(method, { n = select("#", ...), ... })
      assert.is_nil(ok)
      assert.are.equal("invalid", err.kind)
      assert.are.equal(method, err.method)
      return err
    end
    local order = wdt.json.decode(api.get("sales.RawTrade.pushSelf2").examples.request)
    local function with(field, value)
      local copy = wdt.json.decode(wdt.json.encode(order))
      local second = wdt.json.decode(wdt.json.encode(copy[2][1]))
      second[field] = value
      return refused("sales.RawTrade.pushSelf2", copy[1], { copy[2][1], second }, copy[3])
    end
    local err = with("pay_method", 9)
    assert.are.equal("rawTradeList[2].pay_method", err.field)
    assert.matches("9 is not one of 1 在线转帐, 2 现金", err.message)
    assert.matches("支付方式", err.meaning)
    err = with("tid", ("长"):rep(41))
    assert.are.equal("rawTradeList[2].tid", err.field)
    assert.matches("at most 40 characters, got 41", err.message)
    err = with("trade_status", "30")
    assert.matches("int expected, got string", err.message)
    err = with("buyer_nick", nil)
    assert.are.equal("rawTradeList[2].buyer_nick", err.field)
    assert.matches("required, missing", err.message)
    err = refused("setting.Warehouse.queryWarehouse", { warehouse_no = ("w"):rep(41) })
    assert.are.equal("params.warehouse_no", err.field)
    err = refused("sales.TradeQuery.querySelfOrderWithDetail",
                  { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 01:00:01" })
    assert.are.equal("params.end_time", err.field)
    assert.matches("您的查询时间过宽,查询时间不能大于60分钟", err.message)
    assert.is_true(check.request("sales.TradeQuery.querySelfOrderWithDetail",
      { n = 1, { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 01:00:00" } }))
    -- times the page requires unless an order number stands in for them
    for _, key in ipairs({ "trade_no", "src_tid", "logistics_no" }) do
      assert.is_true(check.request("sales.TradeQuery.querySelfOrderWithDetail", { n = 1, { [key] = "X1" } }), key)
    end
    assert.is_true(check.request("wms.stockout.Sales.queryWithDetail", { n = 1, { src_order_no = "JY1" } }))
    -- its page says 出库单号 for the stock-in number (the field titled 入库单号 is described so)
    assert.is_true(check.request("statistic.StockinCollect.queryCostWithDetail", { n = 1, { stockin_no = "RK1" } }))
    err = refused("sales.TradeQuery.querySelfOrderWithDetail", { shop_no = "s1" })
    assert.are.equal("params.start_time", err.field)
    assert.matches("required without trade_no or logistics_no or src_tid, missing", err.message)
    local ok, perr = check.request("setting.Warehouse.queryWarehouse", { n = 1, {} }, { page_size = 1001 })
    assert.is_nil(ok)
    assert.are.equal("pager.page_size", perr.field)
    -- a method the catalogue does not know passes unchecked
    assert.is_true(check.request("no.Such.method", { n = 1, 1 }))
  end)

  describe("in the client", function()
    local emu, client
    setup(function() emu = emulator.start {} end)
    teardown(function() if emu then emu:stop() end end)
    before_each(function() emu:reset() client = fixtures.client(emu) end)
    after_each(function() client:close() end)
    local function requests() return emu:state().requests end

    it("send nothing for a violation, in call, page_call, pages and call_many", function()
      local long = { shop_no = ("s"):rep(41) }
      local before = requests()
      local data, err = client:call("setting.Shop.queryShop", long)
      assert.is_nil(data)
      assert.are.equal("invalid", err.kind)
      assert.are.equal("params.shop_no", err.field)
      local page, perr = client:page_call("setting.Shop.queryShop", { page_size = 10 }, long)
      assert.is_nil(page)
      assert.are.equal("params.shop_no", perr.field)
      for p, e in client:pages("setting.Shop.queryShop", { page_size = 10 }, long) do
        assert.is_false(p)
        assert.are.equal("invalid", e.kind)
      end
      local results, failed = client:call_many { { "setting.Shop.queryShop", long } }
      assert.are.equal(1, failed)
      assert.are.equal("params.shop_no", results[1].err.field)
      assert.are.equal(before, requests())
    end)

    it("send nothing for a missing field, a value out of its set, a long string or a wide window", function()
      local before = requests()
      local wide = { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 01:00:01" }
      local cases = {
        { "sales.TradeQuery.querySelfOrderWithDetail", { wide }, "params.end_time" },
        { "setting.Warehouse.queryWarehouse", { { type = 5 } }, "params.type" },
        { "setting.Warehouse.queryWarehouse", { { warehouse_no = ("仓"):rep(41) } }, "params.warehouse_no" },
        { "wms.stockout.Sales.weighingExt", { nil, "", 1, 0, false, n = 5 }, "logisticsOrTradeNo" },
      }
      for _, c in ipairs(cases) do
        local data, err = client:call(c[1], compat.unpack(c[2], 1, c[2].n or #c[2]))
        assert.is_nil(data)
        assert.are.same({ "invalid", c[3] }, { err.kind, err.field })
      end
      assert.are.equal(before, requests())
    end)

    it("can be turned off for a client or for one call", function()
      -- sent unchecked: the emulator's own refusal of the page's length comes back
      local long = { shop_no = ("s"):rep(41) }
      local truncated = "Data truncation: Data too long for column 'shop_no'"
      local before = requests()
      local function sent(data, err)
        assert.is_nil(data)
        assert.are.same({ "api", 100, truncated }, { err.kind, err.status, err.message })
      end
      sent(client:with({ check = false }):call("setting.Shop.queryShop", long))
      local off = fixtures.client(emu, { check = false })
      sent(off:call("setting.Shop.queryShop", long))
      off:close()
      local results = client:call_many { { "setting.Shop.queryShop", long, check = false } }
      sent(results[1].data, results[1].err)
      assert.are.equal(before + 3, requests())
    end)
  end)
end)

describe("wdt methods, describe, call --example", function()
  local function run(argv, env)
    local out, err = sink(), sink()
    local code = cli.main(argv, env or {}, { stdout = out, stderr = err, stderr_tty = false })
    return code, out.text(), err.text()
  end

  it("lists every method, or those matching a pattern, as text or JSON", function()
    local code, out, _ = run { "methods" }
    assert.are.equal(0, code)
    local n = select(2, out:gsub("\n", ""))
    assert.are.equal(#api.names(), n)
    _, out = run { "methods", "stockspec" }
    assert.matches("wms%.StockSpec%.search%s+query%s+库存查询\n", out)
    _, out = run { "methods", "仓库查询", "--json" }
    local list = cjson.decode(out)
    assert.are.equal("setting.Warehouse.queryWarehouse", list[1].name)
    assert.are.equal("query", list[1].kind)
  end)

  it("describes a method's arguments and answer, and gives its entry as JSON", function()
    local code, out, _ = run { "describe", "setting.Warehouse.queryWarehouse" }
    assert.are.equal(0, code)
    assert.matches("\n    warehouse_no%s+string%(40%)%s+no%s+仓库编号\n", out)
    assert.matches("\n    hide_delete%s+int%s+no", out)
    assert.matches("values: 0=不隐藏 1=隐藏已删除", out, 1, true)
    assert.matches("\n      warehouse_id%s+int%(11%)%s+yes", out)
    assert.matches("\n      purchase_address%s+string%(20%)", out)
    _, out = run { "describe", "setting.Warehouse.queryWarehouse", "--json" }
    assert.are.equal("setting.Warehouse.queryWarehouse", cjson.decode(out).name)
    local err
    code, _, err = run { "describe", "no.Such.method" }
    assert.are.equal(2, code)
    assert.matches("not in the catalogue", err)
  end)

  describe("against the emulator", function()
    local emu, env
    setup(function() emu = emulator.start {} end)
    teardown(function() if emu then emu:stop() end end)
    before_each(function()
      emu:reset()
      env = { WDT_URL = emu.url, WDT_SID = fixtures.SID, WDT_KEY = fixtures.KEY, WDT_SECRET = fixtures.APPSECRET }
    end)

    it("call --example sends the page's example; a violation exits 2 and sends nothing", function()
      local before = emu:state().requests
      local code, out, err, _ = run({ "call", "setting.Shop.queryShop", "--example" }, env)
      assert.are.equal(0, code, err)
      assert.is_table(cjson.decode(out))
      assert.are.equal(before + 1, emu:state().requests)
      code, _, err = run({ "call", "setting.Shop.queryShop", '[{"shop_no":"' .. ("s"):rep(41) .. '"}]' }, env)
      assert.are.equal(2, code)
      assert.matches("params.shop_no: at most 20 characters, got 41 (店铺编号); nothing was sent", err, 1, true)
      assert.are.equal(before + 1, emu:state().requests)
      code, _, err = run({ "call", "setting.Shop.queryShop", '[{"shop_no":"' .. ("s"):rep(41) .. '"}]', "--no-check" },
                         env)
      assert.are.equal(1, code)   -- sent: the emulator refuses it as the server would
      assert.matches("Data too long for column 'shop_no'", err, 1, true)
      assert.are.equal(before + 2, emu:state().requests)
    end)
  end)
end)
