-- wdt.lock: run locks on files and in Redis, with real processes (and a real redis-server);
-- the sync loops and `wdt sync` holding them. The nginx shared-dict locks are in
-- spec/openresty_spec.lua.
local socket = require "socket"
local sh = require "spec.support.sh"
local emulator = require "spec.support.emulator"
local redis_server = require "spec.support.redis"
local wdt = require "wdt"
local lock = require "wdt.lock"

local ROOT = sh.repo_root()
local LUA = "lua5.4"
local PATHS = sh.lua_paths()

-- Runs Lua `code` in a child process in the background; returns its pid.
local function spawn(code, out)
  local cmd = ("%s -e %s >%s 2>&1 & echo $!"):format(LUA, sh.quote(PATHS .. code), sh.quote(out or "/dev/null"))
  local p = io.popen(cmd)
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

local function wait_for_file(path, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  while socket.gettime() < deadline do
    local f = io.open(path, "r")
    if f then f:close() return true end
    socket.sleep(0.02)
  end
  return false
end

local function kill(pid, sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "KILL", pid))
  sh.wait_gone(pid, 5, 0.01)
end

describe("wdt.lock", function()
  local dir

  before_each(function()
    dir = sh.tmpdir() .. "/locks"
  end)

  describe("file backend", function()
    it("refuses a second holder, naming the holder, and is free again after release", function()
      local a = assert(lock.acquire { name = "wdt.sync.logistics/sid/s1", dir = dir })
      local b, err = lock.acquire { name = "wdt.sync.logistics/sid/s1", dir = dir }
      -- flock locks are per open file: the same process opening the file again is refused too
      assert.is_nil(b)
      assert.equal("locked", err.kind)
      assert.truthy(err.message:find("wdt.sync.logistics/sid/s1", 1, true), err.message)
      assert.truthy(err.message:find("process %d+"), err.message)
      -- another name is another lock
      local c = assert(lock.acquire { name = "wdt.sync.logistics/sid/s2", dir = dir })
      c:release()
      a:release()
      a:release()                                     -- idempotent
      b = assert(lock.acquire { name = "wdt.sync.logistics/sid/s1", dir = dir })
      b:release()
    end)

    it("makes its folder 0700 and refuses one that others can enter", function()
      local h = assert(lock.acquire { name = "x", dir = dir })
      h:release()
      assert.equal(tonumber("700", 8), require("wdt.core").stat(dir).mode)
      local open = dir .. "-open"
      os.execute("mkdir -m 755 " .. sh.quote(open))
      local none, err = lock.acquire { name = "x", dir = open }
      assert.is_nil(none)
      assert.equal("store", err.kind)
      assert.truthy(err.message:find("mode 0700", 1, true), err.message)
    end)

    it("keeps names apart that differ only in characters a file name cannot hold", function()
      assert.are_not.equal(lock.file_name("a/b"), lock.file_name("a_b"))
      assert.are_not.equal(lock.file_name("a/b"), lock.file_name("a%2Fb"))
      assert.equal("wdt.sync.stock%2Fs1.lock", lock.file_name("wdt.sync.stock/s1"))
    end)

    it("default folder: $WDT_LOCK_DIR, else /tmp/wdt-locks-UID whatever $XDG_RUNTIME_DIR says", function()
      local env = {}
      local function get(k) return env[k] end
      local plain = lock.default_dir(get)
      assert.truthy(plain:match("^/tmp/wdt%-locks%-%d+$"))
      -- a login shell has XDG_RUNTIME_DIR, cron has not: both must meet at one lock
      env.XDG_RUNTIME_DIR = "/run/user/1000"
      assert.equal(plain, lock.default_dir(get))
      env.WDT_LOCK_DIR = "/var/lock/wdt"
      assert.equal("/var/lock/wdt", lock.default_dir(get))
    end)

    it("waits with `wait` until the holder releases, and takes over from a killed holder", function()
      local ready = dir .. ".ready"
      local pid = spawn(("local h = assert(require('wdt.lock').acquire{name='w', dir=%q})"
        .. " io.open(%q, 'w'):close() require('socket').sleep(0.8) h:release()"
        .. " require('socket').sleep(30)"):format(dir, ready))
      assert.is_true(wait_for_file(ready))
      local t0 = socket.gettime()
      local none, err = lock.acquire { name = "w", dir = dir }
      assert.is_nil(none)
      assert.truthy(err.message:find("process " .. pid, 1, true), err.message)
      local h = assert(lock.acquire { name = "w", dir = dir, wait = 10 })
      assert.is_true(socket.gettime() - t0 >= 0.5)
      h:release()
      kill(pid)

      os.remove(ready)
      pid = spawn(("local h = assert(require('wdt.lock').acquire{name='k', dir=%q})"
        .. " io.open(%q, 'w'):close() require('socket').sleep(30)"):format(dir, ready))
      assert.is_true(wait_for_file(ready))
      assert.is_nil((lock.acquire { name = "k", dir = dir }))
      kill(pid)
      h = assert(lock.acquire { name = "k", dir = dir })   -- the kernel freed it at once
      h:release()
    end)

    it("gives up after `wait` seconds with kind 'locked'", function()
      local a = assert(lock.acquire { name = "g", dir = dir })
      local t0 = socket.gettime()
      local none, err = lock.acquire { name = "g", dir = dir, wait = 0.5 }
      local took = socket.gettime() - t0
      assert.is_nil(none)
      assert.equal("locked", err.kind)
      assert.is_true(took >= 0.5 and took < 5, tostring(took))
      assert.truthy(err.message:find("waited", 1, true))
      a:release()
    end)

    it("raises on bad arguments, naming them", function()
      assert.has_error(function() lock.acquire { dir = dir } end,
        "bad argument 'name' to 'wdt.lock.acquire' (a non-empty string is required)")
      assert.has_error(function() lock.acquire { name = "x", backend = "disk" } end,
        "bad argument 'backend' to 'wdt.lock.acquire' ('file', 'shm' or 'redis' expected)")
      assert.has_error(function() lock.acquire { name = "x", wait = -1 } end)
      assert.has_error(function() lock.acquire { name = "x", backend = "redis" } end,
        "bad argument 'redis' to 'wdt.lock.acquire' (a redis:// URL is required)")
    end)
  end)

  describe("redis backend", function()
    local r

    setup(function() r = redis_server.start() end)

    it("(spec/support/redis) a free port taken by another redis-server first: its own on another port", function()
      -- specs running at once may be handed one port: the second redis-server cannot bind
      -- it, and the first one's PONG must not pass for its own (their locks would collide)
      local picks, real = 0, require("spec.support.emulator").free_port
      require("spec.support.emulator").free_port = function()
        picks = picks + 1
        return picks == 1 and r.port or real()
      end
      local ok, other = pcall(redis_server.start)
      require("spec.support.emulator").free_port = real
      assert.is_true(ok, tostring(other))
      assert.is_true(other.port ~= r.port)
      assert.equal("+OK", other:command("SET", "whose", "other"))
      assert.equal("$-1", r:command("GET", "whose"))
      other:stop()
    end)
    teardown(function() if r then r:stop() end end)

    it("one holder across processes; a killed holder's lock is taken over after its ttl", function()
      local ready = dir .. ".redis.ready"
      os.execute("mkdir -p " .. sh.quote(dir))
      local pid = spawn(("local h = assert(require('wdt.lock').acquire{name='wdt.sync.stock/s', redis=%q, ttl=1})"
        .. " io.open(%q, 'w'):close() require('socket').sleep(30)"):format(r.url, ready))
      assert.is_true(wait_for_file(ready))
      local none, err = lock.acquire { name = "wdt.sync.stock/s", redis = r.url }
      assert.is_nil(none)
      assert.equal("locked", err.kind)
      assert.truthy(err.message:find("process " .. pid .. " on ", 1, true), err.message)
      kill(pid)
      local t0 = socket.gettime()
      local h = assert(lock.acquire { name = "wdt.sync.stock/s", redis = r.url, wait = 5, ttl = 1 })
      assert.is_true(socket.gettime() - t0 < 3)
      -- renewed by touch; released only by its holder
      socket.sleep(0.4)
      assert.is_true(h:touch())
      h:release()
      assert.equal("$-1", r:command("GET", "wdt.sync.stock/s"))    -- gone from Redis
      h = assert(lock.acquire { name = "wdt.sync.stock/s", redis = r.url })
      h:release()
    end)

    it("a lock that expired and was taken over is reported lost by touch", function()
      local h = assert(lock.acquire { name = "lost", redis = r.url, ttl = 0.3 })
      socket.sleep(0.5)
      local other = assert(lock.acquire { name = "lost", redis = r.url, ttl = 5 })
      local ok, err = h:touch(true)
      assert.is_nil(ok)
      assert.equal("locked", err.kind)
      h:release()                                  -- does not delete the new holder's lock
      assert.is_nil((lock.acquire { name = "lost", redis = r.url }))
      other:release()
    end)

    it("says so when Redis cannot be reached", function()
      local none, err = lock.acquire { name = "x", redis = "redis://127.0.0.1:" .. emulator.free_port() }
      assert.is_nil(none)
      assert.equal("redis", err.kind)
    end)
  end)
end)

