-- examples/stock_sync.lua: the stock sync as a glue script with the library API.
--
-- Reads the goods whose stock the ERP wants published on your own platform
-- (sales.StockSync.getSelfWaitSyncIdListOpen), has the ERP compute each one's stock
-- (sales.StockSync.calcStock), sets it on your platform and reports the outcome:
-- syncSuccess, syncFail, or nothing for "try later" (the good stays waiting in the ERP).
--
--   WDT_URL=http://127.0.0.1:8080/openapi WDT_SID=apidevnew2 WDT_KEY=test2-xx \
--   WDT_SECRET=12345:abcde lua5.4 examples/stock_sync.lua
--
-- Your platform is simulated here by an in-memory table: set_stock() takes every quantity
-- except negative ones and those of goods it does not list (goods_id ending in "7"). Put
-- your platform's API call there.

-- From a checkout, use its src/ and build/ (an installed wdt needs none of this).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../src/?.lua;" .. here .. "/../src/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local wdt = require "wdt"

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    io.stderr:write("stock_sync: set ", name, "\n")
    os.exit(2)
  end
  return v
end

-- The stand-in for your platform's "set the stock of this SKU" call.
local shelf = {}
local function set_stock(spec_id, quantity)
  if quantity < 0 then return false, "negative stock" end
  if spec_id:match("7%-%d+$") then return false, spec_id .. " is not listed on the platform" end
  shelf[spec_id] = quantity
  return true
end

local client = wdt.client {
  url = env("WDT_URL"), sid = env("WDT_SID"), key = env("WDT_KEY"), secret = env("WDT_SECRET"),
}

local summary, err = client:sync_stock {
  count = 100,            -- ids per getSelfWaitSyncIdListOpen call (10..5000)
  force_sync = false,     -- calcStock's force_sync
  -- item: calcStock's answer (syn_stock, stock_change_count, spec_id, goods_id, …) plus
  -- api_goods_id, the platform goods' rec_id in the ERP.
  handler = function(item)
    return set_stock(item.spec_id, item.syn_stock)
  end,
}
client:close()
local listed = 0
for _ in pairs(shelf) do listed = listed + 1 end
print(("the platform now shows stock for %d SKUs"):format(listed))

local s = summary or err.summary
print(("goods read %d: synced %d, failed %d, deferred %d, refused by the ERP %d")
  :format(s.read, s.synced, s.failed, s.deferred, s.refused))
for _, r in ipairs(s.refused_items) do
  print(("  refused api_goods_id %s: %s"):format(tostring(r.api_goods_id), r.message))
end
if not summary then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
os.exit(s.refused == 0 and 0 or 1)
