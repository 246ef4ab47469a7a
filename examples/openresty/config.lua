-- Settings of the OpenResty example, read from environment variables, and the wdt clients
-- built from them (one per transport choice, per nginx worker).
--
-- nginx clears the environment of its workers: every variable used here must be named by an
-- `env NAME;` line in nginx.conf (the example's nginx.conf has them).
--
--   WDT_URL             API endpoint             (default: the vendor's production URL)
--   WDT_SID, WDT_KEY    seller account, appkey   (required)
--   WDT_SECRET          appsecret "secret:salt"  (required)
--   WDT_SHOP_NO         shop whose queue the background sync drains (required for the sync)
--   WDT_SYNC_INTERVAL   seconds between background syncs; 0 or unset: no background sync
--   WDT_TIMEOUT         total seconds per request (default 30)
--   WDT_CONNECT_TIMEOUT seconds to connect (default 10)
--   WDT_RETRIES         retries per call (default 3)
--   WDT_BACKOFF         first retry delay in seconds (default 0.5)
--   WDT_TRANSPORT       auto (default), ngx or curl
local wdt = require "wdt"

local config = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

local function number(name, default)
  local v = env(name)
  if v == nil then return default end
  local n = tonumber(v)
  if not n then error(name .. " must be a number, got " .. v) end
  return n
end

function config.settings()
  return {
    url = env("WDT_URL"),
    sid = env("WDT_SID"),
    key = env("WDT_KEY"),
    secret = env("WDT_SECRET"),
    shop_no = env("WDT_SHOP_NO"),
    sync_interval = number("WDT_SYNC_INTERVAL", 0),
    timeout = number("WDT_TIMEOUT"),
    connect_timeout = number("WDT_CONNECT_TIMEOUT"),
    retries = number("WDT_RETRIES"),
    backoff = number("WDT_BACKOFF"),
    transport = env("WDT_TRANSPORT", "auto"),
  }
end

local clients = {}   -- per worker: module state lives in the worker's Lua VM

-- config.client(transport): the worker's client for that transport choice ("auto" when nil).
function config.client(transport)
  local s = config.settings()
  transport = transport or s.transport
  local c = clients[transport]
  if c == nil then
    c = wdt.client {
      url = s.url, sid = s.sid, key = s.key, secret = s.secret,
      timeout = s.timeout, connect_timeout = s.connect_timeout,
      retries = s.retries, backoff = s.backoff, transport = transport,
      on_response = require("openresty.metrics").on_response,   -- GET /metrics
    }
    clients[transport] = c
  end
  return c
end

-- Which transport a call made right now by `client` goes through: "ngx" or "curl".
function config.transport_of(client)
  return client:transport()
end

-- An error object as a plain table for a JSON answer (only what a caller needs).
function config.error_table(err)
  return {
    kind = err.kind, message = err.message, method = err.method, status = err.status,
    http_status = err.http_status, sent = err.sent, retryable = err.retryable, tries = err.tries,
    text = tostring(err),
  }
end

return config
