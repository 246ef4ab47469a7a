-- Time: the API timestamp, the offset to the server's clock learned from a `Date`
-- header, sleeping, and whether nginx cosockets can be used right now.
local core = require "wdt.core"

local clock = {}

local EPOCH_2012 = 1325347200   -- 2012-01-01 00:00:00 UTC, the API's timestamp origin

function clock.timestamp(offset)
  return math.floor(core.unix_time() + offset) - EPOCH_2012
end

local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a civil date (proleptic Gregorian), without os.time's time zone.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- "Sat, 28 Nov 2026 10:05:58 GMT" -> unix seconds, or nil
function clock.parse_http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, hh, mm, ss = s:match("(%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT")
  if not d or not months[mon] then return nil end
  return days_from_civil(tonumber(y), months[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
end

-- Keep the server's clock offset from its `Date` header; true when one was learned.
function clock.learn(client, date_header)
  local server = clock.parse_http_date(date_header)
  if not server then return false end
  client._clock_offset = server - core.unix_time()
  return true
end

-- The nginx phases where ngx.socket.tcp may be used (lua-nginx-module's documentation,
-- "Context:" of tcpsock:connect); init, init_worker, set, header_filter, body_filter,
-- log, balancer, exit_worker and ssl_session_store have none, and plain Lua has no ngx.
local cosocket_phases = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

function clock.in_cosocket_context()
  if type(ngx) ~= "table" or type(ngx.get_phase) ~= "function"
      or type(ngx.socket) ~= "table" or not ngx.socket.tcp then
    return false
  end
  local ok, phase = pcall(ngx.get_phase)
  return ok and cosocket_phases[phase] == true
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
