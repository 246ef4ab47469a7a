-- A background sync inside nginx: every WDT_SYNC_INTERVAL seconds (the first time one interval
-- after start) a timer drains the ERP's
-- logistics queue for WDT_SHOP_NO with client:sync_logistics, pushing each shipment to your
-- platform (push_to_platform below) and reporting every outcome back to the ERP.
--
-- Started from init_worker_by_lua (see nginx.conf). Only worker 0 runs it, and a run never
-- overlaps the previous one; when nginx stops or reloads, a run in progress stops after the
-- page it is on (what it handled is reported) instead of syncing on in the old worker.
-- Timers have cosockets, so the sync goes through the ngx transport and does not hold up
-- the worker. The last summary is kept in the shared dict `wdt_sync` and served as JSON by
-- GET /sync/status (background.status).
local wdt = require "wdt"
local config = require "openresty.config"

local background = {}

local running = false

-- Your code: tell your own platform about the shipment (row.tid, row.logistics_no,
-- row.logistics_code, row.oids, …), e.g. with lua-resty-http. Return true when it took it,
-- false, "why" when it refused, nil, "why" to try again on a later run.
local function push_to_platform(row)
  ngx.log(ngx.INFO, "shipped: sync_id=", row.sync_id, " tid=", tostring(row.tid),
          " logistics_no=", tostring(row.logistics_no))
  return true
end

local function record(fields)
  local dict = ngx.shared.wdt_sync
  if not dict then return end
  local old = dict:get("status")
  local status = old and wdt.json.decode(old) or { runs = 0 }
  for k, v in pairs(fields) do status[k] = v end
  dict:set("status", wdt.json.encode(status))
end

local function sync_once()
  local s = config.settings()
  local client = config.client(nil, "background")
  local transport = config.transport_of(client)
  local summary, err = client:sync_logistics { shop_no = s.shop_no, handler = push_to_platform,
    on_progress = function()
      -- raising here stops the run cleanly (kind "callback"), after reporting what it handled
      if ngx.worker.exiting() then error("nginx is stopping this worker", 0) end
    end }
  local dict = ngx.shared.wdt_sync
  local runs = 1
  if dict then
    local old = dict:get("status")
    runs = (old and wdt.json.decode(old).runs or 0) + 1
  end
  if summary then
    ngx.log(ngx.INFO, "wdt sync: read ", summary.read, ", reported ", summary.reported,
            ", refused ", summary.refused, " in ", ("%.3f"):format(summary.elapsed), " s")
    record { runs = runs, ok = true, transport = transport, at = ngx.now(),
             read = summary.read, reported = summary.reported, synced = summary.synced,
             failed = summary.failed, deferred = summary.deferred, refused = summary.refused,
             unreported = #summary.unreported, last_error = wdt.null }
  else
    -- another run holds the shop's lock (a callback's sync, another nginx), or this worker
    -- is stopping: normal outcomes, not errors
    local normal = err.kind == "locked" or (err.kind == "callback" and ngx.worker.exiting())
    ngx.log(normal and ngx.NOTICE or ngx.ERR, "wdt sync: ", tostring(err))
    record { runs = runs, ok = false, transport = transport, at = ngx.now(),
             last_error = config.error_table(err),
             unreported = err.summary and #err.summary.unreported or 0 }
  end
end

local function run(premature)
  if premature or running then return end      -- nginx is stopping / the last run goes on
  running = true
  local ok, perr = pcall(sync_once)
  running = false
  if not ok then
    ngx.log(ngx.ERR, "wdt sync: ", tostring(perr))
    record { ok = false, last_error = { kind = "lua", message = tostring(perr) } }
  end
end

-- init_worker_by_lua_block { require("openresty.background").start() }
function background.start()
  local s = config.settings()
  if not s.sync_interval or s.sync_interval <= 0 then return end
  if ngx.worker.id() ~= 0 then return end
  if not s.shop_no then
    ngx.log(ngx.ERR, "wdt sync: WDT_SHOP_NO is not set, no background sync")
    return
  end
  -- The first run comes one interval after start, not at once: a callback sent right after
  -- start reports a shipment that is still in the ERP's queue (doc/openresty.md's curl).
  local ok, err = ngx.timer.every(s.sync_interval, run)
  if not ok then ngx.log(ngx.ERR, "wdt sync: cannot start the timer: ", err) end
end

-- GET /sync/status
function background.status()
  local dict = ngx.shared.wdt_sync
  ngx.header["Content-Type"] = "application/json"
  ngx.print(dict and dict:get("status") or '{"runs":0}')
end

return background
