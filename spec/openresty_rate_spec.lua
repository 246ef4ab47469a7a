-- The rate budget inside nginx (backend "shm"): a wdt_rate dict too small for its sellers
-- never lets a seller over its budget (the emulator counts and refuses every call over
-- it) and says it is full; a killed worker's concurrency slots free themselves after the
-- call timeout plus a margin; the dict size rule of doc/openresty.md holds.
-- Needs build-luajit/wdt/core.so (`make build-luajit`).
local socket = require "socket"
local sh = require "spec.support.sh"
local emulator = require "spec.support.emulator"
local nginx = require "spec.support.nginx"

local KEY, SECRET = "rate-key", "rate-secret:rate-salt"
local SELLERS = 100           -- more than the 16 KB dict below holds budgets for
local PER_WINDOW = 3          -- calls per window, at the emulator (5 s) and in the budgets (10 s)
local TIMEOUT = 2             -- the calls' timeout in the concurrency case

local function shm_margin() return require("wdt.rate_shm").SLOT_MARGIN end

local CONF = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 2;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path temp/body;
    lua_package_path "ROOT/src/?.lua;ROOT/src/?/init.lua;;";
    lua_package_cpath "ROOT/build-luajit/?.so;;";
    lua_shared_dict wdt_rate 16k;
    lua_shared_dict wdt_rate_rounds 16k;
    lua_shared_dict wdt_rate_probe 256k;
    lua_shared_dict wdt_rate_big 1m;
    server {
        listen 127.0.0.1:PORT reuseport;
        location = /ping { return 200; }
        # N calls of seller SID under its budget (PM per WINDOW s, default 1; CONC in flight)
        # in the dict DICT (default wdt_rate)
        location = /calls {
            content_by_lua_block {
                local wdt = require "wdt"
                local a = ngx.req.get_uri_args()
                local client = wdt.client { url = "EMU", sid = a.sid, key = "KEY", secret = "SECRET",
                    timeout = tonumber(a.timeout) or 5, retries = 1,
                    rate = { per_minute = tonumber(a.pm), concurrency = tonumber(a.conc),
                             window = tonumber(a.window) or 1, dict = a.dict,
                             backend = "shm", wait = tonumber(a.wait) } }
                ngx.say("pid ", ngx.worker.pid())
                ngx.flush(true)
                for _ = 1, tonumber(a.n) do
                    local data, err = client:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0)
                    if not data then
                        ngx.say("error ", err.kind, " ", tostring(err.limit), " ", tostring(err.retryable), " ",
                                err.message)
                        return
                    end
                end
                ngx.say("ok")
            }
        }
        # How many sellers' full budgets (every bucket of a 60 s window written, CONC slots
        # held) the 256 KB probe dict holds, with sids of LEN characters
        location = /fill {
            content_by_lua_block {
                local rate = require "wdt.rate"
                local shm = require "wdt.rate_shm"
                local backend = shm.backend(rate)
                local conc, len = tonumber(ngx.var.arg_conc), tonumber(ngx.var.arg_len)
                local o = { dict = "wdt_rate_probe", per_minute = 1000, window = 60,
                            concurrency = conc > 0 and conc or nil }
                ngx.shared.wdt_rate_probe:flush_all()
                ngx.shared.wdt_rate_probe:flush_expired()
                local span, real_now = 60 * (1 + rate.MARGIN), rate.now
                local w, t0 = span / shm.BUCKETS, real_now()
                local function take(key, b, member)
                    rate.now = function() return t0 + b * w end
                    local wait, got = backend.take(key, o, member, span, 30)
                    rate.now = real_now
                    return wait, got
                end
                for s = 1, 100000 do
                    local key = ("wdt.rate/%s/60"):format(("%0" .. len .. "d"):format(s))
                    local wait, got
                    for b = 0, shm.BUCKETS + 2 do
                        wait, got = take(key, b, "m" .. b)
                        if wait == nil then break end
                        backend.give(key, o, "m" .. b, got)
                    end
                    for i = 1, conc do
                        if wait == nil then break end
                        wait, got = take(key, shm.BUCKETS + 2, "held" .. i)
                    end
                    if wait == nil then
                        ngx.say(s - 1, " ", ngx.shared.wdt_rate_probe:capacity(), " ", got.kind)
                        return
                    end
                end
            }
        }
    }
}
]]

