-- The preflight check of a shop: a run against a shop that does not exist, is disabled or
-- is not a self-owned platform's (自有平台) reads nothing or is refused item by item; asking
-- setting.Shop.queryShop once first turns that into one clear error.
--   shop.check(client, shop_no) -> the shop's row | nil, err
-- err.kind "shop" (err.shop_no, err.reason "missing" | "disabled" | "platform") when the
-- answer says the shop cannot serve, else the call's own error. An answer is kept on the
-- client (its base, shared by `with` views) per shop_no: once per run, whatever checks it.
local errors = require "wdt.errors"

local shop = {}

shop.SELF_OWNED_PLATFORM = 127   -- platform_id of 自有平台 (the vendor's platform codes)

local function shop_error(shop_no, reason, message)
  return errors.new { kind = "shop", shop_no = shop_no, reason = reason, method = "setting.Shop.queryShop",
                      message = message }
end

-- The row of `shop_no` in a queryShop answer's data, or nil.
local function find(data, shop_no)
  local rows = type(data) == "table" and (data.details or data) or {}
  for _, row in ipairs(rows) do
    if type(row) == "table" and row.shop_no == shop_no then return row end
  end
end

function shop.check(client, shop_no)
  local base = client._base or client
  base._shops = base._shops or {}
  local known = base._shops[shop_no]
  if known then return known[1], known[2] end
  local page, err = client:page_call("setting.Shop.queryShop", { page_size = 100 }, { shop_no = shop_no })
  if not page then return nil, err end     -- not kept: the next run asks again
  local row = find(page.response.data, shop_no)
  local result
  if not row then
    result = { nil, shop_error(shop_no, "missing", ("shop '%s' does not exist in this ERP "
      .. "(setting.Shop.queryShop knows no such shop_no)"):format(shop_no)) }
  elseif row.is_disabled == true or row.is_disabled == 1 then
    result = { nil, shop_error(shop_no, "disabled", ("shop '%s' is disabled in the ERP"):format(shop_no)) }
  elseif tonumber(row.platform_id) ~= shop.SELF_OWNED_PLATFORM then
    result = { nil, shop_error(shop_no, "platform", ("shop '%s' is not a self-owned platform's "
      .. "(自有平台, platform_id %d): its platform_id is %s"):format(shop_no, shop.SELF_OWNED_PLATFORM,
      tostring(row.platform_id))) }
  else
    result = { row }
  end
  base._shops[shop_no] = result
  return result[1], result[2]
end

return shop
