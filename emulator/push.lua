-- The push methods: sales.RawTrade.pushSelf2, aftersales.refund.RawRefund.upload2,
-- goods.ApiGoods.upload; the shops they check; and the control calls that close the loop
-- (POST /__emulator/ship, POST /__emulator/stock). Runs in nginx's LuaJIT (Lua 5.1).
-- Checks follow the vendor's pages (Firecrawl/<method>.md); written independently of the
-- client's wdt.push.fields, so that each checks the other.
--
-- What is stored, per tenant t (state.s.tenants[sid]); readers (the query methods) use
-- exactly these tables. Fields starting with "_" are the emulator's bookkeeping.
--   t.raw_trades[tid]   = { tid, shop_no, <every trade field as pushed>, trade_id,
--                           orders = { {oid, <every line field as pushed>, _shipped}, ... },
--                           discounts = { <discountList entries of the trade> } | nil,
--                           created, modified }                -- Unix seconds
--                         (its lines under `orders`, as wdt's push_orders takes them)
--   t.raw_refunds[refund_no] = { refund_no, shop_no, <every field as pushed>, created, modified }
--   t.api_goods[goods_id .. "\0" .. spec_id] = the stock good: { rec_id, shop_no, goods_id,
--                           spec_id, goods_no, spec_no, goods_name, spec_name, status,
--                           pic_url, price, stock_num, syn_stock, stock_change_count,
--                           cursor, pending, created, modified }
-- `modified` changes on every push of the record (and on a ship, for a trade).
--
-- Shops (configuration `shops`, see doc/emulator.md): per tenant, shop_no -> {platform_id,
-- is_disabled}; 127 is the self-owned platform (自有平台). The shop named by
-- logistics.SID.shop_no (default "s1") is always there, self-owned.
local json = require "emulator.json"
local state = require "emulator.state"
local query = require "emulator.query"
local rows = require "emulator.rows"

local M = {}
local floor = math.floor
local OWN_PLATFORM = state.OWN_PLATFORM
M.OWN_PLATFORM = OWN_PLATFORM
local TRADE_ID_PUSHED = 6100000000   -- trade_id of pushed trades (above the queue's)

---------------------------------------------------------------------------------------------
-- shops

-- configuration: "shops": {"SID": [{"shop_no":…, "platform_id":127, "is_disabled":false}]}
-- -> sid -> shop_no -> {shop_no, platform_id, is_disabled}; raises on a bad entry.
function M.normalize_shops(raw, out)
  local shops = {}
  for sid in pairs(out.tenants) do
    local lc = out.logistics[sid]
    local own = lc and lc.shop_no or "s1"
    shops[sid] = { [own] = { shop_no = own, platform_id = OWN_PLATFORM, is_disabled = false } }
  end
  if raw == nil or raw == json.null then return shops end
  if type(raw) ~= "table" then error("config: \"shops\" must be an object", 0) end
  for sid, list in pairs(raw) do
    if not out.tenants[sid] then error(("config: shops.%s names no tenant"):format(tostring(sid)), 0) end
    if type(list) ~= "table" then error(("config: shops.%s must be a list"):format(sid), 0) end
    for i, sh in ipairs(list) do
      local where = ("config: shops.%s[%d]"):format(sid, i)
      if type(sh) ~= "table" or type(sh.shop_no) ~= "string" or sh.shop_no == "" then
        error(where .. " needs a string shop_no", 0)
      end
      local pid = sh.platform_id == nil and OWN_PLATFORM or sh.platform_id
      if type(pid) ~= "number" or pid ~= floor(pid) then error(where .. ".platform_id must be an integer", 0) end
      if sh.is_disabled ~= nil and type(sh.is_disabled) ~= "boolean" then
        error(where .. ".is_disabled must be true or false", 0)
      end
      shops[sid][sh.shop_no] = { shop_no = sh.shop_no, platform_id = pid, is_disabled = sh.is_disabled == true }
    end
  end
  return shops
end

function M.shops(sid) return (state.config().shops or {})[sid] or {} end

-- nil when the shop may receive pushes, else the vendor's status-100 answer
local function shop_refusal(sid, shop_no)
  if type(shop_no) ~= "string" or shop_no == "" then return { status = 2, message = "shop_no" } end
  local sh = M.shops(sid)[shop_no]
  if not sh or sh.is_disabled then return { status = 100, message = "店铺编号不存在或已停用" } end
  if sh.platform_id ~= OWN_PLATFORM then return { status = 100, message = "店铺平台不是自有平台" } end
  return nil
end

---------------------------------------------------------------------------------------------
-- field checks

local function int_ok(v)
  if type(v) == "number" then return v == floor(v) end
  return type(v) == "string" and v:find("^%-?%d+$") ~= nil and #v <= 16
end
local function dec_of(v)
  if type(v) == "number" then return v end
  if v == "" then return 0 end
  if type(v) == "string" and v:find("^%-?%d*%.?%d*$") and v:find("%d") then return tonumber(v) end
  return nil
end
local CHECK = {
  s = function(v) return type(v) == "string" end,
  i = int_ok,
  d = function(v) return dec_of(v) ~= nil end,
  b = function(v) return type(v) == "boolean" end,
  n = function(v) return v == json.null or type(v) == "string" end,   -- string or null
}
local TYPE_NAME = { s = "字符串", i = "整数", d = "数字", b = "布尔值", n = "字符串或null" }

-- The fields of each pushed record, from the catalogue of the vendor's pages (src/wdt/api,
-- read by emulator/catalogue_data.lua): {name, type (s i d b, or n: a string or null),
-- max length in characters, required}. `required` follows the page's example where it
-- leaves a field out (pushSelf2's warehouse_no).
local catalogue = require "emulator.catalogue_data"
local TYPE_OF = { string = "s", int = "i", decimal = "d", bool = "b" }

local function child(nodes, name)
  for _, n in ipairs(nodes or {}) do if n.name == name then return n end end
  error("the catalogue has no " .. name)
end

-- the fields of argument `path` ({position, child name, ...}) of a method; `changes`:
-- name -> {field = value} where the emulator departs from the table (said why below)
local function fields_of(method, path, changes)
  local node = assert(catalogue.get(method), "the catalogue has no " .. method).args[path[1]]
  for i = 2, #path do node = child(node.children, path[i]) end
  local out = {}
  for _, n in ipairs(node.children) do
    local f = { name = n.name, ty = TYPE_OF[n.type] or "s", len = n.length, required = n.required == true,
                values = not n.values_open and n.values or nil }
    for k, v in pairs((changes or {})[n.name] or {}) do f[k] = v end
    out[#out + 1] = f
  end
  return out
end

local PUSH, UPLOAD2, GOODS = "sales.RawTrade.pushSelf2", "aftersales.refund.RawRefund.upload2", "goods.ApiGoods.upload"
local TRADE_FIELDS = fields_of(PUSH, { 2 }, {
  end_time = { ty = "n" },                       -- "若无则传null"
  receiver_area = { required = false },          -- may be left out for the three area ids (below)
})
local LINE_FIELDS = fields_of(PUSH, { 3 })
-- a discount's oid names a line's: the line's length (40), not the 20 the discount table says
local DISCOUNT_FIELDS = fields_of(PUSH, { 4 }, { oid = { len = 40 } })
local REFUND_FIELDS = fields_of(UPLOAD2, { 2 })
local GOODS_FIELDS = fields_of(GOODS, { 1, "goods_list" })

-- The enumerations, read off the pages' descriptions by hand where the catalogue's list is
-- short of the page's (its reading of "1在线转帐 2现金，3银行转账…" misses values) or open
-- (field -> allowed values, and the page's words for them). Other fields use the catalogue's
-- values when it gives a closed list.
local function enum(list, words) local set = {} for _, v in ipairs(list) do set[v] = true end
  return { set = set, words = words } end
local PLATFORM_STATUS = enum({ 10, 20, 30, 40, 50, 60, 70, 80, 90 },
  "10未确认 20待尾款 30待发货 40部分发货 50已发货 60已签收 70已完成 80已退款 90已关闭")
local TRADE_ENUMS = {
  process_status = enum({ 10, 20, 30, 40, 60, 70 }, "10待递交 20已递交 30部分发货 40已发货 60已完成 70已取消"),
  trade_status = PLATFORM_STATUS,
  refund_status = enum({ 0, 1, 2, 3 }, "0无退款 1申请退款 2部分退款 3全部退款"),
  pay_status = enum({ 0, 1, 2 }, "0未付款 1部分付款 2已付款"),
  pay_method = enum({ 1, 2, 3, 4, 5, 6, 7, 8 },
    "1在线转帐 2现金 3银行转账 4邮局汇款 5预付款 6刷卡 7支付宝 8微信支付"),
  delivery_term = enum({ 1, 2, 3 }, "1款到发货 2货到付款 3分期付款"),
  invoice_type = enum({ 0, 1, 2, 3 }, "0不需要 1普通发票 2增值税普通发票 3增值税专用发票"),
  remark_flag = enum({ 0, 1, 2, 3, 4, 5 }, "0无 1红 2黄 3绿 4蓝 5紫"),
  is_sealed = enum({ 0, 3 }, "0默认 3不允许合并"),
  id_card_type = enum({ 0, 1, 2, 3 }, "0无 1身份证 2军官证 3护照"),
}
local LINE_ENUMS = {
  status = PLATFORM_STATUS,
  refund_status = enum({ 0, 1, 2, 3, 4, 5, 6 },
    "0无退款 1取消退款 2已申请退款 3等待退货 4等待收货 5退款成功 6未付款关闭"),
  order_type = enum({ 0, 1, 2 }, "0正常货品 1虚拟货品 2服务"),
  gift_type = enum({ 0, 1, 2, 4, 8, 32, 64, 65 }, "0非赠品 1自动赠送 2手工赠送 4周期购赠送 8平台赠送 32阶梯满赠 64CRM追加赠送 65主品"),
}
local REFUND_ENUMS = {
  type = enum({ 0, 1, 2, 3, 4 }, "0取消订单 1退款 2退货 3换货 4退款不退货"),
  status = enum({ 1, 2, 3, 4, 5 }, "1取消退款 2已申请退款 3等待退货 4等待收货 5退款成功"),
  is_aftersale = enum({ 0, 1 }, "0否 1是"),
}
local GOODS_ENUMS = { status = enum({ 0, 1, 2 }, "0删除 1在架 2下架") }

local function chars(s) local _, n = s:gsub("[^\128-\191]", "") return n end

-- the catalogue's closed list of values as an enumeration
local function enum_of(f)
  if not f.values then return nil end
  local list, words = {}, {}
  for i, v in ipairs(f.values) do list[i] = v.value; words[i] = tostring(v.value) .. v.meaning end
  return enum(list, table.concat(words, " "))
end

-- The fields of a record as checked: required fields first (their errors come first), each
-- with its enumeration and type test resolved once here rather than per record.
local function checks_of(fields, enums)
  local out = {}
  for pass = 1, 2 do
    for _, f in ipairs(fields) do
      if f.required == (pass == 1) then
        out[#out + 1] = { name = f.name, ty = f.ty, len = f.len, required = f.required,
                          test = CHECK[f.ty], enum = enums and enums[f.name] or enum_of(f) }
      end
    end
  end
  return out
end

-- nil, or the message for the first field that is missing, of the wrong type, too long or
-- outside its enumeration (required fields first)
local function field_error(obj, checks)
  for i = 1, #checks do
    local f = checks[i]
    local v = obj[f.name]
    if v == nil or (v == json.null and f.ty ~= "n") then
      if f.required then return f.name .. "不能为空" end
    else
      if not f.test(v) then return f.name .. "类型错误,应为" .. TYPE_NAME[f.ty] end
      -- characters never outnumber bytes: counted only when the bytes exceed the limit
      if f.len and type(v) == "string" and #v > f.len and chars(v) > f.len then
        return ("%s长度不能超过%d"):format(f.name, f.len)
      end
      local e = f.enum
      if e and not e.set[tonumber(v)] then
        return ("%s取值错误: %s (%s)"):format(f.name, tostring(v), e.words)
      end
    end
  end
  return nil
end

local TRADE_CHECKS, LINE_CHECKS = checks_of(TRADE_FIELDS, TRADE_ENUMS), checks_of(LINE_FIELDS, LINE_ENUMS)
local DISCOUNT_CHECKS, REFUND_CHECKS = checks_of(DISCOUNT_FIELDS), checks_of(REFUND_FIELDS, REFUND_ENUMS)
local GOODS_CHECKS = checks_of(GOODS_FIELDS, GOODS_ENUMS)

local beijing_time = query.beijing_seconds
local stamp = state.stamp

local function copy_fields(dst, src)
  for k, v in pairs(src) do dst[k] = v end
  return dst
end

local function counted(t)
  t._push_counts = t._push_counts or { raw_trades = 0, raw_refunds = 0, api_goods = 0, trades_updated = 0 }
  return t._push_counts
end

---------------------------------------------------------------------------------------------
-- sales.RawTrade.pushSelf2  [shop_no, rawTradeList, rawTradeOrderList(, discountList)]

-- one trade of the call, its lines given -> nil, or the error_list message
local function trade_error(t, shop_no, tr, lines, oid_owner)
  local e = field_error(tr, TRADE_CHECKS)
  if e then return e end
  if tr.is_auto_wms == true and (type(tr.warehouse_no) ~= "string" or tr.warehouse_no == "") then
    return "仓库编号不可为空"
  end
  if tr.receiver_area == nil and not (tr.receiver_province_no and tr.receiver_city_no and tr.receiver_district_no) then
    return "receiver_area不能为空"
  end
  local when = beijing_time(tr.trade_time)
  if not when or when > ngx.now() + 60 then return "下单时间非法,原始单号为：" .. tr.tid end
  local old = t.raw_trades[tr.tid]
  if old and old.shop_no ~= shop_no then
    return ("原始单号%s已存在于店铺%s"):format(tr.tid, old.shop_no)
  end
  if #lines == 0 then return "原始单没有子订单,原始单号为：" .. tr.tid end
  local goods, mine = 0, {}
  for _, l in ipairs(lines) do
    e = field_error(l, LINE_CHECKS)
    if e then return "子订单" .. tostring(l.oid) .. ": " .. e end
    if mine[l.oid] then return ("子订单编号%s重复"):format(l.oid) end
    mine[l.oid] = true
    local owner = oid_owner[l.oid]
    if owner and owner ~= tr.tid then return ("子订单编号%s重复(已属于%s)"):format(l.oid, owner) end
    goods = goods + dec_of(l.num)
  end
  if tonumber(tr.order_count) ~= #lines then
    return ("子订单个数order_count=%s与子订单数%d不一致"):format(tostring(tr.order_count), #lines)
  end
  if math.abs(dec_of(tr.goods_count) - goods) > 1e-4 then
    return ("货品总数量goods_count=%s与子订单数量之和%s不一致"):format(tostring(tr.goods_count), tostring(goods))
  end
  return nil
end

-- the discounts of the call (discountList), by their trade's tid, checked against it:
-- -> discounts_of[tid] = {discount, ...}, problem[tid] = the error_list message
local function call_discounts(discounts, by_tid, errs)
  local discounts_of, problem = {}, {}
  for _, d in ipairs(discounts or {}) do
    local tid = json.is_object(d) and type(d.tid) == "string" and d.tid or nil
    local e = not json.is_object(d) and "优惠信息格式错误" or field_error(d, DISCOUNT_CHECKS)
    if tid and not by_tid[tid] then
      errs[#errs + 1] = { no = tid, error = "优惠信息" .. (type(d.sn) == "string" and d.sn or "") .. "的原始单不在本次推送中" }
    elseif not tid then
      errs[#errs + 1] = { no = "", error = "优惠信息: " .. (e or "tid不能为空") }
    else
      if not e then
        local owned = false
        for _, l in ipairs(by_tid[tid]) do owned = owned or l.oid == d.oid end
        if not owned then e = ("优惠信息的子订单编号%s不属于原始单%s"):format(tostring(d.oid), tid) end
      end
      if e then problem[tid] = problem[tid] or ("优惠信息: " .. e)
      else
        discounts_of[tid] = discounts_of[tid] or {}
        table.insert(discounts_of[tid], d)
      end
    end
  end
  return discounts_of, problem
end

local function push_trades(t, args, _, sid)
  if #args < 3 or #args > 4 then return { status = 1, message = "参数个数错误" } end
  local shop_no, trades, lines = args[1], args[2], args[3]
  local refused = shop_refusal(sid, shop_no)
  if refused then return refused end
  if not json.is_array(trades) then return { status = 2, message = "rawTradeList" } end
  if not json.is_array(lines) then return { status = 2, message = "rawTradeOrderList" } end
  if args[4] ~= nil and args[4] ~= json.null and not json.is_array(args[4]) then
    return { status = 2, message = "discountList" }
  end
  local errs, new, chg = json.array(), 0, 0
  local by_tid, seen = {}, {}
  for _, tr in ipairs(trades) do
    if not json.is_object(tr) then return { status = 2, message = "rawTradeList" } end
    if type(tr.tid) == "string" and tr.tid ~= "" and not by_tid[tr.tid] then by_tid[tr.tid] = {} end
  end
  for _, l in ipairs(lines) do
    if not json.is_object(l) then return { status = 2, message = "rawTradeOrderList" } end
    local own = type(l.tid) == "string" and by_tid[l.tid]
    if own then own[#own + 1] = l
    else
      errs[#errs + 1] = { no = type(l.tid) == "string" and l.tid or "",
                          error = "子订单" .. tostring(l.oid) .. "的原始单不在本次推送中" }
    end
  end
  local discounts_of, discount_problem = call_discounts(args[4] ~= json.null and args[4] or nil, by_tid, errs)
  -- oids of the other trades of this seller (a line's oid must be unique per seller)
  local oid_owner = t._oid_owner or {}
  t._oid_owner = oid_owner
  local now = ngx.time()
  for _, tr in ipairs(trades) do
    local tid = tr.tid
    local e
    if type(tid) ~= "string" or tid == "" then e = "tid不能为空"
    elseif seen[tid] then e = "原始单号" .. tid .. "在本次推送中重复"
    else e = trade_error(t, shop_no, tr, by_tid[tid], oid_owner) or discount_problem[tid] end
    if e then
      errs[#errs + 1] = { no = type(tid) == "string" and tid or "", error = e }
    else
      seen[tid] = true
      local old = t.raw_trades[tid]
      local rec = setmetatable(tr, nil)   -- the decoded trade itself (made for this call alone)
      rec.shop_no, rec.modified = shop_no, now
      rec.orders = {}
      rec.discounts = discounts_of[tid]      -- a push of the trade replaces them
      if old then
        chg = chg + 1
        counted(t).trades_updated = counted(t).trades_updated + 1
        rec.trade_id, rec.created = old.trade_id, old.created
        for _, ol in ipairs(old.orders) do oid_owner[ol.oid] = nil end
      else
        new = new + 1
        state.s.seq_pushed = (state.s.seq_pushed or 0) + 1
        rec.trade_id, rec.created = TRADE_ID_PUSHED + state.s.seq_pushed, now
        counted(t).raw_trades = counted(t).raw_trades + 1
      end
      local shipped = {}
      if old then for _, ol in ipairs(old.orders) do shipped[ol.oid] = ol._shipped end end
      for i, l in ipairs(by_tid[tid]) do
        setmetatable(l, nil)._shipped = shipped[l.oid]
        rec.orders[i] = l
        oid_owner[l.oid] = tid
      end
      t.raw_trades[tid] = rec
    end
  end
  return { status = 0, data = { new_count = new, chg_count = chg, error_list = errs } }
end

---------------------------------------------------------------------------------------------
-- aftersales.refund.RawRefund.upload2  [shop_no, order_list]

local function push_refunds(t, args, _, sid)
  if #args ~= 2 then return { status = 1, message = "参数个数错误" } end
  local refused = shop_refusal(sid, args[1])
  if refused and refused.status ~= 100 then return refused end
  if not json.is_array(args[2]) then return { status = 2, message = "order_list" } end
  local errs, new, chg, now = json.array(), 0, 0, ngx.time()
  for _, r in ipairs(args[2]) do
    if not json.is_object(r) then return { status = 2, message = "order_list" } end
    -- a shop the seller may not push to: each refund is refused, as the page's example shows
    local e = refused and "店铺权限不足" or field_error(r, REFUND_CHECKS)
    local trade = not e and t.raw_trades[r.tid]
    if not e and not trade then e = "原始单" .. r.tid .. "不存在" end
    if not e then
      local has = false
      for _, l in ipairs(trade.orders) do if l.oid == r.oid then has = true end end
      if not has then e = ("原始子单%s不属于原始单%s"):format(r.oid, r.tid) end
    end
    if e then
      errs[#errs + 1] = { no = type(r.refund_no) == "string" and r.refund_no or "", error = e }
    else
      local old = t.raw_refunds[r.refund_no]
      local rec = copy_fields({}, r)
      rec.shop_no, rec.modified = args[1], now
      if old then chg, rec.created = chg + 1, old.created
      else
        new, rec.created = new + 1, now
        counted(t).raw_refunds = counted(t).raw_refunds + 1
      end
      t.raw_refunds[r.refund_no] = rec
      trade.modified = now                    -- its line is being refunded (emulator/rows.lua)
    end
  end
  return { status = 0, data = { new_count = new, chg_count = chg, error_list = errs } }
end

---------------------------------------------------------------------------------------------
-- goods.ApiGoods.upload  [{shop_no, goods_list}]

local function upload_goods(t, args, _, sid)
  if #args ~= 1 or not json.is_object(args[1]) then return { status = 1, message = "参数个数错误" } end
  local p = args[1]
  local refused = shop_refusal(sid, p.shop_no)
  if refused and refused.status == 100 then   -- the page's words
    return { status = 100, message = "店铺不存在/无权限/类型错误" }
  end
  if refused then return refused end
  if not json.is_array(p.goods_list) then return { status = 2, message = "goods_list" } end
  for i, g in ipairs(p.goods_list) do   -- no per-item error list on this method: all or nothing
    if not json.is_object(g) then return { status = 2, message = ("goods_list[%d]"):format(i - 1) } end
    local e = field_error(g, GOODS_CHECKS)
    if e then return { status = 100, message = ("goods_list[%d]: %s"):format(i - 1, e) } end
  end
  local ids, now, s = json.array(), ngx.time(), state.s
  local q = t.stock
  for _, g in ipairs(p.goods_list) do
    local gid, spid = g.goods_id or "", g.spec_id or ""
    local key = gid .. "\0" .. spid
    local rec = t.api_goods[key]
    if not rec then
      s.seq_stock = s.seq_stock + 1
      s.cursor = s.cursor + 1
      rec = { rec_id = state.REC_ID_BASE + s.seq_stock, cursor = s.cursor, pending = false,
              stock_change_count = 0, syn_stock = 0, created = now }
      q.goods[#q.goods + 1] = rec
      q.by_id[rec.rec_id] = rec
      t.api_goods[key] = rec
      counted(t).api_goods = counted(t).api_goods + 1
    end
    copy_fields(rec, g)
    rec.goods_id, rec.spec_id, rec.shop_no, rec.modified = gid, spid, p.shop_no, now
    rec.status = g.status ~= nil and tonumber(g.status) or 1
    rec.syn_stock = dec_of(g.stock_num or 0) or 0
    ids[#ids + 1] = rec.rec_id
  end
  return { status = 0, data = { status = 0, rec_ids = ids } }
end

M.methods = {
  ["sales.RawTrade.pushSelf2"] = push_trades,
  ["aftersales.refund.RawRefund.upload2"] = push_refunds,
  ["goods.ApiGoods.upload"] = upload_goods,
}

---------------------------------------------------------------------------------------------
-- control: ship pushed trades, change uploaded goods' stock

local LOGISTICS = { { "SF", "顺丰速运" }, { "YTO", "圆通速递" }, { "ZTO", "中通快递" } }

-- the lines of a trade that can ship now, or nil and why not
local function shippable(t, tr)
  if tonumber(tr.trade_status) == 80 or tonumber(tr.trade_status) == 90 or tonumber(tr.refund_status) == 3
     or tonumber(tr.process_status) == 70 then
    return nil, "refunded or cancelled"
  end
  local refunded, out = rows.refunded_oids(t, tr.tid), {}
  for _, l in ipairs(tr.orders) do
    if not l._shipped and not refunded[l.oid] and (tonumber(l.refund_status) or 0) < 2 then out[#out + 1] = l end
  end
  if #out == 0 then return nil, "nothing left to ship (shipped or refunded)" end
  return out
end

local function add_row(t, tr, lines, whole)
  local s, q = state.s, t.logistics
  s.seq_logistics = s.seq_logistics + 1
  local i = s.seq_logistics
  local co = LOGISTICS[i % #LOGISTICS + 1]
  local oids = {}
  for k, l in ipairs(lines) do oids[k] = l.oid; l._shipped = true end
  local row = {
    sync_id = state.SYNC_ID_BASE + i, tid = tr.tid,
    logistics_no = ("%s%012d"):format(co[1], 990000000000 + i), logistics_code = co[1],
    logistics_name = co[2], is_part_sync = whole and 0 or 1,
    oids = whole and "" or table.concat(oids, ","), trade_id = tr.trade_id,
    platform_id = OWN_PLATFORM, created = stamp(ngx.time()), shop_no = tr.shop_no,
    lines = lines, oid_list = oids,     -- what the stockout holds (emulator/rows.lua)
  }
  t.shipments[#t.shipments + 1] = row
  q.rows[#q.rows + 1] = row
  q.by_id[row.sync_id] = row
  q.size = q.size + 1
  tr.modified = ngx.time()
  return row.sync_id
end

-- Ship one trade: one row, or two (first line, then the rest) for three lines or more.
local function ship(t, tr, lines, out)
  local all = #lines == #tr.orders
  if #lines >= 3 then
    out[#out + 1] = add_row(t, tr, { lines[1] }, false)
    local rest = {}
    for k = 2, #lines do rest[#rest + 1] = lines[k] end
    out[#out + 1] = add_row(t, tr, rest, false)
  else
    out[#out + 1] = add_row(t, tr, lines, all)
  end
end

-- POST /__emulator/ship {sid?, count=N | tids=[...]}
--   -> {ok, shipped=[sync_id...], trades=N (trades shipped), skipped=[{tid, reason}] (tids only)}
function M.ship(t, v)
  local shipped, skipped, trades = json.array(), json.array(), 0
  if v.tids ~= nil then
    if not json.is_array(v.tids) then return nil, "tids must be a list" end
    for _, tid in ipairs(v.tids) do
      local tr = t.raw_trades[tid]
      local lines, why = tr and shippable(t, tr)
      if not tr then why = "not pushed" end
      if lines then ship(t, tr, lines, shipped); trades = trades + 1
      else skipped[#skipped + 1] = { tid = tid, reason = why } end
    end
  else
    local n = v.count
    if type(n) ~= "number" or n < 0 or n ~= floor(n) then return nil, "count (a whole number) or tids is required" end
    local list = {}
    for _, tr in pairs(t.raw_trades) do list[#list + 1] = tr end
    table.sort(list, function(a, b) return a.trade_id < b.trade_id end)
    local done = 0
    for _, tr in ipairs(list) do
      if done >= n then break end
      local lines = shippable(t, tr)
      if lines then ship(t, tr, lines, shipped); done = done + 1; trades = trades + 1 end
    end
  end
  return { ok = true, shipped = shipped, skipped = skipped, trades = trades }
end

-- POST /__emulator/stock {sid?, count=N | goods=[{goods_id, spec_id, stock?}]}: the stock
-- of uploaded goods changes; they enter the wait list (new cursor, new stock_change_count).
function M.stock(t, v)
  local q, s, changed = t.stock, state.s, json.array()
  local function change(g, stock)
    for i, x in ipairs(q.goods) do if x == g then table.remove(q.goods, i) break end end
    s.cursor = s.cursor + 1
    g.cursor = s.cursor
    q.goods[#q.goods + 1] = g                 -- the wait list is read in cursor order
    g.stock_change_count = g.stock_change_count + 1
    g.syn_stock = stock or (g.syn_stock + 7) % 500
    if not g.pending then g.pending = true; q.size = q.size + 1 end
    changed[#changed + 1] = g.rec_id
  end
  if v.goods ~= nil then
    if not json.is_array(v.goods) then return nil, "goods must be a list" end
    for _, x in ipairs(v.goods) do
      local g = type(x) == "table" and t.api_goods[tostring(x.goods_id) .. "\0" .. tostring(x.spec_id)]
      if not g then return nil, "not uploaded: " .. json.encode(x) end
      if x.stock ~= nil and type(x.stock) ~= "number" then return nil, "stock must be a number" end
      change(g, x.stock)
    end
  else
    local n = v.count
    if type(n) ~= "number" or n < 0 or n ~= floor(n) then return nil, "count (a whole number) or goods is required" end
    local list = {}
    for _, g in pairs(t.api_goods) do if not g.pending then list[#list + 1] = g end end
    table.sort(list, function(a, b) return a.rec_id < b.rec_id end)
    for k = 1, math.min(n, #list) do change(list[k]) end
  end
  return { ok = true, changed = changed }
end

-- the counts GET /__emulator/state shows for a tenant
function M.view(t, out)
  local c = counted(t)
  out.raw_trades, out.raw_refunds, out.api_goods = c.raw_trades, c.raw_refunds, c.api_goods
  out.raw_trades_updated = c.trades_updated     -- pushes of a tid already there
  local discounts = 0                            -- the discounts the stored trades hold
  for _, tr in pairs(t.raw_trades) do discounts = discounts + (tr.discounts and #tr.discounts or 0) end
  out.raw_discounts = discounts
end

return M
