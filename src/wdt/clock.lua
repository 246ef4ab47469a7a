-- Time and place: the API timestamp, the offset to the server's clock learned from a `Date`
-- header, civil-date arithmetic, sleeping, this process's id, and whether this code runs
-- inside nginx (the one place that asks: every other module goes through clock.ngx /
-- clock.in_cosocket_context).
local core = require "wdt.core"

local clock = {}

local EPOCH_2012 = 1325347200   -- 2012-01-01 00:00:00 UTC, the API's timestamp origin

-- Seconds on a clock that never steps (CLOCK_MONOTONIC): for intervals, never for dates.
clock.monotonic = core.monotonic

function clock.timestamp(offset)
  return math.floor(core.unix_time() + offset) - EPOCH_2012
end

local floor = math.floor

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), without
-- os.time's time zone; clock.civil_from_days is its inverse.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Unix seconds of a civil date and time in UTC.
function clock.civil_time(y, m, d, hh, mm, ss)
  return days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
end

function clock.civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- "Sat, 28 Nov 2026 10:05:58 GMT" -> unix seconds, or nil
function clock.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, hh, mm, ss = s:match("(%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT")
  if not d or not months[mon] then return nil end
  return clock.civil_time(tonumber(y), months[mon], tonumber(d), tonumber(hh), tonumber(mm), tonumber(ss))
end

-- Keep the server's clock offset from its `Date` header; true when one was learned.
function clock.learn(client, date_header)
  local server = clock.parse_http_date(date_header)
  if not server then return false end
  client._clock_offset = server - core.unix_time()
  return true
end

-- The nginx API table when this Lua runs inside nginx (lua-nginx-module), else nil.
function clock.ngx()
  if type(ngx) == "table" and type(ngx.get_phase) == "function" then return ngx end
  return nil
end

-- This process's id: the nginx worker's inside nginx, else /proc/self/stat's (Linux); nil
-- when neither says.
function clock.pid()
  local n = clock.ngx()
  if n and n.worker and n.worker.pid then return n.worker.pid() end
  local f = io.open("/proc/self/stat", "r")
  local pid = f and (f:read("*l") or ""):match("^(%d+)")
  if f then f:close() end
  return pid
end

-- The nginx phase, or nil outside nginx.
function clock.phase()
  local n = clock.ngx()
  if not n then return nil end
  local ok, phase = pcall(n.get_phase)
  return ok and phase or nil
end

-- The nginx phases where ngx.socket.tcp may be used and a wait may yield
-- (lua-nginx-module's documentation, "Context:" of tcpsock:connect); init, init_worker,
-- set, header_filter, body_filter, log, balancer, exit_worker and ssl_session_store have
-- none, and plain Lua has no ngx.
local cosocket_phases = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

function clock.in_cosocket_context()
  local n = clock.ngx()
  return n ~= nil and type(n.socket) == "table" and n.socket.tcp ~= nil
    and cosocket_phases[clock.phase()] == true
end

function clock.sleep(seconds)
  if seconds <= 0 then return end
  if clock.in_cosocket_context() then
    ngx.sleep(seconds)
  else
    core.sleep(seconds)
  end
end

return clock
