-- The fields of the three push methods: a view of wdt's catalogue (wdt.api, read off the
-- vendor's pages), one table per list the method takes: { name, type, req =, max =,
-- values = set, null_ok = }, in the page's order, with what the push adds (OVERLAY).
--
-- Types: "string" (max = the page's length, in characters), "int" (an integer, or a string
-- of digits as the vendor's examples send), "decimal" (a number, a numeric string, or ""
-- as the vendor's own examples send for cod_amount, received, refund_amount), "bool",
-- "time" (a "YYYY-MM-DD HH:MM:SS" string). Fields not listed pass through unchecked.
-- `req = true`: required (the page's table says so, even where its example leaves the field
-- out); `null_ok`: the page says to send null when there is none.
local api = require "wdt.api"

local fields = {}

-- What the push checks beyond or instead of the page, per list and field.
local OVERLAY = {
  trade = {
    trade_time = { type = "time" }, pay_time = { type = "time" },
    end_time = { type = "time", null_ok = true },        -- the page: "若无则传null"
    remark_flag = { values = false },                    -- not checked by the push
  },
  refund = { refund_time = { type = "time" }, current_phase_timeout = { type = "time" } },
  -- the page makes every field optional; wdt requires goods_id and spec_id, the key the
  -- ERP (and the stock sync) knows a good by
  goods = { goods_id = { req = true }, spec_id = { req = true } },
}

-- The fields of the list at `path` among `method`'s arguments, as the push checks them.
local function view(list, method, path)
  local list_node
  api.walk(api.get(method).args, function(n, p)
    if p == path then list_node = n return true end
  end)
  local overlay = OVERLAY[list] or {}
  local out = {}
  for _, n in ipairs(list_node.children) do
    local o = overlay[n.name] or {}
    local f = { n.name, o.type or n.type }
    if o.req or (o.req == nil and (n.required or n.required_on_page)) then f.req = true end
    local max = n.length or n.length_on_page
    if max and f[2] == "string" then f.max = max end
    if n.values and not n.values_open and o.values ~= false then
      f.values = {}
      for _, v in ipairs(n.values) do f.values[v.value] = true end
    end
    if o.null_ok then f.null_ok = true end
    out[#out + 1] = f
  end
  return out
end

-- sales.RawTrade.pushSelf2: rawTradeList (one per order), rawTradeOrderList (the order's
-- lines, given under `orders`; a line's tid is the order's when absent), discountList
-- (optional; an order's discounts, given under `discounts`)
fields.trade = view("trade", "sales.RawTrade.pushSelf2", "rawTradeList")
fields.line = view("line", "sales.RawTrade.pushSelf2", "rawTradeOrderList")
fields.discount = view("discount", "sales.RawTrade.pushSelf2", "discountList")
-- aftersales.refund.RawRefund.upload2: order_list (one per refund line; refund_version is
-- "1" when absent, the page's default)
fields.refund = view("refund", "aftersales.refund.RawRefund.upload2", "order_list")
-- goods.ApiGoods.upload: goods_list
fields.goods = view("goods", "goods.ApiGoods.upload", "param.goods_list")

-- The three flows: method, the item's key field(s), the vendor's batch advice.
fields.flows = {
  orders  = { method = "sales.RawTrade.pushSelf2", key = "tid", max_batch = 100 },
  refunds = { method = "aftersales.refund.RawRefund.upload2", key = "refund_no", max_batch = 100 },
  goods   = { method = "goods.ApiGoods.upload", key = "goods_id", key2 = "spec_id", max_batch = 100 },
}

return fields
