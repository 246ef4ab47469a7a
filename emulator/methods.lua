-- The open API methods the emulator knows, with the argument checks of the real server.
-- Each handler(tenant_state, args, pager, sid, fault) returns the response object (`fault`:
-- the fault taken for this call, if any; only update acts on one, "refuse").
-- Runs in nginx's LuaJIT (Lua 5.1 syntax). Shapes are written down in doc/emulator.md.
local json = require "emulator.json"
local state = require "emulator.state"
local query = require "emulator.query"
local push = require "emulator.push"
local rows = require "emulator.rows"

local M = {}
local floor = math.floor

local function bad(msg) return { status = 2, message = msg } end

local function whole(v) return type(v) == "number" and v == floor(v) end

-- An integer given as a JSON number or as a string of digits (the vendor's own examples
-- send "0" for a status and "500" for a count).
local function int_arg(v)
  if whole(v) then return v end
  if type(v) == "string" and v:find("^%-?%d+$") and #v <= 16 then return tonumber(v) end
  return nil
end

local function opt_string(obj, field)
  local v = obj[field]
  if v == nil or v == json.null then return true end
  return type(v) == "string"
end

-- Paging parameters from the query string: page_size (1..1000), page_no (>= 0), calc_total.
-- Absent ones take the defaults page_size 30, page_no 0, calc_total 0.
function M.pager(params, max_page_size)
  local p = { page_size = 30, page_no = 0, calc_total = false }
  local max = max_page_size or 1000
  if params.page_size ~= nil then
    local n = int_arg(params.page_size)
    if not n or n < 1 or n > max then return nil, "page_size必须是1到" .. max .. "之间的整数" end
    p.page_size = n
  end
  if params.page_no ~= nil then
    local n = int_arg(params.page_no)
    if not n or n < 0 then return nil, "page_no必须是从0开始的整数" end
    p.page_no = n
  end
  if params.calc_total ~= nil then
    if params.calc_total ~= "0" and params.calc_total ~= "1" then
      return nil, "calc_total必须是0或1"
    end
    p.calc_total = params.calc_total == "1"
  end
  return p
end

---------------------------------------------------------------------------------------------
-- logistics

-- the vendor's field table and example (the shop is a filter, not a row field)
local ROW_FIELDS = { "sync_id", "tid", "logistics_no", "logistics_code", "logistics_name",
                     "is_part_sync", "oids", "trade_id", "platform_id", "created" }

