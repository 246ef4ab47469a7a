-- examples/handler.lua: a handler for the `wdt sync logistics` command.
--
--   wdt sync logistics --shop s1 --handler examples/handler.lua
--
-- The file returns one function, called once for every shipment the ERP wants reported.
-- It returns
--   true              the shipment is on your platform      -> reported as synced (0)
--   false, "why"      your platform refused it             -> reported as failed (2)
--   nil, "why"        your platform could not take it now  -> reported as "try later" (-100);
--                                                             the ERP offers it again next run
-- Anything it raises (or another answer) is a bug here, not a refusal: that shipment is not
-- reported, stays in the ERP's queue, is listed with the error, and the run exits 1.
--
-- This one is the demo's stand-in for your platform: it takes every shipment except a few,
-- chosen by sync_id so that every run fails and defers some on purpose. Set
-- WDT_DEMO_LATENCY_MS to pretend each push takes that long (the demo uses 1 ms, so that the
-- progress line has something to show). Replace the body with a call to your platform,
-- e.g. an HTTP POST of row.tid, row.logistics_no and row.logistics_code (see
-- examples/logistics_sync.lua for one with luasocket).
local latency = (tonumber(os.getenv("WDT_DEMO_LATENCY_MS") or "") or 0) / 1000

local sleep = function() end
if latency > 0 then
  local ok, socket = pcall(require, "socket")
  if ok then sleep = socket.sleep end
end

return function(row)
  sleep(latency)
  if row.sync_id % 150 == 0 then
    return false, ("order %s is closed on the platform"):format(row.tid)
  end
  if row.sync_id % 401 == 0 then
    return nil, "platform busy, try again later"
  end
  return true
end
