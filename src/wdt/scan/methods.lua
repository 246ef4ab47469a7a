-- What wdt knows about each query method it can scan, from the vendor's pages
-- (repository cunsheng/wangdiantong-api-qjb, Firecrawl/<method>.md):
--   from, to     the names of the window's two time parameters in the filter object
--   limit        the widest window the server accepts, in seconds (wider: status 100,
--                "您的查询时间过宽,查询时间不能大于…")
--   list         the key of the row list in `data` (beside total_count)
--   key          the row's unique key
--   modified     the row's last-modified field (a UTC+8 string, or milliseconds)
--   page_size    the largest page wdt asks for
--   required     filter fields the server insists on (wdt asks for them up front)
-- A method not listed here can be scanned by passing these facts to client:scan.
local HOUR, DAY = 3600, 86400

return {
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
