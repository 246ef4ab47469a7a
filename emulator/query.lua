-- The windowed query methods (doc/emulator.md): sales.TradeQuery.querySelfOrderWithDetail,
-- sales.RawTrade.searchSelfOrder, aftersales.refund.Refund.search, …RawRefund.search,
-- wms.stockout.Sales.queryWithDetail, …searchLogistics, goods.ApiGoods.search.
-- They answer over the tenant's data: rows made by POST /__emulator/rows, orders, refunds
-- and goods pushed through emulator.push (t.raw_trades, t.raw_refunds, t.api_goods, when
-- present) and the logistics queue's shipments. A window wider than the method's limit is
-- refused as the vendor's pages show. The `drift` fault moves rows' modified times while a
-- window is paged. Runs in nginx's LuaJIT (Lua 5.1 syntax); shares no code with wdt.
local json = require "emulator.json"
local state = require "emulator.state"

local M = {}
local floor = math.floor
local HOUR, DAY = 3600, 86400
local ID_BASE = 8000000000           -- control rows' ids (above 2^32)

---------------------------------------------------------------------------------------------
-- Beijing time (UTC+8) <-> Unix seconds, without the machine's zone

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy - 719468
end

M.stamp = state.stamp

-- The form "YYYY-MM-DD HH:MM:SS" with a month 1..12 and a day 1..31 -> Unix seconds, or
-- nil; no other check (the push's trade_time check, emulator/push.lua).
function M.beijing_seconds(s)
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)$")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  return days_from_civil(y, mo, d) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60
         + tonumber(se) - 8 * 3600
end

-- A valid Beijing time -> Unix seconds, or nil
function M.unix(s)
  if type(s) ~= "string" then return nil end
  local t = M.beijing_seconds(s)
  if not t or M.stamp(t) ~= s then return nil end   -- 2026-02-30, 24:00:00 and the like
  return t
end

---------------------------------------------------------------------------------------------
-- per-tenant query state: control rows per method, ids of derived rows, moved times

local function qstate(t)
  local q = t.query
  if not q then
    q = { rows = {}, ids = {}, moved = {}, seq = 0 }
    t.query = q
  end
  return q
end

local function stable_id(q, skey, base)
  local id = q.ids[skey]
  if not id then
    q.seq = q.seq + 1
    id = base + q.seq
    q.ids[skey] = id
  end
  return id
end

local function ms(t) return floor(t) * 1000 end