local missing = nginx.missing()
if missing then
  describe("the rate budget inside nginx (shared dict)", function()
    pending("skipped: " .. missing)
  end)
  return
end

describe("the rate budget inside nginx (shared dict)", function()
  local emu, srv

  setup(function()
    local tenants = { { sid = "kc", key = KEY, secret = SECRET } }
    for i = 1, SELLERS do tenants[#tenants + 1] = { sid = "seller" .. i, key = KEY, secret = SECRET } end
    emu = emulator.start { config = { tenants = tenants,
                                      rate_limit = { per_minute = PER_WINDOW, window = 5 } } }
    srv = nginx.start((CONF:gsub("EMU", emu.url):gsub("KEY", KEY):gsub("SECRET", SECRET)))
  end)

  teardown(function()
    if srv then srv:stop() end
    if emu then emu:stop() end
  end)

  it("a dict too small for its sellers never lets one over its budget: it is full, and says so", function()
    -- one seller after the other (no timing involved: the window is long, its counters
    -- outlive the run), each trying one call more than its budget without waiting
    local spent, full = 0, 0
    for i = 1, SELLERS do
      local a = srv:get(("/calls?sid=seller%d&n=%d&pm=%d&window=10&wait=0"):format(i, PER_WINDOW + 1, PER_WINDOW))
      if a:find("\nerror rate_limited per_minute true the budget of 3 calls per 10s is spent", 1, true) then
        assert.equal(0, full, "a seller fit after the dict was full: " .. a)
        spent = spent + 1
      elseif a:find("\nerror shm_full nil false lua_shared_dict 'wdt_rate' %(%d+ KB%) is full") then
        full = full + 1
      else error("unexpected answer: " .. a) end
    end
    assert.is_true(spent > 0, "no seller got its calls through")
    assert.is_true(full > 0, "the dict held every budget: make it smaller or add sellers")
    -- at the emulator: never more than the budget, and the whole budget for those that fit
    local state = emu:state()
    for i = 1, SELLERS do
      local calls = (state.calls["seller" .. i] or {})["sales.StockSync.getSelfWaitSyncIdListOpen"] or 0
      assert.is_true(calls <= PER_WINDOW, "seller" .. i .. " went over its budget: " .. calls)
      if i <= spent then assert.equal(PER_WINDOW, calls) end
      if os.getenv("WDT_SPEC_VERBOSE") and i == SELLERS then
        io.stderr:write(("\n%d sellers fit, %d did not\n"):format(spent, full))
      end
      assert.equal(0, state.tenants["seller" .. i].rate_limited)
    end
    -- logged once per worker (two workers), naming the size to declare
    local _, lines = srv:log():gsub("lua_shared_dict 'wdt_rate' %(%d+ KB%) is full[^\n]*"
      .. "e%.g%. `lua_shared_dict wdt_rate %d+k;`", "")
    assert.is_true(lines >= 1 and lines <= 2, srv:log())
  end)

  it("sellers taking turns in a full dict: none goes over (a full dict evicted the others' windows)", function()
    -- round after round, one call of each seller: once the dict is full, a write that
    -- evicts instead of failing drops the windows of the sellers before, and they start
    -- afresh in the next round (a 300 s window: the rounds end well within it, however slow)
    emu:reset()
    local seen = {}
    for _ = 1, PER_WINDOW + 1 do
      for i = 1, SELLERS do
        local a = srv:get(("/calls?sid=seller%d&n=1&pm=%d&window=300&wait=0&dict=wdt_rate_rounds")
          :format(i, PER_WINDOW))
        local outcome = a:match("\nok\n$") and "ok" or a:match("\nerror (%S+ %S+)")
        assert.truthy(outcome == "ok" or outcome == "rate_limited per_minute" or outcome == "shm_full nil", a)
        seen[outcome] = true
      end
    end
    local outcomes = {}
    for k in pairs(seen) do outcomes[#outcomes + 1] = k end
    table.sort(outcomes)
    assert.is_true(seen.ok and seen["shm_full nil"] and seen["rate_limited per_minute"] or false,
      "outcomes seen: " .. table.concat(outcomes, ", "))
    local state = emu:state()
    for i = 1, SELLERS do
      local calls = (state.calls["seller" .. i] or {})["sales.StockSync.getSelfWaitSyncIdListOpen"] or 0
      assert.is_true(calls <= PER_WINDOW, "seller" .. i .. " went over its budget: " .. calls)
    end
  end)

  it("a dict sized by doc/openresty.md's rule holds that many sellers' full windows", function()
    local shm = require "wdt.rate_shm"
    for _, case in ipairs { { conc = 0, len = 10 }, { conc = 8, len = 10 }, { conc = 4, len = 40 } } do
      local n, capacity, kind = srv:get(("/fill?conc=%d&len=%d"):format(case.conc, case.len))
        :match("^(%d+) (%d+) (%S+)")
      assert.equal("shm_full", kind, srv:log())
      -- the rule: BYTES_PER_BUDGET + BYTES_PER_SLOT * concurrency per seller, on top of
      -- the dict's own 32 KB or so
      local key_len = #("wdt.rate/" .. ("x"):rep(case.len) .. "/60")
      local rule = math.floor((tonumber(capacity) - 32 * 1024) / shm.size_hint(case.conc, key_len))
      assert.is_true(tonumber(n) >= rule, ("%d sellers fit, the rule says %d"):format(n, rule))
      assert.is_true(tonumber(n) <= 2 * rule, ("%d sellers fit, the rule says only %d"):format(n, rule))
    end
  end)

  it("a killed worker's concurrency slots are free again after the call timeout and a margin", function()
    -- two calls in flight, each delayed 20 s by the emulator (the client gives up after
    -- TIMEOUT), then both workers killed while they wait
    emu:faults { mode = "delay", count = 2, delay_ms = 20000 }
    local q = ("/calls?sid=kc&n=1&conc=2&timeout=%d&dict=wdt_rate_big"):format(TIMEOUT)
    for i = 1, 2 do
      os.execute(("curl -s -N -m 60 -o %s %s &"):format(sh.quote(srv.prefix .. "/kc" .. i),
        sh.quote(("http://127.0.0.1:%d%s"):format(srv.port, q))))
    end
    local pids = {}
    for _ = 1, 100 do
      pids = {}
      for i = 1, 2 do pids[#pids + 1] = (sh.read_file(srv.prefix .. "/kc" .. i) or ""):match("^pid (%d+)") end
      if #pids == 2 and #emu:state().faults == 0 then break end
      socket.sleep(0.05)
    end
    assert.equal(2, #pids)
    os.execute("kill -KILL " .. pids[1] .. " " .. pids[2] .. " 2>/dev/null")
    local killed = socket.gettime()
    local first = srv:get(q .. "&wait=0")
    assert.truthy(first:find("\nerror rate_limited concurrency true all 2 concurrent calls of the budget are in flight",
      1, true), first)
    local answer
    repeat
      socket.sleep(0.25)
      answer = srv:get(q .. "&wait=0")
    until answer:find("\nok\n$") or socket.gettime() - killed > TIMEOUT + shm_margin() + 5
    local took = socket.gettime() - killed
    assert.truthy(answer:find("\nok\n$"), answer)
    assert.is_true(took <= TIMEOUT + shm_margin() + 1, ("free again only after %.1f s"):format(took))
  end)
end)
