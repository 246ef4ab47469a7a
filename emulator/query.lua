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
local rows = require "emulator.rows"
local pages = require "emulator.pages"

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

---------------------------------------------------------------------------------------------
-- sources: every row a method can list, as {skey, m, keys, build(m) -> row}; `keys` holds
-- what the filters compare that is not a field of the row (or is cheaper than building it)

local function control_entries(t, q, method, out)
  for _, r in ipairs(q.rows[method] or {}) do
    -- its entry made once, on the row (every query lists every row); its time as stored
    local e = r._entry
    if not e then
      e = { skey = "c\0" .. r.id, keys = r.fields, build = function(m) return r.build(t, m) end }
      r._entry = e
    end
    e.m = r.modified
    out[#out + 1] = e
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
      out[#out + 1] = { skey = skey, m = r.modified, keys = { shop_no = r.shop_no, tid = r.tid },
                        build = function(m) return make(id, r, m) end, record = r }
    end
  end
end

-- every shipment (emulator.rows: a stockout and a logistics row each), at its shipping time
local function shipments(t, out, prefix, make)
  for _, r in ipairs(t.shipments or {}) do
    local m = M.unix(r.created)
    if m then
      out[#out + 1] = { skey = prefix .. "\0" .. r.sync_id, m = m,
                        keys = { shop_no = r.shop_no, tid = r.tid, trade_no = rows.trade_no(r.trade_id) },
                        build = function(mm) return make(t, r, mm) end }
    end
  end
end

local SOURCES = {
  trade = function(t, out)
    local n = #out
    pushed(t, "raw_trades", out, "trade", state.TRADE_ID_BASE + 500000000, function(_, r, m)
      return rows.trade(t, r, m)
    end)
    for i = n + 1, #out do                   -- every logistics_no the trade shipped under
      local e, nos = out[i], {}
      for _, s in ipairs(rows.shipments_of(t, e.record.tid)) do nos[#nos + 1] = s.logistics_no end
      e.keys.logistics_no = nos
    end
  end,
  raw_trade = function(t, out, f)
    pushed(t, "raw_trades", out, "raw_trade", ID_BASE + 100000000, function(id, r, m)
      return rows.raw_trade(t, id, r, m, tonumber(f.detail_mask) == 1)
    end)
  end,
  refund = function(t, out)
    local n = #out
    pushed(t, "raw_refunds", out, "refund", ID_BASE + 200000000, function(id, r, m)
      return rows.refund(t, id, r, m)
    end)
    local kept = n
    for i = n + 1, #out do                   -- an exchange makes no system refund (upload2's page)
      if tonumber(out[i].record.type) ~= 3 then kept = kept + 1; out[kept] = out[i] end
    end
    for i = #out, kept + 1, -1 do out[i] = nil end
  end,
  raw_refund = function(t, out, f)
    pushed(t, "raw_refunds", out, "raw_refund", ID_BASE + 300000000, function(id, r, m)
      return rows.raw_refund(t, id, r, m, tonumber(f.detail_mask) == 1)
    end)
  end,
  goods = function(t, out)
    pushed(t, "api_goods", out, "goods", ID_BASE + 400000000, function(_, g, m) return rows.good(t, g, m) end)
  end,
  stockout = function(t, out) shipments(t, out, "stockout", rows.stockout) end,
  logistics = function(t, out) shipments(t, out, "logistics", rows.logistics) end,
}

---------------------------------------------------------------------------------------------
-- the methods' facts (the vendor's pages)
--   untimed   groups of filter keys that make the window optional (all of a group given)
--   filters   {param, field, kind}: the row's (or the entry's keys') field compared with the
--             filter's param; kind "eq" (equal), "list" (the param is a comma list, one of
--             them equal), "num" (equal as numbers), "from" / "to" (a time the field's is at
--             or after / at or before), "flag" (a true or 1 param asks for rows that have
--             the flag); field false: the 4th element is what every emulated row has
--   time_types  time_type -> the row's time field the window applies to (default: modified)
--   descending  order_type values that list the newest first
--   template  a control row (POST /__emulator/rows) built by the method's own builder

-- a stand-in order for a control row: its lines (`orders`) as given
local function stand_in_trade(id, tid, m, f)
  local lines = {}
  for i, o in ipairs(f.orders or {}) do
    local l = {}
    for k, v in pairs(o) do l[k] = v end
    l.oid = l.oid or (tid .. "-" .. i)
    l.num, l.price = l.num or 1, l.price or 0
    lines[i] = l
  end
  return { tid = tid, shop_no = f.shop_no or "s1", trade_id = id, orders = lines, created = m,
           modified = m, process_status = 20, trade_status = 30, pay_status = 2, refund_status = 0 }
