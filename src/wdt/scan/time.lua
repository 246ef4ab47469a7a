-- The ERP's time: "YYYY-MM-DD HH:MM:SS" in UTC+8 (Beijing), whatever the machine's TZ.
-- Computed from Unix seconds with civil-date arithmetic: os.date/os.time are never used
-- for these strings, since they would read the local zone.
local clock = require "wdt.clock"
local is_integer = require("wdt.check").is_integer

local time = {}

local OFFSET = 8 * 3600          -- the ERP's zone, UTC+8, no daylight saving

local floor = math.floor
local civil_from_days = clock.civil_from_days

-- Unix seconds -> "YYYY-MM-DD HH:MM:SS" in UTC+8.
function time.format(unix)
  local t = floor(unix) + OFFSET
  local days = floor(t / 86400)
  local secs = t - days * 86400
  local y, m, d = civil_from_days(days)
  return ("%04d-%02d-%02d %02d:%02d:%02d"):format(y, m, d, floor(secs / 3600),
    floor(secs / 60) % 60, secs % 60)
end

-- "YYYY-MM-DD HH:MM:SS" (UTC+8) -> Unix seconds, or nil when it is not that form or not a
-- real date and time.
function time.parse(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)$")
  if not y then return nil end
  y, mo, d, h, mi, se = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se)
  if mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or se > 59 then return nil end
  local t = clock.civil_time(y, mo, d, h, mi, se)
  local ny, nm = civil_from_days(floor(t / 86400))
  if ny ~= y or nm ~= mo then return nil end           -- 2026-02-30 and the like
  return t - OFFSET
end

-- A time given by the caller: Unix seconds (a whole number) or the ERP's string form.
-- Returns Unix seconds, or nil and why.
function time.value(v)
  if type(v) == "number" then
    if not is_integer(v) or v < 0 or v >= 253402300800 then
      return nil, "whole Unix seconds from 0 to year 9999 expected"
    end
    return floor(v)
  end
  if type(v) == "string" then
    local n = time.parse(v)
    if n then return n end
    if v:match("^%d+$") then return time.value(tonumber(v)) end
    return nil, ("'YYYY-MM-DD HH:MM:SS' (UTC+8) or Unix seconds expected, got %q"):format(v)
  end
  return nil, "Unix seconds or a 'YYYY-MM-DD HH:MM:SS' string expected, got " .. type(v)
end

-- A row's modified time as the ERP answers it: the string form, or a millisecond number
-- (some detail rows), or a string of digits. Unix seconds, or nil.
function time.modified(v)
  if type(v) == "string" then
    local n = time.parse(v)
    if n then return n end
    if v:match("^%d+$") then v = tonumber(v) else return nil end
  end
  if type(v) ~= "number" or v ~= v or v < 0 then return nil end
  if v >= 1e11 then return floor(v / 1000) end         -- milliseconds
  return floor(v)
end

return time
