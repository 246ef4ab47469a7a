-- examples/reconcile.lua: after pushing orders, check that the ERP has every one of them.
--
-- Reads the orders you pushed (a JSON-lines file, one object with a "tid" a line, as
-- `wdt push` or your own log writes them), scans the ERP's orders modified in the run's
-- window (client:scan over sales.TradeQuery.querySelfOrderWithDetail, whose rows name
-- their platform orders in `src_tids`) and prints one check line. Exit status: 0 every
-- pushed tid is in the ERP, 1 some are missing (listed) or a line has no tid, 2 usage,
-- 3 the scan failed.
--
--   WDT_URL=http://127.0.0.1:8080/openapi WDT_SID=apidevnew2 WDT_KEY=test2-xx \
--   WDT_SECRET=12345:abcde lua5.4 examples/reconcile.lua pushed.jsonl FROM TO [SHOP]
--
-- FROM and TO bound the run (Unix seconds or "YYYY-MM-DD HH:MM:SS" in UTC+8): FROM before
-- the first push, TO after the last one.

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../src/?.lua;" .. here .. "/../src/?/init.lua;" .. package.path
package.cpath = here .. "/../build/?.so;" .. package.cpath

local wdt = require "wdt"

local METHOD = "sales.TradeQuery.querySelfOrderWithDetail"

local function usage(msg)
  io.stderr:write("reconcile: ", msg, "\nusage: reconcile.lua PUSHED.jsonl FROM TO [SHOP]\n")
  os.exit(2)
end

local path, from, to, shop = arg[1], arg[2], arg[3], arg[4]
if not (path and from and to) then usage("PUSHED.jsonl, FROM and TO are needed") end
local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then usage("set " .. name) end
  return v
end

-- the pushed tids, in file order; a line without one fails the check (never skipped)
local f = io.open(path, "rb") or usage("cannot read " .. path)
local pushed, order, bad = {}, {}, {}
local n = 0
for line in f:lines() do
  n = n + 1
  if line:match("%S") then
    local v = wdt.json.safe.decode(line)
    local tid = type(v) == "table" and v.tid
    if type(tid) ~= "string" or tid == "" then
      bad[#bad + 1] = n
    elseif not pushed[tid] then
      pushed[tid] = true
      order[#order + 1] = tid
    end
  end
end
f:close()

local client = wdt.client { url = env("WDT_URL"), sid = env("WDT_SID"), key = env("WDT_KEY"),
                            secret = env("WDT_SECRET") }
local numeric = function(v) return v:match("^%d+$") and tonumber(v) or v end
local found, rows = {}, 0
local it, scan = client:scan { method = METHOD, filter = { shop_no = shop }, from = numeric(from),
                               to = numeric(to), lag = 0 }
for row, err in it do
  if not row then
    io.stderr:write("reconcile: the scan failed: ", tostring(err), "\n")
    os.exit(3)
  end
  rows = rows + 1
  for tid in tostring(row.src_tids or ""):gmatch("[^,]+") do found[tid] = true end
end
client:close()

local missing = {}
for _, tid in ipairs(order) do
  if not found[tid] then missing[#missing + 1] = tid end
end
local fmt = require("wdt.scan.time").format
local range = ("%s, %s to %s, %d orders read in %d windows"):format(METHOD, fmt(scan.from),
  fmt(scan.to), rows, scan.stats.windows)
if #missing == 0 and #bad == 0 then
  print(("reconcile: ok: all %d pushed tids are in the ERP's orders (%s)"):format(#order, range))
  os.exit(0)
end
local listed = #missing > 0 and (": " .. table.concat(missing, " ", 1, math.min(#missing, 50))) or ""
print(("reconcile: FAILED: %d of %d pushed tids missing from the ERP's orders (%s)%s%s"):format(
  #missing, #order, range, listed, #bad > 0 and ("; lines without a tid: " .. table.concat(bad, " ")) or ""))
os.exit(1)
