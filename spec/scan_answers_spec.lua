-- `wdt scan --checkpoint` never advances past rows it did not deliver: not on a query answer
-- of the wrong shape (a decode error, exit 3), not when stdout is lost (exit 74).
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"

local REFUNDS = "aftersales.refund.RawRefund.search"
local HOUR = 3600
local ROOT = sh.repo_root()
local ROWS = 50

describe("wdt scan --checkpoint on bad answers and lost output", function()
  local emu, dir, from, to, cp

  setup(function()
    emu = emulator.start {}
    dir = sh.tmpdir()
  end)
  teardown(function()
    emu:stop()
    os.execute("rm -rf " .. sh.quote(dir))
  end)
  before_each(function()
    emu:reset()
    emu:faults {}
    to = os.time() - 2 * HOUR
    from = to - 4 * HOUR
    os.execute("rm -f " .. sh.quote(dir) .. "/*")
    cp = dir .. "/cp.json"
    emu:control("POST", "rows", { method = REFUNDS, count = ROWS, from = from, to = to })
  end)

  -- bin/wdt scan with the checkpoint, stdout to `stdout` (a redirection or a pipe; a file by
  -- default); returns wdt's exit code, stdout (when a file) and stderr
  local function scan(extra, stdout)
    local out, err, rc = dir .. "/out", dir .. "/err", dir .. "/rc"
    local cmd = ("{ cd %s && WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s bin/wdt scan %s "
      .. "--checkpoint %s --since %d --to %d %s 2>%s; echo $? >%s; } %s"):format(sh.quote(ROOT),
      sh.quote(emu.url), fixtures.SID, fixtures.KEY, fixtures.APPSECRET, REFUNDS, sh.quote(cp), from, to,
      extra, sh.quote(err), sh.quote(rc), stdout or (">" .. sh.quote(out)))
    os.execute(cmd)
    return tonumber(sh.read_file(rc):match("%d+")), sh.read_file(out) or "", sh.read_file(err) or ""
  end

  -- after a failed run, a clean run still delivers every row
  local function all_rows_still_come(n)
    emu:faults {}
    local code, out, err = scan("--count")
    assert.are.equal(0, code, err)
    assert.are.equal((n or ROWS) .. "\n", out)
  end

  it("an answer without data is a decode error; the checkpoint stays", function()
    emu:faults { mode = "no_data", method = REFUNDS, count = 50 }
    local code, out, err = scan("--count")
    assert.are.equal(3, code, err)
    assert.are.equal("0\n", out)
    assert.truthy(err:find("decode error", 1, true), err)
    assert.truthy(err:find("no list", 1, true), err)
    all_rows_still_come()
  end)

  -- the last: a list, but not the method's ("order")
  for _, data in ipairs({ {}, "x", { total_count = 0 }, { order = {} },
                          { total_count = ROWS, orders = { { refund_id = 1 } } } }) do
    local shown = require("cjson").encode(data)
    it("data " .. shown .. " is a decode error; the checkpoint stays", function()
      emu:faults { mode = "data", method = REFUNDS, data = data, count = 50 }
      local code, _, err = scan("")
      assert.are.equal(3, code, err)
      assert.truthy(err:find("decode error in " .. REFUNDS, 1, true), err)
      all_rows_still_come()
    end)
  end

  it("stdout on a full disk: exit 74, the checkpoint stays", function()
    local code, _, err = scan("", ">/dev/full")
    assert.are.equal(74, code, err)
    assert.truthy(err:find("cannot write the output", 1, true), err)
    all_rows_still_come()
  end)

  it("stdout on a full disk with the run lock in Redis: the lock is released at once", function()
    local r = require("spec.support.redis").start()
    local ok, err = pcall(function()
      local code, _, serr = scan("--redis " .. r.url, ">/dev/full")
      assert.are.equal(74, code, serr)
      assert.are.equal(":0", r:command("DBSIZE"))     -- not left to expire in 60 s
    end)
    r:stop()
    assert(ok, err)
    all_rows_still_come()
  end)

  it("stdout closed after one line (| head -1): exit 74, the checkpoint stays", function()
    -- more output than a pipe holds (64 KiB), so that wdt is still writing when head exits
    emu:control("POST", "rows", { method = REFUNDS, count = 950, from = from, to = to })
    local _, out = scan("")
    assert.is_true(#out > 2 * 65536, #out)
    os.remove(cp)
    local code, _, err = scan("--page-size 100", "| head -1 >/dev/null")
    assert.are.equal(74, code, err)
    all_rows_still_come(ROWS + 950)
  end)
end)
