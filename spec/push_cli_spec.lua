-- `wdt push` as a command against the emulator: JSON lines from a file and stdin, --json,
-- exit codes, the run lock, and the crash test of a resumable push: runs killed with
-- SIGKILL at random points, then a run let finish. Nothing may be lost (every order in the
-- ERP, the state empty) and nothing created twice; each killed run may cost at most one
-- batch pushed again (the one in flight).
local socket = require "socket"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"
local compat = require "spec.support.compat"

local root = sh.repo_root()
local platform = dofile(root .. "/examples/sample_platform.lua")
local SID = fixtures.SID
local N = 300

describe("wdt push", function()
  local emu, dir

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = fixtures.KEY, secret = fixtures.APPSECRET } },
      shops = { [SID] = { { shop_no = "tb1", platform_id = 1 } } },
    } }
    dir = sh.tmpdir()
    local lines = {}
    for i = 1, N do lines[i] = require("wdt").json.encode(platform.order(i)) end
    sh.write_file(dir .. "/orders.jsonl", table.concat(lines, "\n") .. "\n")
    -- a source: pages of 25 orders from the file, the cursor is the last line given
    sh.write_file(dir .. "/source.lua", ([[
local json = require("wdt").json
local all = {}
for line in io.lines(%q) do all[#all + 1] = line end
return function(cursor)
  cursor = cursor or 0
  local out = {}
  for i = cursor + 1, math.min(cursor + 25, #all) do out[#out + 1] = json.decode(all[i]) end
  if #out == 0 then return nil end
  return out, cursor + #out
end
]]):format(dir .. "/orders.jsonl"))
  end)
  teardown(function()
    if emu then emu:stop() end
    if dir then os.execute("rm -rf " .. sh.quote(dir)) end
  end)
  before_each(function() emu:reset(); emu:faults {} end)

  local function command(args, out)
    return table.concat({
      "WDT_URL=" .. sh.quote(emu.url), "WDT_SID=" .. SID, "WDT_KEY=" .. fixtures.KEY,
      "WDT_SECRET=" .. fixtures.APPSECRET, "TMPDIR=" .. sh.quote(dir), "WDT_LOCK_DIR=" .. sh.quote(dir .. "/locks"),
      "exec", sh.quote(root .. "/bin/wdt"), args,
      ">" .. sh.quote(out or (dir .. "/out")), "2>" .. sh.quote(dir .. "/err"),
    }, " ")
  end
  local function wdt(args)
    local ok, _, code = compat.execute(command(args))
    return ok and 0 or code, sh.read_file(dir .. "/out"), sh.read_file(dir .. "/err")
  end

  it("pushes a JSON-lines file and prints the buckets as JSON", function()
    local code, out = wdt("push orders --shop s1 --json " .. sh.quote(dir .. "/orders.jsonl"))
    assert.equal(0, code)
    local s = cjson.decode(out)
    assert.same({ N, 0, 0, 0, 0 }, { s.new, s.changed, s.failed, s.invalid, s.unreported })
    assert.equal(N, emu:state().tenants[SID].raw_trades)
  end)

  it("reads stdin with '-', lists invalid lines by number and exits 1", function()
    sh.write_file(dir .. "/bad.jsonl", '{"tid":"X1"}\nnot json\n\n'
      .. require("wdt").json.encode(platform.order(1)) .. "\n")
    local code, out = wdt("push orders --shop s1 - < " .. sh.quote(dir .. "/bad.jsonl"))
    assert.equal(1, code)
    assert.matches("new +1\n", out)
    assert.matches("invalid +2\n", out)
    assert.matches("line 1 %(tid X1%): orders:", out)
    assert.matches("line 2: %(line%): not JSON", out)
  end)

  it("skips a UTF-8 byte order mark at the start of the input (file or stdin), nowhere else", function()
    local BOM = "\239\187\191"
    local json = require("wdt").json
    local one, two = json.encode(platform.order(1)), json.encode(platform.order(2))
    sh.write_file(dir .. "/bom.jsonl", BOM .. one .. "\n" .. two .. "\n")
    local code, out, err = wdt("push orders --shop s1 " .. sh.quote(dir .. "/bom.jsonl"))
    assert.equal(0, code, out .. err)
    assert.matches("new +2\n", out)
    assert.matches("invalid +0\n", out)
    emu:reset()
    code, out, err = wdt("push orders --shop s1 - < " .. sh.quote(dir .. "/bom.jsonl"))
    assert.equal(0, code, out .. err)
    assert.matches("new +2\n", out)
    -- a BOM before a blank first line: the line is blank; on line 2 it is an invalid line
    emu:reset()
    sh.write_file(dir .. "/bom2.jsonl", BOM .. "\n" .. one .. "\n" .. BOM .. two .. "\n")
    code, out = wdt("push orders --shop s1 " .. sh.quote(dir .. "/bom2.jsonl"))
    assert.equal(1, code, out)
    assert.matches("new +1\n", out)
    assert.matches("invalid +1\n", out)
    assert.matches("line 3: %(line%): not JSON", out)
  end)

  it("exits 2 naming the shop when it is not self-owned or does not exist; nothing is read or sent", function()
    for _, shop in ipairs({ "tb1", "typo" }) do
      local code, out, err = wdt("push orders --shop " .. shop .. " " .. sh.quote(dir .. "/orders.jsonl"))
      assert.equal(2, code, err)
      assert.equal("", out)
      assert.matches("wdt push orders: shop '" .. shop .. "' ", err, 1, true)
      assert.matches(shop == "tb1" and "not a self%-owned platform's" or "does not exist", err)
    end
  end)

  it("a --state that is not a push state's JSON exits 1 (not a network failure); the file is kept", function()
    local state = dir .. "/corrupt.json"
    sh.write_file(state, "{not json")
    local code, _, err = wdt(("push orders --shop s1 --source %s --state %s"):format(
      sh.quote(dir .. "/source.lua"), sh.quote(state)))
    assert.equal(1, code, err)
    assert.matches("store error", err)
    assert.equal("{not json", sh.read_file(state))
  end)

  it("FILE.jsonl: the unreported items are not promised to a next run (nothing keeps them)", function()
    sh.write_file(dir .. "/one.jsonl", require("wdt").json.encode(platform.order(1)) .. "\n")
    emu:faults { mode = "reset", method = "sales.RawTrade.pushSelf2", count = 10 }
    local code, out, err = wdt("--retries 0 push orders --shop s1 " .. sh.quote(dir .. "/one.jsonl"))
    assert.equal(3, code, err)
    assert.truthy(out:find("unreported (outcome unknown; nothing keeps them: push them again", 1, true), out)
    assert.is_nil(out:find("next run", 1, true), out)
  end)

  it("usage errors exit 2", function()
    assert.equal(2, (wdt("push orders " .. sh.quote(dir .. "/orders.jsonl"))))
    assert.equal(2, (wdt("push parcels --shop s1 x")))
    assert.equal(2, (wdt("push orders --shop s1 --source " .. sh.quote(dir .. "/source.lua"))))
  end)

  it("a source page with a hole exits 1 as a source error and saves no cursor past it", function()
    sh.write_file(dir .. "/hole.lua", ([[
local json = require("wdt").json
local all = {}
for line in io.lines(%q) do all[#all + 1] = json.decode(line) end
return function(cursor)
  if cursor then return nil end
  local page = { all[1] }
  page[3] = all[3]
  return page, 3
end
]]):format(dir .. "/orders.jsonl"))
    local state = dir .. "/hole-state.json"
    os.remove(state)
    local code, out, err = wdt("push orders --shop s1 --json --source " .. sh.quote(dir .. "/hole.lua")
      .. " --state " .. sh.quote(state))
    assert.equal(1, code)
    assert.matches("source error: the source returned a page with a hole: item 2 is nil, item 3 is not", err)
    local s = cjson.decode(out)
    assert.same({ 0, 0 }, { s.read, s.pages })
    local saved = io.open(state) and cjson.decode(sh.read_file(state))
    assert.is_nil(saved and saved.cursor ~= cjson.null and saved.cursor or nil)
    assert.equal(0, emu:state().tenants[SID].raw_trades)
  end)

  it("one run at a time per seller, shop and flow", function()
    local lock = assert(require("wdt.lock").acquire { name = "wdt.push.orders/" .. SID .. "/s1",
                                                      dir = dir .. "/locks" })
    local code, _, err = wdt("push orders --shop s1 " .. sh.quote(dir .. "/orders.jsonl"))
    assert.equal(75, code)
    assert.matches("is held by", err)
    assert.equal(0, (wdt("push refunds --shop s1 /dev/null")))   -- another flow: its own lock
    lock:release()
    assert.equal(0, (wdt("push orders --shop s1 " .. sh.quote(dir .. "/orders.jsonl"))))
  end)

  it("kill -9 at any moment, 4 calls in flight: the next run loses nothing and creates nothing twice", function()
    local seed = tonumber(os.getenv("WDT_CRASH_SEED") or "") or os.time()
    math.randomseed(seed)
    print(("\npush crash test: WDT_CRASH_SEED=%d"):format(seed))
    local state = dir .. "/state.json"
    os.remove(state)
    local args = "push orders --shop s1 --batch 10 --concurrency 4 --json --source " .. sh.quote(dir .. "/source.lua")
                 .. " --state " .. sh.quote(state)
    local kills, mid = 8, 0
    for run = 1, kills do
      emu:faults { mode = "delay", delay_ms = 30, count = 1000 }   -- every call in flight a while
      local before = emu:state().tenants[SID].raw_trades
      local p = io.popen(command(args, dir .. "/run" .. run) .. " & echo $!")
      local pid = tonumber(p:read("*l"))
      p:close()
      local target, deadline = math.random(0, 40), socket.gettime() + 10
      while emu:state().tenants[SID].raw_trades - before < target and emulator.alive(pid)
            and socket.gettime() < deadline do
        socket.sleep(0.005)
      end
      socket.sleep(math.random() * 0.03)
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
      while emulator.alive(pid) do socket.sleep(0.01) end
      socket.sleep(0.05)     -- a call in flight is still carried out by the server
      local after = emu:state().tenants[SID].raw_trades
      if after > before and after < N then mid = mid + 1 end
    end
    emu:faults {}
    local code, out = wdt(args)
    assert.equal(0, code, out)
    local s = cjson.decode(out)
    assert.same({ 0, 0, 0, 0 }, { s.failed, s.invalid, s.unreported, s.pending })
    local t = emu:state().tenants[SID]
    assert.equal(N, t.raw_trades, "every order in the ERP")
    assert.is_true(t.raw_trades_updated <= kills * 10 * 4,
      ("%d orders pushed again for %d kills (at most one window of 4 batches of 10 each)")
        :format(t.raw_trades_updated, kills))
    local saved = cjson.decode(sh.read_file(state))
    assert.equal(N, saved.cursor)
    assert.is_nil(next(saved.pending))
    assert.is_true(mid >= math.floor(kills / 2), "too few kills landed mid-push: " .. mid)
    print(("push crash test: %d of %d kills mid-push, %d orders pushed again"):format(mid, kills, t.raw_trades_updated))
  end)
end)