end

local function stand_in_shipment(id, tid, f)
  return { sync_id = state.SYNC_ID_BASE + (id - ID_BASE), tid = tid, shop_no = f.shop_no or "s1",
           trade_id = id, logistics_no = "", logistics_code = "", logistics_name = "",
           created = M.stamp(0) }
end

local SPECS = {
  ["sales.TradeQuery.querySelfOrderWithDetail"] = { key = "trade_id",
    from = "start_time", to = "end_time", limit = HOUR, limit_text = "60分钟", list = "order",
    source = "trade", untimed = { { "trade_no" }, { "src_tid" }, { "logistics_no" } },
    filters = { { "shop_no", "shop_no", "eq" }, { "src_tid", "tid", "list" }, { "trade_no", "trade_no", "eq" },
                { "logistics_no", "logistics_no", "eq" }, { "status", "trade_status", "list" },
                { "warehouse_no", "warehouse_no", "eq" }, { "trade_from", "trade_from", "list" } },
    time_types = { [2] = "pay_time", [3] = "trade_time" }, descending = { [1] = true },
    template = function(t, id, tid, m, f)
      local row = rows.trade(t, stand_in_trade(id, tid, m, f), m)
      row.consign_time = ""
      return row
    end,
  },
  ["sales.RawTrade.searchSelfOrder"] = { key = "rec_id",
    from = "start_time", to = "end_time", limit = 30 * DAY, limit_text = "30天", list = "order",
    source = "raw_trade", untimed = { { "tid" } },
    filters = { { "shop_no", "shop_no", "eq" }, { "tid", "tid", "eq" } },
    template = function(t, id, tid, m, f) return rows.raw_trade(t, id, stand_in_trade(id, tid, m, f), m) end,
  },
  ["aftersales.refund.Refund.search"] = { key = "refund_id",
    from = "modified_from", to = "modified_to", limit = 30 * DAY, limit_text = "30天", list = "order",
    source = "refund",
    untimed = { { "refund_no" }, { "tid" }, { "trade_no" }, { "raw_refund_nos" }, { "return_logistics_no" } },
    filters = { { "shop_nos", "shop_no", "list" }, { "tid", "tid", "eq" }, { "buyer_nick", "buyer_nick", "eq" },
                { "trade_no", "trade_no_list", "eq" }, { "refund_no", "refund_no", "eq" },
                { "return_logistics_no", "return_logistics_no", "eq" }, { "status", "status", "num" },
                { "stockin_status", "stockin_status", "num" }, { "type", "type", "num" },
                { "rr_status", "rr_status", "num" }, { "raw_refund_nos", "raw_refund_nos", "list" },
                { "return_warehouse_nos", "return_warehouse_no", "list" },
                { "settle_from", "settle_time", "from" }, { "settle_to", "settle_time", "to" },
                { "agree_from", "check_time", "from" }, { "agree_to", "check_time", "to" },
                { "current_phase_timeout_from", "current_phase_timeout", "from" },
                { "current_phase_timeout_to", "current_phase_timeout", "to" },
                -- no emulated refund is an intercepted or a refused-at-the-door return
                { "return_mask_manual_intercept", false, "flag", false },
                { "refund_mask_reject_return", false, "flag", false } },
    descending = { [1] = true },
    template = function(t, id, tid, m, f)
      return rows.refund(t, id, { tid = tid, shop_no = f.shop_no or "s1", type = 2, status = 2,
                                  refund_no = "RR" .. id, created = m }, m)
    end,
  },
  ["aftersales.refund.RawRefund.search"] = { key = "refund_id",
    from = "start_time", to = "end_time", limit = 30 * DAY, limit_text = "30天", list = "order",
    source = "raw_refund",
    -- the page (1.5.1): platform_id & refund_no (or refund_no alone), platform_id & tid, logistics_no
    untimed = { { "refund_no" }, { "platform_id", "tid" }, { "logistics_no" } },
    filters = { { "refund_no", "refund_no", "eq" }, { "logistics_no", "logistics_no", "eq" },
                { "platform_id", "platform_id", "num" }, { "shop_no", "shop_no", "eq" },
                { "tid", "tid", "eq" }, { "oid", "oid", "eq" } },
    time_types = { [2] = "refund_time" },
    template = function(t, id, tid, m, f)
      return rows.raw_refund(t, id, { tid = tid, shop_no = f.shop_no or "s1", refund_no = "RR" .. id,
                                      type = 2, status = 2, created = m }, m)
    end,
  },
  ["wms.stockout.Sales.queryWithDetail"] = { key = "stockout_id",
    from = "start_time", to = "end_time", limit = HOUR, limit_text = "60分钟", list = "order",
    source = "stockout", untimed = { { "stockout_no" }, { "src_order_no" }, { "logistics_no" } },
    filters = { { "shop_nos", "shop_no", "list" }, { "src_tid", "tid", "eq" },
                { "stockout_no", "order_no", "eq" }, { "src_order_no", "trade_no", "eq" },
                { "logistics_no", "logistics_no", "eq" }, { "warehouse_no", "warehouse_no", "eq" } },
    descending = { [1] = true, [2] = true },   -- modified, consign time: the same for a shipment
    template = function(t, id, tid, m, f)
      local row = rows.stockout(t, stand_in_shipment(id, tid, f), m)
      row.stockout_id, row.order_no = id, ("CK%010d"):format(id % 10000000000)
      row.consign_time, row.created = M.stamp(m), M.stamp(m)
      return row
    end,
  },
  ["wms.stockout.Sales.searchLogistics"] = { key = "rec_id",
    from = "start_time", to = "end_time", limit = DAY, limit_text = "1天", list = "order_list",
    source = "logistics", required = { status = "参数中必须包含状态" }, untimed = {},
    filters = { { "status", "status", "num" }, { "trade_no", "trade_no", "eq" }, { "src_tids", "tid", "list" },
                { "shop_no", "shop_no", "eq" }, { "warehouse_no", "warehouse_no", "eq" },
                -- "目前仅支持查询销售订单类型的物流单数据": every emulated one is a sales order (1)
                { "order_type", false, "num", 1 } },
    template = function(t, id, tid, m, f)
      local row = rows.logistics(t, stand_in_shipment(id, tid, f), m)
      row.rec_id, row.stockout_id = id, id
      row.stockout_no, row.consign_time = ("CK%010d"):format(id % 10000000000), M.stamp(m)
      return row
    end,
  },
  ["goods.ApiGoods.search"] = { key = "rec_id",
    from = "start_time", to = "end_time", limit = 30 * DAY, limit_text = "30天", list = "goods_list",
    source = "goods", untimed = {},
    filters = { { "shop_no", "shop_no", "eq" }, { "goods_id", "goods_id", "eq" }, { "spec_id", "spec_id", "eq" } },
    template = function(t, id, _, m, f)
      return rows.good(t, { rec_id = id, shop_no = f.shop_no or "s1", goods_id = "g" .. id,
                            spec_id = "s" .. id, status = 1, created = m }, m)
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
    for _, group in ipairs(spec.untimed) do
      local all = true
      for _, k in ipairs(group) do all = all and given(f[k]) end
      if all then return nil, nil end
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

-- a row's time field (a Beijing-time string or milliseconds) -> Unix seconds, or nil
local function time_of(v)
  if type(v) == "number" then return v > 0 and floor(v / 1000) or nil end
  return M.unix(v)
end

-- one value against a filter: `have` a value or a list of values (all that the row has)
local function one_matches(kind, want, have)
  if kind == "flag" then return (want == true or tonumber(want) == 1) == (have == true) end
  if kind == "from" or kind == "to" then
    local w, h = M.unix(want), time_of(have)
    if not w or not h then return false end
    return (kind == "from" and h >= w) or (kind == "to" and h <= w)
  end
  if type(have) == "table" then
    for _, h in ipairs(have) do if one_matches(kind, want, h) then return true end end
    return false
  end
  if kind == "num" then return tonumber(want) ~= nil and tonumber(want) == tonumber(have) end
  if kind == "list" then
    for w in tostring(want):gsub("，", ","):gmatch("[^,]+") do
      if w == tostring(have) then return true end
    end
    return false
  end
  return tostring(want) == tostring(have)
end

-- the stockout status_type (queryWithDetail's page): 0 延时发货&已完成 (the example sends
-- none: the default), 1 已取消, 2 待分配~延时发货, 3 the statuses in `status`
local function stockout_status_ok(f, status)
  local st = tonumber(f.status_type) or 0
  if st == 0 then return status == 90 or status == 110 end
  if st == 1 then return status <= 10 end
  if st == 2 then return status >= 55 and status <= 90 end
  if given(f.status) then return one_matches("list", f.status, status) end
  return true
end

local function matches(spec, f, e)
  local row
  for _, flt in ipairs(spec.filters) do
    local want = f[flt[1]]
    if given(want) then
      local have = flt[2] and e.keys and e.keys[flt[2]]
      if not flt[2] then have = flt[4] end       -- the same for every emulated row
      if have == nil then
        row = row or e.build(e.m)
        have = row[flt[2]]
      end
      if have == nil or not one_matches(flt[3], want, have) then return false end
    end
  end
  if spec.source == "stockout" then
    row = row or e.build(e.m)
    if not stockout_status_ok(f, row.status) then return false end
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

-- sorted by time; rows mostly come in that order already, which one pass tells
local function sort_by_time(list)
  for i = 2, #list do
    if by_time(list[i], list[i - 1]) then table.sort(list, by_time) return end
  end
end

-- the time fields the page's example answers in milliseconds (emulator/pages.lua `ms`):
-- a Beijing-time string becomes its milliseconds, a blank one 0
local function to_ms(obj, name)
  local v = obj[name]
  if type(v) == "string" then obj[name] = v == "" and 0 or (M.unix(v) or 0) * 1000 end
end

local function as_example(method, row)
  for _, f in ipairs(pages[method].ms or {}) do
    local list, name = f:match("^(.-)%.(.+)$")
    if list then
      for _, n in ipairs(row[list] or {}) do to_ms(n, name) end
    else
      to_ms(row, f)
    end
  end
  return row
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
  control_entries(t, q, method, all)
  SOURCES[spec.source](t, all, f)
  local list = {}
  -- time_type: the window applies to another time of the row (pay time, order time…)
  local field = ua and spec.time_types and spec.time_types[tonumber(f.time_type)]
  for _, e in ipairs(all) do
    e.m = q.moved[e.skey] or e.m
    local at = e.m
    if field then at = time_of(e.build(e.m)[field]) or -1 end
    if (not ua or (at >= ua and at <= ub)) and matches(spec, f, e) then list[#list + 1] = e end
  end
  sort_by_time(list)
  if spec.descending and spec.descending[tonumber(f.order_type)] then
    for i = 1, floor(#list / 2) do list[i], list[#list + 1 - i] = list[#list + 1 - i], list[i] end
  end
  if fault and fault.mode == "drift" and ua and #list > pager.page_size then
    drift(q, list, fault, ub)
    local kept = {}
    for _, e in ipairs(list) do
      if e.m <= ub then kept[#kept + 1] = e end
    end
    list = kept
    sort_by_time(list)
  end
  local page = json.array()
  local first = pager.page_no * pager.page_size
  for i = first + 1, math.min(first + pager.page_size, #list) do
    page[#page + 1] = as_example(method, list[i].build(list[i].m))
  end
  return { status = 0, data = { total_count = pager.calc_total and #list or 0, [spec.list] = page } }
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

local function add_row(t, q, method, spec, m, fields)
  q.seq = q.seq + 1
  local id = ID_BASE + q.seq
  local tid = fields.tid or ("CT" .. id)
  local r = { id = id, modified = m, fields = fields }
  r.fields.tid = tid
  r.build = function(tenant, mm)
    local row = spec.template(tenant, id, tid, mm, fields)
    for k, v in pairs(fields) do
      if k ~= "modified" and k ~= "orders" and row[k] ~= nil then row[k] = v end
    end
    return row
  end
  local list = q.rows[method]
  if not list then list = {}; q.rows[method] = list end
  list[#list + 1] = r
  return { key = r.build(t, m)[spec.key], modified = M.stamp(m), tid = tid }
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
      created[#created + 1] = add_row(t, q, v.method, spec, m, fields)
    end
  else
    local n, a, b = v.count, time_arg(v.from), time_arg(v.to)
    if type(n) ~= "number" or n ~= floor(n) or n < 0 or n > 100000 then
      return nil, "count must be a whole number from 0 to 100000"
    end
    if not a or not b or b <= a then return nil, "from < to needed (Unix seconds or \"YYYY-MM-DD HH:MM:SS\")" end
    for i = 0, n - 1 do
      local m = a + floor(i * (b - a) / n)
      created[#created + 1] = add_row(t, q, v.method, spec, m, { shop_no = v.shop_no })
    end
  end
  return { ok = true, method = v.method, created = created }
end

return M
