-- POST /callbacks/order  {<one order: the trade's fields, its lines under "orders">}
-- Your platform calls this at checkout; the handler pushes the order to the ERP inline with
-- client:push_orders (sales.RawTrade.pushSelf2) and answers with its bucket:
--
--   200 {"pushed":true,"outcome":"new","transport":"ngx"}            (or "changed": same tid again)
--   422 {"pushed":false,"outcome":"invalid","field":"receiver_mobile","reason":"required"}
--   409 {"pushed":false,"outcome":"failed","error":"<the ERP's message>"}
--   422 {"pushed":false,"outcome":"invalid","reason":"not a JSON object"}   (a JSON array)
--   502 {"pushed":false,"outcome":"unreported","error":{"kind":"network",…}}   (504 on timeouts)
--   429 {"pushed":false,"outcome":"unreported","error":{"kind":"rate_limited",…}} with
--         Retry-After: the seller's rate budget is spent, nothing was sent (503: kind shm_full)
--   400 {"pushed":false,"error":{"kind":"request",…}}: not JSON; 405: not POST; 413: too large
--
-- "unreported" means the ERP's answer never came (or the call was not made): push the
-- order again later (pushSelf2 creates or updates by tid, so a second push never creates a
-- second order). Inside this content handler the call goes through nginx cosockets, with
-- the inline time budget of config.lua (about 12 s at most).
local wdt = require "wdt"
local config = require "openresty.config"

local checkout = {}

local function answer(status, t, retry_after)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  if retry_after then ngx.header["Retry-After"] = tostring(retry_after) end
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
  if getmetatable(order) ~= nil or order[1] ~= nil then     -- a JSON array (empty or not)
    return answer(422, { pushed = false, outcome = "invalid", reason = "not a JSON object" })
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
  local status, retry_after = 502, nil
  if err then status, retry_after = config.status_of(err) end
  return answer(status, { pushed = false, outcome = "unreported",
    error = err and config.error_table(err) or { kind = "unconfirmed", message = sum.unreported_items[1].error },
    transport = transport }, retry_after)
end

return checkout
