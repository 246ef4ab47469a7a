-- Run locks and the rate budget inside nginx: a lua_shared_dict shared by two workers.
-- Needs build-luajit/wdt/core.so (`make build-luajit`).
local socket = require "socket"
local sh = require "spec.support.sh"
local emulator = require "spec.support.emulator"
local nginx = require "spec.support.nginx"

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
    lua_shared_dict wdt_locks 1m;
    lua_shared_dict wdt_rate 1m;
    server {
        listen 127.0.0.1:PORT reuseport;
        location = /ping { return 200; }
        # take the lock NAME (shm backend), hold it HOLD seconds, answer who we are
        location = /lock {
            content_by_lua_block {
                local lock = require "wdt.lock"
                local h, err = lock.acquire { name = ngx.var.arg_name, ttl = tonumber(ngx.var.arg_ttl) or 60,
                                              wait = tonumber(ngx.var.arg_wait) or 0 }
                if not h then ngx.say("locked ", err.message) return end
                ngx.say("held by ", ngx.worker.pid())
                ngx.flush(true)
                ngx.sleep(tonumber(ngx.var.arg_hold) or 0)
                h:release()
            }
        }
        # N acquire/release of one lock in this worker; the pending and running timers
        # before, right after, and once the worker had a moment to run its timers
        location = /churn {
            content_by_lua_block {
                local lock = require "wdt.lock"
                local t = ngx.timer
                local before = { t.pending_count(), t.running_count() }
                for _ = 1, tonumber(ngx.var.arg_n) do
                    local h = assert(lock.acquire { name = "churn", ttl = 60 })
                    h:release()
                end
                ngx.sleep(0.2)
                ngx.say(before[1], " ", before[2], " ", t.pending_count(), " ", t.running_count())
            }
        }
        # the worker's pending timers filled (for 1 s) by the application, then a lock taken
        # (once the worker holds no lock, so that its renewal timer has ended)
        location = /starve {
            content_by_lua_block {
                local lock = require "wdt.lock"
                -- no lock held here any more: the renewal timer ends (within a second)
                for _ = 1, 30 do
                    if ngx.timer.running_count() == 0 then break end
                    ngx.sleep(0.1)
                end
                local n = 0
                while ngx.timer.at(1, function() end) do n = n + 1 end
                local h, err = lock.acquire { name = "starved", ttl = 1 }
                ngx.say(n, " ", h and "held" or err.kind .. " " .. err.message)
                if h then h:release() end
            }
        }
        # N calls with the seller's rate budget in the wdt_rate dict
        location = /calls {
            content_by_lua_block {
                local wdt = require "wdt"
                local client = wdt.client { url = "LIMITED", sid = "apidevnew2", key = "test2-xx",
                    secret = "12345:abcde", rate = { per_minute = 6, window = 1, backend = "shm" } }
                for _ = 1, tonumber(ngx.var.arg_n) do
                    local data, err = client:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0)
                    if not data then ngx.say("error ", tostring(err)) return end
                end
                ngx.say("ok ", ngx.worker.pid())
            }
        }
        # one logistics sync of shop s1 with the default run lock (the wdt_locks dict)
        location = /sync {
            content_by_lua_block {
                local wdt = require "wdt"
                local client = wdt.client { url = "EMU", sid = "apidevnew2", key = "test2-xx",
                                            secret = "12345:abcde" }
                local s, err = client:sync_logistics { shop_no = "s1", batch = 5, handler = function()
                    ngx.sleep(0.01)
                    return true
                end }
                ngx.say(s and ("synced " .. s.synced) or ("error " .. err.kind .. " " .. err.message))
            }
        }
    }
}
]]

-- Without the LuaJIT build or nginx there is nothing to run: say so rather than fail in
-- setup (as spec/openresty_spec.lua does).
local missing = nginx.missing()
if missing then
  describe("wdt.lock inside nginx (shared dict, two workers)", function()
    pending("skipped: " .. missing)
  end)
  return
end

