-- The flows with calls in flight inside nginx (cosocket light threads, wdt.batch's Ngx
-- flight), where the caller's own code yields between the flow's steps (an iterator or a
-- handler that sleeps or uses a socket, as one that talks to its platform does): every
-- item handed, pushed or reported exactly once, counted at the emulator, whose `delay`
-- fault keeps the calls out long enough to overlap.
-- Needs build-luajit/wdt/core.so (`make build-luajit`).
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local nginx = require "spec.support.nginx"

local SID, KEY, SECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET
local LIMITED = "limitedsid"            -- a seller allowed 2 calls at once
local PUSH, SEARCH = "sales.RawTrade.pushSelf2", "goods.ApiGoods.search"
local UPDATE = "sales.LogisticsSync.update"

local CONF = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path temp/body;
    lua_package_path "ROOT/src/?.lua;ROOT/src/?/init.lua;ROOT/spec/?.lua;;";
    lua_package_cpath "ROOT/build-luajit/?.so;;";
    lua_shared_dict wdt_rate 1m;
    lua_shared_dict wdt_locks 1m;
    lua_shared_dict flows 1m;
    init_by_lua_block {
        -- the client of seller `sid` (a: the request's arguments), and how the caller's
        -- code yields between steps: ngx.sleep, or a cosocket of its own (a connect to the
        -- emulator, a read it does not answer for 2 ms unless `connect`, a close)
        local wdt = require "wdt"
        flows = {}
        function flows.client(a, more)
            local o = { url = "EMU", sid = a.sid or "SID", key = a.key or "KEY", secret = a.secret or "SECRET",
                        timeout = 5, retries = tonumber(a.retries) or 3, backoff = 0.01 }
            for k, v in pairs(more or {}) do o[k] = v end
            return wdt.client(o)
        end
        function flows.yield(how)
            if how == "socket" or how == "connect" then
                -- a connect (and a read the server does not answer, for 2 ms)
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", EMUPORT))
                if how == "socket" then
                    s:settimeout(2)
                    local _, err = s:receive(1)
                    assert(err == "timeout", err)
                end
                s:close()
            elseif how ~= "none" then
                ngx.sleep(0.005)
            end
        end
        function flows.say(t) ngx.print(wdt.json.encode(t)) end
    }
    server {
        listen 127.0.0.1:PORT;
        location = /ping { return 200; }

        # push_orders of orders FROM..TO at concurrency 4, batch 10, from an iterator that
        # yields (HOW) before each order; RATE: a budget of that many calls a second;
        # RAISE_AT: the iterator raises at that order (the push stops with batches out),
        # then the client is used again: a call and a push of the orders from there
        location = /push {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local platform = dofile("ROOT/examples/sample_platform.lua")
                local more = {}
                if a.rate then more.rate = { per_minute = tonumber(a.rate), window = 1, backend = a.backend or "shm",
                                             concurrency = tonumber(a.conc), wait = 3 } end
                local client = flows.client(a, more)
                local list = platform.orders(tonumber(a.from), tonumber(a.to))
                local i, raise_at = 0, tonumber(a.raise_at)
                local waits = 0
                local s, err = client:push_orders { shop_no = "s1", batch = 10, concurrency = tonumber(a.n) or 4,
                    on_progress = function(p)
                        if p.waiting then
                            waits = waits + 1
                            if a.raise_waiting then error("the progress bar broke") end
                        end
                    end,
                    orders = function()
                        flows.yield(a.how)
                        i = i + 1
                        if i == raise_at then error("the platform went away") end
                        return list[i]
                    end }
                local out = { waits = waits }
                s = s or err.summary
                out.push = { new = s.new, read = s.read, calls = s.calls, unreported = s.unreported,
                             err = err and err.kind }
                if err then out.stopped = { changed = s.changed, failed = s.failed, invalid = s.invalid } end
                if raise_at then
                    local data, cerr = client:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0)
                    out.call = data and "ok" or tostring(cerr)
                    local rest = {}
                    for k = tonumber(a.again_from) or raise_at - 20, #list do rest[#rest + 1] = list[k] end
                    local s2, err2 = client:push_orders { shop_no = "s1", batch = 10, concurrency = 4, orders = rest }
                    s2 = s2 or err2.summary
                    out.again = { new = s2.new, updated = s2.updated, unchanged = s2.unchanged, read = s2.read,
                                  unreported = s2.unreported, err = err2 and tostring(err2) }
                end
                flows.say(out)
            }
        }

        # sync_logistics of shop s1, pages of PAGE, reports of 5 at concurrency 4; the
        # handler yields (HOW) at each row
        location = /logistics {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local client = flows.client(a)
                local handed = {}
                local s, err = client:sync_logistics { shop_no = "s1", page_size = tonumber(a.page) or 10, batch = 5,
                    concurrency = 4, handler = function(row)
                        handed[#handed + 1] = row.sync_id
                        flows.yield(a.how)
                        return true
                    end }
                local out = { handed = handed, err = err and err.kind, msg = err and tostring(err) }
                s = s or err.summary or {}
                out.read, out.reported, out.synced, out.unreported = s.read, s.reported, s.synced, #(s.unreported or {})
                flows.say(out)
            }
        }

        # sync_stock of COUNT goods a page at concurrency N; the handler yields (HOW)
        location = /stock {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local client = flows.client(a)
                local handed = {}
                local s, err = client:sync_stock { count = tonumber(a.count) or 30, concurrency = tonumber(a.n) or 8,
                    handler = function(item)
                        handed[#handed + 1] = item.api_goods_id
                        flows.yield(a.how)
                        return true
                    end }
                local out = { handed = handed, err = err and tostring(err) }
                s = s or err.summary or {}
                out.synced, out.reported, out.resent = s.synced, s.reported, s.resent
                out.unreported = #(s.unreported or {})
                flows.say(out)
            }
        }

        # A scan of FROM..TO (windows of an hour, pages of 5, 4 in flight) left by `break`
        # after BREAK_AT rows; then a plain call on the same client, then the whole scan again
        location = /scan_break {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local client = flows.client(a)
                local function scan(upto)
                    local keys = {}
                    for row, err in client:scan { method = "SEARCH", page_size = 5, window = 3600, concurrency = 4,
                                                  lag = 0, from = tonumber(a.from), to = tonumber(a.to) } do
                        if not row then return keys, tostring(err) end
                        keys[#keys + 1] = row.rec_id
                        flows.yield(a.how)
                        if #keys == upto then break end
                    end
                    return keys
                end
                local first, ferr = scan(tonumber(a.break_at))
                local data, cerr = client:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0)
                local second, serr = scan()
                flows.say { first = first, ferr = ferr, call = data and "ok" or tostring(cerr),
                            second = second, serr = serr }
            }
        }

        # A scan left by `break` after BREAK_AT rows and closed (its state's close, as
        # LuaJIT's `for` does not), calls out; then the answers still coming in for it
        # while the request waits WAIT seconds
        location = /scan_close {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local answers = 0
                local client = flows.client(a, { on_response = function() answers = answers + 1 end })
                local n = 0
                local it, st = client:scan { method = "SEARCH", page_size = 5, window = 3600, concurrency = 4,
                                             lag = 0, from = tonumber(a.from), to = tonumber(a.to) }
                for row, err in it, st do
                    if not row then ngx.say(tostring(err)) return end
                    n = n + 1
                    if n == tonumber(a.break_at) then break end
                end
                st:close()
                local at_close = answers
                ngx.sleep(tonumber(a.wait))
                flows.say { rows = n, after_close = answers - at_close }
            }
        }

        # Two pushes of 40 orders on one client at once, each in a light thread of the
        # request's own, their iterators yielding on a socket
        location = /two_pushes {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local platform = dofile("ROOT/examples/sample_platform.lua")
                local client = flows.client(a)
                local function push(from, shop)
                    local list, i = platform.orders(from, from + 39), 0
                    local s, err = client:push_orders { shop_no = shop, batch = 10, concurrency = 4, orders = function()
                        flows.yield("socket")
                        i = i + 1
                        return list[i]
                    end }
                    s = s or err.summary
                    return { new = s.new, unreported = s.unreported, err = err and tostring(err), read = s.read,
                             changed = s.changed, calls = s.calls, failed = s.failed, invalid = s.invalid, i = i }
                end
                local from = tonumber(a.from)
                local t1 = ngx.thread.spawn(push, from, "s1")
                local t2 = ngx.thread.spawn(push, from + 40, "s1")
                local ok1, r1 = ngx.thread.wait(t1)
                local ok2, r2 = ngx.thread.wait(t2)
                flows.say { ok1 and r1 or tostring(r1), ok2 and r2 or tostring(r2) }
            }
        }

        # A scan whose loop pushes 40 orders on the same client at row 3, its windows out
        location = /scan_push {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local platform = dofile("ROOT/examples/sample_platform.lua")
                local client = flows.client(a)
                local keys, pushed = {}, nil
                for row, err in client:scan { method = "SEARCH", page_size = 5, window = 3600, concurrency = 4,
                                              lag = 0, from = tonumber(a.from), to = tonumber(a.to) } do
                    if not row then keys.err = tostring(err) break end
                    keys[#keys + 1] = row.rec_id
                    if #keys == 3 then
                        local s, err2 = client:push_orders { shop_no = "s1", batch = 10, concurrency = 4,
                            orders = platform.orders(tonumber(a.push_from), tonumber(a.push_from) + 39) }
                        s = s or err2.summary
                        pushed = { new = s.new, unreported = s.unreported, err = err2 and tostring(err2) }
                    end
                end
                flows.say { keys = keys, pushed = pushed }
            }
        }

        # call_many of 6 calls at 4 in flight whose 5th has an argument that cannot be sent
        location = /many_bad {
            content_by_lua_block {
                local client = flows.client(ngx.req.get_uri_args())
                local reqs = {}
                for i = 1, 6 do reqs[i] = { "sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0 } end
                reqs[5] = { "sales.StockSync.getSelfWaitSyncIdListOpen", function() end, 0 }
                local ok, err = pcall(client.call_many, client, reqs, { concurrency = 4 })
                flows.say { ok = ok, err = tostring(err) }
            }
        }

        # The same scan in a timer (as examples/openresty/background.lua runs the sync);
        # the request waits for its rows in the `flows` dict
        location = /scan_timer {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local dict = ngx.shared.flows
                local key = "scan" .. ngx.now() .. math.random()
                local ok, terr = ngx.timer.at(0, function(premature)
                    if premature then return end
                    local client = flows.client(a)
                    local keys = {}
                    for row, err in client:scan { method = "SEARCH", page_size = 5, window = 3600, concurrency = 4,
                                                  lag = 0, from = tonumber(a.from), to = tonumber(a.to) } do
                        if not row then keys.err = tostring(err) break end
                        keys[#keys + 1] = row.rec_id
                        flows.yield(a.how)
                    end
                    dict:set(key, require("wdt").json.encode(keys))
                end)
                assert(ok, terr)
                for _ = 1, 200 do
                    local v = dict:get(key)
                    if v then ngx.print(v) return end
                    ngx.sleep(0.02)
                end
                ngx.print("{\"err\":\"the timer did not finish\"}")
            }
        }
    }
}
]]

