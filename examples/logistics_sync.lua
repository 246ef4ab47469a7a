-- examples/logistics_sync.lua: the logistics sync as a glue script with the library API.
--
-- Reads every shipment the ERP wants reported for one shop, tells your own platform about
-- it, and reports each outcome back to the ERP; prints a summary. Run it from cron or a
-- systemd timer: a run that is killed midway loses nothing, the rest stays in the ERP's
-- queue for the next run (so make your platform's side idempotent: a shipment pushed just
-- before the kill is offered again).
--
--   WDT_URL=http://127.0.0.1:8080/openapi WDT_SID=apidevnew2 WDT_KEY=test2-xx \
--   WDT_SECRET=12345:abcde WDT_SHOP=s1 lua5.4 examples/logistics_sync.lua
--
-- Your own platform: with OWN_PLATFORM_URL set, each shipment is POSTed there as JSON
-- (luasocket); 2xx means taken, 4xx refused (the answer's body is the reason), anything
-- else (5xx, timeout, no connection) means try later. Without it, the push is simulated
-- in-process: every shipment is taken, except those of partial shipments (is_part_sync = 1)
-- whose tid ends in "0", which are refused, so that the summary shows both outcomes.
-- Exit status: 0 all reported, 1 the ERP refused some items, left some outcomes unclear,
-- sent rows that cannot be handled, or the run failed.

-- From a checkout, use its src/ and build/ (an installed wdt needs none of this).
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../src/?.lua;" .. here .. "/../src/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local wdt = require "wdt"

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default then return default end
    io.stderr:write("logistics_sync: set ", name, "\n")
    os.exit(2)
  end
  return v
end

------------------------------------------------------------------------ your platform

local platform = {}

-- The stand-in: decides in-process, as described at the top.
function platform.simulated(shipment)
  if shipment.is_part_sync == 1 and shipment.tid:sub(-1) == "0" then
    return false, "partial shipments of " .. shipment.tid .. " are not accepted"
  end
  return true
end

-- The real thing: POST the shipment to OWN_PLATFORM_URL.
function platform.http(url)
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  http.TIMEOUT = 10
  return function(shipment)
    local body = wdt.json.encode(shipment)
    local answer = {}
    local ok, code = http.request {
      url = url, method = "POST",
      headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#body) },
      source = ltn12.source.string(body), sink = ltn12.sink.table(answer),
    }
    if not ok then return nil, "platform unreachable: " .. tostring(code) end
    if code >= 200 and code < 300 then return true end
    local text = table.concat(answer):sub(1, 200)
    if code >= 400 and code < 500 then return false, ("platform refused (%d): %s"):format(code, text) end
    return nil, ("platform answered %d"):format(code)
  end
end

------------------------------------------------------------------------ the sync

local client = wdt.client {
  url = env("WDT_URL"), sid = env("WDT_SID"), key = env("WDT_KEY"), secret = env("WDT_SECRET"),
}
local push = os.getenv("OWN_PLATFORM_URL") and platform.http(os.getenv("OWN_PLATFORM_URL"))
             or platform.simulated

-- A progress line redrawn with \r only on a terminal: in a cron mail or a log file it would
-- be one long line of overwritten counts.
local function stderr_is_tty()
  local r = os.execute("test -t 2")
  return r == true or r == 0
end
local on_progress
if stderr_is_tty() then
  on_progress = function(p)
    io.stderr:write(("\r%d/%s read, %d failed, %d deferred"):format(
      p.read, p.total and tostring(p.total) or "?", p.failed, p.deferred))
  end
end

local summary, err = client:sync_logistics {
  shop_no = env("WDT_SHOP", "s1"),
  batch = 100,            -- outcomes per sales.LogisticsSync.update call
  page_size = 100,        -- rows per sales.LogisticsSync.getSyncListExt call
  handler = function(row)
    -- What your platform needs to know about the shipment.
    return push {
      tid = row.tid, oids = row.oids, is_part_sync = row.is_part_sync,
      logistics_no = row.logistics_no, logistics_code = row.logistics_code,
      logistics_name = row.logistics_name,
    }
  end,
  on_progress = on_progress,
}
if on_progress then io.stderr:write("\n") end
client:close()

local s = summary or err.summary
print(("read %d, reported %d: synced %d, failed %d, deferred %d, refused by the ERP %d")
  :format(s.read, s.reported, s.synced, s.failed, s.deferred, s.refused))
for _, r in ipairs(s.refused_items) do
  print(("  refused sync_id %s: %s"):format(tostring(r.sync_id), r.message))
end
for _, item in ipairs(s.unconfirmed) do    -- the ERP's answer did not say whether it took them
  print(("  unconfirmed sync_id %s"):format(tostring(item.sync_id)))
end
if not summary then
  -- Reporting failed even after retries: these shipments were pushed but the ERP does not
  -- know yet; they stay in its queue and come again on the next run.
  for _, item in ipairs(err.summary.unreported) do
    print(("  unreported sync_id %s"):format(tostring(item.sync_id)))
  end
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
os.exit((s.refused == 0 and #s.unconfirmed == 0 and #s.invalid == 0) and 0 or 1)
