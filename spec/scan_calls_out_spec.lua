-- A scan keeps calls out between rows (windows read ahead, doc/scan.md "Calls in flight"):
-- what the caller does with the same client meanwhile, or after leaving the loop.
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local socket = require "socket"

local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
local HOUR = 3600

describe("a scan's calls out between rows", function()
  local emu, client, from, to

  setup(function()
    emu = emulator.start {}
    client = fixtures.client(emu)
  end)
  teardown(function()
    client:close()
    emu:stop()
  end)
  before_each(function()
    emu:reset()
    emu:faults {}
    to = os.time() - 2 * HOUR
    from = to - 6 * HOUR
    emu:control("POST", "rows", { method = TRADES, count = 240, from = from, to = to })
  end)

  local function one_call()
    return client:page_call(TRADES, { page_size = 1, page_no = 0 },
                            { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 00:01:00" })
  end

  it("leave the caller's own calls on the same client working, in the loop and after a break", function()
    emu:faults { mode = "delay", delay_ms = 30, count = 1000, method = TRADES }
    local k = 0
    local it, st = client:scan { method = TRADES, from = from, to = to, window = 900, page_size = 100,
                                 concurrency = 4 }
    for row, err in it do
      assert(row, tostring(err))
      k = k + 1
      if k % 5 == 0 then
        socket.sleep(0.01)
        local page, cerr = one_call()                  -- a call of the caller's, mid-scan
        assert(page, tostring(cerr))
      end
      if k == 25 then break end
    end
    st:close()
    local page, cerr = one_call()                      -- after leaving the scan
    assert(page, tostring(cerr))
  end)

  it("give back the rate budget's concurrency slots when the scan is left by break", function()
    emu:faults { mode = "delay", delay_ms = 300, count = 1000, method = TRADES }
    local limited = fixtures.client(emu, { rate = { concurrency = 2, wait = 2 } })
    local it, st = limited:scan { method = TRADES, from = from, to = to, window = 900, page_size = 100,
                                  concurrency = 4 }
    for _ = 1, 3 do
      local row, err = it()
      assert(row, tostring(err))
      socket.sleep(0.05)
    end
    assert.is_true(require("wdt.batch").busy(limited._core))   -- windows read ahead are out
    st:close()                                         -- left with them out
    emu:faults {}
    local page, cerr = limited:page_call(TRADES, { page_size = 1, page_no = 0 },
      { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 00:01:00" })
    assert(page, tostring(cerr))                       -- not: every slot of the budget taken for good
    limited:close()
  end)
end)
