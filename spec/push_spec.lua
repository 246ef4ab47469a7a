-- client:push_orders / push_refunds / upload_goods against the emulator: every bucket, the
-- vendor pages' own example bodies, retried calls, resumable runs, a source that raises,
-- shipping pushed orders and syncing uploaded goods' stock.
local wdt = require "wdt"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"
local store = require "wdt.store"

local platform = dofile(sh.repo_root() .. "/examples/sample_platform.lua")
local SID = fixtures.SID

local CONFIG = {
  tenants = { { sid = SID, key = fixtures.KEY, secret = fixtures.APPSECRET } },
  logistics = { [SID] = { pending = 0, shop_no = "s1" } },
  shops = { [SID] = {
    { shop_no = "test" }, { shop_no = "LCJ" }, { shop_no = "wdtapi3-test" },
    { shop_no = "tb1", platform_id = 1 }, { shop_no = "off", is_disabled = true },
  } },
}

local orders = platform.orders

local function tenant(emu) return emu:state().tenants[SID] end

local function control(emu, what, body)
  local code, raw = emulator.exchange(emu.base .. "/__emulator/" .. what, "POST", cjson.encode(body))
  return code, cjson.decode(raw)
end

describe("push", function()
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

  -- luacheck: push no max line length (the vendor's example bodies, verbatim)
  describe("the vendor pages' example bodies", function()
    it("pushSelf2's example is accepted as one new order, and again as a change", function()
      local body = [=[["test",[{"is_auto_wms":false,"post_amount":2,"other_amount":5.2,"discount":1,"platform_cost":0,"cod_amount":"","received":"","tid":"tid-aqyYHjEldp","process_status":10,"trade_status":30,"refund_status":0,"pay_status":2,"order_count":2,"pay_method":2,"trade_time":"2020-03-20 18:24:37","pay_time":"2020-03-20 18:24:37","end_time":"2020-03-20 18:24:37","buyer_nick":"test_openapi","buyer_message":"test_openapi","buyer_email":"test_openapi@gmail.com","buyer_area":"test_area","receiver_name":"receiver_name","receiver_area":"北京 北京市 朝阳区","receiver_address":"春天街道春天花园小区1号楼1单元101","receiver_zip":"014500","receiver_mobile":"15612340987","receiver_telno":"02288888888","invoice_type":0,"invoice_title":"","invoice_content":"","logistics_type":-1,"consign_interval":0,"delivery_term":1,"to_deliver_time":"","pay_id":"","pay_account":"","remark":"","remark_flag":0,"goods_count":6,"receivable":17.6}],[{"tid":"tid-aqyYHjEldp","oid":"tid-aqyYHjEldp-0","order_type":0,"status":30,"refund_status":0,"goods_id":"openapi_gid-0","spec_id":"openapi_sid-0","goods_no":"api_gno-0","spec_no":"api_sno-0","goods_name":"api_gname-0","spec_name":"api_sname-0","num":3,"price":2.5,"adjust_amount":2,"refund_amount":"","discount":0.5,"share_discount":0.2,"total_amount":9,"cid":"","remark":"","json":""},{"tid":"tid-aqyYHjEldp","oid":"tid-aqyYHjEldp-1","order_type":0,"status":30,"refund_status":0,"goods_id":"openapi_gid-1","spec_id":"openapi_sid-1","goods_no":"api_gno-1","spec_no":"api_sno-1","goods_name":"api_gname-1","spec_name":"api_sname-1","num":3,"price":2.5,"adjust_amount":2,"refund_amount":"","discount":0.5,"share_discount":0.2,"total_amount":9,"share_amount":8.8,"cid":"","remark":"","json":""}]]]=]
      local _, resp = emu:request { method = "sales.RawTrade.pushSelf2", args_json = body }
      assert.same({ status = 0, data = { new_count = 1, chg_count = 0, error_list = {} } }, resp)
      -- the same order through wdt: its lines under `orders`, the counts checked
      local args = wdt.json.decode(body)
      local trade = args[2][1]
      trade.orders = args[3]
      local s = assert(client:push_orders { shop_no = "test", orders = { trade } })
      assert.same({ 0, 1, 0, 0, 0 }, { s.new, s.changed, s.failed, s.invalid, s.unreported })
      assert.equal(1, tenant(emu).raw_trades)
    end)

    it("RawRefund.upload2's example is accepted once its trade was pushed", function()
      local o = platform.order(1)
      o.tid, o.orders[1].oid = "TID6NAFAmwYMM", "deb718e2afe5"
      assert(client:push_orders { shop_no = "LCJ", orders = { o } })
      local body = [=[["LCJ",[{"refund_no":"lztest","num":1,"tid":"TID6NAFAmwYMM","oid":"deb718e2afe5","type":1,"status":2,"refund_version":"1","refund_amount":1,"actual_refund_amount":1,"title":"test","logistics_name":"","logistics_no":"","buyer_nick":"123444","refund_time":"2020-05-22 09:07:18","is_aftersale":0,"reason":""}]]]=]
      local _, resp = emu:request { method = "aftersales.refund.RawRefund.upload2", args_json = body }
      assert.same({ status = 0, data = { new_count = 1, chg_count = 0, error_list = {} } }, resp)
      local s = assert(client:push_refunds { shop_no = "LCJ", refunds = { wdt.json.decode(body)[2][1] } })
      assert.same({ 0, 1, 0 }, { s.new, s.changed, s.failed })
      assert.equal(1, tenant(emu).raw_refunds)
    end)

    it("ApiGoods.upload's example answers rec_ids", function()
      local body = [=[[{"goods_list":[{"spec_id":"wdt20240910","goods_no":"wdt20240910","goods_id":"wdt20240910","spec_no":"wdt20240910"},{"spec_id":"wdt202409101","goods_no":"wdt202409101","goods_id":"wdt202409101","spec_no":"wdt202409101"}],"shop_no":"wdtapi3-test"}]]=]
      local _, resp = emu:request { method = "goods.ApiGoods.upload", args_json = body }
      assert.equal(0, resp.status)
      assert.equal(2, #resp.data.rec_ids)
      local s = assert(client:upload_goods { shop_no = "wdtapi3-test", goods = wdt.json.decode(body)[1].goods_list })
      assert.same({ 0, 2, 0, 0, 0 }, { s.new, s.changed, s.failed, s.invalid, s.unreported })
      assert.equal(2, tenant(emu).api_goods)
    end)
  end)

  -- luacheck: pop
  describe("buckets", function()
    it("new, then changed on a second push, in batches of at most 100", function()
      local list = orders(1, 250)
      local s = assert(client:push_orders { shop_no = "s1", orders = list })
      assert.same({ 250, 0, 0, 0, 0, 3 }, { s.new, s.changed, s.failed, s.invalid, s.unreported, s.calls })
      local seen = 0
      s = assert(client:push_orders { shop_no = "s1", batch = 50,
        orders = function() seen = seen + 1 return list[seen] end })   -- an iterator
      assert.same({ 0, 250, 5 }, { s.new, s.changed, s.calls })
      local t = tenant(emu)
      assert.equal(250, t.raw_trades)
      assert.equal(250, t.raw_trades_updated)
    end)

    it("invalid: checked before sending, with the field and reason, never sent", function()
      local list = orders(1, 6)
      list[2].receiver_mobile = nil
      list[3].orders[1].num = "three"
      list[4].order_count = 9
      list[5].goods_count = 100
      list[6].pay_method = 99
      list[7] = "not a table"
      local s = assert(client:push_orders { shop_no = "s1", orders = list })
      assert.same({ 1, 6 }, { s.new, s.invalid })
      local got = {}
      for _, x in ipairs(s.invalids) do got[#got + 1] = x.index .. " " .. x.field end
      assert.same({ "2 receiver_mobile", "3 orders[1].num", "4 order_count", "5 goods_count",
                    "6 pay_method", "7 (item)" }, got)
      assert.matches("required", s.invalids[1].reason)
      assert.equal(1, tenant(emu).raw_trades)
      assert.is_nil(list[1].order_count, "the caller's table is left alone")
    end)

    it("invalid: what the JSON codec cannot send (invalid UTF-8, a mixed table), with the codec's words", function()
      local list = orders(1, 3)
      list[1].buyer_message = "bad \255 byte"
      list[2].orders[1].extra = { 1, x = 2 }
      local s = assert(client:push_orders { shop_no = "s1", orders = list })
      assert.same({ 1, 2, 0 }, { s.new, s.invalid, s.unreported })
      assert.same({ 1, 2 }, { s.invalids[1].index, s.invalids[2].index })
      assert.equal("(item)", s.invalids[1].field)
      assert.matches("buyer_message: invalid UTF%-8", s.invalids[1].reason)
      assert.matches("integer and string keys", s.invalids[2].reason)
      assert.equal(list[1].tid, s.invalids[1].key)
      assert.equal(1, tenant(emu).raw_trades)
    end)

    it("discounts: an order's `discounts` go as discountList, checked, and the emulator keeps them", function()
      local list = orders(1, 4)
      list[1].discounts = { { oid = list[1].orders[1].oid, sn = "D1", name = "满100减10", amount = 10 } }
      list[2].discounts = { { oid = "not-a-line", sn = "D2" } }
      list[3].discounts = { { oid = list[3].orders[1].oid, amount = "ten" } }
      list[4].discounts = {}
      local s = assert(client:push_orders { shop_no = "s1", orders = list })
      assert.same({ 2, 2, 0 }, { s.new, s.invalid, s.failed })
      assert.same({ "discounts[1].oid", "discounts[1].amount" }, { s.invalids[1].field, s.invalids[2].field })
      assert.matches("not the oid of one of the order's lines", s.invalids[1].reason)
      assert.same({ 2, 1 }, { tenant(emu).raw_trades, tenant(emu).raw_discounts })
      assert.is_nil(list[1].discounts[1].tid, "the caller's discount is left alone")
      -- pushed again without them: the trade's discounts are replaced
      list[1].discounts = nil
      s = assert(client:push_orders { shop_no = "s1", orders = { list[1] } })
      assert.same({ 1, 0 }, { s.changed, tenant(emu).raw_discounts })
    end)

    it("the emulator refuses a discount whose oid is not its trade's, for that order only", function()
      local validate = require "wdt.push.validate"
      local a = assert(validate.prepare("orders", platform.order(1)))
      local b = assert(validate.prepare("orders", platform.order(2)))
      local lines = {}
      for _, p in ipairs({ a, b }) do for _, l in ipairs(p.lines) do lines[#lines + 1] = l end end
      local data = assert(client:call("sales.RawTrade.pushSelf2", "s1", { a.trade, b.trade }, lines,
        { { tid = b.key, oid = platform.order(1).orders[1].oid, sn = "X" } }))
      assert.same({ 1, 1 }, { data.new_count, #data.error_list })
      assert.equal(b.key, data.error_list[1].no)
      assert.matches("不属于原始单", data.error_list[1].error)
      assert.equal(0, tenant(emu).raw_discounts)
    end)

    it("invalid: NaN, the infinities and fractions named by their value", function()
      local list = orders(1, 5)
      list[1].orders[1].num = 0 / 0
      list[2].orders[1].num = math.huge
      list[3].pay_method = -math.huge
      list[4].pay_method = 0 / 0
      list[5].pay_method = 2.5
      local s = assert(client:push_orders { shop_no = "s1", orders = list })
      assert.same({ 0, 5 }, { s.new, s.invalid })
      local got = {}
      for _, x in ipairs(s.invalids) do got[#got + 1] = x.field .. ": " .. x.reason end
      assert.same({ "orders[1].num: number expected, got nan", "orders[1].num: number expected, got inf",
                    "pay_method: integer expected, got -inf", "pay_method: integer expected, got nan",
                    "pay_method: integer expected, got 2.5" }, got)
      assert.equal(0, emu:state().requests)
    end)

    it("failed: error_list matched back by tid, with the ERP's message", function()
      local list = orders(1, 4)
      list[2].trade_time = "2099-01-01 00:00:00"                -- in the future
      list[3].orders[1].oid = list[1].orders[1].oid             -- an oid of another order
      local s = assert(client:push_orders { shop_no = "s1", orders = list })
      assert.same({ 2, 2 }, { s.new, s.failed })
      assert.equal(list[2].tid, s.failures[1].key)
      assert.matches("下单时间非法", s.failures[1].error)
      assert.equal(list[3].tid, s.failures[2].key)
      assert.matches("重复", s.failures[2].error)
      assert.equal(2, tenant(emu).raw_trades)
    end)

    it("failed as a whole: a shop that is not self-owned, or does not exist", function()
      local s = assert(client:push_orders { shop_no = "tb1", orders = orders(1, 3) })
      assert.same({ 0, 3 }, { s.new, s.failed })
      assert.matches("店铺平台不是自有平台", s.failures[1].error)
      s = assert(client:push_refunds { shop_no = "off", refunds = { platform.refund(platform.order(1)) } })
      assert.matches("店铺权限不足", s.failures[1].error)
      s = assert(client:upload_goods { shop_no = "nope", goods = platform.catalog() })
      assert.equal(platform.GOODS, s.failed)
    end)

    it("unreported: no answer after the client's retries stops the run", function()
      emu:faults { mode = "reset", count = 100 }
      local s, err = client:push_orders { shop_no = "s1", batch = 10, orders = orders(1, 30), concurrency = 1 }
      assert.is_nil(s)
      assert.equal("network", err.kind)
      local sum = err.summary
      assert.same({ 10, 10, 0 }, { sum.read, sum.unreported, sum.new })
      assert.matches("10 item%(s%) left unreported", err.message)
      -- two calls in flight: both batches of the round are unreported, nothing more is read
      s, err = client:push_orders { shop_no = "s1", batch = 10, orders = orders(1, 30), concurrency = 2 }
      assert.is_nil(s)
      sum = err.summary
      assert.same({ 20, 20, 0 }, { sum.read, sum.unreported, sum.new })
    end)

    it("unreported: an answer without data is a decode error that stops the push", function()
      emu:faults { mode = "no_data", count = 1 }
      local s, err = client:push_orders { shop_no = "s1", orders = orders(1, 5) }
      assert.is_nil(s)
      assert.equal("decode", err.kind)
      assert.same({ 0, 5 }, { err.summary.new, err.summary.unreported })
      assert.equal(1, #err.summary.anomalies)
      s = assert(client:push_orders { shop_no = "s1", orders = orders(1, 5) })   -- pushed again: safe
      assert.same({ 0, 5 }, { s.new, s.changed })
      assert.equal(5, tenant(emu).raw_trades)
    end)

    it("a retried call (HTTP 500, then a reset) creates nothing twice", function()
      emu:faults { { mode = "http_500", count = 1 }, { mode = "reset", count = 1 } }
      local s = assert(client:push_orders { shop_no = "s1", orders = orders(1, 20) })
      assert.same({ 20, 0, 0 }, { s.new, s.unreported, s.failed })
      assert.equal(20, tenant(emu).raw_trades)
    end)

    it("the same tid twice goes in two calls, the later version last", function()
      local a, b = platform.order(1), platform.order(1)
      b.remark = "second"
      local s = assert(client:push_orders { shop_no = "s1", orders = { a, platform.order(2), b } })
      assert.same({ 2, 1, 2 }, { s.new, s.changed, s.calls })
    end)

    it("refunds and goods: every item in one bucket", function()
      local o = platform.order(1, { lines = 2 })
      assert(client:push_orders { shop_no = "s1", orders = { o } })
      local bad = platform.refund(o, 2)
      bad.type = nil
      local stray = platform.refund(platform.order(99))
      local s = assert(client:push_refunds { shop_no = "s1", refunds = { platform.refund(o, 1), bad, stray } })
      assert.same({ 1, 0, 1, 1, 0 }, { s.new, s.changed, s.failed, s.invalid, s.unreported })
      assert.equal("type", s.invalids[1].field)
      assert.matches("不存在", s.failures[1].error)
      local goods = platform.catalog()
      goods[3].spec_id = nil
      s = assert(client:upload_goods { shop_no = "s1", goods = goods })
      assert.same({ platform.GOODS - 1, 1 }, { s.changed, s.invalid })
    end)

    it("an iterator that raises stops the push; what was gathered is listed unreported", function()
      local list, i = orders(1, 150), 0
      local s, err = client:push_orders { shop_no = "s1", concurrency = 1, orders = function()
        i = i + 1
        if i == 131 then error("feed broke") end
        return list[i]
      end }
      assert.is_nil(s)
      assert.equal("source", err.kind)
      assert.matches("feed broke", err.message)
      assert.same({ 130, 100, 30 }, { err.summary.read, err.summary.new, err.summary.unreported })
      assert.equal(100, tenant(emu).raw_trades)
    end)

    it("raises at once on wrong arguments", function()
      assert.has_error(function() client:push_orders { orders = {} } end,
        "bad argument 'shop_no' to 'push_orders' (non-empty string expected, got nil)")
      assert.has_error(function() client:push_orders { shop_no = "s1", orders = {}, batch = 101 } end)
      assert.has_error(function() client:push_refunds { shop_no = "s1", orders = {} } end)
      assert.has_error(function() client:upload_goods { shop_no = "s1", source = function() end } end)
      -- the position is the caller's line, not wdt's own
      local _, msg = pcall(function() client:push_orders { shop_no = "s1", orders = {}, bogus = 1 } end)
      assert.matches("^[^:]*push_spec%.lua:%d+: bad argument 'bogus' to 'push_orders' %(unknown option%)", msg)
      _, msg = pcall(function() client:upload_goods(42) end)
      assert.matches("^[^:]*push_spec%.lua:%d+: bad argument 'options' to 'upload_goods'", msg)
    end)

    it("raises on a list with a hole, naming the position; nothing is sent", function()
      local o = orders(1, 3)
      local _, msg = pcall(function() client:push_orders { shop_no = "s1", orders = { o[1], nil, o[3] } } end)
      assert.matches("^[^:]*push_spec%.lua:%d+: bad argument 'orders%[2%]' to 'push_orders' "
        .. "%(an order expected, got nil %(a hole before orders%[3%]%)%)", msg)
      local sparse = { [1] = o[1], [5] = o[2] }
      _, msg = pcall(function() client:upload_goods { shop_no = "s1", goods = sparse } end)
      assert.matches("bad argument 'goods%[2%]' to 'upload_goods' "
        .. "%(a good expected, got nil %(a hole before goods%[5%]%)%)", msg)
      -- one order given for the list would be read as an empty list
      _, msg = pcall(function() client:push_orders { shop_no = "s1", orders = o[1] } end)
      assert.matches("bad argument 'orders' to 'push_orders' %(a list expected, got a table with the key", msg)
      assert.equal(0, emu:state().requests)
    end)

    it("a list's length: the quick way for a plain list answers as the largest integer key", function()
      local list_length = require("wdt.check").list_length
      local function by_keys(t)                  -- the definition, key by key
        local n = 0
        for k in pairs(t) do if type(k) == "number" and k % 1 == 0 and k > n then n = k end end
        for i = 1, n do if t[i] == nil then return nil, i, n end end
        return n
      end
      local x = {}
      local cases = { {}, { x }, { x, x, x }, { x, nil, x }, { x, nil, x, nil, nil, nil, x },
                      { x, x, name = x }, { x, x, [2.5] = x }, { [0] = x, x }, { [-1] = x },
                      { x, x, [4] = x }, { name = x } }
      cases[#cases + 1] = setmetatable({ x, x }, { __len = function() return 5 end })
      cases[#cases + 1] = setmetatable({ name = x }, { __index = function() return x end,
                                                        __len = function() return 1 end })
      for i, t in ipairs(cases) do
        assert.same({ by_keys(t) }, { list_length(t) }, "case " .. i)
      end
    end)
  end)

  describe("the emulator's own checks (raw requests, signed by the spec's signer)", function()
    local function push_raw(shop, trades, lines)
      local _, resp = emu:request { method = "sales.RawTrade.pushSelf2",
                                    args_json = cjson.encode({ shop, trades, lines }) }
      return resp
    end
    local function split(o)
      local lines = o.orders
      o.orders = nil
      o.order_count, o.goods_count, o.end_time = #lines, 0, cjson.null
      for _, l in ipairs(lines) do l.tid = o.tid; o.goods_count = o.goods_count + l.num end
      return o, lines
    end

    it("lists per-order problems in error_list with status 0", function()
      local a, al = split(platform.order(1))
      local b, bl = split(platform.order(2))
      b.goods_count = 99
      local c, cl = split(platform.order(3))
      cl[1].tid = "NOPE"
      local lines = {}
      for _, l in ipairs({ al[1], bl[1], cl[1] }) do lines[#lines + 1] = l end
      local resp = push_raw("s1", { a, b, c }, lines)
      assert.equal(0, resp.status)
      assert.same({ 1, 0 }, { resp.data.new_count, resp.data.chg_count })
      local by = {}
      for _, e in ipairs(resp.data.error_list) do by[e.no] = e.error end
      assert.matches("goods_count", by.P00000002)
      assert.matches("原始单不在本次推送中", by.NOPE)
      assert.matches("子订单", by.P00000003)      -- an order left without lines
    end)

    it("keeps tid unique per seller and oid unique across orders", function()
      local a, al = split(platform.order(1))
      assert.equal(1, push_raw("s1", { a }, al).data.new_count)
      local resp = push_raw("test", { a }, al)      -- the same tid from another shop
      assert.matches("已存在于店铺s1", resp.data.error_list[1].error)
      local b, bl = split(platform.order(2))
      bl[1].oid = al[1].oid
      resp = push_raw("s1", { b }, bl)
      assert.matches("重复", resp.data.error_list[1].error)
    end)

    it("checks the shop first, for the whole call", function()
      local a, al = split(platform.order(1))
      assert.same({ status = 100, message = "店铺平台不是自有平台" }, push_raw("tb1", { a }, al))
      assert.same({ status = 100, message = "店铺编号不存在或已停用" }, push_raw("off", { a }, al))
      assert.same({ status = 100, message = "店铺编号不存在或已停用" }, push_raw("nope", { a }, al))
      assert.equal(2, push_raw(7, { a }, al).status)
      local _, shops = emu:request { method = "setting.Shop.queryShop", args_json = "[]", page = { page_size = 50 } }
      local platform_of = {}
      for _, sh_ in ipairs(shops.data.details) do platform_of[sh_.shop_no] = sh_.platform_id end
      assert.same({ s1 = 127, test = 127, LCJ = 127, ["wdtapi3-test"] = 127, tb1 = 1, off = 127 }, platform_of)
    end)
  end)

  describe("closing the loop in the emulator", function()
    it("ships pushed, non-refunded orders with their tid, oids and trade_id", function()
      local list = { platform.order(1, { lines = 1 }), platform.order(2, { lines = 3 }),
                     platform.order(3, { refunded = true }), platform.order(4, { lines = 2 }) }
      assert(client:push_orders { shop_no = "s1", orders = list })
      assert(client:push_refunds { shop_no = "s1", refunds = { platform.refund(list[4], 2) } })
      local code, r = control(emu, "ship", { count = 10 })
      assert.equal(200, code)
      assert.equal(4, #r.shipped)      -- P1 whole, P2 in two parts, P4 without its refunded line
      local rows = {}
      for page in client:pages("sales.LogisticsSync.getSyncListExt", { page_size = 100 },
                               { shop_no = "s1", is_own_platform = true }) do
        for _, row in ipairs(page.rows) do rows[#rows + 1] = row end
      end
      local got = {}
      for _, row in ipairs(rows) do got[#got + 1] = ("%s %d %s"):format(row.tid, row.is_part_sync, row.oids) end
      assert.same({ "P00000001 0 ", "P00000002 1 P00000002-1", "P00000002 1 P00000002-2,P00000002-3",
                    "P00000004 1 P00000004-1" }, got)
      assert.is_true(rows[1].trade_id > 2 ^ 32)
      code, r = control(emu, "ship", { tids = { "P00000003", "P00000001", "nope" } })
      assert.equal(200, code)
      assert.same({}, r.shipped)
      assert.equal(3, #r.skipped)
      -- the synced-back flow works on them
      local s = assert(client:sync_logistics { shop_no = "s1", handler = function() return true end })
      assert.equal(4, s.synced)
    end)

    it("pushed orders read back through the query methods, with the trade_id they ship with", function()
      local o = platform.order(5, { lines = 2 })
      assert(client:push_orders { shop_no = "s1", orders = { o } })
      local _, r = control(emu, "ship", { tids = { o.tid } })
      local ship_row = assert(client:page_call("sales.LogisticsSync.getSyncListExt", { page_size = 10 },
        { shop_no = "s1", is_own_platform = true, tid = o.tid })).rows[1]
      assert.equal(r.shipped[1], ship_row.sync_id)
      local now = os.time()
      local function window(method)
        return assert(client:page_call(method, { page_size = 10 }, {
          start_time = os.date("!%Y-%m-%d %H:%M:%S", now + 8 * 3600 - 600),
          end_time = os.date("!%Y-%m-%d %H:%M:%S", now + 8 * 3600 + 60) })).rows
      end
      local raw = window("sales.RawTrade.searchSelfOrder")
      assert.equal(1, #raw)
      assert.equal(o.tid, raw[1].tid)
      assert.same({ o.tid .. "-1", o.tid .. "-2" }, { raw[1].trade_orders[1].oid, raw[1].trade_orders[2].oid })
      local trades = window("sales.TradeQuery.querySelfOrderWithDetail")
      assert.equal(ship_row.trade_id, trades[1].trade_id)
      assert.equal(2, #trades[1].detail_list)
    end)

    it("uploaded goods become the stock sync's goods once their stock changes", function()
      assert(client:upload_goods { shop_no = "s1", goods = platform.catalog() })
      local _, r = control(emu, "stock", { goods = { { goods_id = "GID002", spec_id = "SID002", stock = 42 } } })
      assert.equal(1, #r.changed)
      _, r = control(emu, "stock", { count = 4 })
      assert.equal(4, #r.changed)
      local handled = {}
      local s = assert(client:sync_stock { handler = function(g)
        handled[#handled + 1] = g.goods_id .. "/" .. g.spec_id .. "=" .. g.syn_stock
        return true
      end })
      assert.equal(5, s.synced)
      assert.equal("GID002/SID002=42", handled[1])   -- the wait list is in the order of change
    end)
  end)

  describe("resumable", function()
    local dir
    before_each(function() dir = sh.tmpdir() end)
    after_each(function() os.execute("rm -rf " .. sh.quote(dir)) end)

    local pages_of = fixtures.pages_of

    it("saves the cursor, and a second run pushes nothing again", function()
      local state = store.file(dir .. "/state.json")
      local s = assert(client:push_orders { shop_no = "s1", source = pages_of(orders(1, 230), 50), state = state })
      assert.same({ 230, 0, 5 }, { s.new, s.pending, s.pages })
      assert.equal(230, state:load().cursor)
      s = assert(client:push_orders { shop_no = "s1", source = pages_of(orders(1, 230), 50), state = state })
      assert.same({ 0, 0, 0 }, { s.read, s.calls, s.new })
    end)

    it("keeps failed orders and retries them, then gives up after max_tries", function()
      local all = orders(1, 10)
      all[4].trade_time = "2099-01-01 00:00:00"
      local state = store.file(dir .. "/state.json")
      local function run() return assert(client:push_orders { shop_no = "s1", source = pages_of(all, 4),
                                                              state = state, max_tries = 3 }) end
      local s = run()
      assert.same({ 9, 1, 1 }, { s.new, s.failed, s.pending })
      assert.is_table(state:load().pending[all[4].tid])
      s = run()
      assert.same({ 1, 1, 1 }, { s.retried, s.failed, s.pending })
      s = run()
      assert.same({ 1, 0, 1 }, { s.retried, s.pending, #s.given_up })
      assert.equal(all[4].tid, s.given_up[1].key)
      assert.equal(3, s.given_up[1].tries)
      s = run()
      assert.same({ 0, 0 }, { s.retried, s.calls })
      assert.equal(1, #state:load().given_up)
    end)

    it("unreported orders are kept and pushed again on the next run", function()
      local state = store.file(dir .. "/state.json")
      emu:faults { mode = "no_data", count = 1 }
      local _, err = client:push_orders { shop_no = "s1", source = pages_of(orders(1, 8), 100), state = state }
      assert.equal("decode", err.kind)
      assert.same({ 8, 8 }, { err.summary.unreported, err.summary.pending })
      local s = assert(client:push_orders { shop_no = "s1", source = pages_of(orders(1, 8), 100), state = state })
      -- the ERP had carried out the first call (the fault dropped only its answer)
      assert.same({ 8, 8, 0, 0 }, { s.retried, s.changed, s.new, s.pending })
    end)

    it("a source that raises stops the run; nothing is lost and the next run goes on", function()
      local all = orders(1, 30)
      local state = store.file(dir .. "/state.json")
      local pages = pages_of(all, 10)
      local s, err = client:push_orders { shop_no = "s1", state = state, source = function(cursor)
        if (cursor or 0) >= 10 then error("platform API down") end
        return pages(cursor)
      end }
      assert.is_nil(s)
      assert.equal("source", err.kind)
      assert.matches("platform API down", err.message)
      assert.equal(10, err.summary.new)
      assert.equal(10, state:load().cursor)
      s = assert(client:push_orders { shop_no = "s1", state = state, source = pages })
      assert.same({ 20, 30 }, { s.new, state:load().cursor })
      assert.equal(30, tenant(emu).raw_trades)
    end)

    it("goods keep their two-part key in the state", function()
      local state = store.file(dir .. "/goods.json")
      local function run(shop)
        return assert(client:upload_goods { shop_no = shop, state = state, source = pages_of(platform.catalog(), 15) })
      end
      local s = run("tb1")                              -- refused as a whole: kept for the next run
      assert.same({ platform.GOODS, platform.GOODS }, { s.failed, s.pending })
      assert.is_table(state:load().pending["GID001\0SID001"])
      s = run("tb1")                                    -- retried from the state, refused again
      assert.same({ platform.GOODS, platform.GOODS, 0 }, { s.retried, s.failed, s.read - s.retried })
      assert.equal(2, state:load().pending["GID001\0SID001"].tries)
    end)

    it("a state belongs to one flow of one shop", function()
      local state = store.file(dir .. "/state.json")
      assert(client:push_orders { shop_no = "s1", state = state, source = pages_of(orders(1, 3), 10) })
      local s, err = client:push_orders { shop_no = "test", state = state, source = pages_of(orders(1, 3), 10) }
      assert.is_nil(s)
      assert.equal("state", err.kind)
      assert.matches("belongs to orders for shop s1", err.message)
    end)

    it("a page with a hole stops the run as a source error; nothing of it is lost", function()
      local all = orders(1, 13)
      local state = store.file(dir .. "/state.json")
      local pages = pages_of(all, 5)
      local holed = true
      local function source(cursor)
        local page, next_cursor = pages(cursor)
        if holed and cursor == 5 then page[2] = nil end          -- all[7] missing, all[8] not
        return page, next_cursor
      end
      local s, err = client:push_orders { shop_no = "s1", state = state, source = source }
      assert.is_nil(s)
      assert.equal("source", err.kind)
      assert.matches("hole: item 2 is nil, item 5 is not", err.message)
      assert.same({ 5, 5 }, { err.summary.read, err.summary.new })
      assert.equal(5, state:load().cursor)                      -- not past the holed page
      holed = false                                             -- the platform fixed its feed
      s = assert(client:push_orders { shop_no = "s1", state = state, source = source })
      assert.same({ 8, 8, 13 }, { s.read, s.new, state:load().cursor })
      assert.equal(13, tenant(emu).raw_trades)
    end)

    it("a single item given for a page is a source error, not the end", function()
      local state = store.file(dir .. "/state.json")
      local s, err = client:push_orders { shop_no = "s1", state = state,
        source = function(c) if c == nil then return orders(1, 1)[1], 1 end end }
      assert.is_nil(s)
      assert.equal("source", err.kind)
      assert.matches("not a list", err.message)
      local doc = state:load()
      assert.is_nil(doc and doc.cursor)
    end)

    it("a source that never advances its cursor is stopped", function()
      local s, err = client:push_orders { shop_no = "s1", state = store.file(dir .. "/s.json"),
        source = function(c) return orders(1, 2), c end }
      assert.is_nil(s)
      assert.matches("same cursor", err.message)
    end)
  end)
end)