---------------------------------------------------------------------------------------------
-- row shapes (fields from the vendor's pages; enough for a reader, not every column)

local function trade_row(id, tid, shop_no, m, orders, status)
  local details = json.array()
  for i, o in ipairs(orders or {}) do
    details[i] = { trade_id = id, rec_id = id * 10 + i, src_tid = tid,
                   src_oid = o.oid or (tid .. "-" .. i), num = o.num or 1, price = o.price or 0,
                   goods_no = o.goods_no or "", spec_no = o.spec_no or "",
                   api_goods_id = o.goods_id or "", api_spec_id = o.spec_id or "",
                   platform_id = 127, modified = ms(m) }
  end
  return { trade_id = id, trade_no = ("JY%012d"):format(id % 1000000000000), src_tids = tid,
           shop_no = shop_no or "s1", platform_id = 127, trade_status = status or 30,
           trade_type = 1, trade_from = 5, modified = M.stamp(m), created = ms(m),
           detail_list = details }
end

local function raw_trade_row(id, tid, shop_no, m, orders)
  local lines = json.array()
  for i, o in ipairs(orders or {}) do
    lines[i] = { rec_id = id * 10 + i, tid = tid, oid = o.oid or (tid .. "-" .. i),
                 platform_id = 127, status = 30, process_status = 20, refund_status = 0,
                 goods_id = o.goods_id or "", spec_id = o.spec_id or "", goods_no = o.goods_no or "",
                 spec_no = o.spec_no or "", num = o.num or 1, price = o.price or 0,
                 modified = M.stamp(m) }
  end
  return { rec_id = id, tid = tid, shop_no = shop_no or "s1", platform_id = 127,
           process_status = 20, trade_status = 30, pay_status = 2, refund_status = 0,
           modified = M.stamp(m), created = M.stamp(m), trade_orders = lines,
           discount_list = json.array() }
end

local function refund_row(id, r, m)
  return { refund_id = id, refund_no = ("TK%010d"):format(id % 10000000000),
           src_tids = r.tid or "", tid_list = r.tid or "", raw_refund_nos = r.refund_no or "",
           shop_no = r.shop_no or "s1", type = r.type or 2, status = 20, platform_id = 127,
           modified = ms(m), modified_date = M.stamp(m), detail_list = json.array() }
end

local function raw_refund_row(id, r, m)
  return { refund_id = id, refund_no = r.refund_no, tid = r.tid or "", oid = r.oid or "",
           shop_no = r.shop_no or "s1", platform_id = 127, type = r.type or 2,
           status = r.status or 2, process_status = 0, refund_amount = r.refund_amount or 0,
           modified = M.stamp(m), created = M.stamp(m), detail_list = json.array(),
           discount_list = json.array() }
end

local function goods_row(id, g, m)
  return { rec_id = id, shop_no = g.shop_no or "s1", goods_id = g.goods_id, spec_id = g.spec_id,
           goods_name = g.goods_name or "", spec_name = g.spec_name or "",
           outer_id = g.goods_no or "", spec_outer_id = g.spec_no or "", platform_id = 127,
           status = g.status or 1, is_deleted = 0, price = g.price or 0,
           stock_num = g.stock_num or 0, modified = M.stamp(m) }
end

local function stockout_row(id, s, m)
  return { stockout_id = id, order_no = ("CK%010d"):format(id % 10000000000),
           src_order_no = s.trade_no or "", src_trade_no = s.tid or "", shop_no = s.shop_no or "s1",
           logistics_no = s.logistics_no or "", logistics_code = s.logistics_code or "",
           logistics_name = s.logistics_name or "", status = 95, platform_id = 127,
           modified = M.stamp(m), consign_time = M.stamp(m) }
end

local function logistics_row(id, s, m)
  return { rec_id = id, stockout_id = s.stockout_id or id, stockout_no = s.stockout_no or
             ("CK%010d"):format(id % 10000000000), logistics_no = s.logistics_no or "",
           logistics_name = s.logistics_name or "", src_tids = s.tid or "",
           trade_no = s.trade_no or "", shop_no = s.shop_no or "s1", status = 20,
           modified = M.stamp(m), consign_time = M.stamp(m) }
end

---------------------------------------------------------------------------------------------
-- sources: every row a method can list, as {skey, m, shop_no, tid, build(m) -> row}

local function control_entries(q, method, out)
  for _, r in ipairs(q.rows[method] or {}) do
    out[#out + 1] = { skey = "c\0" .. r.id, m = r.modified, shop_no = r.fields.shop_no,
                      tid = r.fields.tid or r.fields.src_tids,
                      build = r.build }
  end
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t or {}) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- pushed records (emulator.push): each has `modified` in Unix seconds
local function pushed(t, field, out, prefix, base, make)
  local q = qstate(t)
  local tab = t[field]
  for _, k in ipairs(sorted_keys(tab)) do
    local r = tab[k]
    if type(r) == "table" and type(r.modified) == "number" then
      local skey = prefix .. "\0" .. k
      local id = stable_id(q, skey, base)
      out[#out + 1] = { skey = skey, m = r.modified, shop_no = r.shop_no, tid = r.tid,
                        build = function(m) return make(id, r, m) end }
    end
  end
end

local function shipments(t, out, prefix, make)
  local lq = t.logistics
  if not lq then return end
  for _, r in ipairs(lq.rows) do
    local m = M.unix(r.created)
    if m then
      out[#out + 1] = { skey = prefix .. "\0" .. r.sync_id, m = m, shop_no = r.shop_no, tid = r.tid,
                        build = function(mm) return make(r.trade_id, r, mm) end }
    end
  end
end

local SOURCES = {
  trade = function(t, out)
    pushed(t, "raw_trades", out, "trade", state.TRADE_ID_BASE + 500000000, function(id, r, m)
      -- a pushed order keeps the trade_id its shipments carry (POST /__emulator/ship)
      return trade_row(r.trade_id or id, r.tid, r.shop_no, m, r.orders, r.trade_status)
    end)
  end,
  raw_trade = function(t, out)
    pushed(t, "raw_trades", out, "raw_trade", ID_BASE + 100000000, function(id, r, m)
      return raw_trade_row(id, r.tid, r.shop_no, m, r.orders)
    end)
  end,
  refund = function(t, out) pushed(t, "raw_refunds", out, "refund", ID_BASE + 200000000, refund_row) end,
  raw_refund = function(t, out) pushed(t, "raw_refunds", out, "raw_refund", ID_BASE + 300000000, raw_refund_row) end,
  goods = function(t, out) pushed(t, "api_goods", out, "goods", ID_BASE + 400000000, goods_row) end,
  stockout = function(t, out) shipments(t, out, "stockout", stockout_row) end,
  logistics = function(t, out)
    shipments(t, out, "logistics", function(_, r, m) return logistics_row(r.sync_id, r, m) end)
  end,
}

---------------------------------------------------------------------------------------------
-- the methods' facts (the vendor's pages)

