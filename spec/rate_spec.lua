-- wdt.rate: pacing under the seller's rate limit, against the emulator's per-tenant limit
-- with a short window (rate_limit.window) so that the specs stay fast; two processes
-- sharing one budget in a real redis-server.
local socket = require "socket"
local compat = require "spec.support.compat"
local sh = require "spec.support.sh"
local emulator = require "spec.support.emulator"
local redis_server = require "spec.support.redis"
local wdt = require "wdt"

local SID, KEY, APPSECRET = "ratesid", "ratekey", "ratesecret:ratesalt"
local WINDOW, PER_WINDOW = 1, 12

local function new_client(url, rate, extra)
  local o = { sid = SID, key = KEY, secret = APPSECRET, url = url, rate = rate, backoff = 0.01 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return wdt.client(o)
end

describe("rate pacing", function()
  local emu

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      stock = { [SID] = { pending = 20 } },
      logistics = { [SID] = { pending = 60, shop_no = "s1" } },
      rate_limit = { per_minute = PER_WINDOW, window = WINDOW },
    } }
  end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:reset() end)

  local function tenant() return emu:state().tenants[SID] end

  it("without `rate`, a sync against a rate-limited server fails once its retries are spent", function()
    local client = new_client(emu.url)
    local s, err = client:sync_stock { lock = false, handler = function() return true end }
    assert.is_nil(s)
    assert.equal(100, err.status)
    assert.is_true(tenant().stock.size > 0)
  end)

  it("a sync waits out each refused window and finishes with nothing lost, saying it waits", function()
    local client = new_client(emu.url, { window = WINDOW })
    local waits, t0 = 0, socket.gettime()
    local s = assert(client:sync_stock { lock = false, handler = function() return true end,
      on_progress = function(p) if p.waiting and p.waiting_for == "rate limited" then waits = waits + 1 end end })
    assert.equal(20, s.synced)
    assert.equal(0, #s.unreported)
    assert.equal(0, tenant().stock.size)
    assert.is_true(tenant().rate_limited > 0)
    assert.is_true(waits > 0)
    assert.is_true(socket.gettime() - t0 >= WINDOW)          -- slower: it waited
  end)

  it("per_minute keeps the calls under the limit: no call is refused", function()
    local client = new_client(emu.url, { window = WINDOW, per_minute = PER_WINDOW })
    local paced = 0
    local s = assert(client:sync_logistics { shop_no = "s1", lock = false, batch = 5, page_size = 10,
      handler = function() return true end,
      on_progress = function(p) if p.waiting_for == "pacing" then paced = paced + 1 end end })
    assert.equal(60, s.synced)
    assert.equal(0, tenant().rate_limited)
    assert.equal(0, tenant().logistics.repeated)
    assert.is_true(paced > 0)
  end)

  it("clients of one seller in a process share the budget", function()
    local a = new_client(emu.url, { window = WINDOW, per_minute = PER_WINDOW })
    local b = new_client(emu.url, { window = WINDOW, per_minute = PER_WINDOW })
    for _ = 1, PER_WINDOW do
      assert(a:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0))
      assert(b:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0))
    end
    assert.equal(0, tenant().rate_limited)
  end)

  it("a budget too short for the wait fails at once with kind 'rate_limited'", function()
    local client = new_client(emu.url, { window = 30, per_minute = 2, wait = 0.5 })
    assert(client:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0))
    assert(client:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0))
    local t0 = socket.gettime()
    local data, err = client:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0)
    assert.is_nil(data)
    assert.equal("rate_limited", err.kind)
    assert.equal("sales.StockSync.getSelfWaitSyncIdListOpen", err.method)
    assert.is_true(socket.gettime() - t0 < 0.5)
    -- and when the server refuses: the window wait does not fit the budget either
    emu:faults { mode = "rate_limit", count = 1 }
    local other = new_client(emu.url, { window = 30, wait = 1 })
    data, err = other:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0)
    assert.is_nil(data)
    assert.equal("rate_limited", err.kind)
    assert.equal(100, err.status)
  end)

  it("wdt sync stock waits out the limit (the command's rate budget is long) and exits 0", function()
    local dir = sh.tmpdir()
    sh.write_file(dir .. "/h.lua", "return function() return true end")
    local buf, errs = {}, {}
    local code = require("wdt.cli").main({ "sync", "stock", "--handler", dir .. "/h.lua", "--rate-window", "1" },
      { WDT_URL = emu.url, WDT_SID = SID, WDT_KEY = KEY, WDT_SECRET = APPSECRET, WDT_LOCK_DIR = dir .. "/locks" },
      { stdout = { write = function(_, s) buf[#buf + 1] = s return true end },
        stderr = { write = function(_, s) errs[#errs + 1] = s return true end }, stderr_tty = false })
    assert.equal(0, code, table.concat(errs))
    assert.truthy(table.concat(buf):find("synced    20", 1, true), table.concat(buf))
    assert.is_true(tenant().rate_limited > 0)
  end)

  it("checks the rate option", function()
    assert.has_error(function() new_client(emu.url, { per_minute = 0 }) end)
    assert.has_error(function() new_client(emu.url, { per_minute = 1.5 }) end)
    assert.has_error(function() new_client(emu.url, { window = 0 }) end)
    assert.has_error(function() new_client(emu.url, { backend = "disk" }) end)
    assert.has_error(function() new_client(emu.url, { backend = "redis" }) end)
    assert.has_error(function() new_client(emu.url, { perminute = 1 }) end)
    assert.has_error(function() new_client(emu.url, 60) end)
  end)

  describe("in Redis, for several processes", function()
    local r

    setup(function() r = redis_server.start() end)
    teardown(function() if r then r:stop() end end)

    it("two processes share one budget: no call is refused", function()
      local dir = sh.tmpdir()
      local code = sh.lua_paths() .. ([[
local wdt = require "wdt"
local c = wdt.client { sid = %q, key = %q, secret = %q, url = %q,
                       rate = { per_minute = %d, window = %d, redis = %q } }
for _ = 1, %d do assert(c:call("sales.StockSync.getSelfWaitSyncIdListOpen", 10, 0)) end
]]):format(SID, KEY, APPSECRET, emu.url, PER_WINDOW, WINDOW, r.url, PER_WINDOW * 2)
      sh.write_file(dir .. "/calls.lua", code)
      local t0 = socket.gettime()
      local cmd = ("lua5.4 %s & lua5.4 %s & wait"):format(sh.quote(dir .. "/calls.lua"), sh.quote(dir .. "/calls.lua"))
      assert(compat.execute(cmd))
      local calls = emu:state().calls[SID]["sales.StockSync.getSelfWaitSyncIdListOpen"]
      assert.equal(PER_WINDOW * 4, calls)
      assert.equal(0, tenant().rate_limited)
      -- 4 windows' worth of calls: at least 3 windows of waiting
      assert.is_true(socket.gettime() - t0 >= 3 * WINDOW)
    end)
  end)
end)
