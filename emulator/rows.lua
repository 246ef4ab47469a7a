-- The ERP inside the emulator, as the windowed query methods show it (emulator/query.lua).
-- One model: a pushed order (t.raw_trades[tid], emulator/push.lua) is a raw trade
-- (searchSelfOrder) and a system trade (querySelfOrderWithDetail); each shipment of it
-- (POST /__emulator/ship, kept in t.shipments with the logistics queue's rows) is a
-- stockout (queryWithDetail) and a logistics row (searchLogistics); a pushed refund
-- (t.raw_refunds) is a raw refund (RawRefund.search) and, unless an exchange, a system
-- refund (Refund.search); an uploaded good (t.api_goods) is an ApiGoods.search row. The
-- same ids everywhere: trade_id and its trade_no, one stockout_id / stockout_no per
-- shipment, the good's rec_id of the upload. Every field of the page's row
-- (emulator/pages.lua) is filled: from what was pushed, from what happened since, or with
-- its type's blank (0, "", false, []). Runs in nginx's LuaJIT (Lua 5.1 syntax).
local json = require "emulator.json"
local state = require "emulator.state"
local pages = require "emulator.pages"

local M = {}
local stamp = state.stamp
local OWN = state.OWN_PLATFORM

-- ids derived from a shipment's sync_id (sync ids are 5000000001…)
local STOCKOUT_BASE, LOGISTICS_REC_BASE = 9000000000, 9100000000

function M.trade_no(trade_id) return ("JY%012d"):format(trade_id % 1000000000000) end
function M.stockout_id(sync_id) return STOCKOUT_BASE + (sync_id - state.SYNC_ID_BASE) end
function M.stockout_no(sync_id) return ("CK%010d"):format(sync_id - state.SYNC_ID_BASE) end
function M.logistics_rec_id(sync_id) return LOGISTICS_REC_BASE + (sync_id - state.SYNC_ID_BASE) end

local function num(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then return tonumber(v) or 0 end
  return 0
end

local function str(v)
  if v == nil or v == json.null then return "" end
  return tostring(v)
end

-- "name:type" lists -> {name, type} pairs, once
local parsed = {}
local function fields_of(list)
  local f = parsed[list]
  if not f then
    f = {}
    for i, s in ipairs(list) do
      local name, ty = s:match("^(.-):(%a+)$")
      f[i] = { name, ty }
    end
    parsed[list] = f
  end
  return f
end

local BLANK = { int = 0, dec = 0, str = "", bool = false }

-- every field of `list`, from `values` converted to the page's type, or its blank
local function fill(list, values)
  local row = json.object()
  for _, f in ipairs(fields_of(list)) do
    local name, ty = f[1], f[2]
    local v = values[name]
    if ty == "list" then v = (type(v) == "table") and v or json.array()
    elseif ty == "map" then v = (type(v) == "table") and v or json.object()
    elseif v == nil or v == json.null then v = BLANK[ty]
    elseif ty == "dec" or ty == "int" then v = num(v)
    elseif ty == "str" then v = str(v)
    elseif ty == "bool" then v = v == true or v == 1 or v == "1" end
    row[name] = v
  end
  return row
end
M.fill = fill

local function page(method) return pages[method] end

-- The tenant's shops, sorted: the logistics queue's own, every shipment's, the configured
-- ones; a shop's id is its place in this list (setting.Shop.queryShop lists them so).
-- Kept until a shipment is added.
function M.shops(t)
  local c = t._shops
  if not c or c.seen ~= #t.shipments then
    local list, ids = {}, {}
    local function add(no) if no and not ids[no] then ids[no] = true; list[#list + 1] = no end end
    add(t.logistics.shop_no)
    for _, r in ipairs(t.shipments) do add(r.shop_no) end
    for no in pairs((state.config().shops or {})[t.sid] or {}) do add(no) end
    table.sort(list)
    for i, no in ipairs(list) do ids[no] = i end
    c = { seen = #t.shipments, list = list, ids = ids }
    t._shops = c
  end
  return c.list, c.ids
end

function M.shop_id(t, shop_no)
  local _, ids = M.shops(t)
  return ids[shop_no] or 0
end

local function shop_name(no) return "emulated shop " .. tostring(no) end

---------------------------------------------------------------------------------------------
-- what happened to an order since it was pushed

-- the pushed refunds of a trade that stop its lines (not cancelled, not exchanges)
local function refunded_oids(t, tid)
  local out = {}
  for _, r in pairs(t.raw_refunds or {}) do
    if r.tid == tid and num(r.status) ~= 1 and num(r.type) ~= 3 then out[r.oid] = r end
  end
  return out
end
M.refunded_oids = refunded_oids

-- the shipments of a trade, in order (an index by tid, kept until a shipment is added)
local NONE = {}
local function shipments_of(t, tid)
  local c = t._ship_index
  if not c or c.seen ~= #t.shipments then
    c = { seen = #t.shipments, by_tid = {} }
    for _, r in ipairs(t.shipments) do
      local list = c.by_tid[r.tid]
      if not list then list = {}; c.by_tid[r.tid] = list end
      list[#list + 1] = r
    end
    t._ship_index = c
  end
  return c.by_tid[tid] or NONE
end
M.shipments_of = shipments_of

local function cancelled(tr)
  return num(tr.process_status) == 70 or num(tr.trade_status) == 80 or num(tr.trade_status) == 90
end

-- shipped lines and all lines counts
local function shipped_count(tr)
  local n = 0
  for _, l in ipairs(tr.orders or {}) do if l._shipped then n = n + 1 end end
  return n, #(tr.orders or {})
end

-- the raw trade's statuses: as pushed, moved by its shipments (process_status 30 部分发货 /
-- 40 已发货, trade_status 40 部分发货 / 50 已发货, as the pages enumerate them)
local function raw_statuses(tr)
  local shipped, all = shipped_count(tr)
  local ps, ts = num(tr.process_status), num(tr.trade_status)
  if shipped > 0 and not cancelled(tr) then
    if shipped == all then ps, ts = math.max(ps, 40), math.max(ts, 50)
    else ps, ts = math.max(ps, 30), math.max(ts, 40) end
  end
  return ps, ts
end

-- the system trade's status (querySelfOrderWithDetail's list): 5 已取消, 30 待客审 (pushed),
-- 55 已审核 (partly shipped), 95 已发货, 110 已完成 (shipped and every shipment's
-- logistics sync reported)
local function trade_status(t, tr)
  if cancelled(tr) then return 5 end
  local shipped, all = shipped_count(tr)
  if shipped == 0 then return 30 end
  if shipped < all then return 55 end
  for _, r in ipairs(shipments_of(t, tr.tid)) do
    if not r.gone then return 95 end
  end
  return 110
end

local function goods_amount(tr)
  local sum = 0
  for _, l in ipairs(tr.orders or {}) do sum = sum + num(l.price) * num(l.num) end
  return sum
end

local function refund_amount(tr)
  local sum = 0
  for _, l in ipairs(tr.orders or {}) do sum = sum + num(l.refund_amount) end
  return sum
end

---------------------------------------------------------------------------------------------
-- sales.RawTrade.searchSelfOrder

-- the raw trade of a pushed order; `id` its rec_id, `m` its modified time, `with_discounts`
-- the filter's detail_mask = 1
function M.raw_trade(t, id, tr, m, with_discounts)
  local P = page("sales.RawTrade.searchSelfOrder")
  local ps, ts = raw_statuses(tr)
  local lines = json.array()
  local created = stamp(tr.created or m)
  local lno = {}
  for _, r in ipairs(shipments_of(t, tr.tid)) do
    for _, oid in ipairs(r.oid_list or {}) do lno[oid] = r.logistics_no end
  end
  for i, l in ipairs(tr.orders or {}) do
    local v = {}
    for k, x in pairs(l) do v[k] = x end
    v.rec_id, v.tid, v.platform_id = id * 10 + i, tr.tid, OWN
    v.refund_id = ""
    v.status = l._shipped and math.max(num(l.status), 50) or l.status
    v.process_status = l._shipped and 40 or ps == 70 and 70 or 20
    v.share_amount = num(l.total_amount) - num(l.share_discount)
    v.modified, v.created = stamp(m), created
    v.end_time = ""
    v.warehouse_no = tr.warehouse_no
    v.logistics_no = lno[l.oid] or ""
    lines[i] = fill(P.nested.trade_orders, v)
  end
  local discounts = json.array()
  if with_discounts then
    for i, d in ipairs(tr.discounts or {}) do
      discounts[i] = fill(P.nested.discount_list, { rec_id = id * 100 + i, tid = tr.tid, oid = d.oid,
        platform_id = OWN, name = d.name, detail = d.detail, amount = d.amount, type = d.sn, is_bonus = 0 })
    end
  end
  local v = {}
  for k, x in pairs(tr) do v[k] = x end
  local p_no, c_no, d_no = tr.receiver_province_no, tr.receiver_city_no, tr.receiver_district_no
  v.rec_id, v.platform_id, v.shop_id = id, OWN, M.shop_id(t, tr.shop_no)
  v.process_status, v.trade_status = ps, ts
  v.bad_reason = ""
  v.receiver_province, v.receiver_city, v.receiver_district = p_no, c_no, d_no
  v.goods_amount = goods_amount(tr)
  v.modified, v.created = stamp(m), created
  v.shop_platform_id, v.trade_from = OWN, 1
  v.refund_amount = refund_amount(tr)
  v.trade_orders, v.discount_list = lines, discounts
  return fill(P.row, v)
end

---------------------------------------------------------------------------------------------
-- sales.TradeQuery.querySelfOrderWithDetail

function M.trade(t, tr, m)
  local P = page("sales.TradeQuery.querySelfOrderWithDetail")
  local ships = shipments_of(t, tr.tid)
  local last = ships[#ships]
  local refunds = refunded_oids(t, tr.tid)
  local created = stamp(tr.created or m)
  local details = json.array()
  local goods_count, kinds = 0, {}
  for i, l in ipairs(tr.orders or {}) do
    goods_count = goods_count + num(l.num)
    kinds[str(l.spec_no)] = true
    local refund = refunds[l.oid]
    details[i] = fill(P.nested.detail_list, {
      trade_id = tr.trade_id, rec_id = tr.trade_id * 10 + i, platform_id = OWN,
      src_oid = l.oid, src_tid = tr.tid, gift_type = l.gift_type, pay_status = tr.pay_status,
      refund_status = refund and 2 or l.refund_status, platform_status = l.status,
      delivery_term = tr.delivery_term, num = l.num, price = l.price,
      refund_num = refund and refund.num or 0, order_price = l.price,
      share_price = num(l.num) > 0 and (num(l.total_amount) - num(l.share_discount)) / num(l.num) or 0,
      adjust = l.adjust_amount, discount = l.discount,
      share_amount = num(l.total_amount) - num(l.share_discount),
      goods_name = l.goods_name, goods_no = l.goods_no, spec_name = l.spec_name, spec_no = l.spec_no,
      api_goods_name = l.goods_name, api_spec_name = l.spec_name,
      api_goods_id = l.goods_id, api_spec_id = l.spec_id, remark = l.remark,
      modified = stamp(m), created = created, actual_num = refund and 0 or l.num,
      paid = num(l.total_amount) - num(l.share_discount), is_consigned = l._shipped == true,
      modified_date = stamp(m), created_date = created, pay_time = tr.pay_time,
      invoice_content = tr.invoice_content, cid = 0,
    })
  end
  local nkinds = 0
  for _ in pairs(kinds) do nkinds = nkinds + 1 end
  local status = trade_status(t, tr)
  return fill(P.row, {
    trade_id = tr.trade_id, trade_no = M.trade_no(tr.trade_id), platform_id = OWN,
    src_tids = tr.tid, pay_account = tr.pay_account, trade_status = status, trade_type = 1,
    delivery_term = tr.delivery_term,
    refund_status = tr.refund_status, fenxiao_nick = tr.fenxiao_nick, trade_time = tr.trade_time,
    pay_time = tr.pay_time, consign_time = last and last.created or "", buyer_nick = tr.buyer_nick,
    receiver_name = tr.receiver_name, receiver_province = tr.receiver_province_no,
    receiver_city = tr.receiver_city_no, receiver_district = tr.receiver_district_no,
    receiver_address = tr.receiver_address, receiver_mobile = tr.receiver_mobile,
    receiver_telno = tr.receiver_telno, receiver_zip = tr.receiver_zip,
    receiver_area = tr.receiver_area, logistics_no = last and last.logistics_no or "",
    buyer_message = tr.buyer_message, cs_remark = tr.remark, remark_flag = tr.remark_flag,
    goods_type_count = nkinds, goods_count = goods_count, goods_amount = goods_amount(tr),
    post_amount = tr.post_amount, other_amount = tr.other_amount, discount = tr.discount,
    receivable = tr.receivable, cod_amount = tr.cod_amount, invoice_type = tr.invoice_type,
    invoice_title = tr.invoice_title, invoice_content = tr.invoice_content,
    stockout_no = last and M.stockout_no(last.sync_id) or "", trade_from = 5,
    raw_goods_count = goods_count, raw_goods_type_count = #(tr.orders or {}),
    modified = stamp(m), created = created, check_time = status >= 55 and last and last.created or "",
    id_card_type = tr.id_card_type, shop_no = tr.shop_no, shop_name = shop_name(tr.shop_no),
    warehouse_no = tr.warehouse_no, customer_name = tr.buyer_nick,
    logistics_name = last and last.logistics_name or "", logistics_code = last and last.logistics_code or "",
    to_deliver_time = tr.to_deliver_time, shop_id = M.shop_id(t, tr.shop_no),
    shop_platform_id = OWN, paid = tr.paid, is_sealed = num(tr.is_sealed) == 3,
    end_time = tr.end_time, detail_list = details,
  })
end

---------------------------------------------------------------------------------------------
-- refunds

local function line_of(t, r)
  local tr = t.raw_trades and t.raw_trades[r.tid]
  for _, l in ipairs(tr and tr.orders or {}) do if l.oid == r.oid then return l, tr end end
  return {}, tr
end

-- a raw refund's system state: 0 待递交 for exchanges (no system refund), else 15 已递交
local function raw_process_status(r) return num(r.type) == 3 and 0 or 15 end

function M.raw_refund(t, id, r, m, with_discounts)
  local P = page("aftersales.refund.RawRefund.search")
  local l, tr = line_of(t, r)
  local created = stamp(r.created or m)
  local detail = json.array()
  detail[1] = fill(P.nested.detail_list, {
    refund_id = id, oid = r.oid, platform_id = OWN, refund_no = r.refund_no, tid = r.tid,
    status = r.status, goods_name = l.goods_name, goods_no = l.goods_no, goods_id = l.goods_id,
    spec_name = l.spec_name, spec_no = l.spec_no, spec_id = l.spec_id, num = r.num,
    total_amount = r.total_amount or r.refund_amount, remark = r.remark,
    price = r.price or l.price, type = 0, refund_time = r.refund_time, modified_date = stamp(m),
    created_date = created,
  })
  local discounts = json.array()
  if with_discounts then
    for i, d in ipairs(tr and tr.discounts or {}) do
      if d.oid == r.oid then
        discounts[#discounts + 1] = fill(P.nested.discount_list, { rec_id = id * 100 + i,
          platform_id = OWN, refund_no = r.refund_no, tid = r.tid, oid = r.oid, name = d.name,
          amount = d.amount })
      end
    end
  end
  local v = {}
  for k, x in pairs(r) do v[k] = x end
  v.refund_id, v.platform_id, v.shop_name = id, OWN, shop_name(r.shop_no)
  v.process_status = raw_process_status(r)
  v.is_aftersale = num(r.is_aftersale) == 1
  v.pay_account = tr and tr.pay_account
  v.price = r.price or l.price
  v.total_amount = r.total_amount or r.refund_amount
  v.goods_id, v.spec_id, v.goods_no, v.spec_no = l.goods_id, l.spec_id, l.goods_no, l.spec_no
  v.current_phase_timeout = num(r.status) == 5 and stamp(m) or ""
  v.modified, v.created = stamp(m), created
  v.shop_id, v.shop_platform_id = M.shop_id(t, r.shop_no), OWN
  v.is_external, v.detail_list, v.discount_list = 0, detail, discounts
  return fill(P.row, v)
end

-- the system refund of a raw refund: 10 已取消 (the platform cancelled it), 90 已完成
-- (refunded), 20 待审核 otherwise; type as the system enumerates it
local REFUND_TYPE = { [0] = 1, [1] = 1, [2] = 2, [4] = 4 }
function M.refund_status(r)
  local st = num(r.status)
  return st == 1 and 10 or st == 5 and 90 or 20
end

function M.refund(t, id, r, m)
  local P = page("aftersales.refund.Refund.search")
  local l, tr = line_of(t, r)
  local created = stamp(r.created or m)
  local trade_no = tr and M.trade_no(tr.trade_id) or ""
  local detail = json.array()
  detail[1] = fill(P.nested.detail_list, {
    rec_id = id * 10 + 1, refund_id = id, oid = r.oid, platform_id = OWN, tid = r.tid,
    trade_no = trade_no, num = r.num, price = r.price or l.price, original_price = l.price,
    refund_num = r.num, total_amount = r.total_amount or r.refund_amount,
    refund_amount = r.refund_amount, goods_no = l.goods_no, goods_name = l.goods_name,
    spec_name = l.spec_name, spec_no = l.spec_no, goods_id = l.goods_id, spec_id = l.spec_id,
    remark = r.remark, api_spec_name = l.spec_name, api_goods_name = l.goods_name,
    modified = stamp(m), raw_refund_nos = r.refund_no, raw_refund_no = r.refund_no,
    sales_trade_id = tr and tr.trade_id or 0, discount = l.discount, paid = l.total_amount,
    created = created, modified_date = stamp(m), gift_type = l.gift_type,
  })
  return fill(P.row, {
    refund_id = id, src_tids = r.tid, refund_no = ("TK%010d"):format(id % 10000000000),
    remark = r.remark, type = REFUND_TYPE[num(r.type)] or 2, stockin_status = 0,
    return_goods_count = num(r.type) == 2 and r.num or 0, receiver_name = tr and tr.receiver_name,
    receiver_telno = tr and tr.receiver_telno,
    modified = stamp(m), shop_no = r.shop_no, from_type = 1, created = created,
    return_logistics_no = r.logistics_no, return_logistics_name = r.logistics_name,
    trade_no_list = trade_no, return_goods_amount = num(r.type) == 2 and r.refund_amount or 0,
    refund_reason = r.reason, reason_name = r.reason, buyer_nick = r.buyer_nick,
    actual_refund_amount = r.actual_refund_amount, status = M.refund_status(r),
    shop_id = M.shop_id(t, r.shop_no), trade_id = tr and tr.trade_id or 0,
    raw_refund_nos = r.refund_no, shop_platform_id = OWN, tid_list = r.tid, platform_id = OWN,
    modified_date = stamp(m), process_status = 0, refund_time = r.refund_time,
    rr_status = r.status, current_phase_timeout = num(r.status) == 5 and stamp(m) or "",
    detail_list = detail,
  })
end

---------------------------------------------------------------------------------------------
-- goods.ApiGoods.search: the uploaded good, under the rec_id its upload answered

function M.good(t, g, m)
  local P = page("goods.ApiGoods.search")
  local v = {}
  for k, x in pairs(g) do v[k] = x end
  v.shop_id, v.shop_name = M.shop_id(t, g.shop_no), shop_name(g.shop_no)
  v.outer_id, v.spec_outer_id = g.goods_no, g.spec_no
  v.is_deleted = num(g.status) == 0 and 1 or 0
  v.stock_num = g.stock_num or g.syn_stock
  v.match_code, v.spec_code = g.spec_no, g.spec_no
  v.platform_id, v.is_auto_match, v.match_target_type = OWN, 1, 1
  v.is_auto_listing, v.is_auto_delisting = true, true
  v.last_syn_num = g.last_syn_num or -1
  v.modified, v.created = stamp(m), stamp(g.created or m)
  return fill(P.row, v)
end

---------------------------------------------------------------------------------------------
-- a shipment: wms.stockout.Sales.queryWithDetail and …searchLogistics

-- the stockout's status: 110 已完成 once shipped (the page's list has no "shipped" of its
-- own; 95 is the trade's)
M.STOCKOUT_SHIPPED = 110
-- the logistics row's status: 20 待结算
M.LOGISTICS_SHIPPED = 20

local function logistics_entry(list, r)
  return fill(list, {
    rec_id = M.logistics_rec_id(r.sync_id), stockout_id = M.stockout_id(r.sync_id),
    logistics_no = r.logistics_no, logistics_name = r.logistics_name,
  })
end

function M.stockout(t, r, m)
  local P = page("wms.stockout.Sales.queryWithDetail")
  local tr = t.raw_trades and t.raw_trades[r.tid] or {}
  local sid = M.stockout_id(r.sync_id)
  local details, count = json.array(), 0
  for i, l in ipairs(r.lines or {}) do
    count = count + num(l.num)
    details[i] = fill(P.nested.details_list, {
      rec_id = sid * 10 + i, stockout_id = sid, src_order_detail_id = r.trade_id * 10 + i,
      spec_no = l.spec_no, goods_count = l.num, num = l.num, total_amount = l.total_amount,
      sell_price = l.price, remark = l.remark, goods_name = l.goods_name, goods_no = l.goods_no,
      spec_name = l.spec_name, platform_id = OWN, refund_status = l.refund_status,
      discount = l.discount, share_amount = num(l.total_amount) - num(l.share_discount),
      gift_type = l.gift_type, src_oid = l.oid, src_tid = r.tid, paid = l.total_amount,
      modified_date = stamp(m), created_date = r.created, api_goods_id = l.goods_id,
      api_spec_id = l.spec_id, api_goods_name = l.goods_name,
    })
  end
  local logistics = json.array()
  logistics[1] = logistics_entry(P.nested.logistics_list, r)
  local trade_no = M.trade_no(r.trade_id)
  return fill(P.row, {
    stockout_id = sid, order_no = M.stockout_no(r.sync_id), src_order_no = trade_no,
    warehouse_no = tr.warehouse_no, consign_time = r.created, order_type = 1,
    goods_count = count, logistics_no = r.logistics_no, receiver_name = tr.receiver_name,
    receiver_province = tr.receiver_province_no, receiver_city = tr.receiver_city_no,
    receiver_district = tr.receiver_district_no, receiver_address = tr.receiver_address,
    receiver_mobile = tr.receiver_mobile, receiver_telno = tr.receiver_telno,
    receiver_zip = tr.receiver_zip, receiver_area = tr.receiver_area, remark = tr.remark,
    logistics_code = r.logistics_code, logistics_name = r.logistics_name,
    shop_id = M.shop_id(t, r.shop_no), refund_status = tr.refund_status, trade_type = 1,
    trade_status = tr.tid and trade_status(t, tr) or 95, trade_no = trade_no,
    src_trade_no = r.tid, nick_name = tr.buyer_nick, customer_name = tr.buyer_nick,
    trade_time = tr.trade_time, pay_time = tr.pay_time, post_amount = tr.post_amount,
    shop_name = shop_name(r.shop_no), shop_no = r.shop_no, status = M.STOCKOUT_SHIPPED,
    cod_amount = tr.cod_amount, delivery_term = tr.delivery_term, platform_id = OWN,
    trade_id = r.trade_id, discount = tr.discount, created = r.created,
    buyer_message = tr.buyer_message, cs_remark = tr.remark, invoice_title = tr.invoice_title,
    invoice_content = tr.invoice_content, receivable = tr.receivable, modified = stamp(m),
    trade_from = 5, paid = tr.paid, shop_platform_id = OWN, consign_status = 0,
    goods_type_count = #(r.lines or {}), created_date = r.created,
    logistics_list = logistics, details_list = details,
  })
end

function M.logistics(t, r, m)
  local P = page("wms.stockout.Sales.searchLogistics")
  local count = 0
  for _, l in ipairs(r.lines or {}) do count = count + num(l.num) end
  local tr = t.raw_trades and t.raw_trades[r.tid] or {}
  return fill(P.row, {
    stockout_no = M.stockout_no(r.sync_id), stockout_id = M.stockout_id(r.sync_id),
    modified = stamp(m), consign_time = r.created, logistics_name = r.logistics_name,
    logistics_no = r.logistics_no, status = M.LOGISTICS_SHIPPED, goods_count = count,
    rec_id = M.logistics_rec_id(r.sync_id), warehouse_no = tr.warehouse_no,
    shop_no = r.shop_no, shop_name = shop_name(r.shop_no),
  })
end

return M