local SPECS = {
  ["sales.TradeQuery.querySelfOrderWithDetail"] = { key = "trade_id",
    from = "start_time", to = "end_time", limit = HOUR, limit_text = "60分钟", list = "order",
    source = "trade", shop = "shop_no", tid = "src_tid", untimed = { "trade_no", "src_tid", "logistics_no" },
    template = function(id, tid, m, f) return trade_row(id, tid, f.shop_no, m, f.orders) end,
  },
  ["sales.RawTrade.searchSelfOrder"] = { key = "rec_id",
    from = "start_time", to = "end_time", limit = 30 * DAY, limit_text = "30天", list = "order",
    source = "raw_trade", shop = "shop_no", tid = "tid", untimed = { "tid" },
    template = function(id, tid, m, f) return raw_trade_row(id, tid, f.shop_no, m, f.orders) end,
  },
  ["aftersales.refund.Refund.search"] = { key = "refund_id",
    from = "modified_from", to = "modified_to", limit = 30 * DAY, limit_text = "30天", list = "order",
    source = "refund", shop = "shop_nos", tid = "tid", untimed = { "refund_no", "tid", "trade_no" },
    template = function(id, tid, m, f) return refund_row(id, { tid = tid, shop_no = f.shop_no }, m) end,
  },
  ["aftersales.refund.RawRefund.search"] = { key = "refund_id",
    from = "start_time", to = "end_time", limit = 30 * DAY, limit_text = "30天", list = "order",
    source = "raw_refund", shop = "shop_no", tid = "tid", untimed = { "refund_no", "logistics_no" },
    template = function(id, tid, m, f)
      return raw_refund_row(id, { tid = tid, shop_no = f.shop_no, refund_no = "RR" .. id }, m)
    end,
  },
  ["wms.stockout.Sales.queryWithDetail"] = { key = "stockout_id",
    from = "start_time", to = "end_time", limit = HOUR, limit_text = "60分钟", list = "order",
    source = "stockout", shop = "shop_nos", tid = "src_tid", required = { status_type = "参数中必须包含出库单状态" },
    untimed = { "stockout_no", "src_order_no", "logistics_no" },
    template = function(id, tid, m, f) return stockout_row(id, { tid = tid, shop_no = f.shop_no }, m) end,
  },
  ["wms.stockout.Sales.searchLogistics"] = { key = "rec_id",
    from = "start_time", to = "end_time", limit = DAY, limit_text = "1天", list = "order_list",
    source = "logistics", shop = "shop_no", tid = "src_tids", required = { status = "参数中必须包含状态" },
    untimed = {},
    template = function(id, tid, m, f) return logistics_row(id, { tid = tid, shop_no = f.shop_no }, m) end,
  },
  ["goods.ApiGoods.search"] = { key = "rec_id",
    from = "start_time", to = "end_time", limit = 30 * DAY, limit_text = "30天", list = "goods_list",
    source = "goods", shop = "shop_no", untimed = {},
    template = function(id, _, m, f)
      return goods_row(id, { shop_no = f.shop_no, goods_id = "g" .. id, spec_id = "s" .. id }, m)
    end,
  },
}
M.SPECS = SPECS

---------------------------------------------------------------------------------------------
-- the query

local function fail(msg) return { status = 100, message = msg } end

local function given(v) return v ~= nil and v ~= json.null and v ~= "" end

-- the window [from, to] (both inclusive, whole seconds) or an error answer
local function window_of(spec, f)
  local a, b = f[spec.from], f[spec.to]
  if not given(a) and not given(b) then
    for _, k in ipairs(spec.untimed) do
      if given(f[k]) then return nil, nil end
    end
    return nil, nil, fail("参数中必须包含起止时间")
  end
  if not given(a) or not given(b) then return nil, nil, fail("参数中必须包含起止时间") end
  local ua, ub = M.unix(a), M.unix(b)
  if not ua then return nil, nil, fail(("Unparseable date: \"%s\""):format(tostring(a))) end
  if not ub then return nil, nil, fail(("Unparseable date: \"%s\""):format(tostring(b))) end
  if ub < ua then return nil, nil, fail("开始时间不能大于结束时间") end
  if ub - ua > spec.limit then
    return nil, nil, fail("您的查询时间过宽,查询时间不能大于" .. spec.limit_text)
  end
  return ua, ub
end

local function matches(spec, f, e)
  local shop = spec.shop and f[spec.shop]
  if given(shop) then
    local ok = false
    for s in tostring(shop):gmatch("[^,]+") do if s == e.shop_no then ok = true end end
    if not ok then return false end
  end
  local tid = spec.tid and f[spec.tid]
  if given(tid) then
    local ok = false
    for s in tostring(tid):gmatch("[^,]+") do if s == e.tid then ok = true end end
    if not ok then return false end
  end
  return true
end

