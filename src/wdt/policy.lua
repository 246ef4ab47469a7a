-- Retry policy: which failures are worth another try, for which methods, and how long to
-- wait in between (doc/reliability.md).
--
-- Two questions decide a retry:
--   1. Could the failed try have been carried out by the server?
--        no  -> always retried: the rate-limit answers (status 100 with the per-minute
--               call or concurrency message), HTTP 429, a status 7 answer right after the
--               client learned the server's clock, and failures before the request left
--               (connection refused, DNS, connect timeout, TLS handshake: err.sent == false).
--        yes / unknown -> go on.
--   2. Is the method safe to repeat (idempotent)? Only then are HTTP 5xx, resets and
--      timeouts after sending, and undecodable answers retried.
-- Every other failure (an API error status, HTTP 4xx, an answer over max_body, a
-- certificate that fails verification: kind "tls") is final.
local policy = {}

-- Writes whose outcome is the same when repeated, by full method name. `true` makes a
-- method repeatable, `false` forbids repeating one that the name rule below would allow.
--   sales.LogisticsSync.update: reporting an outcome a second time changes nothing (the
--   row has already left the queue, and the repeat is answered status 0 with the item
--   listed as "不存在或已回传").
policy.idempotent_methods = {
  ["sales.LogisticsSync.update"] = true,
}

-- Methods whose last name part starts with one of these only read (queries): get*, query*,
-- search*, list*, count*. (calcStock is not here: the vendor's page says it computes the
-- stock to sync and records the change count; repeating it is harmless, see the table.)
policy.read_prefixes = { "get", "query", "search", "list", "count" }

-- Name-rule exceptions and other methods that are safe to repeat.
policy.idempotent_methods["sales.StockSync.calcStock"] = true          -- recomputes, same answer
policy.idempotent_methods["sales.StockSync.calcStockWithAuth"] = true

-- The table above, else the catalogue's kind (wdt.api), else the name rule: the last part
-- of the method name starts with a read prefix. Read on every call, so edits of
-- policy.idempotent_methods and policy.read_prefixes count at once.
function policy.is_idempotent(method)
  local v = policy.idempotent_methods[method]
  if v ~= nil then return v end
  -- a method of the catalogue (wdt.api): its page says whether it is a query
  local known = require("wdt.api").summary(method)
  if known then return known.kind == "query" end
  -- the last part, after the last '.' ("^.*()%." backtracks once; "[^.]+$" would be tried
  -- at every position)
  local last = method:sub((method:match("^.*()%.") or 0) + 1):lower()
  local prefixes = policy.read_prefixes
  for i = 1, #prefixes do
    if last:sub(1, #prefixes[i]) == prefixes[i] then return true end
  end
  return false
end

-- The vendor's two rate-limit messages; punctuation around them varies, so match substrings.
local rate_limit_messages = {
  "超过每分钟最大调用频率限制",
  "超过每分钟最大并发次数限制",
}

function policy.is_rate_limit(err)
  if err.kind == "http" and err.http_status == 429 then return true end
  if err.kind ~= "api" or err.status ~= 100 or type(err.message) ~= "string" then
    return false
  end
  for _, text in ipairs(rate_limit_messages) do
    if err.message:find(text, 1, true) then return true end
  end
  return false
end

-- The refusal of a call over the seller's limit of calls at once (the second message):
-- a flow with several calls in flight narrows its window and sends it again (wdt.flow).
function policy.is_concurrency_limit(err)
  return err.kind == "api" and err.status == 100 and type(err.message) == "string"
    and err.message:find(rate_limit_messages[2], 1, true) ~= nil
end

-- May this failure be retried? `idempotent` says whether the call may be repeated after
-- the server may have seen it. Returns true/false and a short reason (for logs and docs).
function policy.retryable(err, idempotent)
  -- never sent, but another try would meet the same certificate (or CA file): final
  if err.kind == "tls" then return false, "tls" end
  if policy.is_rate_limit(err) then return true, "rate limited" end     -- refused, nothing applied
  if (err.kind == "network" or err.kind == "timeout") and err.sent == false then
    return true, "not sent"                                              -- never reached the server
  end
  if not idempotent then return false, "may have been applied" end
  if err.kind == "http" then
    if type(err.http_status) == "number" and err.http_status >= 500 then return true, "http 5xx" end
    return false, "http error"
  end
  if err.kind == "network" or err.kind == "timeout" or err.kind == "decode" then
    return true, err.kind
  end
  return false, "final"
end

-- Exponential backoff with jitter: the n-th wait is backoff * 2^(n-1), capped at
-- max_backoff, of which a random half is kept ("equal jitter"), so that many clients that
-- were refused together do not come back together.
function policy.delay(try, backoff, max_backoff)
  local d = backoff * 2 ^ (try - 1)
  if d > max_backoff then d = max_backoff end
  return d * (0.5 + math.random() * 0.5)
end

return policy
