-- The run locks of the library's push and scan (issue 11: a sync, push or scan holds a lock
-- per seller + shop + flow for its whole run): client:push_* with `source`/`state` and
-- client:scan with a checkpoint take one by default, as the sync loops do; `lock` as theirs.
-- (The CLI's: spec/push_cli_spec.lua, spec/scan_cli_spec.lua; wdt.lock itself: lock_spec.)
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local redis_server = require "spec.support.redis"
local sh = require "spec.support.sh"
local store = require "wdt.store"
local lock = require "wdt.lock"

local platform = dofile(sh.repo_root() .. "/examples/sample_platform.lua")
local SID = fixtures.SID
local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"

local orders = platform.orders

local pages_of = fixtures.pages_of

describe("run locks of push and scan", function()
  local emu, client, dir, locks
  setup(function()
    emu = emulator.start { config = { tenants = { { sid = SID, key = fixtures.KEY, secret = fixtures.APPSECRET } },
                                      logistics = { [SID] = { pending = 0, shop_no = "s1" } } } }
    client = fixtures.client(emu)
  end)
  teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
  end)
  before_each(function()
    emu:reset()
    emu:faults {}
    dir = sh.tmpdir()
    locks = dir .. "/locks"
  end)
  after_each(function() os.execute("rm -rf " .. sh.quote(dir)) end)

  local function raw_trades() return emu:state().tenants[SID].raw_trades end
  local function hold(name) return assert(lock.acquire { name = name, dir = locks }) end

  describe("client:push_orders", function()
    local NAME = "wdt.push.orders/" .. SID .. "/s1"

    it("with a source: the lock held by another run is kind 'locked', and nothing is pushed", function()
      local held = hold(NAME)
      local state = store.file(dir .. "/state.json")
      local s, err = client:push_orders { shop_no = "s1", source = pages_of(orders(1, 30), 10), state = state,
                                          lock = { dir = locks } }
      assert.is_nil(s)
      assert.equal("locked", err.kind)
      assert.matches("'" .. NAME .. "' is held by process", err.message, 1, true)
      assert.equal(0, raw_trades())
      assert.is_nil(state:load())                    -- the state untouched
      -- another shop or another flow is another lock
      assert(client:push_refunds { shop_no = "s1", source = function() return nil end,
                                   state = store.file(dir .. "/r.json"), lock = { dir = locks } })
      held:release()
      s = assert(client:push_orders { shop_no = "s1", source = pages_of(orders(1, 30), 10), state = state,
                                      lock = { dir = locks } })
      assert.equal(30, s.new)
      assert.equal(30, raw_trades())
    end)

    it("holds the lock for the whole run and lets go of it at the end, however it ends", function()
      local state = store.file(dir .. "/state.json")
      local during = {}
      local s = assert(client:push_orders { shop_no = "s1", source = pages_of(orders(1, 30), 10), state = state,
        lock = { dir = locks }, on_progress = function()
          local h, err = lock.acquire { name = NAME, dir = locks }
          if h then h:release() end
          during[#during + 1] = h and "free" or err.kind
        end })
      assert.equal(30, s.new)
      assert.is_true(#during >= 3)
      for _, v in ipairs(during) do assert.equal("locked", v) end
      hold(NAME):release()                            -- free again
      -- a source that raises ends the run: the lock is let go of too
      local _, err = client:push_orders { shop_no = "s1", source = function() error("platform down") end,
                                          state = store.file(dir .. "/s2.json"), lock = { dir = locks } }
      assert.equal("source", err.kind)
      hold(NAME):release()
    end)

    it("a list push takes no lock unless asked; lock = false takes none with a source", function()
      local held = hold(NAME)
      local s = assert(client:push_orders { shop_no = "s1", orders = orders(1, 3) })
      assert.equal(3, s.new)
      local _, err = client:push_orders { shop_no = "s1", orders = orders(4, 6), lock = { dir = locks } }
      assert.equal("locked", err.kind)
      assert.equal(3, raw_trades())
      s = assert(client:push_orders { shop_no = "s1", source = pages_of(orders(4, 6), 10),
                                      state = store.file(dir .. "/state.json"), lock = false })
      assert.equal(3, s.new)
      held:release()
      assert.has_error(function() client:push_orders { shop_no = "s1", orders = {}, lock = "yes" } end,
        "bad argument 'lock' to 'push_orders' (boolean or table expected, got string)")
    end)

    it("renews its Redis lock while waiting for the rate budget (issue 22 item 8)", function()
      local redis = redis_server.start()
      local paced = fixtures.client(emu, { rate = { per_minute = 1, window = 1.5, backend = "local" } })
      local taken = {}
      -- three calls, one slot per 1.5 s: two waits of ~1.5 s, each longer than the lock's ttl
      local s, err = paced:push_orders { shop_no = "s1", source = pages_of(orders(1, 3), 10),
        state = store.file(dir .. "/state.json"), batch = 1,
        lock = { backend = "redis", redis = redis.url, ttl = 0.6 },
        on_progress = function(p)
          if p.waiting then        -- while waiting: another run cannot take the lock
            local h = lock.acquire { name = NAME, backend = "redis", redis = redis.url }
            taken[#taken + 1] = h and "taken" or "held"
            if h then h:release() end
          end
        end }
      paced:close()
      redis:stop()
      assert.is_nil(err)
      assert.equal(3, s.new)
      assert.is_true(#taken >= 2, #taken)
      for _, v in ipairs(taken) do assert.equal("held", v) end
    end)

    it("a Redis lock taken over while pushing stops the push with kind 'locked', the state kept", function()
      local redis = redis_server.start()
      local state = store.file(dir .. "/state.json")
      local n = 0
      local _, err = client:push_orders { shop_no = "s1", source = pages_of(orders(1, 50), 10), state = state,
        lock = { backend = "redis", redis = redis.url, ttl = 0.3 }, batch = 10,
        on_progress = function()
          n = n + 1
          if n == 1 then            -- another host takes the lock over (as after an expiry)
            redis:command("SET", NAME, "process 1 on elsewhere #1")
            require("socket").sleep(0.15)
          end
        end }
      redis:stop()
      assert.equal("locked", err.kind)
      assert.matches("expired and was taken over", err.message)
      assert.is_true(err.summary.new >= 10 and err.summary.new < 50, tostring(err.summary.new))
      assert.equal(err.summary.new, raw_trades())
      -- what was pushed is in the state: a run with the lock goes on from there
      local s = assert(client:push_orders { shop_no = "s1", source = pages_of(orders(1, 50), 10), state = state,
                                            lock = { dir = locks } })
      assert.equal(50 - err.summary.new, s.new)
      assert.equal(50, raw_trades())
    end)
  end)

  describe("client:scan", function()
    local HOUR = 3600
    local from, to, cp
    before_each(function()
      to = os.time() - 2 * HOUR
      from = to - 2 * HOUR
      cp = dir .. "/cp.json"
      emu:control("POST", "rows", { method = TRADES, count = 40, from = from, to = to })
    end)

    local function count(it)
      local n = 0
      for row, err in it do
        if not row then return nil, err end
        n = n + 1
      end
      return n
    end

    it("with a checkpoint: a second scan of it is kind 'locked' while the first reads", function()
      local it = client:scan { method = TRADES, from = from, to = to, checkpoint = cp, lock = { dir = locks } }
      assert.is_table(it())                          -- the first row: the lock is held
      local n, err = count(client:scan { method = TRADES, from = from, to = to, checkpoint = cp,
                                         lock = { dir = locks } })
      assert.is_nil(n)
      assert.equal("locked", err.kind)
      assert.matches("wdt.scan." .. TRADES .. "/" .. SID .. "/" .. cp, err.message, 1, true)
      -- another checkpoint (another filter, another shop) is another run
      local n2, err2 = count(client:scan { method = TRADES, from = from, to = to, checkpoint = cp .. "2",
                                           lock = { dir = locks } })
      assert.equal(40, n2, tostring(err2))
      assert.equal(39, count(it))                    -- the first goes on, and ends
      -- its end let go of the lock: the next run reads from the checkpoint (nothing new)
      assert.equal(0, count(client:scan { method = TRADES, to = to, checkpoint = cp, lock = { dir = locks } }))
    end)

    it("renews its Redis lock while waiting for the rate budget (issue 22 item 8)", function()
      local redis = redis_server.start()
      local paced = fixtures.client(emu, { rate = { per_minute = 1, window = 1.5, backend = "local" } })
      -- three windows (their page 0s the only calls): two waits of ~1.5 s, each longer than
      -- the lock's ttl; a lock not renewed is gone at the next renewal and stops the scan
      local n, err = count(paced:scan { method = TRADES, from = from, to = to, window = 2400, checkpoint = cp,
                                        lock = { backend = "redis", redis = redis.url, ttl = 0.6 } })
      local windows = emu:state().calls[SID][TRADES]
      paced:close()
      redis:stop()
      assert.equal(40, n, tostring(err))
      assert.is_true(windows >= 3, windows)
    end)

    it("a scan left before its end lets go of the lock on close(); without a checkpoint, no lock", function()
      local it, st = client:scan { method = TRADES, from = from, to = to, checkpoint = cp, lock = { dir = locks } }
      assert.is_table(it())
      st:close()
      local h = assert(lock.acquire { name = lock.run_name("scan." .. TRADES, SID, cp), dir = locks })
      assert.equal(40, count(client:scan { method = TRADES, from = from, to = to }))
      local _, err = count(client:scan { method = TRADES, from = from, to = to, checkpoint = cp,
                                         lock = { dir = locks } })
      assert.equal("locked", err.kind)
      assert.equal(40, count(client:scan { method = TRADES, from = from, to = to, checkpoint = cp, lock = false }))
      h:release()
      assert.has_error(function() client:scan { method = TRADES, from = from, lock = true } end,
        "bad argument 'lock' to 'scan' (applies only with 'checkpoint')")
    end)
  end)
end)
