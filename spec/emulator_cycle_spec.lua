-- The emulator's integration cycle, spoken to directly (signed by spec/support, not wdt):
-- orders pushed (with discounts), refunded, shipped and reported; goods uploaded; then each
-- of the seven query methods asked with each documented filter. Rows must carry every field
-- of the page's table (the catalogue, src/wdt/api, through emulator/pages.lua) with its type,
-- values that follow from what was pushed, and the same ids in every method.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local sh = require "spec.support.sh"

-- the catalogue of the vendor's pages (wdt.api), as the emulator reads it (emulator/pages.lua)
local pages = assert(loadfile(sh.repo_root() .. "/emulator/pages.lua"))(require "wdt.api")
local HOUR = 3600
local function bj(t) return os.date("!%Y-%m-%d %H:%M:%S", t + 8 * HOUR) end

-- a value of the page's type
local TYPE_OK = {
  int = function(v) return type(v) == "number" and v == math.floor(v) end,
  dec = function(v) return type(v) == "number" end,
  str = function(v) return type(v) == "string" end,
  bool = function(v) return type(v) == "boolean" end,
  list = function(v) return type(v) == "table" end,
  map = function(v) return type(v) == "table" end,
}

-- time fields a table calls String but its page's example answers in milliseconds
-- (pages.lua `ms`, e.g. Refund.search's modified): the example wins
local function ms_fields(method, list_key)
  local out = {}
  for _, f in ipairs(pages[method].ms or {}) do
    local list, name = f:match("^(.-)%.(.+)$")
    if (list or nil) == list_key then out[name or f] = true end
  end
  return out
end

local function assert_typed(list, row, where, method, list_key)
  local ms = ms_fields(method, list_key)
  for _, f in ipairs(list) do
    local name, ty = f:match("^(.-):(%a+)$")
    if ms[name] then ty = "int" end
    assert.is_not_nil(row[name], where .. ": missing " .. name)
    assert.is_true(TYPE_OK[ty](row[name]), ("%s: %s is not %s (%s)"):format(where, name, ty, tostring(row[name])))
  end
end

-- every row and nested row of a method's answer has every documented field, typed
local function assert_rows(method, rows)
  local p = pages[method]
  for i, row in ipairs(rows) do
    assert_typed(p.row, row, method .. "[" .. i .. "]", method)
    for key, list in pairs(p.nested or {}) do
      local nested = row[key]
      if type(nested) == "table" then
        for j, n in ipairs(nested) do
          assert_typed(list, n, method .. "[" .. i .. "]." .. key .. "[" .. j .. "]", method, key)
        end
      end
    end
  end
end

local function line(tid, n, price, num)
  return { tid = tid, oid = tid .. "-" .. n, status = 30, refund_status = 0, goods_id = "GID" .. n,
           spec_id = "SID" .. n, goods_no = "GNO" .. n, spec_no = "SNO" .. n, goods_name = "goods " .. n,
           spec_name = "red", num = num, price = price, discount = 0, share_discount = 0,
           total_amount = num * price, adjust_amount = 0, refund_amount = 0, remark = "r" .. n, json = "" }
end

local function order(tid, lines, extra)
  local count, total = 0, 0
  for _, l in ipairs(lines) do count, total = count + l.num, total + l.total_amount end
  local o = { tid = tid, process_status = 10, trade_status = 30, refund_status = 0, pay_status = 2,
    order_count = #lines, goods_count = count, pay_method = 7, trade_time = bj(os.time() - 600),
    pay_time = bj(os.time() - 590), end_time = cjson.null, buyer_nick = "nick-" .. tid,
    buyer_message = "msg " .. tid, receiver_name = "收件人" .. tid, receiver_area = "北京 北京市 朝阳区",
    receiver_address = "春天街道1号", receiver_mobile = "13800000000", post_amount = 5, discount = 2,
    receivable = total + 3, delivery_term = 1, is_auto_wms = false, warehouse_no = "", remark = "cs " .. tid }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("the emulator's integration cycle", function()
  local emu, now, rec_ids, trades
  local A, B, C = "CYC-A", "CYC-B", "CYC-C"

  local function call(method, args, page)
    local code, body = emu:request { method = method, args_json = cjson.encode(args),
                                     page = page or { page_size = 100, page_no = 0, calc_total = 1 } }
    assert.are.equal(200, code)
    return body
  end

  local function rows_of(method, filter, list)
    local body = call(method, { filter })
    assert.are.equal(0, body.status, tostring(body.message))
    local rows = body.data[list or "order"]
    assert_rows(method, rows)
    return rows
  end

  setup(function()
    emu = emulator.start {}
    now = os.time()
    local la, lb, lc = { line(A, 1, 9.5, 2) }, { line(B, 1, 3, 1), line(B, 2, 4, 1), line(B, 3, 5, 2) },
                       { line(C, 1, 7, 1), line(C, 2, 8, 1) }
    local pushed = call("sales.RawTrade.pushSelf2", { "s1",
      { order(A, la, { remark_flag = 2 }), order(B, lb), order(C, lc) },
      { la[1], lb[1], lb[2], lb[3], lc[1], lc[2] },
      { { tid = A, oid = A .. "-1", sn = "D1", name = "满减", detail = "满10减1", amount = 1 } } })
    assert.are.same({ 3, 0, 0 }, { pushed.data.new_count, pushed.data.chg_count, #pushed.data.error_list })
    local refund = { refund_no = "RF-C1", num = 1, tid = C, oid = C .. "-1", type = 2, status = 2,
      refund_version = "1", refund_amount = 7, actual_refund_amount = 7, title = "goods 1",
      buyer_nick = "nick-" .. C, is_aftersale = 1, reason = "broken", logistics_no = "RET001",
      logistics_name = "顺丰速运", refund_time = bj(now - 300) }
    local up = call("aftersales.refund.RawRefund.upload2", { "s1", { refund } })
    assert.are.same({ 1, 0 }, { up.data.new_count, #up.data.error_list })
    local goods = call("goods.ApiGoods.upload", { { shop_no = "s1", goods_list = {
      { goods_id = "GID1", spec_id = "SID1", goods_no = "GNO1", spec_no = "SNO1", goods_name = "goods 1",
        price = 9.5, stock_num = 12, status = 1 },
      { goods_id = "GID2", spec_id = "SID2", goods_no = "GNO2", spec_no = "SNO2", status = 2 } } } })
    rec_ids = goods.data.rec_ids
    local shipped = emu:control("POST", "ship", { tids = { A, B, C } })
    assert.are.equal(3, shipped.trades)
    -- A's shipment reported to the platform: A is finished
    local list = call("sales.LogisticsSync.getSyncListExt", { { shop_no = "s1", is_own_platform = true, tid = A } })
    call("sales.LogisticsSync.update", { { { sync_id = list.data[1].sync_id, status = 0, error_msg = "" } } })
    trades = {}
    for _, r in ipairs(rows_of("sales.TradeQuery.querySelfOrderWithDetail",
                               { start_time = bj(now - 1800), end_time = bj(now + 60) })) do
      trades[r.src_tids] = r
    end
  end)
  teardown(function() emu:stop() end)

  local function window(extra, span)
    local f = { start_time = bj(now - (span or 1800)), end_time = bj(now + 60) }
    for k, v in pairs(extra or {}) do f[k] = v end
    return f
  end

  local function tids(rows, field)
    local out = {}
    for _, r in ipairs(rows) do out[#out + 1] = r[field or "src_tids"] end
    table.sort(out)
    return table.concat(out, ",")
  end

  it("querySelfOrderWithDetail: statuses as the page lists them, values as pushed, every filter", function()
    local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
    local a, b, c = trades[A], trades[B], trades[C]
    assert.are.equal(110, a.trade_status)          -- shipped and reported
    assert.are.equal(95, b.trade_status)           -- shipped in two parts
    assert.are.equal(55, c.trade_status)           -- its refunded line stays: partly shipped
    assert.are.equal("nick-" .. A, a.buyer_nick)
    assert.are.equal("收件人" .. A, a.receiver_name)
    assert.are.equal("cs " .. A, a.cs_remark)
    assert.are.equal(2, a.remark_flag)
    assert.are.equal(19, a.goods_amount)
    assert.are.equal(22, a.receivable)
    assert.are.equal(9.5, a.detail_list[1].price)
    assert.are.equal(3, #b.detail_list)
    assert.is_true(b.detail_list[3].is_consigned)
    assert.are_not.equal("", a.logistics_no)
    assert.is_true(a.consign_time > (now - 60) * 1000)   -- milliseconds, as the example answers
    assert.are.equal(A, tids(rows_of(TRADES, { trade_no = a.trade_no })))
    assert.are.equal(B, tids(rows_of(TRADES, { logistics_no = b.logistics_no })))
    assert.are.equal(A .. "," .. C, tids(rows_of(TRADES, { src_tid = A .. "," .. C })))
    assert.are.equal(B, tids(rows_of(TRADES, window { status = "95" })))
    assert.are.equal(A .. "," .. B, tids(rows_of(TRADES, window { status = "110,95" })))
    assert.are.equal("", tids(rows_of(TRADES, window { shop_no = "other" })))
    assert.are.equal("", tids(rows_of(TRADES, window { warehouse_no = "W9" })))
    assert.are.equal(A .. "," .. B .. "," .. C, tids(rows_of(TRADES, window { trade_from = "5" })))
    -- time_type 3: the window is on the order time (pushed as ten minutes ago)
    local by_time = { start_time = bj(now - 900), end_time = bj(now - 500), time_type = 3 }
    assert.are.equal(A .. "," .. B .. "," .. C, tids(rows_of(TRADES, by_time)))
    by_time.time_type = 1
    assert.are.equal("", tids(rows_of(TRADES, by_time)))
    -- order_type 1: newest first
    local up, down = rows_of(TRADES, window()), rows_of(TRADES, window { order_type = 1 })
    assert.are.equal(up[1].trade_id, down[#down].trade_id)
  end)

  it("searchSelfOrder: process_status and trade_status moved by shipping, discounts with detail_mask", function()
    local RAW = "sales.RawTrade.searchSelfOrder"
    local rows = rows_of(RAW, { tid = A })
    assert.are.equal(1, #rows)
    local a = rows[1]
    assert.are.same({ 40, 50 }, { a.process_status, a.trade_status })
    assert.are.same({}, a.discount_list)            -- detail_mask 0, the default
    a = rows_of(RAW, { tid = A, detail_mask = 1 })[1]
    assert.are.equal(1, #a.discount_list)
    assert.are.same({ A .. "-1", "满减", "满10减1", 1, "D1" },
      { a.discount_list[1].oid, a.discount_list[1].name, a.discount_list[1].detail, a.discount_list[1].amount,
        a.discount_list[1].type })
    assert.are.equal(7, a.pay_method)
    assert.are.equal("msg " .. A, a.buyer_message)
    assert.are.equal(A .. "-1", a.trade_orders[1].oid)
    assert.are.equal(50, a.trade_orders[1].status)
    assert.are.equal(trades[A].logistics_no, a.trade_orders[1].logistics_no)
    local c = rows_of(RAW, { tid = C })[1]
    assert.are.same({ 30, 40 }, { c.process_status, c.trade_status })
    assert.are.equal(A .. "," .. B .. "," .. C, tids(rows_of(RAW, window({ shop_no = "s1" }, 86400)), "tid"))
    assert.are.equal("", tids(rows_of(RAW, window({ shop_no = "s2" }, 86400)), "tid"))
  end)

  it("Refund.search and RawRefund.search: the pushed refund, its detail_list, every filter", function()
    local REFUNDS, RAW = "aftersales.refund.Refund.search", "aftersales.refund.RawRefund.search"
    local r = rows_of(REFUNDS, { tid = C })
    assert.are.equal(1, #r)
    r = r[1]
    assert.are.same({ "RF-C1", C, trades[C].trade_no, 20, 2, 7, "nick-" .. C, "RET001" },
      { r.raw_refund_nos, r.src_tids, r.trade_no_list, r.status, r.type, r.actual_refund_amount, r.buyer_nick,
        r.return_logistics_no })
    assert.are.equal(1, #r.detail_list)
    local d = r.detail_list[1]
    assert.are.same({ C .. "-1", 7, "GNO1" }, { d.oid, d.price, d.goods_no })
    assert.are.equal(1, #rows_of(REFUNDS, { refund_no = r.refund_no }))
    assert.are.equal(0, #rows_of(REFUNDS, { refund_no = "TK0" }))
    assert.are.equal(1, #rows_of(REFUNDS, { trade_no = trades[C].trade_no }))
    assert.are.equal(0, #rows_of(REFUNDS, { trade_no = trades[A].trade_no }))
    local m = { modified_from = bj(now - 1800), modified_to = bj(now + 60) }
    local function with(k, v) local f = { [k] = v } for x, y in pairs(m) do f[x] = y end return f end
    assert.are.equal(1, #rows_of(REFUNDS, with("status", 20)))
    assert.are.equal(0, #rows_of(REFUNDS, with("status", 90)))
    assert.are.equal(0, #rows_of(REFUNDS, with("type", 1)))
    assert.are.equal(1, #rows_of(REFUNDS, with("shop_nos", "x,s1")))
    assert.are.equal(0, #rows_of(REFUNDS, with("buyer_nick", "someone")))
    assert.are.equal(0, #rows_of(REFUNDS, with("current_phase_timeout_from", bj(now - 60))))  -- not refunded yet
    assert.are.equal(0, #rows_of(REFUNDS, with("agree_from", bj(now - 1800))))   -- not checked yet
    assert.are.equal(0, #rows_of(REFUNDS, with("return_mask_manual_intercept", true)))
    assert.are.equal(1, #rows_of(REFUNDS, with("refund_mask_reject_return", false)))
    -- the raw refund: the page's untimed pairs, each filter
    local raw = rows_of(RAW, { platform_id = 127, tid = C })
    assert.are.equal(1, #raw)
    raw = raw[1]
    assert.are.same({ "RF-C1", C .. "-1", 2, 2, 15, true, "broken", "GID1", 7, 7 },
      { raw.refund_no, raw.oid, raw.type, raw.status, raw.process_status, raw.is_aftersale, raw.reason,
        raw.goods_id, raw.price, raw.refund_amount })
    assert.are.equal("RF-C1", raw.detail_list[1].refund_no)
    assert.are.equal(1, #rows_of(RAW, { refund_no = "RF-C1", platform_id = 1 - 1 + 127 }))
    assert.are.equal(0, #rows_of(RAW, { refund_no = "RF-C1", platform_id = 1 }))
    assert.are.equal(1, #rows_of(RAW, { logistics_no = "RET001" }))
    assert.are.equal(0, #rows_of(RAW, { refund_no = "nope" }))
    assert.are.equal(0, #rows_of(RAW, window({ oid = C .. "-2" }, 86400)))
    assert.are.equal(1, #rows_of(RAW, window({ shop_no = "s1" }, 86400)))
    assert.are.equal(0, #rows_of(RAW, window({ shop_no = "s2" }, 86400)))
    assert.are.same({}, rows_of(RAW, { refund_no = "RF-C1" })[1].discount_list)   -- detail_mask 0
    assert.are.equal("table", type(rows_of(RAW, { refund_no = "RF-C1", detail_mask = 1 })[1].discount_list))
    assert.are.equal(100, call(RAW, { { tid = C } }).status)   -- a tid alone needs the window
    -- time_type 2: the window is on the refund time (five minutes ago)
    assert.are.equal(1, #rows_of(RAW, { start_time = bj(now - 400), end_time = bj(now - 200), time_type = 2 }))
    assert.are.equal(0, #rows_of(RAW, { start_time = bj(now - 400), end_time = bj(now - 200), time_type = 1 }))
  end)

  it("the stockout queries: one stockout_id per shipment in both, trade_no as src_order_no", function()
    local OUT, LOG = "wms.stockout.Sales.queryWithDetail", "wms.stockout.Sales.searchLogistics"
    local outs = rows_of(OUT, window({ src_tid = B }, 3000))
    assert.are.equal(2, #outs)                     -- three lines ship in two parts
    for _, o in ipairs(outs) do
      assert.are.same({ trades[B].trade_no, trades[B].trade_no, B, 110 },
        { o.src_order_no, o.trade_no, o.src_trade_no, o.status })
      assert.are.equal(1, #o.logistics_list)
      assert.are.equal(o.stockout_id, o.logistics_list[1].stockout_id)
      assert.are.equal("收件人" .. B, o.receiver_name)
    end
    assert.are.equal(1, #outs[1].details_list + #outs[2].details_list - 2)
    local logs = rows_of(LOG, window({ status = 20, trade_no = trades[B].trade_no }, 3000), "order_list")
    assert.are.equal(2, #logs)
    local ids = {}
    for _, o in ipairs(outs) do ids[o.stockout_id] = o end
    for _, l in ipairs(logs) do
      local o = ids[l.stockout_id]
      assert.is_not_nil(o)
      assert.are.same({ o.order_no, o.logistics_no, o.logistics_list[1].rec_id },
                      { l.stockout_no, l.logistics_no, l.rec_id })
    end
    assert.are.equal(0, #rows_of(LOG, window({ status = 30, trade_no = trades[B].trade_no }, 3000), "order_list"))
    assert.are.equal(2, #rows_of(LOG, window({ status = 20, src_tids = "x," .. B }, 3000), "order_list"))
    assert.are.equal(0, #rows_of(LOG, window({ status = 20, src_tids = B, order_type = 21 }, 3000), "order_list"))
    assert.are.equal(2, #rows_of(LOG, window({ status = 20, src_tids = B, order_type = "1" }, 3000), "order_list"))
    assert.are.equal(1, #rows_of(OUT, { src_order_no = trades[A].trade_no }))
    assert.are.equal(1, #rows_of(OUT, { logistics_no = trades[A].logistics_no }))
    assert.are.equal(1, #rows_of(OUT, { stockout_no = outs[1].order_no }))
    assert.are.equal(0, #rows_of(OUT, window({ src_tid = B, status_type = 1 }, 3000)))
    assert.are.equal(2, #rows_of(OUT, window({ src_tid = B, status_type = 3, status = "110" }, 3000)))
    assert.are.equal(0, #rows_of(OUT, window({ src_tid = B, shop_nos = "a,b" }, 3000)))
    assert.are.equal(2, #rows_of(OUT, window({ src_tid = B, shop_nos = "a,s1" }, 3000)))
    assert.are.equal(0, #rows_of(OUT, window({ src_tid = B, warehouse_no = "W9" }, 3000)))
    local asc, desc = rows_of(OUT, window({}, 3000)), rows_of(OUT, window({ order_type = 1 }, 3000))
    assert.are.equal(asc[1].stockout_id, desc[#desc].stockout_id)
    assert.are.equal(0, #rows_of(LOG, window({ status = 20, src_tids = B, shop_no = "s2" }, 3000), "order_list"))
    assert.are.equal(2, #rows_of(LOG, window({ status = 20, src_tids = B, shop_no = "s1" }, 3000), "order_list"))
    assert.are.equal(0, #rows_of(LOG, window({ status = 20, src_tids = B, warehouse_no = "W9" }, 3000), "order_list"))
  end)

  it("ApiGoods.search: the upload's rec_id, every filter", function()
    local GOODS = "goods.ApiGoods.search"
    local rows = rows_of(GOODS, window({ goods_id = "GID1" }, 86400), "goods_list")
    assert.are.equal(1, #rows)
    assert.are.same({ rec_ids[1], "SID1", "GNO1", 9.5, 12, 1, 0 },
      { rows[1].rec_id, rows[1].spec_id, rows[1].outer_id, rows[1].price, rows[1].stock_num, rows[1].status,
        rows[1].is_deleted })
    rows = rows_of(GOODS, window({ spec_id = "SID2" }, 86400), "goods_list")
    assert.are.same({ rec_ids[2], 2 }, { rows[1].rec_id, rows[1].status })
    assert.are.equal(2, #rows_of(GOODS, window({ shop_no = "s1" }, 86400), "goods_list"))
    local shop = call("setting.Shop.queryShop", { { shop_no = "s1" } }).data.details[1]
    assert.are.same({ shop.shop_id, shop.shop_id }, { rows[1].shop_id, trades[A].shop_id })
    assert.are.equal(0, #rows_of(GOODS, window({ shop_no = "s2" }, 86400), "goods_list"))
  end)
end)

describe("the vendor's stock loop", function()
  local emu
  setup(function() emu = emulator.start {} end)
  teardown(function() emu:stop() end)

  it("accepts syncSuccess with calcStock's own answer (1/0 booleans), and the page's example", function()
    local _, _, _, raw = emu:request { method = "sales.StockSync.calcStock", args_json = "[7000000001,false]" }
    -- as the vendor's PHP client does: the calc answer's data, is_syn_success 1, as info
    local data = raw:match('"data":(%b{})')
    assert.truthy(data:find('"is_auto_listing":1', 1, true))
    local info = data:sub(1, -2) .. ',"is_syn_success":1,"is_manual":0,"syn_result":""}'
    local _, ok = emu:request { method = "sales.StockSync.syncSuccess", args_json = "[7000000001," .. info .. "]" }
    assert.are.same({ status = 0 }, ok)
    -- the page's example body, verbatim but for the good's id (2447 is the vendor's)
    local _, c2 = emu:request { method = "sales.StockSync.calcStock", args_json = "[7000000002,false]" }
    local body = ('[7000000002,{"stock_syn_min":1.0000,"stock_syn_rule_id":-10000,"stock_syn_mask":0,'
      .. '"stock_syn_warehouses":"6","stock_syn_max":550.0000,"stock_syn_percent":100,'
      .. '"is_auto_delisting":true,"stock_syn_plus":1.0000,"is_auto_listing":true,"stock_syn_rule_no":"",'
      .. '"syn_stock":1,"stock_change_count":%d}]'):format(c2.data.stock_change_count)
    local _, ex = emu:request { method = "sales.StockSync.syncSuccess", args_json = body }
    assert.are.same({ status = 0 }, ex)
    local s = emu:state().tenants.apidevnew2.stock
    assert.are.same({ 2, 2 }, { s.synced, s.short_info })   -- both left out fields of the table
    local _, bad = emu:request { method = "sales.StockSync.syncSuccess",
      args_json = '[7000000003,{"syn_stock":1,"stock_change_count":1,"is_auto_listing":2}]' }
    assert.are.equal(2, bad.status)
  end)
end)

describe("push checks as strict as the pages", function()
  local emu
  setup(function() emu = emulator.start {} end)
  teardown(function() emu:stop() end)

  local function push(o, lines)
    local _, body = emu:request { method = "sales.RawTrade.pushSelf2",
                                  args_json = cjson.encode({ "s1", { o }, lines }) }
    return body
  end

  it("refuses too-long fields and values outside the enumerations, naming them", function()
    local cases = {
      { "tid", string.rep("T", 41), "tid长度不能超过40" },
      { "process_status", 99, "process_status取值错误" },
      { "pay_method", 9, "pay_method取值错误" },
      { "receiver_name", string.rep("名", 101), "receiver_name长度不能超过100" },
    }
    for i, c in ipairs(cases) do
      local tid = "LEN" .. i
      local l = line(tid, 1, 1, 1)
      local o = order(tid, { l })
      o[c[1]] = c[2]
      if c[1] == "tid" then l.tid = c[2] end
      local body = push(o, { l })
      assert.are.equal(0, body.status)
      assert.are.equal(1, #body.data.error_list, c[1])
      assert.matches(c[3], body.data.error_list[1].error, 1, true)
    end
    local l = line("ENUM", 1, 1, 1)
    l.status = 35
    assert.matches("status取值错误", push(order("ENUM", { l }), { l }).data.error_list[1].error, 1, true)
    -- a name of exactly 100 characters passes
    local ok = line("OK100", 1, 1, 1)
    local o = order("OK100", { ok })
    o.receiver_name = string.rep("名", 100)
    assert.are.same({}, push(o, { ok }).data.error_list)
  end)

  it("refuses a refund type and a goods status outside the pages' lists; shop errors as the pages show", function()
    local l = line("RT", 1, 1, 1)
    push(order("RT", { l }), { l })
    local refund = { refund_no = "RT-1", num = 1, tid = "RT", oid = "RT-1", type = 9, status = 2,
      refund_version = "1", refund_amount = 1, actual_refund_amount = 1, title = "t", buyer_nick = "b",
      is_aftersale = 0, reason = "" }
    local UPLOAD2 = "aftersales.refund.RawRefund.upload2"
    local _, r = emu:request { method = UPLOAD2, args_json = cjson.encode({ "s1", { refund } }) }
    assert.matches("type取值错误", r.data.error_list[1].error, 1, true)
    local _, g = emu:request { method = "goods.ApiGoods.upload",
      args_json = cjson.encode({ { shop_no = "s1", goods_list = { { goods_id = "g", status = 7 } } } }) }
    assert.are.equal(100, g.status)
    assert.matches("status取值错误", g.message, 1, true)
    refund.type = 1
    _, r = emu:request { method = UPLOAD2, args_json = cjson.encode({ "nope", { refund } }) }
    assert.are.same({ status = 0, data = { new_count = 0, chg_count = 0,
                                            error_list = { { no = "RT-1", error = "店铺权限不足" } } } }, r)
    _, g = emu:request { method = "goods.ApiGoods.upload",
      args_json = cjson.encode({ { shop_no = "nope", goods_list = { { goods_id = "g" } } } }) }
    assert.are.same({ status = 100, message = "店铺不存在/无权限/类型错误" }, g)
  end)
end)