-- the drift fault: the oldest row(s) of the window [ua, ub] move to the second before its
-- end (inside the window, whether a reader counts the end second in or not), or to now
local function drift(q, list, fault, ub)
  local target = fault.to == "now" and floor(ngx.now()) or ub - 1
  local moved = 0
  for _, e in ipairs(list) do
    if moved >= (fault.rows or 1) then break end
    if e.m < target then
      q.moved[e.skey] = target
      e.m = target
      moved = moved + 1
    end
  end
  q.drifted = (q.drifted or 0) + moved
end

local function by_time(x, y)
  if x.m ~= y.m then return x.m < y.m end
  return x.skey < y.skey
end

local function query(method, t, args, pager, fault)
  local spec = SPECS[method]
  if #args ~= 1 or not json.is_object(args[1]) then
    return { status = 2, message = "参数错误: 需要一个查询条件对象 [{...}]" }
  end
  local f = args[1]
  for k, msg in pairs(spec.required or {}) do
    if not given(f[k]) then return fail(msg) end
  end
  local ua, ub, err = window_of(spec, f)
  if err then return err end
  local q = qstate(t)
  local all = {}
  control_entries(q, method, all)
  SOURCES[spec.source](t, all)
  local list = {}
  for _, e in ipairs(all) do
    e.m = q.moved[e.skey] or e.m
    if (not ua or (e.m >= ua and e.m <= ub)) and matches(spec, f, e) then list[#list + 1] = e end
  end
  table.sort(list, by_time)
  if fault and fault.mode == "drift" and ua and #list > pager.page_size then
    drift(q, list, fault, ub)
    local kept = {}
    for _, e in ipairs(list) do
      if e.m <= ub then kept[#kept + 1] = e end
    end
    list = kept
    table.sort(list, by_time)
  end
  local rows = json.array()
  local first = pager.page_no * pager.page_size
  for i = first + 1, math.min(first + pager.page_size, #list) do
    rows[#rows + 1] = list[i].build(list[i].m)
  end
  return { status = 0, data = { total_count = pager.calc_total and #list or 0, [spec.list] = rows } }
end

for method in pairs(SPECS) do
  M[method] = function(t, args, pager, _, fault) return query(method, t, args, pager, fault) end
end

---------------------------------------------------------------------------------------------
-- POST /__emulator/rows {sid?, method, rows: [{modified, tid?, shop_no?, ...}]}
--                    or {sid?, method, count, from, to, shop_no?}
-- -> {ok, method, created: [{key, modified}]}

local function time_arg(v)
  if type(v) == "number" and v == floor(v) and v >= 0 then return v end
  return M.unix(v)
end

local function add_row(q, method, spec, m, fields)
  q.seq = q.seq + 1
  local id = ID_BASE + q.seq
  local tid = fields.tid or ("CT" .. id)
  local r = { id = id, modified = m, fields = fields }
  r.fields.tid = tid
  r.build = function(mm)
    local row = spec.template(id, tid, mm, fields)
    for k, v in pairs(fields) do
      if k ~= "modified" and k ~= "orders" and row[k] ~= nil then row[k] = v end
    end
    return row
  end
  local list = q.rows[method]
  if not list then list = {}; q.rows[method] = list end
  list[#list + 1] = r
  return { key = r.build(m)[spec.key], modified = M.stamp(m), tid = tid }
end

function M.control_rows(t, v)
  local spec = SPECS[v.method]
  if not spec then return nil, "method must be one of the query methods (doc/emulator.md)" end
  local q = qstate(t)
  local created = json.array()
  if v.rows ~= nil then
    if not json.is_array(v.rows) then return nil, "rows must be a list of objects" end
    for i, r in ipairs(v.rows) do
      if not json.is_object(r) then return nil, ("rows[%d] must be an object"):format(i) end
      local m = time_arg(r.modified)
      if not m then return nil, ("rows[%d].modified: Unix seconds or \"YYYY-MM-DD HH:MM:SS\""):format(i) end
      local fields = {}
      for k, val in pairs(r) do fields[k] = val end
      created[#created + 1] = add_row(q, v.method, spec, m, fields)
    end
  else
    local n, a, b = v.count, time_arg(v.from), time_arg(v.to)
    if type(n) ~= "number" or n ~= floor(n) or n < 0 or n > 100000 then
      return nil, "count must be a whole number from 0 to 100000"
    end
    if not a or not b or b <= a then return nil, "from < to needed (Unix seconds or \"YYYY-MM-DD HH:MM:SS\")" end
    for i = 0, n - 1 do
      local m = a + floor(i * (b - a) / n)
      created[#created + 1] = add_row(q, v.method, spec, m, { shop_no = v.shop_no })
    end
  end
  return { ok = true, method = v.method, created = created }
end

return M
