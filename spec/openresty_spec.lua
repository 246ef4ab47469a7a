-- wdt inside nginx: Debian's nginx with the Lua module runs examples/openresty (the same
-- nginx.conf, rendered with a prefix and ports) against the emulator, on loopback.
-- Needs build-luajit/wdt/core.so (`make build-luajit`) and build/wdt/core.so (`make build`).
local socket = require "socket"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"

local sh = require "spec.support.sh"
local compat = require "spec.support.compat"
local contract = require "spec.support.transport_contract"

local sh_quote, read_file, write_file = sh.quote, sh.read_file, sh.write_file

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local ROOT = sh.repo_root()
local nginx_support = require "spec.support.nginx"
local NGINX, CORE_LUAJIT = nginx_support.BIN, nginx_support.CORE_LUAJIT
local SID, KEY, APPSECRET = "ngxtenant", "ngx-key", "s3cret:s4lt"
local SID2 = "ngxtenant2"                -- a second seller on the same ERP host
local SHOP = "shop-ngx"
local TIMEOUT = 2        -- seconds per request, on both sides (the delay fault goes beyond it)

local function alive(pid)
  return pid and sh.alive(pid)
end

-- An nginx running examples/openresty/nginx.conf under a temporary prefix.
local Nginx = {}
Nginx.__index = Nginx

