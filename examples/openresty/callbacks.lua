-- POST /callbacks/shipped  {"sync_id": 88950, "ok": true}
--                          {"sync_id": 88951, "ok": false, "error": "address unknown"}
-- Your platform calls this when it has (or has not) taken a shipment; the handler reports
-- the outcome to the ERP inline with sales.LogisticsSync.update and answers with the result:
--
--   200 {"reported":true,"accepted":true,"refused":[],"transport":"ngx"}
--   200 {"reported":true,"accepted":false,"refused":["…88951…"],"transport":"ngx"}
--         (the ERP answered, but refused the item: its messages are in `refused`)
--   502 {"reported":false,"error":{"kind":"network",…},"transport":"ngx"}   (504 on timeouts)
--   429 {"reported":false,"error":{"kind":"rate_limited","retryable":true,"retry_after":…}}
--         with Retry-After: the seller's rate budget is spent (WDT_RATE_*); nothing was sent
--   503 {"reported":false,"error":{"kind":"shm_full",…}}: the wdt_rate dict is too small
--   400 / 405 / 413 / 500 {"reported":false,"error":{"kind":"request","message":…}}
--
-- Inside this content handler the client sends through nginx cosockets, so a slow ERP
-- answer does not hold up the worker's other requests. `?transport=curl` (or `ngx`, `auto`)
-- picks the transport for one request, for comparison; the answer's `transport` field and
-- the X-Wdt-Transport header say which one carried the call.
local wdt = require "wdt"
local config = require "openresty.config"

local callbacks = {}

local SYNCED, FAILED = 0, 2

local function answer(status, t, transport, retry_after)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  if transport then ngx.header["X-Wdt-Transport"] = transport end
  if retry_after then ngx.header["Retry-After"] = tostring(retry_after) end
  ngx.print(wdt.json.encode(t))
  return ngx.exit(status)
end

local function bad(status, message)
  return answer(status, { reported = false, error = { kind = "request", message = message } })
end

local function is_integer(v)
  return type(v) == "number" and v % 1 == 0 and v > 0 and v < 2 ^ 53
end

function callbacks.shipped()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return bad(405, "POST expected")
  end
  ngx.req.read_body()
  local raw = ngx.req.get_body_data()
  if raw == nil then
    if ngx.req.get_body_file() then return callbacks.too_large() end
    return bad(400, "a JSON body expected")
  end
  local msg, derr = wdt.json.safe.decode(raw)
  if type(msg) ~= "table" then
    return bad(400, "a JSON object expected" .. (derr and (": " .. derr) or ""))
  end
  if not is_integer(msg.sync_id) then return bad(400, "sync_id: a positive integer expected") end
  if type(msg.ok) ~= "boolean" then return bad(400, "ok: true or false expected") end
  local error_msg = ""
  if not msg.ok then
    error_msg = msg.error
    if error_msg == nil or error_msg == wdt.null or error_msg == "" then error_msg = "failed" end
    if type(error_msg) ~= "string" then return bad(400, "error: a string expected") end
  end

  local which = ngx.var.arg_transport
  if which ~= nil and which ~= "auto" and which ~= "ngx" and which ~= "curl" then
    return bad(400, "transport: auto, ngx or curl expected")
  end
  local okc, client = pcall(config.client, which)
  if not okc then
    ngx.log(ngx.ERR, "wdt client: ", client)
    -- the details are for the operator's log, not for whoever calls this endpoint
    return answer(500, { reported = false, error = { kind = "config",
                         message = "wdt is not configured on this server (see the error log)" } })
  end
  local transport = config.transport_of(client)

  local data, err = client:call("sales.LogisticsSync.update", {
    { sync_id = msg.sync_id, status = msg.ok and SYNCED or FAILED, error_msg = error_msg },
  })
  if data == nil then
    ngx.log(ngx.WARN, "reporting sync_id ", msg.sync_id, ": ", tostring(err))
    local status, retry_after = config.status_of(err)
    return answer(status, { reported = false, error = config.error_table(err), transport = transport },
                  transport, retry_after)
  end
  -- status 0 with a list of refusal messages (empty: all accepted)
  local refused = wdt.array()
  if type(data) == "table" then
    for i = 1, #data do refused[i] = tostring(data[i]) end
  end
  return answer(200, { reported = true, accepted = #refused == 0, refused = refused,
                       transport = transport }, transport)
end

-- A body over client_max_body_size: nginx.conf sends its 413 here (error_page), so that the
-- caller gets JSON rather than nginx's HTML page.
function callbacks.too_large()
  return bad(413, "body too large (over client_max_body_size)")
end

-- GET /wdt/stats: this worker's cosocket counters (requests, new connections, pooled reuses),
-- the Lua running the handlers and the file wdt.core was loaded from.
function callbacks.stats()
  local stats = require("wdt.transport.ngx").stats
  return answer(200, { pid = ngx.worker.pid(), requests = stats.requests, connects = stats.connects,
                       reused = stats.reused, kept_alive = stats.kept_alive,
                       lua = jit and jit.version or _VERSION,
                       core = package.searchpath and package.searchpath("wdt.core", package.cpath) })
end

return callbacks
