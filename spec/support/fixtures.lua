-- What the specs that talk to the emulator share: the demo tenant, and a client with
-- test timings (short timeouts, a short back-off so that retries do not slow the suite).
local wdt = require "wdt"

local fixtures = { SID = "apidevnew2", KEY = "test2-xx", APPSECRET = "12345:abcde" }

-- fixtures.client(emu, overrides...): later tables override earlier ones.
function fixtures.client(emu, ...)
  local o = { sid = fixtures.SID, key = fixtures.KEY, secret = fixtures.APPSECRET, url = emu.url,
              timeout = 5, connect_timeout = 2, backoff = 0.01, max_backoff = 0.05 }
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do o[k] = v end
  end
  return wdt.client(o)
end

return fixtures
