-- The fields of the three push methods, from the vendor's pages (Firecrawl/<method>.md in
-- cunsheng/wangdiantong-api-qjb): name, type, whether required, and the allowed values
-- where the page lists them. One table per list the method takes.
--
-- Types: "string" (max = the page's length, in characters), "int" (an integer, or a string
-- of digits as the vendor's examples send), "decimal" (a number, a numeric string, or ""
-- as the vendor's own examples send for cod_amount, received, refund_amount), "bool",
-- "time" (a "YYYY-MM-DD HH:MM:SS" string). Fields not listed pass through unchecked.
-- `req = true`: required; `null_ok`: the page says to send null when there is none.
local function set(...)
  local t = {}
  for _, v in ipairs({ ... }) do t[v] = true end
  return t
end

local fields = {}

-- sales.RawTrade.pushSelf2: rawTradeList (one per order)
fields.trade = {
  { "tid", "string", req = true, max = 40 },
  { "process_status", "int", req = true, values = set(10, 20, 30, 40, 60, 70) },
  { "trade_status", "int", req = true, values = set(10, 20, 30, 40, 50, 60, 70, 80, 90) },
  { "refund_status", "int", req = true, values = set(0, 1, 2, 3) },
  { "pay_status", "int", req = true, values = set(0, 1, 2) },
  { "order_count", "int", req = true },          -- derived from the lines when absent
  { "goods_count", "decimal", req = true },      -- derived from the lines when absent
  { "pay_method", "int", req = true, values = set(1, 2, 3, 4, 5, 6, 7, 8) },
  { "trade_time", "time", req = true },
  { "pay_time", "time" },
  { "end_time", "time", req = true, null_ok = true },   -- null when absent
  { "buyer_nick", "string", req = true, max = 100 },
  { "buyer_message", "string", max = 1024 },
  { "buyer_email", "string", max = 40 },
  { "buyer_area", "string", max = 255 },
  { "receiver_name", "string", req = true, max = 100 },
  { "receiver_area", "string", req = true, max = 40 },  -- or the three *_no ids
  { "receiver_address", "string", req = true, max = 256 },
  { "receiver_zip", "string", max = 20 },
  { "receiver_mobile", "string", req = true, max = 40 },
  { "receiver_telno", "string", max = 40 },
  { "post_amount", "decimal", req = true },
  { "other_amount", "decimal" },
  { "discount", "decimal", req = true },
  { "receivable", "decimal", req = true },
  { "platform_cost", "decimal" },
  { "invoice_type", "int", values = set(0, 1, 2, 3) },
  { "invoice_title", "string", max = 255 },
  { "invoice_content", "string", max = 255 },
  { "logistics_type", "int" },
  { "cust_data", "string" },
  { "delivery_term", "int", req = true, values = set(1, 2, 3) },
  { "pay_id", "string", max = 40 },
  { "remark", "string", max = 1024 },
  { "remark_flag", "int" },
  { "cod_amount", "decimal" },
  { "is_auto_wms", "bool", req = true },
  { "warehouse_no", "string", req = true, max = 40 },  -- "" unless is_auto_wms (default)
  { "pay_account", "string", max = 128 },
  { "to_deliver_time", "string", max = 20 },
  { "received", "decimal" },
  { "consign_interval", "int" },
  { "paid", "decimal" },
  { "is_sealed", "int", values = set(0, 3) },
  { "fenxiao_nick", "string", max = 40 },
  { "id_card_type", "int", values = set(0, 1, 2, 3) },
  { "id_card", "string" },
  { "receiver_province_no", "int" },
  { "receiver_city_no", "int" },
  { "receiver_district_no", "int" },
}

-- sales.RawTrade.pushSelf2: rawTradeOrderList (the order's lines, given under `orders`)
fields.line = {
  { "tid", "string", req = true, max = 40 },     -- the order's tid when absent
  { "oid", "string", req = true, max = 40 },
  { "status", "int", req = true, values = set(10, 20, 30, 40, 50, 60, 70, 80, 90) },
  { "refund_status", "int", req = true, values = set(0, 1, 2, 3, 4, 5, 6) },
  { "goods_id", "string", req = true, max = 40 },
  { "spec_id", "string", req = true, max = 40 },
  { "goods_no", "string", req = true, max = 40 },
  { "spec_no", "string", req = true, max = 40 },
  { "goods_name", "string", req = true, max = 255 },
  { "spec_name", "string", max = 100 },
  { "order_type", "int", values = set(0, 1, 2) },
  { "cid", "string", max = 40 },
  { "num", "decimal", req = true },
  { "price", "decimal", req = true },
  { "discount", "decimal", req = true },
  { "share_discount", "decimal", req = true },
  { "total_amount", "decimal", req = true },
  { "adjust_amount", "decimal", req = true },
  { "refund_amount", "decimal", req = true },
  { "remark", "string", req = true, max = 255 },
  { "json", "string", req = true, max = 255 },
  { "gift_type", "int" },
}

-- sales.RawTrade.pushSelf2: discountList (optional; an order's discounts, given under
-- `discounts`; the page: platform, tid, oid, sn and type make a discount unique)
fields.discount = {
  { "tid", "string", req = true, max = 40 },     -- the order's tid when absent
  { "oid", "string", req = true, max = 20 },     -- one of the order's lines (the page: 20)
  { "sn", "string", max = 40 },
  { "name", "string", max = 50 },
  { "detail", "string", max = 128 },
  { "amount", "decimal" },
}

-- aftersales.refund.RawRefund.upload2: order_list (one per refund line)
fields.refund = {
  { "refund_no", "string", req = true, max = 40 },
  { "num", "decimal", req = true },
  { "tid", "string", req = true, max = 40 },
  { "oid", "string", req = true, max = 40 },
  { "type", "int", req = true, values = set(0, 1, 2, 3, 4) },
  { "status", "int", req = true, values = set(1, 2, 3, 4, 5) },
  { "refund_version", "string", req = true, max = 40 },   -- "1" when absent (the page's default)
  { "refund_amount", "decimal", req = true },
  { "actual_refund_amount", "decimal", req = true },
  { "title", "string", req = true, max = 255 },
  { "logistics_name", "string", max = 40 },
  { "logistics_no", "string", max = 40 },
  { "buyer_nick", "string", req = true, max = 100 },
  { "refund_time", "time" },
  { "current_phase_timeout", "time" },
  { "is_aftersale", "int", req = true, values = set(0, 1) },
  { "reason", "string", req = true, max = 255 },
  { "price", "decimal" },
  { "pay_account", "string", max = 128 },
  { "pay_no", "string", max = 60 },
  { "remark", "string", max = 255 },
  { "total_amount", "decimal" },
  { "spec_no", "string", max = 40 },
  { "spec_id", "string", max = 40 },
  { "goods_no", "string", max = 40 },
  { "goods_id", "string", max = 40 },
  { "modify_flag", "int" },
}

-- goods.ApiGoods.upload: goods_list. The page makes every field optional; wdt requires
-- goods_id and spec_id, the key the ERP (and the stock sync) knows a good by.
fields.goods = {
  { "goods_id", "string", req = true, max = 40 },
  { "spec_id", "string", req = true, max = 40 },
  { "goods_no", "string", max = 40 },
  { "spec_no", "string", max = 40 },
  { "status", "int", values = set(0, 1, 2) },
  { "goods_name", "string", max = 255 },
  { "spec_name", "string", max = 100 },
  { "pic_url", "string", max = 255 },
  { "price", "decimal" },
  { "stock_num", "decimal" },
}

-- The three flows: method, the item's key field(s), the vendor's batch advice.
fields.flows = {
  orders  = { method = "sales.RawTrade.pushSelf2", key = "tid", max_batch = 100 },
  refunds = { method = "aftersales.refund.RawRefund.upload2", key = "refund_no", max_batch = 100 },
  goods   = { method = "goods.ApiGoods.upload", key = "goods_id", key2 = "spec_id", max_batch = 100 },
}

return fields
