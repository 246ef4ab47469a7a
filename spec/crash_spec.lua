-- The crash test of the sync loop: `wdt sync logistics` (4 calls at a time: a page of 21
-- rows makes 3 reports of 7, and the read-ahead goes out beside them) against
-- the emulator is killed at random points (SIGKILL mostly, SIGINT sometimes), then run
-- again, until one run is let finish. Afterwards the queue must be empty and every row
-- reported exactly once: the emulator counts each acknowledged row once, acked == rows at
-- the start, and it counts reports of rows that had already left the queue (`repeated`),
-- which must stay 0; every row was handed to the handler at least once. Most kills wait
-- until some rows were reported, so that they land mid-queue, some of them while a
-- read-ahead (the next page read while a page's reports are out) is out; the others land
-- anywhere in the first moments.
--
-- WDT_CRASH_SEED=N reproduces a run (the seed is printed); WDT_CRASH_KILLS=N sets the
-- number of killed runs (default 8).
local socket = require "socket"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local shell = require "spec.support.sh"
local compat = require "spec.support.compat"

local SID, KEY, APPSECRET = "crashsid", "crashkey", "crashsecret:crashsalt"
local LIST = "sales.LogisticsSync.getSyncListExt"
local ROWS = 420

local sh = shell.quote

local function read_lines(path)
  local out = {}
  local f = io.open(path, "rb")
  if not f then return out end
  for l in f:lines() do out[#out + 1] = l end
  f:close()
  return out
end


-- A describe's set-up: an emulator with `config`, a folder with handler.lua (logs the
-- item's `field` to $PUSH_LOG, takes `pause` seconds, succeeds), and fx.command(run): the
-- shell command of one `wdt` run with `words` and that handler, its output in the folder.
local function crash_fixture(config, field, pause, words)
  local fx = {}
  setup(function()
    fx.emu = emulator.start { config = config }
    fx.dir = shell.tmpdir()
    local f = assert(io.open(fx.dir .. "/handler.lua", "wb"))
    f:write(([[
local socket = require "socket"
local log = assert(io.open(os.getenv("PUSH_LOG"), "a"))
return function(item)
  log:write(string.format("%%d\n", item.%s))
  log:flush()
  socket.sleep(%s)
  return true
end
]]):format(field, pause))
    f:close()
  end)
  teardown(function()
    if fx.emu then fx.emu:stop() end
    if fx.dir then os.execute("rm -rf " .. sh(fx.dir)) end
  end)
  function fx.command(run)
    local dir = fx.dir
    local parts = {
      "WDT_URL=" .. sh(fx.emu.url), "WDT_SID=" .. sh(SID), "WDT_KEY=" .. sh(KEY),
      "WDT_SECRET=" .. sh(APPSECRET), "PUSH_LOG=" .. sh(dir .. "/pushed.log"),
      "exec", sh(shell.repo_root() .. "/bin/wdt") }
    for _, w in ipairs(words) do parts[#parts + 1] = w end
    for _, w in ipairs { "--handler", sh(dir .. "/handler.lua"), ">" .. sh(dir .. "/run" .. run .. ".out"),
                         "2>" .. sh(dir .. "/run" .. run .. ".err") } do
      parts[#parts + 1] = w
    end
    return table.concat(parts, " ")
  end
  return fx
end

describe("crash test: wdt sync logistics killed at random points", function()
  -- the handler takes a little time per row so that kills land everywhere in the loop
  local fx = crash_fixture({
    tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
    logistics = { [SID] = { pending = ROWS, shop_no = "s1" } },
  }, "sync_id", "0.004", { "sync", "logistics", "--shop", "s1", "--batch", "7", "--page-size", "21",
                          "--concurrency", "4", "--json" })

  it("ends with an empty queue and every row reported once", function()
    local emu, dir, command = fx.emu, fx.dir, fx.command
    local seed = tonumber(os.getenv("WDT_CRASH_SEED") or "") or os.time()
    local kills = tonumber(os.getenv("WDT_CRASH_KILLS") or "") or 8
    print(("\ncrash test: WDT_CRASH_SEED=%d, %d killed runs"):format(seed, kills))
    math.randomseed(seed)
    emu:reset()
    local start = emu:state().tenants[SID].logistics
    assert.equal(ROWS, start.size)

    local killed_mid, killed_reading = 0, 0
    for run = 1, kills do
      local before = emu:state().tenants[SID].logistics.size
      -- slow a few calls down, so that some kills land while a report is in flight (the
      -- server applies it after the client is gone)
      emu:faults { mode = "delay", delay_ms = 80, count = math.random(0, 4) }
      local p = io.popen(command(run) .. " & echo $!")
      local pid = tonumber(p:read("*l"))
      p:close()
      if run % 3 == 1 then
        -- a random point early on: start-up, the first read, the first handling
        socket.sleep(0.02 + math.random() * 0.25)
      elseif run % 3 == 0 then
        -- while a read-ahead is out: once some rows were reported, every call is held
        -- 300 ms; a read at the server together with another call is one (a quiet read
        -- goes out alone). Killed there, its reports still land
        local target, deadline = math.random(1, 30), socket.gettime() + 10
        while before - emu:state().tenants[SID].logistics.size < target
              and shell.alive(pid) and socket.gettime() < deadline do
          socket.sleep(0.005)
        end
        emu:faults { mode = "delay", delay_ms = 300, count = 12 }
        local reads0, read_at = emu:state().calls[SID][LIST], nil
        deadline = socket.gettime() + 5
        while shell.alive(pid) and socket.gettime() < deadline do
          local st = emu:state()
          if not read_at and st.calls[SID][LIST] > reads0 then read_at = socket.gettime() end
          if read_at and socket.gettime() - read_at < 0.25 and st.tenants[SID].in_flight.now >= 2 then
            killed_reading = killed_reading + 1
            break
          end
          if read_at and socket.gettime() - read_at >= 0.25 then reads0, read_at = st.calls[SID][LIST], nil end
          socket.sleep(0.005)
        end
      else
        -- mid-queue: once a random number of rows was reported, a little later still
        local target, deadline = math.random(1, 60), socket.gettime() + 10
        while before - emu:state().tenants[SID].logistics.size < target
              and shell.alive(pid) and socket.gettime() < deadline do
          socket.sleep(0.005)
        end
        socket.sleep(math.random() * 0.02)
      end
      local sig = (run % 4 == 0) and "INT" or "KILL"
      os.execute(("kill -%s %d 2>/dev/null"):format(sig, pid))
      local deadline = socket.gettime() + 10
      while shell.alive(pid) and socket.gettime() < deadline do socket.sleep(0.01) end
      assert.is_false(shell.alive(pid), "run " .. run .. " did not stop")
      -- A report the killed run had in flight (delayed 80 ms) is still applied by the
      -- server. The next run starts once it was (as the next cron run would): had it read
      -- the queue before, it would report those rows again, and the ERP would refuse the
      -- repeats as 不存在或已回传 (doc/sync.md, "After a crash").
      socket.sleep(0.15)
      deadline = socket.gettime() + 2
      while emu:state().tenants[SID].in_flight.now > 0 and socket.gettime() < deadline do socket.sleep(0.01) end
      local after = emu:state().tenants[SID].logistics.size
      if after < before and after > 0 then killed_mid = killed_mid + 1 end
      -- the queue only ever shrinks by rows that were handed to the handler
      assert.is_true(after <= before)
    end

    -- the last run is let finish
    emu:faults {}
    local final = kills + 1
    local ok = compat.execute("timeout 60 sh -c " .. sh(command(final)))
    local out = table.concat(read_lines(dir .. "/run" .. final .. ".out"), "\n")
    assert.is_true(ok, "the last run failed: " .. out .. "\n"
      .. table.concat(read_lines(dir .. "/run" .. final .. ".err"), "\n"))
    local summary = cjson.decode(out)
    assert.equal(0, #summary.unreported)
    assert.equal(0, summary.refused)

    local q = emu:state().tenants[SID].logistics
    assert.equal(0, q.size, "rows left in the queue")
    assert.equal(ROWS, q.acked, "each row acknowledged once")
    assert.equal(0, q.repeated, "rows reported again after they had left the queue")
    assert.is_true(killed_mid >= math.floor(kills / 2), "too few kills landed mid-queue: " .. killed_mid)
    if kills >= 3 then assert.is_true(killed_reading >= 1, "no kill landed while a read-ahead was out") end
    assert.equal(0, q.failed)

    -- every row was pushed at least once (a killed run may push a row again on re-run:
    -- at-least-once towards the platform, exactly-once towards the ERP)
    local pushed = {}
    for _, l in ipairs(read_lines(dir .. "/pushed.log")) do pushed[l] = true end
    for _, id in ipairs(start.pending) do
      assert.is_true(pushed[("%d"):format(id)], "row " .. ("%d"):format(id) .. " never pushed")
    end
    print(("crash test: %d of %d kills landed mid-queue, %d while a read-ahead was out; %d pushes for %d rows")
      :format(killed_mid, kills, killed_reading, #read_lines(dir .. "/pushed.log"), ROWS))
  end)
end)

-- The same for `wdt sync stock` with 4 calls in flight (batchCalcStock, the reports of a
-- page together): killed at random points, run again, let finish; every good leaves the
-- queue synced once (the emulator counts a good when it leaves), none is left waiting,
-- and every good reached the handler.
describe("crash test: wdt sync stock (4 calls in flight) killed at random points", function()
  local GOODS = 200
  local fx = crash_fixture({
    tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
    stock = { [SID] = { pending = GOODS } },
  }, "api_goods_id", "0.002", { "sync", "stock", "--count", "20", "--concurrency", "4", "--json" })

  it("ends with no good waiting, each synced once, every good handed over", function()
    local emu, dir, command = fx.emu, fx.dir, fx.command
    local seed = tonumber(os.getenv("WDT_CRASH_SEED") or "") or os.time()
    print(("\nstock crash test: WDT_CRASH_SEED=%d"):format(seed))
    math.randomseed(seed)
    emu:reset()
    local start = emu:state().tenants[SID].stock
    assert.equal(GOODS, start.size)
    local mid = 0
    for run = 1, 6 do
      local before = emu:state().tenants[SID].stock.size
      emu:faults { mode = "delay", delay_ms = 30, count = math.random(0, 6) }
      local p = io.popen(command(run) .. " & echo $!")
      local pid = tonumber(p:read("*l"))
      p:close()
      local target, deadline = math.random(1, 40), socket.gettime() + 10
      while before - emu:state().tenants[SID].stock.size < target and shell.alive(pid)
            and socket.gettime() < deadline do
        socket.sleep(0.005)
      end
      socket.sleep(math.random() * 0.02)
      os.execute(("kill -KILL %d 2>/dev/null"):format(pid))
      while shell.alive(pid) do socket.sleep(0.01) end
      socket.sleep(0.1)                   -- a report in flight is still applied by the server
      local after = emu:state().tenants[SID].stock.size
      if after < before and after > 0 then mid = mid + 1 end
    end
    emu:faults {}
    local final = 7
    local ok = compat.execute("timeout 60 sh -c " .. sh(command(final)))
    assert.is_true(ok, table.concat(read_lines(dir .. "/run" .. final .. ".err"), "\n"))
    local st = emu:state().tenants[SID].stock
    assert.equal(0, st.size, "goods left waiting")
    assert.equal(GOODS, st.synced, "each good synced once")
    assert.is_true(mid >= 3, "too few kills landed mid-queue: " .. mid)
    local handed = {}
    for _, l in ipairs(read_lines(dir .. "/pushed.log")) do handed[l] = true end
    for _, id in ipairs(start.pending) do
      assert.is_true(handed[("%d"):format(id)], "good " .. ("%d"):format(id) .. " never handed over")
    end
  end)
end)