describe("wdt.lock inside nginx (shared dict, two workers)", function()
  local emu, limited, srv

  local function get(path, timeout) return srv:get(path, timeout) end
  local function concurrent(paths) return srv:concurrent(paths) end

  setup(function()
    emu = emulator.start()
    limited = emulator.start { config = {
      tenants = { { sid = "apidevnew2", key = "test2-xx", secret = "12345:abcde" } },
      rate_limit = { per_minute = 6, window = 1 } } }
    srv = nginx.start((CONF:gsub("LIMITED", limited.url):gsub("EMU", emu.url)))
  end)

  teardown(function()
    if srv then srv:stop() end
    if emu then emu:stop() end
    if limited then limited:stop() end
  end)

  it("one holder across the workers; free again after release", function()
    local answers = concurrent({ "/lock?name=a&hold=1", "/lock?name=a&hold=1", "/lock?name=a&hold=1",
                                 "/lock?name=a&hold=1" })
    local held, locked = 0, 0
    for _, a in ipairs(answers) do
      if a:find("^held by") then held = held + 1 end
      if a:find("^locked 'a' is held by process %d+ on ") then locked = locked + 1 end
    end
    assert.equal(1, held, table.concat(answers))
    assert.equal(3, locked, table.concat(answers))
    assert.truthy(get("/lock?name=a"):find("^held by"))
  end)

  it("two overlapping syncs of one shop: one runs, the other is refused; nothing reported twice", function()
    local answers = concurrent({ "/sync", "/sync" })
    table.sort(answers)
    assert.truthy(answers[1]:find("^error locked 'wdt.sync.logistics/apidevnew2/s1' is held by"), answers[1])
    assert.equal("synced 50\n", answers[2])
    local t = emu:state().tenants.apidevnew2.logistics
    assert.equal(0, t.repeated)
    assert.equal(50, t.acked)
  end)

  it("the rate budget is shared by the workers: no call is refused", function()
    -- the limited emulator allows 6 calls per 1 s window, as the clients' budget says;
    -- three requests at once (in both workers) make 27 calls
    local t0 = socket.gettime()
    local answers = concurrent({ "/calls?n=9", "/calls?n=9", "/calls?n=9" })
    for _, a in ipairs(answers) do assert.truthy(a:find("^ok"), a) end
    local t = limited:state()
    assert.equal(27, t.calls.apidevnew2["sales.StockSync.getSelfWaitSyncIdListOpen"])
    assert.equal(0, t.tenants.apidevnew2.rate_limited)
    assert.is_true(socket.gettime() - t0 >= 3)        -- 27 calls at 6 per second
  end)

  it("5,000 acquire/release leave no timer behind; a held lock is then still renewed", function()
    -- one worker: the churn and the lock held afterwards share its timers
    local before_p, before_r, after_p, after_r = get("/churn?n=5000"):match("^(%d+) (%d+) (%d+) (%d+)")
    assert.equal(before_p, after_p)
    assert.equal(before_r, after_r)
    for _ = 1, 3 do
      before_p, _, after_p = get("/churn?n=5000"):match("^(%d+) (%d+) (%d+) (%d+)")
      assert.equal(before_p, after_p)
    end
    -- more than lua_max_pending_timers (1024) acquires above: a lock with ttl 1 held 3 s is
    -- never taken by another request while its holder lives
    os.execute(("curl -s -m 60 -o %s %s &"):format(sh.quote(srv.prefix .. "/held"),
      sh.quote(("http://127.0.0.1:%d/lock?name=h&ttl=1&hold=3"):format(srv.port))))
    local t0, seen_held = socket.gettime(), false
    while socket.gettime() - t0 < 2.8 do
      local body = get("/lock?name=h")
      if body:find("^locked 'h' is held by") then seen_held = true
      else assert.is_false(seen_held, "taken while its holder lives: " .. body) end
      socket.sleep(0.1)
    end
    assert.is_true(seen_held)
  end)

  it("a lock whose renewal cannot be scheduled is not taken", function()
    local body = get("/starve")
    local filled, rest = body:match("^(%d+) (.*)$")
    assert.is_true(tonumber(filled) > 0)
    assert.matches("^locked 'starved' was free but cannot be kept: no timer to renew it %(too many pending timers%)",
      rest)
    socket.sleep(1.2)                 -- the timers fire: the lock can be taken and kept again
    assert.truthy(get("/lock?name=starved&ttl=1"):find("^held by"))
  end)

  it("the lock of a worker that died is taken over after its ttl", function()
    -- hold it long in one worker (the request goes on in the background)
    os.execute(("curl -s -m 60 -o /dev/null %s &"):format(
      sh.quote(("http://127.0.0.1:%d/lock?name=d&ttl=1&hold=30"):format(srv.port))))
    local holder
    for _ = 1, 100 do
      holder = get("/lock?name=d"):match("^locked 'd' is held by process (%d+) on ")
      if holder then break end
      socket.sleep(0.05)
    end
    assert.is_string(holder)
    -- while it lives, the worker's timer renews it beyond its ttl
    socket.sleep(1.5)
    assert.truthy(get("/lock?name=d"):find("^locked"))
    os.execute("kill -KILL " .. holder)
    local t0 = socket.gettime()
    local body = get("/lock?name=d&wait=5")
    assert.truthy(body:find("^held by"), body)
    assert.is_true(socket.gettime() - t0 <= 5)
  end)
end)
