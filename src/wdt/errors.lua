-- Error objects: every runtime failure of wdt is returned as `nil, err` with one of these.
-- Fields: kind, message, method, status (API status, kind "api"), http_status, retryable,
-- tries, sent. Messages never carry the URL (its query holds the salt and the sign).
local errors = {}

local Error = {}
Error.__index = Error
Error.__name = "wdt.error"

-- Every kind of error wdt returns, with its meaning (doc/reliability.md lists them too;
-- spec/errors_spec.lua fails when the code produces a kind missing here).
errors.KINDS = {
  api = "the API answered a status other than 0 (err.status, err.response)",
  http = "an HTTP status other than 200 (err.http_status)",
  network = "the connection failed (err.sent: whether the request may have reached the server)",
  timeout = "no answer in time (err.sent as for network)",
  decode = "an answer that is not what the method answers (not JSON, no status, a wrong shape)",
  too_large = "an answer over the client's max_body",
  tls = "the peer's certificate did not verify (never retried)",
  rate_limited = "the rate budget (option rate) allows no more waiting for this request; nothing was "
    .. "sent (err.limit, err.retry_after)",
  interrupted = "a flow stopped by SIGINT after settling what it had handled (err.summary)",
  callback = "a flow's on_progress raised; the flow stopped (err.summary)",
  source = "a push's items iterator or source raised or gave a page that is not a list",
  state = "a push's state document is not one of this push (flow, shop, version)",
  store = "a state, checkpoint or lock file could not be read, written or locked",
  locked = "a run lock is held by another run (err.holder), or was lost while running",
  shm = "an nginx lua_shared_dict a lock or rate budget needs is missing or failed",
  shm_full = "the rate budget's nginx lua_shared_dict is full: nothing was sent (doc/openresty.md: its size)",
  redis = "the Redis server of a lock or rate budget failed or refused a command",
  scan = "a scan window whose rows kept changing, or a row without its key",
  invalid = "arguments the method's page forbids, never sent (wdt.api.check: err.field, err.meaning)",
  shop = "a shop that does not exist, is disabled or is not self-owned (wdt.shop: err.shop_no, err.reason)",
  handler = "a sync handler raised or answered nonsense (its item listed unreported), or its finish raised",
}

local function describe(e)
  if e.kind == "api" then
    return "api error " .. tostring(e.status)
  elseif e.kind == "http" then
    return "http error " .. tostring(e.http_status)
  elseif e.kind == "too_large" then
    return "answer too large"
  elseif e.kind == "interrupted" then
    return "interrupted"
  end
  return tostring(e.kind) .. " error"
end

function Error.__tostring(e)
  local s = "wdt: " .. describe(e)
  if e.method then s = s .. " in " .. e.method end
  if e.message and e.message ~= "" then s = s .. ": " .. e.message end
  if e.tries and e.tries > 1 then s = s .. " (after " .. e.tries .. " tries)" end
  return s
end

-- `"failed: " .. err` works as it does with string errors (either side may be the error).
function Error.__concat(a, b)
  return tostring(a) .. tostring(b)
end

-- Names whose values are credentials or derived from them (matched case-insensitively as
-- whole words): key, appkey, salt, sign, secret, appsecret.
local CREDENTIALS = { key = true, appkey = true, salt = true, sign = true, secret = true,
                      appsecret = true }

-- errors.scrub(message): the message with the value of every credential parameter it
-- quotes ("sign=…", "salt: …", "\"key\":\"…\"") and every run of exactly 32 hex digits (the
-- shape of a sign) replaced by "***". For messages a server wrote: one that echoes the
-- request must not put the request's credentials into an error.
function errors.scrub(message)
  if type(message) ~= "string" then return message end
  message = message:gsub("([%a_]+)(\"?%s*[=:]%s*\"?)([^&%s\"',;}%]]+)", function(name, sep, value)
    if CREDENTIALS[name:lower()] and value ~= "***" then return name .. sep .. "***" end
  end)
  return (message:gsub("%f[%x]" .. ("%x"):rep(32) .. "%f[^%x]", "***"))
end

-- What a failure probably means, for the operator (nil when nothing more is known): wrong
-- credentials and a wrong URL path answer with messages that do not say which setting is
-- wrong. Looks through `cause` (a flow's error wraps the client's).
local API_HINTS = {
  { "验证失败", "the appkey (WDT_KEY), or the secret or salt of the appsecret 'secret:salt' "
    .. "(WDT_SECRET), is wrong for this sid; 'wdt doctor' tells which, as far as the answers show" },
  { "sid is not", "the sid (WDT_SID) is unknown at this URL: a sid of the production ERP "
    .. "against a test URL, or the reverse?" },
  { "app auth fail", "the appkey (WDT_KEY) is wrong, or this sid or IP is not allowed for it" },
  { "ip限制", "this host's IP is not in the seller's allow list (IP 白名单)" },
}

function errors.hint(err)
  local seen = 0
  while type(err) == "table" and seen < 5 do
    if err.kind == "api" and type(err.message) == "string" then
      for _, h in ipairs(API_HINTS) do
        if err.message:find(h[1], 1, true) then return h[2] end
      end
      if err.status == 7 then return "this host's clock is off the server's by more than 2 minutes" end
    elseif err.kind == "http" and err.http_status == 404 then
      return "nothing answers at this URL's path: the API's URL ends in /openapi "
        .. "(production: http://wdt.wangdian.cn/openapi)"
    end
    err, seen = err.cause, seen + 1
  end
  return nil
end

function errors.new(fields)
  return setmetatable(fields, Error)
end

function errors.is(v)
  return getmetatable(v) == Error
end

-- The error lua.c (and LuaJIT) raise in running Lua code on SIGINT: "...interrupted!".
function errors.is_interrupt(e)
  return type(e) == "string" and e:find("interrupted!$") ~= nil
end

return errors
