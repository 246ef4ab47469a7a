-- Settings of the OpenResty example, read from environment variables, and the wdt clients
-- built from them (one per transport choice, per nginx worker).
--
-- nginx clears the environment of its workers: every variable used here must be named by an
-- `env NAME;` line in nginx.conf (the example's nginx.conf has them).
--
--   WDT_URL             API endpoint, or the name 'production' or 'emulator' (required: unset,
--                       the example refuses to start a client rather than call production)
--   WDT_SID, WDT_KEY    seller account, appkey   (required)
--   WDT_SECRET          appsecret "secret:salt"  (required)
--   WDT_SHOP_NO         shop whose queue the background sync drains (required for the sync)
--   WDT_SYNC_INTERVAL   seconds between background syncs; 0 or unset: no background sync
--   WDT_TIMEOUT         total seconds per try (default: 5 inline, 30 in the background sync)
--   WDT_CONNECT_TIMEOUT seconds to connect (default: 2 inline, 10 in the background sync)
--   WDT_RETRIES         retries per call (default: 1 inline, 3 in the background sync)
--   WDT_BACKOFF         first retry delay in seconds (default: 0.2 inline, 0.5 background)
--   WDT_TRANSPORT       auto (default), ngx or curl
--   WDT_RATE_PER_MINUTE, WDT_RATE_CONCURRENCY   the seller's budget, kept for all workers in
--                       the `wdt_rate` shared dict (unset: none)
--   WDT_RATE_WAIT       seconds a call may wait for the budget (default: 2 inline, 60 background)
--
-- Inline (a callback waiting for its answer) the defaults keep one call within about
-- 2 + 5 + 0.2 + 5 = 12 s: a web request's budget, not the client's 30 s × 4 tries.
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
    rate_per_minute = number("WDT_RATE_PER_MINUTE"),
    rate_concurrency = number("WDT_RATE_CONCURRENCY"),
    rate_wait = number("WDT_RATE_WAIT"),
  }
end

-- The defaults of a call made while a callback waits, and of the background sync.
local DEFAULTS = {
  inline = { timeout = 5, connect_timeout = 2, retries = 1, backoff = 0.2, rate_wait = 2 },
  background = { timeout = 30, connect_timeout = 10, retries = 3, backoff = 0.5, rate_wait = 60 },
}

local function pick(v, default)
  if v == nil then return default end
  return v
end

local clients = {}   -- per worker: module state lives in the worker's Lua VM

-- config.client(transport, use): the worker's client for that transport choice ("auto"
-- when nil) and use ("inline", the default, or "background").
function config.client(transport, use)
  local s = config.settings()
  transport, use = transport or s.transport, use or "inline"
  local d = assert(DEFAULTS[use], "use: inline or background expected")
  local name = transport .. "/" .. use
  local c = clients[name]
  if c == nil then
    if not s.url then
      error("WDT_URL is not set: give the ERP's URL, or 'production' or 'emulator' (an unset URL "
            .. "never means production)", 2)
    end
    local rate
    if s.rate_per_minute or s.rate_concurrency then
      rate = { per_minute = s.rate_per_minute, concurrency = s.rate_concurrency,
               wait = pick(s.rate_wait, d.rate_wait) }
    end
    c = wdt.client {
      url = s.url, sid = s.sid, key = s.key, secret = s.secret, transport = transport,
      timeout = pick(s.timeout, d.timeout), connect_timeout = pick(s.connect_timeout, d.connect_timeout),
      retries = pick(s.retries, d.retries), backoff = pick(s.backoff, d.backoff), rate = rate,
      on_response = require("openresty.metrics").on_response,   -- GET /metrics
    }
    clients[name] = c
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
    limit = err.limit, retry_after = err.retry_after, text = tostring(err),
  }
end

-- The HTTP status for a call that failed with `err`, and the Retry-After header's value
-- (or nil): 429 when the seller's rate budget is spent (nothing was sent; come back in
-- Retry-After seconds), 503 when the budget cannot be kept (its shared dict is full), 504
-- on timeouts, 502 otherwise.
function config.status_of(err)
  if err.kind == "rate_limited" then return 429, math.max(1, math.ceil(err.retry_after or 1)) end
  if err.kind == "shm_full" then return 503 end
  if err.kind == "timeout" then return 504 end
  return 502
end

return config
