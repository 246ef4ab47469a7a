-- POST /callbacks/order  {<one order: the trade's fields, its lines under "orders">}
-- Your platform calls this at checkout; the handler pushes the order to the ERP inline with
-- client:push_orders (sales.RawTrade.pushSelf2) and answers with its bucket:
--
--   200 {"pushed":true,"outcome":"new","transport":"ngx"}            (or "changed": same tid again)
--   422 {"pushed":false,"outcome":"invalid","field":"receiver_mobile","reason":"required"}
--   409 {"pushed":false,"outcome":"failed","error":"<the ERP's message>"}
--   502 {"pushed":false,"outcome":"unreported","error":{"kind":"network",…}}   (504 on timeouts)
--
-- "unreported" means the ERP's answer never came: push the order again later (pushSelf2
-- creates or updates by tid, so a second push never creates a second order). Inside this
-- content handler the call goes through nginx cosockets.
local wdt = require "wdt"
local config = require "openresty.config"

local checkout = {}

local function answer(status, t)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.print(wdt.json.encode(t))
  return ngx.exit(status)
end

function checkout.order()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return answer(405, { pushed = false, error = { kind = "request", message = "POST expected" } })
  end
  ngx.req.read_body()
  local order, derr = wdt.json.safe.decode(ngx.req.get_body_data() or "")
  if type(order) ~= "table" then
    return answer(400, { pushed = false, error = { kind = "request",
                         message = "a JSON object expected" .. (derr and (": " .. derr) or "") } })
  end
  local s = config.settings()
  local okc, client = pcall(config.client)
  if not okc or not s.shop_no then
    ngx.log(ngx.ERR, "wdt client: ", okc and "WDT_SHOP_NO is not set" or client)
    return answer(500, { pushed = false, error = { kind = "config",
                         message = "wdt is not configured on this server (see the error log)" } })
  end
  local transport = config.transport_of(client)
  local summary, err = client:push_orders { shop_no = s.shop_no, orders = { order } }
  local sum = summary or err.summary
  if sum.new + sum.changed == 1 then
    return answer(200, { pushed = true, outcome = sum.new == 1 and "new" or "changed", transport = transport })
  elseif sum.invalid == 1 then
    local x = sum.invalids[1]
    return answer(422, { pushed = false, outcome = "invalid", field = x.field, reason = x.reason })
  elseif sum.failed == 1 then
    return answer(409, { pushed = false, outcome = "failed", error = sum.failures[1].error, transport = transport })
  end
  ngx.log(ngx.WARN, "pushing order ", tostring(order.tid), ": ", tostring(err or sum.unreported_items[1].error))
  return answer(err and err.kind == "timeout" and 504 or 502, { pushed = false, outcome = "unreported",
    error = err and config.error_table(err) or { kind = "unconfirmed", message = sum.unreported_items[1].error },
    transport = transport })
end

return checkout
