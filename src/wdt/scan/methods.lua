-- What wdt knows about each query method it can scan, from the vendor's pages
-- (repository cunsheng/wangdiantong-api-qjb, Firecrawl/<method>.md):
--   from, to     the names of the window's two time parameters in the filter object
--   limit        the widest window the server accepts, in seconds (wider: status 100,
--                "您的查询时间过宽,查询时间不能大于…")
--   list         the key of the row list in `data` (beside total_count)
--   key          the row's unique key (a field, or a list of fields that together are)
--   modified     the row's last-modified field (a UTC+8 string, or milliseconds)
--   page_size    the largest page wdt asks for
--   required     filter fields the server insists on (wdt asks for them up front)
-- Any other query method of the catalogue (wdt.api) with a time window is scanned with
-- facts read off its page (from_catalogue below); a fact the page does not give (a row
-- without an id or a modified time) is passed to client:scan as `facts`.
local HOUR, DAY = 3600, 86400

local known = {
  ["sales.TradeQuery.querySelfOrderWithDetail"] = {
    from = "start_time", to = "end_time", limit = HOUR, list = "order",
    key = "trade_id", modified = "modified", page_size = 1000,
  },
  ["sales.RawTrade.searchSelfOrder"] = {
    from = "start_time", to = "end_time", limit = 30 * DAY, list = "order",
    key = "rec_id", modified = "modified", page_size = 1000,
  },
  ["aftersales.refund.Refund.search"] = {
    from = "modified_from", to = "modified_to", limit = 30 * DAY, list = "order",
    key = "refund_id", modified = "modified", page_size = 1000,
  },
  ["aftersales.refund.RawRefund.search"] = {
    from = "start_time", to = "end_time", limit = 30 * DAY, list = "order",
    key = "refund_id", modified = "modified", page_size = 1000,
  },
  ["wms.stockout.Sales.queryWithDetail"] = {
    from = "start_time", to = "end_time", limit = HOUR, list = "order",
    key = "stockout_id", modified = "modified", page_size = 1000,
    required = { "status_type" },
  },
  ["wms.stockout.Sales.searchLogistics"] = {
    from = "start_time", to = "end_time", limit = DAY, list = "order_list",
    key = "rec_id", modified = "modified", page_size = 1000,
    required = { "status" },
  },
  ["goods.ApiGoods.search"] = {
    from = "start_time", to = "end_time", limit = 30 * DAY, list = "goods_list",
    key = "rec_id", modified = "modified", page_size = 1000,
  },
}

-- The row node of a query's answer: data's first list of objects.
local function rows_node(e)
  for _, n in ipairs(e.response) do
    if n.name == "data" and n.type == "object" then
      for _, c in ipairs(n.children or {}) do
        if c.type == "list" and c.of == "object" and c.children then return c end
      end
    end
  end
end

-- A row without an id is told apart by all its scalar fields (a composite key): right for
-- rows that never change, such as a log's; a row that changes comes again as a new row.
local function scalars(nodes)
  local names = {}
  for _, n in ipairs(nodes) do
    if n.type ~= "object" and n.type ~= "list" then names[#names + 1] = n.name end
  end
  return #names > 0 and names or nil
end

-- Facts a page gives in words only. queryChangeHistory: a row of the stock's change log is
-- written once, so its `created` is its last change (start_date/end_date are
-- "最后更新时间"); its window is 30 days with a spec_no but 60 min without one (注意事项).
-- The others: the window is on the time the page names ("sn创建开始时间", "默认创建时间",
-- "按照发货时间返回"), a field of the row.
local PAGE_GAPS = {
  ["wms.StockSpec.queryChangeHistory"] = { modified = "created", limit = HOUR },
  ["wms.GoodsSN.queryWithDetail"] = { modified = "created" },
  ["finance.settle.Transfer.search"] = { modified = "created" },
  ["wms.stockout.Transfer.queryWithDetail"] = { modified = "consign_time" },
}

local function field(nodes, test)
  for _, n in ipairs(nodes) do if test(n) then return n.name end end
end

-- The facts of a catalogue method, or nil when it is no query with a window over a filter
-- object. Facts the page does not give are left out (client:scan asks for them).
local function from_catalogue(method)
  local api = require "wdt.api"
  local e = api.summary(method) and api.get(method)
  if not e or e.kind ~= "query" or not e.window or not e.paging then return nil end
  local w = e.window
  local holder = e.args[w.arg]
  if w.arg ~= 1 or not holder or holder.type ~= "object" then return nil end
  local f = { from = w.from, to = w.to, limit = w.max_seconds,
              page_size = math.min(1000, e.paging.max_page_size) }
  local rows = rows_node(e)
  if rows then
    local cols = rows.children
    f.list = rows.name
    f.key = field(cols, function(n) return n.name == "rec_id" end)
      or field(cols, function(n) return n.type == "int" and n.name:find("_id$") end)
      or scalars(cols)
    f.modified = field(cols, function(n) return n.name == "modified" end)
      or field(cols, function(n) return n.type == "string" and n.name:find("modified") end)
  end
  for k, v in pairs(PAGE_GAPS[method] or {}) do f[k] = v end
  local required = {}
  for _, c in ipairs(holder.children or {}) do
    if c.required and c.name ~= w.from and c.name ~= w.to then required[#required + 1] = c.name end
  end
  if #required > 0 then f.required = required end
  return f
end

-- the seven above by pairs(); any other method of the catalogue by name
return setmetatable(known, { __index = function(t, method)
  if type(method) ~= "string" then return nil end
  -- not kept in the table: pairs() lists the seven alone
  local _ = t
  return from_catalogue(method)
end })