-- sales.LogisticsSync.getSyncListExt  [{shop_no, is_own_platform, tid?, logistics_no?, is_part_sync?}]
-- answers {status, total, data:[rows]}
local function logistics_list(t, args, pager)
  if #args ~= 1 or not json.is_object(args[1]) then
    return bad("参数错误: 需要一个查询条件对象 [{\"shop_no\":...,\"is_own_platform\":true}]")
  end
  local f = args[1]
  for _, name in ipairs({ "shop_no", "tid", "logistics_no" }) do
    if not opt_string(f, name) then return bad(name .. "必须是字符串") end
  end
  if f.is_own_platform ~= nil and type(f.is_own_platform) ~= "boolean" then
    return bad("is_own_platform必须是布尔值")
  end
  local part
  if f.is_part_sync ~= nil and f.is_part_sync ~= json.null then
    part = int_arg(f.is_part_sync)
    if part ~= 0 and part ~= 1 then return bad("is_part_sync必须是0或1") end
  end
  local q = t.logistics
  state.compact_logistics(q)
  local data, total = json.array(), 0
  local first = pager.page_no * pager.page_size + 1
  local last = first + pager.page_size - 1
  -- every emulated shipment belongs to a self-owned platform (platform_id 127): they are
  -- listed only to callers that say is_own_platform = true, as on the real server
  if f.is_own_platform == true then
    local shop = f.shop_no ~= json.null and f.shop_no or nil
    local tid = f.tid ~= json.null and f.tid or nil
    local lno = f.logistics_no ~= json.null and f.logistics_no or nil
    for _, r in ipairs(q.rows) do
      if (not shop or r.shop_no == shop) and (not tid or r.tid == tid)
         and (not lno or r.logistics_no == lno) and (not part or r.is_part_sync == part) then
        total = total + 1
        if total >= first and total <= last then
          local row = json.object()
          for _, k in ipairs(ROW_FIELDS) do row[k] = r[k] end
          data[#data + 1] = row
        elseif total > last and not pager.calc_total then
          break
        end
      end
    end
  end
  return { status = 0, total = pager.calc_total and total or 0, data = data }
end

local UPDATE_STATUSES = { [0] = "acked", [2] = "failed", [-100] = "kept" }

-- sales.LogisticsSync.update  [[{sync_id, status, error_msg}, ...]]
-- answers {status:0, data:[messages for refused items]}. The fault "refuse" refuses item
-- number fault.item (not applied), naming it by position or, when anonymous, not at all.
local function logistics_update(t, args, _, _, fault)
  if #args ~= 1 or not json.is_array(args[1]) then
    return bad("参数错误: 需要同步结果列表 [[{\"sync_id\":...,\"status\":0,\"error_msg\":\"\"}]]")
  end
  local list = args[1]
  for i, item in ipairs(list) do
    if not json.is_object(item) then return bad(("syncList[%d]必须是对象"):format(i - 1)) end
  end
  local q = t.logistics
  local msgs = json.array()
  local refuse = fault and fault.mode == "refuse" and fault.item
  for i, item in ipairs(list) do
    local id = int_arg(item.sync_id)
    local st = item.status
    if i == refuse then
      msgs[#msgs + 1] = fault.anonymous and "部分物流同步数据处理失败，请稍后重试"
                        or ("第%d条: 系统繁忙，未处理"):format(i)
    elseif id == nil then
      msgs[#msgs + 1] = ("第%d条: 物流同步id(sync_id)为空或不是整数"):format(i)
    elseif st == nil or st == json.null or st == "" then
      msgs[#msgs + 1] = ("物流同步id:%.0f 同步结果状态为空!"):format(id)
    elseif not opt_string(item, "error_msg") then
      msgs[#msgs + 1] = ("物流同步id:%.0f error_msg必须是字符串"):format(id)
    else
      local code = int_arg(st)
      local kind = code and UPDATE_STATUSES[code]
      if not kind then
        msgs[#msgs + 1] = ("第%d条: 同步结果状态错误: %s"):format(i, tostring(st))
      else
        local row = q.by_id[id]
        if not row then
          -- a second report of a row that already left: refused, and counted for tests
          if q.left[id] then q.repeated = q.repeated + 1 end
          msgs[#msgs + 1] = ("物流同步id:%.0f 不存在或已回传"):format(id)
        elseif kind == "kept" then
          q.kept = q.kept + 1
          row.last_error = item.error_msg
        else
          q[kind] = q[kind] + 1
          local tr = t.raw_trades[row.tid]     -- a pushed order's trade may now be finished
          if tr and tr.trade_id == row.trade_id then tr.modified = ngx.time() end
          q.by_id[id] = nil
          q.left[id] = true
          row.gone = true
          q.gone = q.gone + 1
          q.size = q.size - 1
        end
      end
    end
  end
  return { status = 0, data = msgs }
end

---------------------------------------------------------------------------------------------
-- stock

local function good_or_error(t, v)
  local id = int_arg(v)
  if id == nil then return nil, bad("apiGoodsId必须是整数") end
  local g = t.stock.by_id[id]
  if not g then
    return nil, { status = 100, message = ("平台货品rec_id:%.0f 不存在或者未开启同步"):format(id) }
  end
  return g
end

-- sales.StockSync.getSelfWaitSyncIdListOpen  [count 10..5000, position]
-- answers {status, data:{id_list:[rec_id...], position}}
local function stock_wait_list(t, args)
  if #args ~= 2 then return bad("参数错误: 需要 [count, position]") end
  local count, position = int_arg(args[1]), int_arg(args[2])
  if not count or count < 10 or count > 5000 then
    return bad("count必须是10到5000之间的整数")
  end
  if not position then return bad("position必须是整数") end
  local ids, last = json.array(), position
  for _, g in ipairs(t.stock.goods) do
    if g.pending and g.cursor > position then
      ids[#ids + 1] = g.rec_id
      last = g.cursor
      if g.ghost then g.pending = false end   -- listed once, then gone
      if #ids >= count then break end
    end
  end
  return { status = 0, data = { id_list = ids, position = last } }
end

-- sales.StockSync.calcStock (and calcStockWithAuth)  [api_goods_id, force_sync]
local function stock_calc(t, args)
  if #args ~= 2 then return bad("参数错误: 需要 [apiGoodsId, forceSync]") end
  if type(args[2]) ~= "boolean" then return bad("forceSync必须是布尔值") end
  local g, e = good_or_error(t, args[1])
  if not g then return e end
  return { status = 0, data = {
    rec_id = g.rec_id, goods_id = g.goods_id, spec_id = g.spec_id,
    outer_id = g.goods_id, spec_outer_id = g.spec_id, match_code = g.spec_id,
    match_target_id = g.match_target_id or g.rec_id - state.REC_ID_BASE, match_target_type = 1,
    syn_stock = g.syn_stock, stock_change_count = g.stock_change_count,
    stock_num = g.syn_stock, last_syn_num = -1, last_syn_time = "",
    stock_syn_rule_id = -10000, stock_syn_rule_no = "", stock_syn_mask = 0,
    stock_syn_warehouses = "1", stock_syn_percent = 100, stock_syn_plus = 0,
    stock_syn_min = 0, stock_syn_max = 99999, is_auto_listing = 1, is_auto_delisting = 1,
    list_time = "", delist_time = "", mask = 0, reserve_s = "", sub_platform_id = 0,
    shop_id = 1, platform_id = 127, status = 1,
  } }
end

-- The info of syncSuccess / syncFail (the vendor's page lists 16 fields, all marked
-- required). Its own example sends only the first 12 and 1/0 where the table says Boolean
-- (calcStock answers is_auto_listing: 1, and the vendor's PHP client copies that answer
-- into info): those are accepted; the other 4 are checked when present. An info that
-- lacks any of the 16 is counted (state: stock.short_info), for tests of clients that
-- promise the full set.
local INFO_FIELDS = {
  { "syn_stock", "number" }, { "stock_change_count", "int" }, { "stock_syn_rule_id", "int" },
  { "stock_syn_rule_no", "string" }, { "stock_syn_warehouses", "string" },
  { "stock_syn_mask", "int" }, { "stock_syn_percent", "int" }, { "stock_syn_plus", "number" },
  { "stock_syn_min", "number" }, { "stock_syn_max", "number" },
  { "is_auto_listing", "boolean" }, { "is_auto_delisting", "boolean" },
  { "stock_syn_other", "string", true }, { "is_syn_success", "boolean", true },
  { "is_manual", "boolean", true }, { "syn_result", "string", true },
}
local TYPE_WORDS = { number = "数字", int = "整数", string = "字符串", boolean = "布尔值" }

local function boolean_like(v) return type(v) == "boolean" or v == 0 or v == 1 end

-- nil, or the status-2 answer; the second result is true when a field of the 16 is missing
local function check_info(info)
  local short = false
  for _, f in ipairs(INFO_FIELDS) do
    local name, want, optional = f[1], f[2], f[3]
    local v = info[name]
    local missing = v == nil or v == json.null
    local ok
    if missing then ok, short = optional, true
    elseif want == "int" then ok = int_arg(v) ~= nil
    elseif want == "boolean" then ok = boolean_like(v)
    else ok = type(v) == want end
    if not ok then
      return bad(("info.%s%s必须是%s"):format(name, missing and "缺失," or "", TYPE_WORDS[want]))
    end
  end
  return nil, short
end

-- The arguments of syncSuccess / syncFail, checked in the server's order (shape, good,
-- info): returns the good, or nil and the response.
local function reported_good(t, args)
  if #args ~= 2 then return nil, bad("参数错误: 需要 [apiGoodsId, info]") end
  if not json.is_object(args[2]) then return nil, bad("info必须是对象") end
  local g, e = good_or_error(t, args[1])
  if not g then return nil, e end
  local short
  e, short = check_info(args[2])
  if e then return nil, e end
  if short then t.stock.short_info = t.stock.short_info + 1 end
  return g
end

local function leave(t, g, kind)
  g.pending = false
  t.stock[kind] = t.stock[kind] + 1
  t.stock.size = t.stock.size - 1
end

-- sales.StockSync.syncSuccess  [api_goods_id, {syn_stock, stock_change_count, ...}]
-- The good leaves the queue when stock_change_count is the current one; a stale count
-- (the stock changed since calcStock) leaves it pending.
local function stock_success(t, args)
  local g, e = reported_good(t, args)
  if not g then return e end
  if g.pending then
    if int_arg(args[2].stock_change_count) == g.stock_change_count then
      g.last_syn_num = args[2].syn_stock
      leave(t, g, "synced")
    else
      t.stock.stale = t.stock.stale + 1
    end
  end
  return { status = 0 }
end

-- sales.StockSync.syncFail  [api_goods_id, {syn_stock, stock_change_count, ...}]
local function stock_fail(t, args)
  local g, e = reported_good(t, args)
  if not g then return e end
  if g.pending then leave(t, g, "failed") end
  return { status = 0 }
end

-- sales.StockSync.cancelSync  [api_goods_id, stock_change_count]
local function stock_cancel(t, args)
  if #args ~= 2 then return bad("参数错误: 需要 [apiGoodsId, stockChangeCount]") end
  local count = int_arg(args[2])
  if count == nil then return bad("stockChangeCount必须是整数") end
  local g, e = good_or_error(t, args[1])
  if not g then return e end
  if g.pending then
    if count == g.stock_change_count then leave(t, g, "cancelled")
    else t.stock.stale = t.stock.stale + 1 end
  end
  return { status = 0 }
end

---------------------------------------------------------------------------------------------
-- a plain paged query with the common answer shape {data:{total_count, details:[...]}}

-- Every emulated shop is on the self-owned platform (自有平台, platform_id 127).
local OWN_PLATFORM = push.OWN_PLATFORM

-- One row with every field of the vendor's table. Values are the emulator's own: blank
-- contact details, authorised when the emulator started.
local function shop_row(i, no, since)
  return { shop_id = i, shop_no = no, shop_name = "emulated shop " .. no,
           platform_id = OWN_PLATFORM, sub_platform_id = 0, is_disabled = false,
           contact = "", province = "", city = "", district = "", address = "", telno = "",
           mobile = "", zip = "", email = "", remark = "", website = "", group_id = "",
           account_id = "", auth_state = 1, auth_time = since, re_expire_time = "",
           modified = since, expire_time = "", created = since }
end

-- setting.Shop.queryShop  [] or [{shop_no?, platform_id?}]; platform_id is an Int, or a
-- string of digits as in the vendor's own example ([{"platform_id":"127"}])
local function shop_query(t, args, pager, sid)
  if #args > 1 or (#args == 1 and not json.is_object(args[1])) then
    return bad("参数错误: 需要 [] 或 [{\"shop_no\":...,\"platform_id\":...}]")
  end
  local f = args[1] or {}
  if not opt_string(f, "shop_no") then return bad("shop_no必须是字符串") end
  local want = f.shop_no ~= json.null and f.shop_no or nil
  local platform
  if f.platform_id ~= nil and f.platform_id ~= json.null then
    platform = int_arg(f.platform_id)
    if not platform or platform < 0 then return bad("platform_id必须是整数") end
  end
  local shops = rows.shops(t)               -- numbered as every row's shop_id (emulator/rows.lua)
  local configured = push.shops(sid)
  local list, total = json.array(), 0
  local first = pager.page_no * pager.page_size + 1
  for i, no in ipairs(shops) do
    local sh = configured[no]                  -- shops from the configuration (emulator.push)
    local pid = sh and sh.platform_id or OWN_PLATFORM
    if (not want or no == want) and (not platform or platform == pid) then
      total = total + 1
      if total >= first and total < first + pager.page_size then
        local row = shop_row(i, no, t.since)
        if sh then row.platform_id, row.is_disabled = pid, sh.is_disabled end
        list[#list + 1] = row
      end
    end
  end
  return { status = 0, data = { total_count = pager.calc_total and total or 0, details = list } }
end

M.table = {
  ["sales.LogisticsSync.getSyncListExt"] = logistics_list,
  ["sales.LogisticsSync.update"] = logistics_update,
  ["sales.StockSync.getSelfWaitSyncIdListOpen"] = stock_wait_list,
  ["sales.StockSync.calcStock"] = stock_calc,
  ["sales.StockSync.calcStockWithAuth"] = stock_calc,
  ["sales.StockSync.syncSuccess"] = stock_success,
  ["sales.StockSync.syncFail"] = stock_fail,
  ["sales.StockSync.cancelSync"] = stock_cancel,
  ["setting.Shop.queryShop"] = shop_query,
  ["sales.TradeQuery.querySelfOrderWithDetail"] = query["sales.TradeQuery.querySelfOrderWithDetail"],
  ["sales.RawTrade.searchSelfOrder"] = query["sales.RawTrade.searchSelfOrder"],
  ["aftersales.refund.Refund.search"] = query["aftersales.refund.Refund.search"],
  ["aftersales.refund.RawRefund.search"] = query["aftersales.refund.RawRefund.search"],
  ["wms.stockout.Sales.queryWithDetail"] = query["wms.stockout.Sales.queryWithDetail"],
  ["wms.stockout.Sales.searchLogistics"] = query["wms.stockout.Sales.searchLogistics"],
  ["goods.ApiGoods.search"] = query["goods.ApiGoods.search"],
  ["sales.RawTrade.pushSelf2"] = push.methods["sales.RawTrade.pushSelf2"],
  ["aftersales.refund.RawRefund.upload2"] = push.methods["aftersales.refund.RawRefund.upload2"],
  ["goods.ApiGoods.upload"] = push.methods["goods.ApiGoods.upload"],
}

return M
