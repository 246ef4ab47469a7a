-- What the specs that talk to the emulator share: the demo tenant, and a client with
-- test timings (short timeouts, a short back-off so that retries do not slow the suite).
local wdt = require "wdt"

local fixtures = { SID = "apidevnew2", KEY = "test2-xx", APPSECRET = "12345:abcde" }

-- A sorted copy of the list t (ids compared as a set, whatever order they came in).
function fixtures.sorted(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  table.sort(c)
  return c
end

-- fixtures.client(emu, overrides...): later tables override earlier ones.
function fixtures.client(emu, ...)
  local o = { sid = fixtures.SID, key = fixtures.KEY, secret = fixtures.APPSECRET, url = emu.url,
              timeout = 5, connect_timeout = 2, backoff = 0.01, max_backoff = 0.05 }
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do o[k] = v end
  end
  return wdt.client(o)
end

-- A push source (`function(cursor) return items, next_cursor end`) giving pages of `size`
-- items of the list `all`; the cursor is the index of the last item given.
function fixtures.pages_of(all, size)
  return function(cursor)
    cursor = cursor or 0
    local out = {}
    for i = cursor + 1, math.min(cursor + size, #all) do out[#out + 1] = all[i] end
    if #out == 0 then return nil end
    return out, cursor + #out
  end
end

return fixtures
