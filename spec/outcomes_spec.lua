-- Outcomes an operator can see: per item, in `wdt sync --json`, in the text summary, in an
-- outcome log (--log FILE), for sync and push; a handler that raises leaves the queue as it
-- was and fails the run. cli.main in-process against the real emulator.
local cli = require "spec.support.cli"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET


describe("outcomes", function()
  local emu, env, dir

  local function run(argv) return cli.run(argv, env) end
  local function handler(body)
    local path = dir .. "/h" .. math.random(1e9) .. ".lua"
    sh.write_file(path, body)
    return path
  end
  local function lstate() return emu:state().tenants[SID].logistics end

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 30, shop_no = "s1" } },
      stock = { [SID] = { pending = 20 } },
    } }
    dir = sh.tmpdir()
  end)
  teardown(function()
    if emu then emu:stop() end
    if dir then os.execute("rm -rf " .. sh.quote(dir)) end
  end)
  before_each(function()
    emu:reset()
    env = { WDT_URL = emu.url, WDT_SID = SID, WDT_KEY = KEY, WDT_SECRET = APPSECRET, WDT_LOCK_DIR = dir .. "/locks" }
  end)

  it("wdt sync logistics --json lists each failed and deferred item with sync_id and message", function()
    local h = handler([[return function(row)
      local k = row.sync_id % 3
      if k == 0 then return true end
      if k == 1 then return false, "no such address: " .. row.tid end
      return nil, "platform busy"
    end]])
    local code, out = run({ "sync", "logistics", "--shop", "s1", "--handler", h, "--json" })
    assert.equal(0, code)
    local s = cjson.decode(out)
    assert.same({ 10, 10, 10 }, { s.synced, s.failed, s.deferred })
    assert.equal(20, #s.outcomes)
    for _, o in ipairs(s.outcomes) do
      assert.equal(o.key, o.sync_id)
      assert.matches("^T%d+$", o.id)
      if o.sync_id % 3 == 1 then
        assert.same({ "failed", "no such address: " .. o.id }, { o.outcome, o.message })
      else
        assert.same({ "deferred", "platform busy" }, { o.outcome, o.message })
      end
    end
  end)

  it("a raising handler through the CLI: nothing failed in the ERP, the error shown, exit 1, logged", function()
    local h = handler("return function(row) return my_platform_ship(row) end\n")
    local log = dir .. "/outcomes.jsonl"
    local code, out, err = run({ "sync", "logistics", "--shop", "s1", "--handler", h, "--log", log })
    assert.equal(1, code)
    assert.matches("handler errors 30 %(not reported: still in the ERP's queue%)", out)
    assert.matches("sync_id %d+: handler error: .*global 'my_platform_ship'", out)
    assert.matches("%.%.%. and 10 more", out)                         -- the text is capped at 20
    assert.matches("^wdt sync logistics: the handler failed on 30 item%(s%), not reported", err)
    local st = lstate()
    assert.same({ 0, 0, 30 }, { st.acked, st.failed, #st.pending })
    local lines = sh.lines(sh.read_file(log))
    assert.equal(30, #lines)
    local first = cjson.decode(lines[1])
    assert.same({ "sync.logistics", "unreported" }, { first.flow, first.outcome })
    assert.matches("my_platform_ship", first.message)
    -- the next run with a working handler gets every row: none was lost
    code = run({ "sync", "logistics", "--shop", "s1", "--handler", handler("return function() return true end"),
                 "--log", log })
    assert.equal(0, code)
    assert.equal(60, #sh.lines(sh.read_file(log)))                  -- the synced ones logged too
    assert.equal(30, lstate().acked)
  end)

  it("wdt sync stock takes a handler module (batch, finish) and lists what it did not sync", function()
    local h = handler((([[return {
      batch = function(items)
        local out = {}
        for i, item in ipairs(items) do out[i] = item.api_goods_id % 2 == 0 or { ok = false, message = "odd" } end
        return out
      end,
      finish = function(s) local f = io.open(FINISHED, "w") f:write(s.synced) f:close() end,
    }]]):gsub("FINISHED", ("%q"):format(dir .. "/finished"))))
    local code, out = run({ "sync", "stock", "--handler", h, "--json" })
    assert.equal(0, code)
    local s = cjson.decode(out)
    assert.equal(20, s.synced + s.failed)
    assert.equal(s.failed, #s.outcomes)
    for _, o in ipairs(s.outcomes) do
      assert.same({ "failed", "odd", o.key }, { o.outcome, o.message, o.api_goods_id })
    end
    assert.equal(s.synced, emu:state().tenants[SID].stock.synced)
    assert.equal(s.synced, tonumber(sh.read_file(dir .. "/finished")))
  end)

  it("wdt push --json and --log: one record per item (invalid ones by line), keys readable", function()
    local platform = dofile(sh.repo_root() .. "/examples/sample_platform.lua")
    local input = dir .. "/goods.jsonl"
    local good = cjson.encode(platform.goods(1))
    sh.write_file(input, good .. "\nnot json\n" .. '{"goods_id":"x"}\n')
    local log = dir .. "/push.jsonl"
    local code, out = run({ "push", "goods", "--shop", "s1", input, "--json", "--log", log })
    assert.equal(1, code)
    local s = cjson.decode(out)
    local by_line = {}
    for _, o in ipairs(s.outcomes) do by_line[o.id] = o end
    assert.same({ "invalid", "(line): not JSON: at byte 1: invalid literal" },
                { by_line[2].outcome, by_line[2].message })
    assert.same({ "invalid", "spec_id: required" }, { by_line[3].outcome, by_line[3].message })
    local logged = {}
    for _, l in ipairs(sh.lines(sh.read_file(log))) do logged[#logged + 1] = cjson.decode(l) end
    assert.equal(3, #logged)
    local accepted
    for _, o in ipairs(logged) do if o.outcome == "accepted" then accepted = o end end
    assert.same({ "push.goods", "GID001/SID001" }, { accepted.flow, accepted.key })
  end)

  it("wdt push orders --log: the accepted orders are logged too, one line each", function()
    -- the orders' answer (new_count, chg_count, error_list) names no accepted order; the log
    -- must still have every one of them
    local platform = dofile(sh.repo_root() .. "/examples/sample_platform.lua")
    local input, log = dir .. "/orders.jsonl", dir .. "/orders-log.jsonl"
    sh.write_file(input, cjson.encode(platform.order(1)) .. "\n" .. cjson.encode(platform.order(2)) .. "\n")
    local code = run({ "push", "orders", "--shop", "s1", input, "--log", log })
    assert.equal(0, code)
    local logged = {}
    for _, l in ipairs(sh.lines(sh.read_file(log))) do
      local o = cjson.decode(l)
      logged[#logged + 1] = o.outcome .. " " .. o.key
    end
    assert.same({ "accepted " .. platform.order(1).tid, "accepted " .. platform.order(2).tid }, logged)
  end)
end)
