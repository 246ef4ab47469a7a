-- The transport contract (src/core/wdt_core_client.c, cl:send; wdt.transport.ngx, send):
--   answer {status=, body=, date=} | nil, failure {kind=, message=, sent=}
-- One list of cases and one checker, run over libcurl by spec/transport_spec.lua (Lua 5.4)
-- and over cosockets by spec/openresty_spec.lua (inside nginx, LuaJIT). No busted here:
-- this file also runs inside nginx.
local M = {}

M.METHOD = "sales.LogisticsSync.getSyncListExt"

-- fault: the emulator fault set before the case (and cleared after); client: options of the
-- client that sends; dead: send to a port where nothing listens.
M.cases = {
  { name = "an answer", want = "answer", status = 200 },
  { name = "an HTTP error is an answer too", fault = { mode = "http_500", count = 10 },
    want = "answer", status = 500 },
  { name = "a refused connection was not sent", dead = true, want = "network", sent = false },
  { name = "a reset after sending may have been sent", fault = { mode = "reset", count = 10 },
    want = "network", sent = true },
  { name = "a total timeout", fault = { mode = "delay", count = 10, delay_ms = 2500 },
    client = { timeout = 1 }, want = "timeout", sent = true },
  { name = "an answer over max_body", client = { max_body = 16 }, want = "too_large", sent = true },
}

-- Sends case `i` with a new wdt client of `opts` (url, sid, key, secret) through the
-- transport the client picks where this runs -> { answer = …, failure = … }.
-- via "post": libcurl's cl:post, which prepares and sends in one (the client's calls
-- outside nginx), instead of cl:prepare and the transport's send.
function M.run(wdt, opts, i, dead_port, via)
  local case = M.cases[i]
  local o = { retries = 0, timeout = 5, connect_timeout = 2 }
  for k, v in pairs(opts) do o[k] = v end
  for k, v in pairs(case.client or {}) do o[k] = v end
  local dead_url = "http://127.0.0.1:" .. tostring(dead_port)
  if via == "post" and case.dead then o.url = o.url:gsub("^http://[^/]+", dead_url) end
  local client = wdt.client(o)
  local args = { { shop_no = "s1", is_own_platform = true } }
  local answer, failure
  if via == "post" then
    answer, failure = client._core:post(M.METHOD, { n = 1, args[1] }, { page_size = 1, page_no = 0 },
                                        client:_timestamp())
  else
    local p = client:prepare(M.METHOD, args, { page_size = 1 })
    local url = p.url
    if case.dead then url = url:gsub("^http://[^/]+", dead_url) end
    answer, failure = client:executor().send(client, url, p.body, nil)
  end
  client:close()
  return { answer = answer, failure = failure }
end

-- The problems with a result (an empty list: it keeps the contract). `secrets`: strings
-- no failure message may contain.
function M.check(i, r, secrets)
  local case, problems = M.cases[i], {}
  local function want(cond, what)
    if not cond then problems[#problems + 1] = what end
  end
  if case.want == "answer" then
    local a = r.answer
    want(type(a) == "table" and r.failure == nil, "an answer and no failure")
    if type(a) ~= "table" then return problems end
    want(a.status == case.status, "status " .. case.status .. ", got " .. tostring(a.status))
    want(type(a.body) == "string" and #a.body > 0, "a body string")
    want(type(a.date) == "string" and a.date:find("GMT$") ~= nil, "the Date header")
    return problems
  end
  local f = r.failure
  want(r.answer == nil and type(f) == "table", "no answer and a failure")
  if type(f) ~= "table" then return problems end
  want(f.kind == case.want, "kind " .. case.want .. ", got " .. tostring(f.kind))
  want(f.sent == case.sent, "sent " .. tostring(case.sent) .. ", got " .. tostring(f.sent))
  want(type(f.message) == "string" and #f.message > 0, "a message")
  for _, s in ipairs(secrets or {}) do
    want(not tostring(f.message):find(s, 1, true), "no secret in the message")
  end
  want(not tostring(f.message):find("sign=", 1, true), "no sign in the message")
  return problems
end

return M