local function start_nginx(emu, env)
  local prefix = sh.tmpdir()
  assert(prefix and prefix ~= "", "mktemp failed")
  os.execute("mkdir -p " .. sh_quote(prefix .. "/logs") .. " " .. sh_quote(prefix .. "/temp"))
  local port = emulator.free_port()
  -- Render the example the way doc/openresty.md says: envsubst of ${WDT_HOME} ${WDT_LISTEN}.
  local conf = capture("WDT_HOME=" .. sh_quote(ROOT) .. " WDT_LISTEN=127.0.0.1:" .. port
                       .. " envsubst '${WDT_HOME} ${WDT_LISTEN}' < "
                       .. sh_quote(ROOT .. "/examples/openresty/nginx.conf"))
  assert(conf:find("listen 127.0.0.1:" .. port, 1, true), "rendering nginx.conf failed")
  -- A spec-only location beside the example's: a write that must not be repeated.
  conf = conf:gsub("(location = /callbacks/shipped)", function(loc)
    return [[location = /spec/contract {
            content_by_lua_block {
                local wdt = require "wdt"
                local contract = dofile("]] .. ROOT .. [[/spec/support/transport_contract.lua")
                local a = ngx.req.get_uri_args()
                local r = contract.run(wdt, { url = a.url, sid = a.sid, key = a.key, secret = a.secret },
                                       tonumber(a.case), tonumber(a.dead_port))
                ngx.print(wdt.json.encode(r))
            }
        }

        location = /spec/two_sellers {
            content_by_lua_block {
                local wdt = require "wdt"
                local a = ngx.req.get_uri_args()
                local stats = require("wdt.transport.ngx").stats
                local function call(sid)
                  local c = wdt.client { url = a.url, sid = sid, key = a.key, secret = a.secret, retries = 0 }
                  local data, err = c:call("sales.LogisticsSync.getSyncListExt", { shop_no = "x" })
                  assert(data or err.kind == "api", tostring(err))
                  return { connects = stats.connects, reused = stats.reused }
                end
                local s1 = call(a.sid)
                local s2 = call(a.sid2)
                local s3 = call(a.sid)
                ngx.print(wdt.json.encode { b_connects = s2.connects - s1.connects,
                  b_reused = s2.reused - s1.reused, a_reused = s3.reused - s2.reused })
            }
        }

        location = /spec/write_once {
            content_by_lua_block {
                local wdt = require "wdt"
                local id = tonumber(ngx.var.arg_sync_id)
                local client = require("openresty.config").client()
                local data, err = client:with { idempotent = false, retries = 3, backoff = 0.01 }
                  :call("sales.LogisticsSync.update", { { sync_id = id, status = 0, error_msg = "" } })
                ngx.print(wdt.json.encode(data and { ok = true }
                  or { kind = err.kind, tries = err.tries, sent = err.sent }))
            }
        }

        location = /spec/push_window {
            content_by_lua_block {
                local wdt = require "wdt"
                local platform = dofile("]] .. ROOT .. [[/examples/sample_platform.lua")
                local client = require("openresty.config").client()
                local s, err = client:push_orders { shop_no = ngx.var.arg_shop, batch = 10, concurrency = 4,
                                                    orders = platform.orders(9001, 9060) }
                s = s or err.summary
                ngx.print(wdt.json.encode({ new = s.new, calls = s.calls, unreported = s.unreported }))
            }
        }

        location = /spec/scan {
            content_by_lua_block {
                local wdt = require "wdt"
                local client = require("openresty.config").client()
                local keys, n = {}, 0
                for row, err in client:scan { method = "goods.ApiGoods.search", page_size = 7,
                    from = tonumber(ngx.var.arg_from), to = tonumber(ngx.var.arg_to) } do
                  if not row then ngx.print(wdt.json.encode({ err = tostring(err) })) return end
                  n = n + 1
                  keys[n] = row.rec_id
                end
                ngx.print(wdt.json.encode({ rows = n, first = keys[1], transport = client:transport() }))
            }
        }

        location = /spec/scan_ahead {
            content_by_lua_block {
                local wdt = require "wdt"
                local a = ngx.req.get_uri_args()
                local sent = 0
                local client = wdt.client { url = a.url, sid = a.sid, key = a.key, secret = a.secret,
                                            on_request = function() sent = sent + 1 end }
                -- the calls sent when each row was handed over; the consumer waits a little
                -- at each row (as one that writes to its platform does)
                local at_row = {}
                for row, err in client:scan { method = "goods.ApiGoods.search", page_size = 5,
                    window = 3600, concurrency = 4, lag = 0,
                    from = tonumber(a.from), to = tonumber(a.to) } do
                  if not row then ngx.print(wdt.json.encode({ err = tostring(err) })) return end
                  at_row[#at_row + 1] = sent
                  ngx.sleep(0.05)
                end
                ngx.print(wdt.json.encode({ at_row = at_row, sent = sent, transport = client:transport() }))
            }
        }

        ]] .. loc
  end, 1)
  write_file(prefix .. "/nginx.conf", conf)
  local vars = {
    WDT_URL = emu.url, WDT_SID = SID, WDT_KEY = KEY, WDT_SECRET = APPSECRET,
    WDT_SHOP_NO = SHOP, WDT_TIMEOUT = tostring(TIMEOUT), WDT_CONNECT_TIMEOUT = "2",
    WDT_RETRIES = "0", WDT_BACKOFF = "0.05",
  }
  for k, v in pairs(env or {}) do vars[k] = v end
  local assign = {}
  for k, v in pairs(vars) do assign[#assign + 1] = k .. "=" .. sh_quote(v) end
  -- As root, nginx would run its worker as `nobody`; keep it as the caller.
  local user = capture("id -u"):gsub("%s+$", "") == "0" and "-g 'user root;' " or ""
  local cmd = "env " .. table.concat(assign, " ") .. " " .. NGINX .. " -p " .. sh_quote(prefix .. "/")
              .. " -c nginx.conf " .. user .. "</dev/null >" .. sh_quote(prefix .. "/logs/start.out")
              .. " 2>&1"
  local ok = compat.execute(cmd)
  local n = setmetatable({ prefix = prefix, port = port,
                           base = ("http://127.0.0.1:%d"):format(port) }, Nginx)
  if not ok then
    local out = read_file(prefix .. "/logs/start.out") or ""
    local log = read_file(prefix .. "/logs/error.log") or ""
    os.execute("rm -rf " .. sh_quote(prefix))
    error("nginx did not start:\n" .. out .. log)
  end
  local deadline = socket.gettime() + 10
  while true do
    local pid = tonumber((read_file(prefix .. "/logs/nginx.pid") or ""):match("%d+"))
    if pid then
      n.pid = pid
      local code = emulator.exchange(n.base .. "/sync/status", "GET", nil, nil, 2)
      if code == 200 then break end
    end
    if socket.gettime() > deadline then
      n:stop()
      error("nginx did not answer within 10 s")
    end
    socket.sleep(0.05)
  end
  return n
end

function Nginx:log() return read_file(self.prefix .. "/logs/error.log") or "" end

function Nginx:stop()
  if self.pid then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    local deadline = socket.gettime() + 10
    while alive(self.pid) do
      if socket.gettime() > deadline then
        os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
        break
      end
      socket.sleep(0.02)
    end
    -- the worker goes with the master; make sure before removing the prefix
    socket.sleep(0.05)
  end
  os.execute("rm -rf " .. sh_quote(self.prefix))
end

function Nginx:get_json(path)
  local code, raw = emulator.exchange(self.base .. path, "GET", nil, nil, 10)
  assert(code, raw)
  return code, cjson.decode(raw)
end

-- POST /callbacks/shipped; returns http status, decoded answer, headers
function Nginx:callback(msg, query)
  local body = type(msg) == "string" and msg or cjson.encode(msg)
  local code, raw, headers = emulator.exchange(self.base .. "/callbacks/shipped" .. (query or ""), "POST",
    body, { ["content-type"] = "application/json", ["content-length"] = tostring(#body) }, 30)
  assert(code, raw)
  local ok, v = pcall(cjson.decode, raw)
  return code, ok and v or raw, headers
end

-- Fire many callbacks at once with background curl processes; returns the seconds it took
-- and the answers ({code=, body=}) in order.
function Nginx:concurrent_callbacks(ids, query)
  local dir = self.prefix .. "/par"
  os.execute("mkdir -p " .. sh_quote(dir))
  local parts = {}
  for i, id in ipairs(ids) do
    write_file(("%s/req%d.json"):format(dir, i), ('{"sync_id":%d,"ok":true}'):format(id))
    parts[#parts + 1] = ("curl -s -m 60 -o %s -w '%%{http_code}' -H 'Content-Type: application/json' "
      .. "--data-binary @%s %s > %s &"):format(
        sh_quote(("%s/ans%d.json"):format(dir, i)), sh_quote(("%s/req%d.json"):format(dir, i)),
        sh_quote(self.base .. "/callbacks/shipped" .. (query or "")), sh_quote(("%s/code%d"):format(dir, i)))
  end
  local t0 = socket.gettime()
  os.execute(table.concat(parts, " ") .. " wait")
  local elapsed = socket.gettime() - t0
  if os.getenv("WDT_SPEC_VERBOSE") then
    io.stderr:write(("\n%d concurrent callbacks%s: %.2f s\n"):format(#ids, query or "", elapsed))
  end
  local answers = {}
  for i = 1, #ids do
    local raw = read_file(("%s/ans%d.json"):format(dir, i)) or ""
    local ok, v = pcall(cjson.decode, raw)
    answers[i] = { code = tonumber(read_file(("%s/code%d"):format(dir, i))), body = ok and v or raw }
  end
  return elapsed, answers
end

-- POST a body (a string, or a table to encode) to one of the example's locations; returns
-- the status, the decoded answer (or the raw one) and the headers.
local function post(srv, path, body)
  body = type(body) == "string" and body or require("wdt").json.encode(body)
  local code, raw, headers = emulator.exchange(srv.base .. path, "POST", body,
    { ["content-type"] = "application/json", ["content-length"] = tostring(#body) }, 30)
  assert(code, raw)
  local ok, v = pcall(cjson.decode, raw)
  return code, ok and v or raw, headers
end

local function pending_ids(emu)
  local t = emu:state().tenants[SID].logistics
  local set = {}
  for _, id in ipairs(t.pending) do set[id] = true end
  return set, t
end

-- The same call through the libcurl transport, in this busted process (the core its cpath
-- names: build/ for `make specs`, build-lua5.x/ for `make matrix`).
local function libcurl_update(emu, sync_id)
  local wdt = require "wdt"
  local client = wdt.client { url = emu.url, sid = SID, key = KEY, secret = APPSECRET,
                              timeout = TIMEOUT, connect_timeout = 2, retries = 0, backoff = 0.05 }
  assert.equal("curl", client:transport())
  local data, err = client:call("sales.LogisticsSync.update",
                                { { sync_id = sync_id, status = 0, error_msg = "" } })
  client:close()
  return data, err
end

-- Without the LuaJIT build or nginx there is nothing to run: say so rather than fail in setup.
local missing = nginx_support.missing()
if missing then
  describe("wdt inside nginx (examples/openresty)", function()
    pending("skipped: " .. missing)
  end)
  return
end

describe("wdt inside nginx (examples/openresty)", function()
  local emu, ngx_srv

  setup(function()
    emu = emulator.start {
      config = {
        tenants = { { sid = SID, key = KEY, secret = APPSECRET }, { sid = SID2, key = KEY, secret = APPSECRET } },
        logistics = { [SID] = { pending = 60, shop_no = SHOP } },
      },
    }
    ngx_srv = start_nginx(emu)
  end)

  teardown(function()
    if ngx_srv then ngx_srv:stop() end
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:faults {}
  end)

  it("pushes an order inline at checkout (push_orders over cosockets)", function()
    local platform = dofile(ROOT .. "/examples/sample_platform.lua")
    local function order_post(order) return post(ngx_srv, "/callbacks/order", order) end
    local order = platform.order(7, { lines = 3 })
    local code, ans = order_post(order)
    assert.equal(200, code)
    assert.same({ pushed = true, outcome = "new", transport = "ngx" }, ans)
    code, ans = order_post(order)
    assert.same({ 200, "changed" }, { code, ans.outcome })
    order.receiver_mobile = nil
    code, ans = order_post(order)
    assert.same({ 422, "receiver_mobile", "required" }, { code, ans.field, ans.reason })
    local late = platform.order(8, { time = "2099-01-01 00:00:00" })
    code, ans = order_post(late)
    assert.same({ 409, "failed" }, { code, ans.outcome })
    assert.matches("下单时间非法", ans.error)
    assert.equal(1, emu:state().tenants[SID].raw_trades)
  end)

  it("answers bad orders at checkout with the field at fault, before calling the ERP", function()
    local platform = dofile(ROOT .. "/examples/sample_platform.lua")
    local before = emu:state().requests
    local code, ans = post(ngx_srv, "/callbacks/order", "not json")
    assert.same({ 400, "request" }, { code, ans.error.kind })
    for _, body in ipairs { "[]", "[1,2]", '[{"tid":"t1"}]' } do
      code, ans = post(ngx_srv, "/callbacks/order", body)
      assert.same({ 422, "invalid", "not a JSON object" }, { code, ans.outcome, ans.reason }, body)
    end
    local order = platform.order(9, { lines = 2 })
    order.orders[2] = cjson.null
    code, ans = post(ngx_srv, "/callbacks/order", order)
    assert.same({ 422, "orders[2]", "table expected, got null" }, { code, ans.field, ans.reason })
    order = platform.order(10)
    order.tid = ("t"):rep(41)
    code, ans = post(ngx_srv, "/callbacks/order", order)
    assert.same({ 422, "tid", "longer than 40 characters (41)" }, { code, ans.field, ans.reason })
    assert.equal(before, emu:state().requests)
  end)

  it("answers a body over 64 KB with its own JSON 413, not nginx's HTML page", function()
    local big = '{"sync_id":1,"ok":true,"error":"' .. ("x"):rep(70 * 1024) .. '"}'
    for _, path in ipairs { "/callbacks/shipped", "/callbacks/order" } do
      local code, ans, headers = post(ngx_srv, path, big)
      assert.equal(413, code)
      assert.matches("^application/json", headers["content-type"])
      assert.same({ false, "request" }, { ans.reported or ans.pushed or false, ans.error.kind })
      assert.matches("too large", ans.error.message)
    end
  end)

  for i, case in ipairs(contract.cases) do
    it("keeps the transport contract over cosockets: " .. case.name, function()
      emu:faults(case.fault or {})
      local q = ("?case=%d&dead_port=%d&url=%s&sid=%s&key=%s&secret=%s"):format(i, emulator.free_port(),
        emu.url, SID, KEY, APPSECRET:gsub(":", "%%3A"))
      local code, raw = emulator.exchange(ngx_srv.base .. "/spec/contract" .. q, "GET", nil, nil, 10)
      emu:faults {}
      assert.equal(200, code, raw)
      assert.same({}, contract.check(i, cjson.decode(raw), { "s4lt", "s3cret" }))
      -- the version of the User-Agent is CMakeLists.txt's, as libcurl's (spec/transport_spec.lua)
      if case.want == "answer" then
        assert.equal("wdt-lua/" .. require("wdt.core").version .. " (ngx)", emu:state().user_agent)
      end
    end)
  end

  it("never carries two sellers' calls on one pooled connection", function()
    local q = ("?url=%s&sid=%s&sid2=%s&key=%s&secret=%s"):format(emu.url, SID, SID2, KEY,
      APPSECRET:gsub(":", "%%3A"))
    local code, raw = emulator.exchange(ngx_srv.base .. "/spec/two_sellers" .. q, "GET", nil, nil, 10)
    assert.equal(200, code, raw)
    local r = cjson.decode(raw)
    assert.equal(1, r.b_connects, raw)       -- the second seller opens its own connection
    assert.equal(0, r.b_reused, raw)
    assert.equal(1, r.a_reused, raw)         -- the first seller's stayed in its own pool
  end)

  it("counts the API calls from the client's on_response hook (GET /metrics, Prometheus-style)", function()
    local function counters()
      local code, raw = emulator.exchange(ngx_srv.base .. "/metrics", "GET", nil, nil, 10)
      assert.equal(200, code, raw)
      local t = {}
      for k, v in raw:gmatch("(wdt_[^\n ]+) ([^\n]+)\n") do t[k] = tonumber(v) end
      return t, raw
    end
    local before = counters()
    local ok_key = 'wdt_requests_total{method="sales.LogisticsSync.update",outcome="ok"}'
    local api_key = 'wdt_requests_total{method="sales.LogisticsSync.update",outcome="api"}'
    local tries = 'wdt_request_tries_total{method="sales.LogisticsSync.update"}'
    assert.equal(200, (ngx_srv:callback { sync_id = 1, ok = true }))   -- refused as unknown, status 0
    emu:faults { mode = "rate_limit", count = 1, method = "sales.LogisticsSync.update" }
    assert.equal(502, (ngx_srv:callback { sync_id = 1, ok = true }))   -- status 100: not applied
    local after, raw = counters()
    assert.equal((before[ok_key] or 0) + 1, after[ok_key], raw)
    assert.equal((before[api_key] or 0) + 1, after[api_key], raw)
    assert.equal((before[tries] or 0) + 2, after[tries], raw)
    assert.is_nil(raw:find(APPSECRET:match("^[^:]+"), 1, true))
  end)

  it("loads wdt and the LuaJIT build of wdt.core in the nginx worker", function()
    local code, stats = ngx_srv:get_json("/wdt/stats")
    assert.equal(200, code)
    assert.matches("^LuaJIT", stats.lua)
    assert.equal(CORE_LUAJIT, stats.core)
  end)

  it("reports a callback inline: the row leaves the emulator's queue (ids above 2^32 kept exact)", function()
    local pending = pending_ids(emu)
    local ids = {}
    for id in pairs(pending) do ids[#ids + 1] = id end
    table.sort(ids)
    local ok_id, failed_id = ids[1], ids[2]
    assert.is_true(ok_id > 2 ^ 32)

    local code, ans, headers = ngx_srv:callback { sync_id = ok_id, ok = true }
    assert.equal(200, code)
    assert.same({ reported = true, accepted = true, refused = {}, transport = "ngx" }, ans)
    assert.equal("ngx", headers["x-wdt-transport"])

    code, ans = ngx_srv:callback { sync_id = failed_id, ok = false, error = "address unknown" }
    assert.equal(200, code)
    assert.is_true(ans.reported)

    local after, q = pending_ids(emu)
    assert.is_nil(after[ok_id])
    assert.is_nil(after[failed_id])
    assert.equal(1, q.acked)
    assert.equal(1, q.failed)

    -- the ERP refuses a row it does not know: status 0, the refusal in data
    code, ans = ngx_srv:callback { sync_id = ok_id, ok = true }
    assert.equal(200, code)
    assert.is_true(ans.reported)
    assert.is_false(ans.accepted)
    assert.equal(1, #ans.refused)
    assert.truthy(ans.refused[1]:find(tostring(compat.tointeger(ok_id)), 1, true))
  end)

  it("scans a query method window by window from a request (cosockets)", function()
    local now = os.time()
    emu:control("POST", "rows", { sid = SID, method = "goods.ApiGoods.search", count = 40,
                                  from = now - 40 * 86400, to = now - 3600 })
    local code, ans = ngx_srv:get_json(("/spec/scan?from=%d&to=%d"):format(now - 50 * 86400, now))
    assert.equal(200, code)
    assert.same({ rows = 40, first = 8000000001, transport = "ngx" }, ans)
  end)

  it("pushes with 4 calls in flight from a request (cosocket threads)", function()
    emu:faults { mode = "delay", delay_ms = 200, count = 100, method = "sales.RawTrade.pushSelf2" }
    local code, ans = ngx_srv:get_json("/spec/push_window?shop=" .. SHOP)
    emu:faults {}
    assert.equal(200, code)
    assert.same({ new = 60, calls = 6, unreported = 0 }, ans)
    -- counted at the emulator (the example's background sync may add a call of its own)
    assert.is_true(emu:state().tenants[SID].in_flight.most >= 4)
  end)

  it("reads the windows ahead while the rows of one are handed over (cosocket threads)", function()
    -- three windows of an hour, 15 rows each, pages of 5, each call held 200 ms; the
    -- consumer waits 50 ms at each row (as one that writes to its platform does)
    local from = os.time() - 100 * 86400
    from = from - from % 3600
    emu:control("POST", "rows", { sid = SID, method = "goods.ApiGoods.search", count = 45,
                                  from = from, to = from + 3 * 3600 })
    emu:faults { mode = "delay", delay_ms = 200, count = 100, method = "goods.ApiGoods.search" }
    local q = ("?from=%d&to=%d&url=%s&sid=%s&key=%s&secret=%s"):format(from, from + 3 * 3600,
      emu.url, SID, KEY, APPSECRET:gsub(":", "%%3A"))
    local code, ans = ngx_srv:get_json("/spec/scan_ahead" .. q)
    emu:faults {}
    assert.equal(200, code)
    assert.is_nil(ans.err)
    assert.equal("ngx", ans.transport)
    assert.equal(45, #ans.at_row)
    -- every call of the later windows went out while the first window's rows were handed
    -- over (their answers taken between rows), not only the ones started before it
    assert.equal(ans.sent, ans.at_row[15])
  end)

  it("rejects bad callbacks before calling the ERP", function()
    local before = emu:state().requests
    local code, ans = ngx_srv:callback("not json")
    assert.equal(400, code)
    assert.equal("request", ans.error.kind)
    code = ngx_srv:callback { sync_id = "12", ok = true }
    assert.equal(400, code)
    code = ngx_srv:callback { sync_id = 12 }
    assert.equal(400, code)
    local gcode = emulator.exchange(ngx_srv.base .. "/callbacks/shipped", "GET", nil, nil, 5)
    assert.equal(405, gcode)
    assert.equal(before, emu:state().requests)
  end)

  it("serves 20 concurrent callbacks in about 1 s while the emulator delays each by 1 s", function()
    local ids = {}
    for id in pairs(pending_ids(emu)) do ids[#ids + 1] = id end
    table.sort(ids)
    local batch = { compat.unpack(ids, 1, 20) }
    assert.equal(20, #batch)
    emu:faults { mode = "delay", count = 20, delay_ms = 1000 }
    local elapsed, answers = ngx_srv:concurrent_callbacks(batch)
    for i, a in ipairs(answers) do
      assert.equal(200, a.code, "callback " .. i .. ": " .. cjson.encode(a.body))
      assert.is_true(a.body.reported)
      assert.is_true(a.body.accepted)
      assert.equal("ngx", a.body.transport)
    end
    assert.is_true(elapsed >= 0.95, "the delay fault was not applied: " .. elapsed)
    assert.is_true(elapsed < 3, ("20 callbacks took %.2f s: the worker blocked"):format(elapsed))
    local after = pending_ids(emu)
    for _, id in ipairs(batch) do assert.is_nil(after[id]) end
    assert.equal(0, #emu:state().faults)
    -- the cosockets went back to the pool: later calls reuse them
    local _, stats = ngx_srv:get_json("/wdt/stats")
    assert.is_true(stats.requests >= 23)
    assert.is_true(stats.reused > 0, cjson.encode(stats))
  end)

  it("can be forced to libcurl inside a request (which then blocks the worker)", function()
    local ids = {}
    for id in pairs(pending_ids(emu)) do ids[#ids + 1] = id end
    table.sort(ids)
    local code, ans, headers = ngx_srv:callback({ sync_id = ids[1], ok = true }, "?transport=curl")
    assert.equal(200, code)
    assert.same({ reported = true, accepted = true, refused = {}, transport = "curl" }, ans)
    assert.equal("curl", headers["x-wdt-transport"])
    assert.is_nil(pending_ids(emu)[ids[1]])

    -- three at once, 1 s each: one after the other, since libcurl blocks the worker
    emu:faults { mode = "delay", count = 3, delay_ms = 1000 }
    local elapsed, answers = ngx_srv:concurrent_callbacks({ ids[2], ids[3], ids[4] }, "?transport=curl")
    for _, a in ipairs(answers) do
      assert.equal(200, a.code)
      assert.equal("curl", a.body.transport)
    end
    assert.is_true(elapsed >= 2.9, ("3 blocking callbacks took only %.2f s"):format(elapsed))
  end)

  for _, case in ipairs {
    { mode = "http_500", kind = "http" },
    { mode = "reset", kind = "network" },
    { mode = "non_json", kind = "decode" },
    { mode = "rate_limit", kind = "api" },
    { mode = "delay", delay_ms = 3500, kind = "timeout" },
  } do
    it("returns the libcurl path's error object for the emulator fault " .. case.mode, function()
      local ids = {}
      for id in pairs(pending_ids(emu)) do ids[#ids + 1] = id end
      table.sort(ids)
      local fault = { mode = case.mode, count = 10, delay_ms = case.delay_ms }

      emu:faults(fault)
      local data, want = libcurl_update(emu, ids[1])
      assert.is_nil(data)
      assert.equal(case.kind, want.kind)

      emu:faults(fault)
      local code, ans = ngx_srv:callback { sync_id = ids[2], ok = true }
      emu:faults {}
      assert.equal(case.kind == "timeout" and 504 or 502, code)
      assert.is_false(ans.reported)
      assert.equal("ngx", ans.transport)
      local got = ans.error
      for _, field in ipairs { "kind", "method", "status", "http_status", "sent", "retryable", "tries" } do
        assert.equal(want[field], got[field] == cjson.null and nil or got[field], field)
      end
      if case.kind == "api" or case.kind == "http" or case.kind == "decode" then
        assert.equal(want.message, got.message)
      end
      -- no secret material in the message
      assert.is_nil(got.message:find("sign=", 1, true))
      assert.is_nil(got.message:find("salt", 1, true))
    end)
  end

  it("never resends a write that must not be repeated, even on a dead pooled connection", function()
    local ids = {}
    for id in pairs(pending_ids(emu)) do ids[#ids + 1] = id end
    table.sort(ids)
    assert.equal(200, (ngx_srv:callback { sync_id = ids[1], ok = true }))   -- a pooled connection now
    local calls = function()
      return emu:state().calls[SID]["sales.LogisticsSync.update"] or 0
    end
    local before_calls, before_conns = calls(), emu:state().connections
    emu:faults { mode = "reset", count = 1 }
    local code, raw = emulator.exchange(ngx_srv.base .. "/spec/write_once?sync_id=" .. compat.tointeger(ids[2]),
                                        "GET", nil, nil, 10)
    assert.equal(200, code)
    local ans = cjson.decode(raw)
    assert.equal("network", ans.kind)
    assert.equal(1, ans.tries)                 -- not retried: it may have been applied
    assert.is_true(ans.sent)
    assert.equal(before_calls + 1, calls())    -- and not resent underneath either
    assert.equal(before_conns + 1, emu:state().connections)   -- on a connection of its own
    assert.is_true(pending_ids(emu)[ids[2]])   -- the reset answered nothing: still pending
  end)

  it("learns the server's clock from the Date header read by the cosocket transport", function()
    local ids = {}
    for id in pairs(pending_ids(emu)) do ids[#ids + 1] = id end
    table.sort(ids)
    emu:faults { mode = "skew", count = 10, skew_s = 3600 }   -- the server clock is 1 h ahead
    local code, ans = ngx_srv:callback { sync_id = ids[1], ok = true }
    assert.equal(200, code, cjson.encode(ans))
    assert.is_true(ans.accepted)
    assert.is_nil(pending_ids(emu)[ids[1]])
    assert.equal(8, emu:state().faults[1].count)   -- two calls: one refused (status 7), one accepted
  end)

  it("answers a spent rate budget with 429 and Retry-After: nothing sent, retryable", function()
    ngx_srv:stop()
    ngx_srv = start_nginx(emu, { WDT_RATE_PER_MINUTE = "2" })    -- in the wdt_rate dict
    local ids = {}
    for id in pairs(pending_ids(emu)) do ids[#ids + 1] = id end
    table.sort(ids)
    local before = emu:state().calls[SID]["sales.LogisticsSync.update"] or 0
    for i = 1, 2 do assert.equal(200, (ngx_srv:callback { sync_id = ids[i], ok = true })) end
    local code, ans, headers = ngx_srv:callback { sync_id = ids[3], ok = true }
    assert.equal(429, code, cjson.encode(ans))
    local retry_after = tonumber(headers["retry-after"])
    -- the 60 s window plus its 5 % margin and one of its 20 buckets
    assert.is_true(retry_after >= 1 and retry_after <= 67, tostring(headers["retry-after"]))
    assert.same({ false, "rate_limited", true, "per_minute", 0 },
      { ans.reported, ans.error.kind, ans.error.retryable, ans.error.limit, ans.error.tries })
    assert.is_true(pending_ids(emu)[ids[3]])
    assert.equal(before + 2, emu:state().calls[SID]["sales.LogisticsSync.update"])
    -- the checkout shares the seller's budget
    local platform = dofile(ROOT .. "/examples/sample_platform.lua")
    code, ans, headers = post(ngx_srv, "/callbacks/order", platform.order(11))
    assert.same({ 429, "unreported", "rate_limited", true }, { code, ans.outcome, ans.error.kind, ans.error.retryable })
    assert.is_string(headers["retry-after"])
  end)

  it("refuses to make a client without WDT_URL: an unset URL never means production", function()
    ngx_srv:stop()
    ngx_srv = start_nginx(emu, { WDT_URL = "" })
    local ids = {}
    for id in pairs(pending_ids(emu)) do ids[#ids + 1] = id end
    table.sort(ids)
    local code = ngx_srv:callback { sync_id = ids[1], ok = true }
    assert.equal(500, code)
    assert.truthy(ngx_srv:log():find("WDT_URL is not set", 1, true), ngx_srv:log())
    assert.is_true(pending_ids(emu)[ids[1]])
  end)

  it("runs the background sync one interval after start, not at once", function()
    ngx_srv:stop()
    ngx_srv = start_nginx(emu, { WDT_SYNC_INTERVAL = "60" })
    local _, q = pending_ids(emu)
    local code, ans = ngx_srv:callback({ sync_id = q.pending[1], ok = true })
    assert.equal(200, code, ngx_srv:log())
    assert.is_true(ans.accepted, cjson.encode(ans))     -- doc/openresty.md's curl, as shown
    local _, status = ngx_srv:get_json("/sync/status")
    assert.equal(0, status.runs)
  end)

  it("runs the background sync from a timer: the queue drains through cosockets", function()
    ngx_srv:stop()
    ngx_srv = nil
    emu:faults {}
    emu:enqueue { sid = SID, logistics = 25, shop_no = SHOP }
    local _, q = pending_ids(emu)
    assert.is_true(q.size >= 25)
    ngx_srv = start_nginx(emu, { WDT_SYNC_INTERVAL = "1" })
    local deadline = socket.gettime() + 20
    local status
    repeat
      socket.sleep(0.2)
      _, status = ngx_srv:get_json("/sync/status")
      _, q = pending_ids(emu)
    until (q.size == 0 and status.runs and status.runs >= 1 and status.ok) or socket.gettime() > deadline
    assert.equal(0, q.size, ngx_srv:log())
    assert.is_true(status.ok, cjson.encode(status))
    assert.equal("ngx", status.transport)
    -- later rounds find an empty queue
    emu:enqueue { sid = SID, logistics = 3, shop_no = SHOP }
    deadline = socket.gettime() + 10
    repeat
      socket.sleep(0.2)
      _, q = pending_ids(emu)
    until q.size == 0 or socket.gettime() > deadline
    assert.equal(0, q.size)
  end)

  it("stops a background sync in progress when nginx reloads: the old worker exits", function()
    ngx_srv:stop()
    ngx_srv = nil
    emu:enqueue { sid = SID, logistics = 500, shop_no = SHOP }
    -- every call takes 1 s (the timeout is 2 s): a whole run over 5 pages, each read and
    -- reported, takes 10 s
    emu:faults { mode = "delay", count = 20, delay_ms = 1000 }
    ngx_srv = start_nginx(emu, { WDT_SYNC_INTERVAL = "1" })
    local _, stats = ngx_srv:get_json("/wdt/stats")
    local old = ("%d"):format(stats.pid)
    local deadline = socket.gettime() + 15
    repeat socket.sleep(0.1) until emu:state().faults[1].count <= 17 or socket.gettime() > deadline
    assert.is_true(emu:state().faults[1].count <= 17, "the sync did not start")
    os.execute("kill -HUP " .. ngx_srv.pid)
    local t0 = socket.gettime()
    while alive(old) and socket.gettime() - t0 < 20 do socket.sleep(0.05) end
    local took = socket.gettime() - t0
    assert.is_false(alive(old), "the old worker still syncs")
    assert.is_true(took < 4, ("the old worker went on for %.1f s"):format(took))
    assert.is_true(pending_ids(emu) ~= nil and select(2, pending_ids(emu)).size > 100, "the run was not cut short")
    assert.matches("wdt sync: [^\n]*nginx is stopping this worker", ngx_srv:log())
    emu:faults {}
  end)
end)