describe("run locks of the sync loops", function()
  local emu, client, dir

  setup(function()
    emu = emulator.start()
    client = wdt.client { sid = emulator.DEMO.sid, key = emulator.DEMO.key,
                          secret = emulator.DEMO.appsecret, url = emu.url }
  end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function()
    emu:reset()
    dir = sh.tmpdir() .. "/locks"
  end)

  it("sync_logistics holds the seller+shop lock; a second run gets kind 'locked' at once", function()
    local inner_err
    local summary = assert(client:sync_logistics { shop_no = "s1", lock = { dir = dir },
      handler = function()
        if inner_err == nil then
          local s, e = client:sync_logistics { shop_no = "s1", lock = { dir = dir },
                                               handler = function() return true end }
          assert.is_nil(s)
          inner_err = e
          -- another shop is another lock
          assert(client:sync_logistics { shop_no = "s2", lock = { dir = dir }, handler = function() return true end })
        end
        return true
      end })
    assert.equal(50, summary.synced)
    assert.equal("locked", inner_err.kind)
    assert.truthy(inner_err.message:find("wdt.sync.logistics/apidevnew2/s1", 1, true), inner_err.message)
    -- released at the end: a new run takes it
    assert(client:sync_logistics { shop_no = "s1", lock = { dir = dir }, handler = function() return true end })
  end)

  it("sync_stock holds the seller's lock, released also when the handler raises", function()
    local h = assert(lock.acquire { name = "wdt.sync.stock/apidevnew2", dir = dir })
    local s, err = client:sync_stock { lock = { dir = dir }, handler = function() return true end }
    assert.is_nil(s)
    assert.equal("locked", err.kind)
    assert.equal(20, emu:state().tenants.apidevnew2.stock.size)      -- nothing touched
    h:release()
    s = assert(client:sync_stock { lock = { dir = dir }, handler = function(g)
      if g.api_goods_id % 2 == 0 then error("boom") end
      return true
    end })
    assert.equal(20, s.read)
    h = assert(lock.acquire { name = "wdt.sync.stock/apidevnew2", dir = dir })
    h:release()
  end)

  it("lock = false takes none; a bad lock option raises", function()
    local h = assert(lock.acquire { name = "wdt.sync.stock/apidevnew2", dir = dir })
    assert(client:sync_stock { lock = false, handler = function() return true end })
    h:release()
    assert.has_error(function() client:sync_stock { lock = "yes", handler = print } end)
  end)
end)