local missing = nginx.missing()
if missing then
  describe("flows with calls in flight inside nginx", function()
    pending("skipped: " .. missing)
  end)
  return
end

local sorted = fixtures.sorted

-- distinct values of a list, counted
local function distinct(t)
  local seen, n = {}, 0
  for _, v in ipairs(t) do
    if not seen[v] then seen[v], n = true, n + 1 end
  end
  return n
end

describe("flows with calls in flight inside nginx", function()
  local emu, srv

  local function tenant(sid) return emu:state().tenants[sid or SID] end
  local function get_json(path)
    local body = srv:get(path, 20)
    local ok, v = pcall(cjson.decode, body)
    assert(ok, body .. "\n" .. srv:log():sub(-3000))
    return v
  end

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = SECRET },
                  { sid = LIMITED, key = "lk", secret = "ls:lsalt", concurrency = 2 } },
      logistics = { [SID] = { pending = 0, shop_no = "s1" } } } }
    local conf = CONF:gsub("EMUPORT", tostring(emu.port)):gsub("EMU", emu.url)
    for name, value in pairs { SID = SID, KEY = KEY, SECRET = SECRET, SEARCH = SEARCH } do
      conf = conf:gsub('"' .. name .. '"', '"' .. value .. '"')
    end
    srv = nginx.start(conf)
  end)

  teardown(function()
    if srv then srv:stop() end
    if emu then emu:stop() end
  end)

  after_each(function() emu:faults {} end)

  it("pushes from an iterator that uses its own socket between orders, batches out", function()
    emu:faults { mode = "delay", delay_ms = 100, count = 1000, method = PUSH }
    local before = tenant().raw_trades
    local ans = get_json("/push?from=101&to=180&how=socket")
    assert.same({ new = 80, read = 80, calls = 8, unreported = 0 }, ans.push)
    local t = tenant()
    assert.equal(80, t.raw_trades - before)
    assert.is_true(t.in_flight.most >= 2, "the calls did not overlap")
  end)

  it("pushes under a rate budget that makes the flow wait, threads out; the budget kept", function()
    emu:faults { mode = "delay", delay_ms = 50, count = 1000, method = PUSH }
    local before = emu:state().calls[SID][PUSH] or 0
    local ans = get_json("/push?from=201&to=250&how=connect&rate=3")
    assert.same({ new = 50, read = 50, calls = 5, unreported = 0 }, ans.push)
    assert.is_true(ans.waits > 0, "the flow never waited for the budget")
    local st = emu:state()
    assert.equal(5, st.calls[SID][PUSH] - before)
    assert.equal(0, st.tenants[SID].rate_limited or 0)
  end)

  it("a push at 8 in flight against a limit of 2, its iterator yielding: paced down, every order once", function()
    emu:faults { mode = "delay", delay_ms = 30, count = 1000, method = PUSH }
    local before = tenant(LIMITED).raw_trades
    local ans = get_json("/push?sid=" .. LIMITED .. "&key=lk&secret=ls%3Alsalt&from=701&to=800&how=connect&n=8")
    assert.same({ new = 100, read = 100, unreported = 0 }, { new = ans.push.new, read = ans.push.read,
                                                             unreported = ans.push.unreported })
    local t = tenant(LIMITED)
    assert.equal(100, t.raw_trades - before)
    assert.equal(2, t.in_flight.most)
    assert.is_true(t.in_flight.refused > 0)
  end)

  it("sync_logistics with a yielding handler, pages read ahead: every row handed and acked once", function()
    emu:enqueue { sid = SID, logistics = 60, shop_no = "s1" }
    emu:faults { mode = "delay", delay_ms = 50, count = 1000, method = UPDATE }
    local before = tenant().logistics
    local ans = get_json("/logistics?how=sleep&page=10")
    assert.is_nil(ans.err)
    assert.same({ 60, 60, 60, 0 }, { ans.read, ans.reported, ans.synced, ans.unreported })
    assert.equal(60, #ans.handed)
    assert.equal(60, distinct(ans.handed))
    local q = tenant().logistics
    assert.same({ 0, 60, 0 }, { q.size, q.acked - before.acked, q.repeated - before.repeated })
  end)

  it("sync_logistics whose reports fail: stops, every row read reported or unreported, none twice", function()
    emu:enqueue { sid = SID, logistics = 30, shop_no = "s1" }
    emu:faults { mode = "http_500", count = 1000, method = UPDATE }
    local before = tenant().logistics
    local ans = get_json("/logistics?how=socket&page=10&retries=1")
    assert.equal("http", ans.err)
    assert.equal(ans.read, #ans.handed)
    assert.equal(#ans.handed, distinct(ans.handed))
    assert.equal(0, ans.reported)
    assert.equal(ans.read, ans.unreported)
    local q = tenant().logistics
    assert.same({ 30, 0, 0 }, { q.size, q.acked - before.acked, q.repeated - before.repeated })
    emu:faults {}
    -- the next run reports them all
    ans = get_json("/logistics?how=none&page=10")
    assert.same({ 30, 30, 0 }, { ans.read, ans.reported, ans.unreported })
    assert.equal(0, tenant().logistics.size)
  end)

  it("sync_stock at 8 against a seller's limit of 2, the handler yielding: every good reported once", function()
    emu:enqueue { sid = LIMITED, stock = 40 }
    emu:faults { mode = "delay", delay_ms = 30, count = 1000, method = "sales.StockSync.syncSuccess" }
    local ans = get_json("/stock?sid=" .. LIMITED .. "&key=lk&secret=ls%3Alsalt&how=sleep&n=8&count=20")
    assert.is_nil(ans.err)
    assert.same({ 40, 40, 0 }, { ans.synced, ans.reported, ans.unreported })
    assert.same({ 40, 40 }, { #ans.handed, distinct(ans.handed) })
    local t = tenant(LIMITED)
    assert.same({ 0, 40 }, { t.stock.size, t.stock.synced })
    assert.equal(2, t.in_flight.most)
    assert.is_true(ans.resent > 0)
  end)

  -- three windows of an hour, 15 rows each
  local function scan_rows(days_ago)
    local from = os.time() - days_ago * 86400
    from = from - from % 3600
    emu:control("POST", "rows", { sid = SID, method = SEARCH, count = 45, from = from, to = from + 3 * 3600 })
    return from, from + 3 * 3600
  end

  it("a scan left by break with windows read ahead, then a call and a whole scan on the same client", function()
    local from, to = scan_rows(200)
    emu:faults { mode = "delay", delay_ms = 100, count = 1000, method = SEARCH }
    local ans = get_json(("/scan_break?from=%d&to=%d&break_at=7&how=sleep"):format(from, to))
    assert.is_nil(ans.ferr)
    assert.is_nil(ans.serr)
    assert.equal("ok", ans.call)
    assert.equal(7, #ans.first)
    assert.same({ 45, 45 }, { #ans.second, distinct(ans.second) })
    assert.same(sorted(ans.second), ans.second)
  end)

  it("a scan in a timer with windows read ahead: every row once", function()
    local from, to = scan_rows(300)
    emu:faults { mode = "delay", delay_ms = 100, count = 1000, method = SEARCH }
    local ans = get_json(("/scan_timer?from=%d&to=%d&how=socket"):format(from, to))
    assert.is_nil(ans.err)
    assert.same({ 45, 45 }, { #ans, distinct(ans) })
  end)

  it("a push whose on_progress raises in a rate wait (in a light thread): stopped, slots given back", function()
    emu:faults { mode = "delay", delay_ms = 50, count = 1000, method = PUSH }
    local before = tenant().raw_trades
    local ans = get_json("/push?from=401&to=460&how=socket&rate=3&conc=2&raise_waiting=1&raise_at=61&again_from=51")
    assert.equal("callback", ans.push.err)
    -- the window's batches are unreported (settled with the stop), none lost from the count
    assert.same({ 0, 0, 0 }, { ans.stopped.changed, ans.stopped.failed, ans.stopped.invalid })
    assert.equal(ans.push.read, ans.push.new + ans.push.unreported)
    assert.is_true(tenant().raw_trades - before <= ans.push.read)
    -- the slots of the tries killed were given back
    assert.equal("ok", ans.call)
    assert.same({ read = 10, unreported = 0 }, { read = ans.again.read, unreported = ans.again.unreported })
  end)

  it("a scan left by break and closed, calls out: they are abandoned, not waited for", function()
    local from, to = scan_rows(400)
    emu:faults { mode = "delay", delay_ms = 300, count = 1000, method = SEARCH }
    local ans = get_json(("/scan_close?from=%d&to=%d&break_at=3&wait=0.45"):format(from, to))
    -- (left to end, they held the request or timer until answered: up to their timeouts
    -- and retries)
    assert.same({ rows = 3, after_close = 0 }, ans)
  end)

  it("two pushes at once on one client, in light threads of the request: every order once", function()
    emu:faults { mode = "delay", delay_ms = 100, count = 1000, method = PUSH }
    local before = tenant().raw_trades
    local ans = get_json("/two_pushes?from=501")
    for k = 1, 2 do
      assert.same({ read = 40, new = 40, unreported = 0, calls = 4 },
        { read = ans[k].read, new = ans[k].new, unreported = ans[k].unreported, calls = ans[k].calls })
    end
    assert.equal(80, tenant().raw_trades - before)
  end)

  it("a push inside a scan's loop on the same client, windows out: every row and order once", function()
    local from, to = scan_rows(500)
    emu:faults { { mode = "delay", delay_ms = 100, count = 1000, method = SEARCH },
                 { mode = "delay", delay_ms = 100, count = 1000, method = PUSH } }
    local before = tenant().raw_trades
    local ans = get_json(("/scan_push?from=%d&to=%d&push_from=601"):format(from, to))
    assert.is_nil(ans.keys.err)
    assert.same({ 45, 45 }, { #ans.keys, distinct(ans.keys) })
    assert.same({ new = 40, unreported = 0 }, ans.pushed)
    assert.equal(40, tenant().raw_trades - before)
  end)

  it("call_many with an argument that cannot be sent raises before anything is sent", function()
    local m = "sales.StockSync.getSelfWaitSyncIdListOpen"
    local before = (emu:state().calls[SID] or {})[m] or 0
    local ans = get_json("/many_bad")
    assert.same({ ok = false, err = "requests[5]: args[1]: cannot encode a function" }, ans)
    assert.equal(before, (emu:state().calls[SID] or {})[m] or 0)
  end)

  it("a push stopped with batches out (its iterator raised), then the client used again", function()
    emu:faults { mode = "delay", delay_ms = 200, count = 1000, method = PUSH }
    local before = tenant().raw_trades
    local ans = get_json("/push?from=301&to=360&how=sleep&raise_at=45&rate=1000&conc=3")
    assert.equal("source", ans.push.err)
    -- the batches out when it stopped are unreported (killed in flight: applied or not)
    assert.is_true(ans.push.unreported > 0)
    assert.same({ 44, 0, 0, 0 }, { ans.push.read, ans.stopped.changed, ans.stopped.failed, ans.stopped.invalid })
    assert.equal(44, ans.push.new + ans.push.unreported)
    -- their rate slots were given back: the next call does not wait for them
    assert.equal("ok", ans.call)
    assert.is_nil(ans.again.err)
    assert.same(0, ans.again.unreported)
    local t = tenant()
    assert.equal(60, t.raw_trades - before)
  end)
end)