describe("wdt sync with run locks (two processes)", function()
  local emu, dir, cfg, shell_a, decoy
  local SID, KEY, APPSECRET = "locksid", "lockkey", "locksecret:locksalt"
  local ROWS = 400

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = ROWS, shop_no = "s1" } },
    } }
    dir = sh.tmpdir()
    -- slow enough that the two runs overlap
    sh.write_file(dir .. "/handler.lua",
      "local socket = require 'socket' return function() socket.sleep(0.01) return true end")
    cfg = ("WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s WDT_LOCK_DIR=%s"):format(
      sh.quote(emu.url), SID, KEY, sh.quote(APPSECRET), sh.quote(dir .. "/locks"))
    -- another checkout's run on a shared machine, by its command line: not ours to kill
    local p = io.popen("bash -c 'exec -a \"" .. LUA .. " bin/wdt sync logistics --shop s1\" sleep 600'"
      .. " >/dev/null 2>&1 & echo $!")
    decoy = tonumber(p:read("*l"))
    p:close()
  end)
  teardown(function()
    if decoy then kill(decoy) end
    if emu then emu:stop() end
  end)

  local function start_sync(name, extra)
    local p = io.popen(("(cd %s && %s %s bin/wdt sync logistics --shop s1 --handler %s %s >%s 2>&1;"
      .. " echo $? >%s) & echo $!")
      :format(sh.quote(ROOT), cfg, LUA, sh.quote(dir .. "/handler.lua"), extra or "",
              sh.quote(dir .. "/" .. name .. ".out"), sh.quote(dir .. "/" .. name .. ".rc")))
    local pid = tonumber(p:read("*l"))
    p:close()
    return pid
  end

  local function result(name)
    assert.is_true(wait_for_file(dir .. "/" .. name .. ".rc", 60))
    socket.sleep(0.05)
    return tonumber(sh.read_file(dir .. "/" .. name .. ".rc"):match("%d+")), sh.read_file(dir .. "/" .. name .. ".out")
  end

  local function tenant() return emu:state().tenants[SID].logistics end

  local function wait_reported(n)
    for _ = 1, 1000 do
      if tenant().acked >= n then return end
      socket.sleep(0.01)
    end
  end

  -- every case: a fresh queue, then run "a" until it reported its first rows
  before_each(function()
    emu:reset()
    os.remove(dir .. "/a.rc")
    os.remove(dir .. "/b.rc")
    shell_a = start_sync("a")      -- the shell that runs "a" and waits for it
    wait_reported(1)
  end)

  it("a second run exits at once with code 75; nothing goes out twice", function()
    local t0 = socket.gettime()
    start_sync("b")
    local code_b, out_b = result("b")
    assert.equal(75, code_b, out_b)
    assert.is_true(socket.gettime() - t0 < 5)
    assert.truthy(out_b:find("another 'wdt sync logistics' is running", 1, true), out_b)
    assert.truthy(out_b:find("held by process %d+"), out_b)
    local code_a, out_a = result("a")
    assert.equal(0, code_a, out_a)
    local t = tenant()
    assert.equal(0, t.repeated)
    assert.equal(ROWS, t.acked)
    assert.equal(0, t.size)
  end)

  it("--wait waits for the running one, then finds nothing left", function()
    start_sync("b", "--wait 60")
    local code_a = result("a")
    local code_b, out_b = result("b")
    assert.equal(0, code_a)
    assert.equal(0, code_b, out_b)
    assert.truthy(out_b:find("read 0", 1, true) or out_b:find("0 rows", 1, true), out_b)
    assert.equal(0, tenant().repeated)
    assert.equal(ROWS, tenant().acked)
  end)

  it("a killed run's lock is taken over by the next run", function()
    -- the lua process itself: the child of the shell this spec started for "a" (never a
    -- process found by its command line, which could be another checkout's)
    local p = io.popen(("pgrep -P %d -x %s"):format(shell_a, LUA))
    local lua_pid = tonumber(p:read("*l"))
    assert.is_nil(p:read("*l"))                    -- exactly one
    p:close()
    assert.is_number(lua_pid)
    kill(lua_pid)
    assert.is_true(sh.alive(decoy))
    result("a")
    start_sync("b")
    local code_b, out_b = result("b")
    assert.equal(0, code_b, out_b)
    assert.equal(0, tenant().size)
  end)
end)
