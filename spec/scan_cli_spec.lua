-- `wdt scan` as a process: JSON lines, --count, exit codes, the run lock, TZ, kill -9;
-- with --checkpoint, answers of the wrong shape and lost output never advance it.
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"
local socket = require "socket"
local time = require "wdt.scan.time"
local compat = require "spec.support.compat"

local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
local HOUR = 3600
local ROOT = sh.repo_root()

describe("wdt scan", function()
  local emu, dir, now, from, to

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
    now = os.time()
    to = now - 2 * HOUR
    from = to - 4 * HOUR
    os.execute("rm -f " .. sh.quote(dir) .. "/*")
  end)

  local function env(extra)
    return ("WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s %s "):format(sh.quote(emu.url),
      fixtures.SID, fixtures.KEY, fixtures.APPSECRET, extra or "")
  end

  -- runs bin/wdt with `args` (a shell string), stdout to a file or to `stdout` (a
  -- redirection or a pipe: ">/dev/full", "| head -1"); returns exit code, stdout, stderr
  local function wdt(args, extra_env, stdout)
    local out, err, rc = dir .. "/out", dir .. "/err", dir .. "/rc"
    os.remove(out)
    os.execute(("{ cd %s && %s bin/wdt %s 2>%s; echo $? >%s; } %s"):format(sh.quote(ROOT), env(extra_env),
      args, sh.quote(err), sh.quote(rc), stdout or (">" .. sh.quote(out))))
    return tonumber(sh.read_file(rc):match("%d+")), sh.read_file(out), sh.read_file(err)
  end

  local function rows(o) return emu:control("POST", "rows", o).created end

  it("prints one JSON line per row with exact ids, or only the count", function()
    local created = rows { method = TRADES, count = 120, from = from, to = to }
    local code, out, err = wdt(("scan %s --from %d --to %d --page-size 50"):format(TRADES, from, to))
    assert.are.equal(0, code, err)
    local ls = sh.lines(out)
    assert.are.equal(120, #ls)
    assert.truthy(ls[1]:find(('"trade_id":%.0f,'):format(created[1].key), 1, true))
    code, out = wdt(("scan %s --from %d --to %d --count"):format(TRADES, from, to))
    assert.are.equal(0, code)
    assert.are.equal("120\n", out)
  end)

  it("gives the same rows whatever the machine's TZ", function()
    rows { method = TRADES, count = 90, from = from, to = to }
    local a, b = time.format(from + HOUR), time.format(to - HOUR)
    local args = ("scan %s --from '%s' --to '%s'"):format(TRADES, a, b)
    local code, base = wdt(args, "TZ=UTC")
    assert.are.equal(0, code)
    assert.are.equal(45, #sh.lines(base))
    for _, tz in ipairs({ "America/Los_Angeles", "Asia/Kathmandu", "Asia/Shanghai", "Pacific/Chatham" }) do
      local c, out = wdt(args, "TZ=" .. tz)
      assert.are.equal(0, c)
      assert.are.equal(base, out, tz)
    end
  end)

  it("exits 2 on usage errors, 1 on refused calls, 3 without an answer, 75 when locked", function()
    assert.are.equal(2, (wdt("scan " .. TRADES)))
    assert.are.equal(2, (wdt("scan " .. TRADES .. " --from 2026/11/28")))
    assert.are.equal(2, (wdt("scan wms.stockout.Sales.searchLogistics --from 0")))
    assert.are.equal(2, (wdt("scan x.Y.z --from 0")))
    assert.are.equal(2, (wdt("scan " .. TRADES .. " '[1]' --from 0")))
    assert.are.equal(2, (wdt("scan " .. TRADES .. " --from 0 --since 0")))
    emu:faults { mode = "rate_limit", count = 10 }
    local code, _, err = wdt(("scan %s --from %d --to %d --retries 0"):format(TRADES, from, to))
    assert.are.equal(1, code)
    assert.matches("超过每分钟最大调用频率限制", err)
    emu:faults {}
    local port = emulator.free_port()
    code = wdt(("--url http://127.0.0.1:%d/openapi --retries 0 scan %s --from %d --to %d"):format(
      port, TRADES, from, to))
    assert.are.equal(3, code)
    -- the run lock of a checkpoint: wdt.lock's, per seller + method + checkpoint path
    local cp, locks = dir .. "/cp.json", dir .. "/locks"
    local lock = assert(require("wdt.lock").acquire { dir = locks,
      name = require("wdt.lock").run_name("scan." .. TRADES, fixtures.SID, cp) })
    code, _, err = wdt(("scan %s --checkpoint %s --since %d"):format(TRADES, cp, from), "WDT_LOCK_DIR=" .. locks)
    assert.are.equal(75, code)
    assert.matches("held by process", err)
    -- another checkpoint of the same method is another run
    code, _, err = wdt(("scan %s --checkpoint %s --since %d"):format(TRADES, cp .. "2", from),
      "WDT_LOCK_DIR=" .. locks)
    assert.are.equal(0, code, err)
    lock:release()
    os.execute("rm -rf " .. sh.quote(locks))
    assert.are.equal(2, (wdt(("scan %s --from %d --wait 5"):format(TRADES, from))))
  end)

  it("--since with a checkpoint that exists: one warning line naming its position, and the scan goes on", function()
    rows { method = TRADES, count = 30, from = from, to = to }
    local cp = dir .. "/cp.json"
    local function run(extra)
      return wdt(("scan %s --checkpoint %s --to %d --count %s"):format(TRADES, sh.quote(cp), to, extra))
    end
    local code, out, err = run("--since " .. from)          -- a new checkpoint: --since starts it
    assert.are.equal(0, code, err)
    assert.are.equal("30\n", out)
    assert.are.equal("", err)
    rows { method = TRADES, rows = { { modified = to - 30, tid = "late" } } }
    for _, since in ipairs({ tostring(from), "'" .. time.format(from + 60) .. "'" }) do
      code, out, err = run("--since " .. since)
      assert.are.equal(0, code, err)
      assert.are.equal(since == tostring(from) and "1\n" or "0\n", out)   -- the late row, once
      assert.are.equal(("wdt: warning: --since %s not used: the checkpoint %s resumes at %s (%d); "
        .. "--since applies only to a new checkpoint\n"):format(since:gsub("'", ""), cp, time.format(to), to), err)
    end
    -- at the checkpoint's position, or without --since: nothing to say
    for _, extra in ipairs({ "--since " .. to, "" }) do
      code, out, err = run(extra)
      assert.are.equal(0, code, err)
      assert.are.equal("0\n", out)
      assert.are.equal("", err)
    end
    -- the checkpoint lost, no --since: refused, not started anywhere
    os.remove(cp)
    local lost_code, _, lost_err = run("")
    assert.are.equal(1, lost_code, lost_err)
    assert.matches("store error: there is no checkpoint yet", lost_err)
  end)

  it("two overlapping runs on one checkpoint: the second exits 75 and prints nothing", function()
    rows { method = TRADES, count = 50, from = from, to = to }
    emu:faults { mode = "delay", count = 1, delay_ms = 3000 }     -- run 1's first read is slow
    local cp, locks = dir .. "/cp.json", dir .. "/locks"
    os.execute("rm -rf " .. sh.quote(locks))
    local args = ("scan %s --checkpoint %s --since %d --to %d"):format(TRADES, sh.quote(cp), from, to)
    local p = io.popen(("cd %s && %s WDT_LOCK_DIR=%s exec bin/wdt %s >%s 2>&1 & echo $!"):format(
      sh.quote(ROOT), env(), sh.quote(locks), args, sh.quote(dir .. "/run1")))
    local pid = tonumber(p:read("*l"))
    p:close()
    -- run 1 holds the lock once its lock file exists (a fresh folder: nobody else made it)
    local deadline = socket.gettime() + 20
    while socket.gettime() < deadline do
      local ls = io.popen("ls " .. sh.quote(locks) .. " 2>/dev/null")
      local found = ls:read("*a"):find("%.lock")
      ls:close()
      if found then break end
      socket.sleep(0.02)
    end
    local code, out, err = wdt(args, "WDT_LOCK_DIR=" .. locks)
    assert.are.equal(75, code, err)
    assert.are.equal("", out)
    assert.matches("is held by process " .. pid, err)
    while sh.alive(pid) do socket.sleep(0.05) end
    assert.are.equal(50, #sh.lines(sh.read_file(dir .. "/run1")))
    os.execute("rm -rf " .. sh.quote(locks))
  end)

  it("killed with SIGKILL (4 pages in flight), resumed from its checkpoint, delivers the rest", function()
    local created = rows { method = TRADES, count = 400, from = from, to = to }
    local cp, out1, out2 = dir .. "/cp.json", dir .. "/run1", dir .. "/run2"
    local args = ("scan %s --checkpoint %s --since %d --to %d --page-size 10 --concurrency 4"):format(TRADES,
      sh.quote(cp), from, to)
    -- a slow reader on a pipe: wdt blocks in a write in the middle of a window, where a
    -- kill tells whether the checkpoint ran ahead of what was printed
    local fifo = dir .. "/fifo"
    assert(compat.execute("mkfifo " .. sh.quote(fifo)))
    local rp = io.popen(("(while IFS= read -r l; do printf '%%s\\n' \"$l\"; sleep 0.003; done) <%s >%s & echo $!")
      :format(sh.quote(fifo), sh.quote(out1)))
    local reader = tonumber(rp:read("*l"))
    rp:close()
    local p = io.popen(("cd %s && %s exec bin/wdt %s >%s 2>/dev/null & echo $!"):format(
      sh.quote(ROOT), env(), args, sh.quote(fifo)))
    local pid = tonumber(p:read("*l"))
    p:close()
    local deadline = socket.gettime() + 30
    while #sh.lines(sh.read_file(out1)) < 130 and socket.gettime() < deadline do socket.sleep(0.01) end
    os.execute("kill -KILL " .. pid)
    while sh.alive(pid) do socket.sleep(0.02) end
    while sh.alive(reader) do socket.sleep(0.02) end       -- it reads what wdt wrote, to EOF
    local first = sh.lines(sh.read_file(out1))
    assert.is_true(#first >= 130 and #first < 400, "run 1 printed " .. #first)
    -- stdout was a pipe: the position waits in cp.uncommitted until the consumer confirms;
    -- this one read everything to EOF, so its pipeline commits
    assert.is_nil(io.open(cp, "r"))
    local ccode, _, cerr = wdt(("scan %s --checkpoint %s --commit"):format(TRADES, sh.quote(cp)))
    assert.are.equal(0, ccode, cerr)
    -- the checkpoint never claims a row that was not printed
    local doc = require("wdt.store").file(cp):load()
    local printed = {}
    for _, l in ipairs(first) do printed[l:match('"trade_id":(%d+)')] = true end
    local claimed = 0
    for _, c in ipairs(created) do
      if time.parse(c.modified) < doc.next then
        claimed = claimed + 1
        assert.is_true(printed[("%.0f"):format(c.key)], c.modified)
      end
    end
    assert.is_true(claimed >= 100)
    emu:faults {}
    local code, text = wdt(args)
    assert.are.equal(0, code)
    sh.write_file(out2, text)
    local seen, again = {}, 0
    for _, l in ipairs(first) do seen[l:match('"trade_id":(%d+)')] = 1 end
    for _, l in ipairs(sh.lines(sh.read_file(out2))) do
      local k = l:match('"trade_id":(%d+)')
      if seen[k] then again = again + 1 end
      seen[k] = (seen[k] or 0) + 1
    end
    for _, c in ipairs(created) do assert.truthy(seen[("%.0f"):format(c.key)], c.modified) end
    assert.is_true(again <= 100, "printed again: " .. again)   -- the window in flight at most
  end)

  it("killed with SIGKILL (or SIGINT) at random points again and again (8 calls in flight, windows read ahead): "
    .. "nothing lost, the checkpoint never past a row not printed", function()
    local seed = tonumber(os.getenv("WDT_CRASH_SEED") or "") or os.time()
    math.randomseed(seed)
    print(("\nscan crash test: WDT_CRASH_SEED=%d"):format(seed))
    local created = rows { method = TRADES, count = 600, from = from, to = to }
    local cp = dir .. "/cp-kills.json"
    -- 12 windows of 20 min, 5 pages each: up to 8 windows held, their calls out together
    local args = ("scan %s --checkpoint %s --since %d --to %d --window 1200 --page-size 10 --concurrency 8")
      :format(TRADES, sh.quote(cp), from, to)
    emu:faults { mode = "delay", delay_ms = 60, count = 100000, method = TRADES }   -- calls overlap
    local printed, runs, mid = {}, 6, 0
    local function take(path)
      for _, l in ipairs(sh.lines(sh.read_file(path) or "")) do
        local k = l:match('"trade_id":(%d+)')
        if k then printed[k] = true end
      end
    end
    for run = 1, runs do
      local out = dir .. "/kill" .. run
      local p = io.popen(("cd %s && %s exec bin/wdt %s >%s 2>/dev/null & echo $!"):format(
        sh.quote(ROOT), env(), args, sh.quote(out)))
      local pid = tonumber(p:read("*l"))
      p:close()
      socket.sleep(0.05 + math.random() * 0.5)
      -- SIGKILL mostly; SIGINT every third run (the calls out are aborted, the run ends cleanly)
      os.execute(("kill -%s %d 2>/dev/null"):format(run % 3 == 0 and "INT" or "KILL", pid))
      while sh.alive(pid) do socket.sleep(0.02) end
      take(out)
      local doc = require("wdt.store").file(cp):load()
      if (sh.read_file(out) or "") ~= "" and not (doc and doc.next >= to) then mid = mid + 1 end
      for _, c in ipairs(created) do                -- the checkpoint never past a gap
        if doc and time.parse(c.modified) < doc.next then
          assert.is_true(printed[("%.0f"):format(c.key)], "run " .. run .. ": " .. c.modified)
        end
      end
    end
    emu:faults {}
    local code, text = wdt(args)
    assert.are.equal(0, code)
    sh.write_file(dir .. "/kill-last", text)
    take(dir .. "/kill-last")
    for _, c in ipairs(created) do assert.truthy(printed[("%.0f"):format(c.key)], c.modified) end
    assert.is_true(mid >= 1, "no kill landed mid-scan")
  end)

  local function reconcile(jsonl, a, b)
    local file = dir .. "/pushed.jsonl"
    sh.write_file(file, jsonl)
    local p = io.popen(("cd %s && WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s "
      .. "lua5.4 examples/reconcile.lua %s %d %d s1; echo $?"):format(sh.quote(ROOT),
      sh.quote(emu.url), fixtures.SID, fixtures.KEY, fixtures.APPSECRET, sh.quote(file), a, b))
    local out = p:read("*a")
    p:close()
    local text, code = out:match("^(.*)\n(%d+)\n$")
    return tonumber(code), text
  end

  it("examples/reconcile.lua says every pushed tid is in the ERP's orders, or names the missing ones", function()
    local lines_, list = {}, {}
    for i = 1, 150 do
      local tid = ("P%06d"):format(i)
      list[#list + 1] = { modified = now - 3 * 3600 + i * 40, tid = tid, shop_no = "s1" }
      lines_[#lines_ + 1] = ('{"tid":"%s","shop_no":"s1"}'):format(tid)
    end
    emu:control("POST", "rows", { method = TRADES, rows = list })
    local code, out = reconcile(table.concat(lines_, "\n") .. "\n", now - 4 * 3600, now)
    assert.are.equal(0, code, out)
    assert.matches("^reconcile: ok: all 150 pushed tids are in the ERP's orders", out)
    code, out = reconcile(table.concat(lines_, "\n") .. '\n{"tid":"NOPE1"}\n{"x":1}\n', now - 4 * 3600, now)
    assert.are.equal(1, code)
    assert.matches("FAILED: 1 of 151 pushed tids missing .*: NOPE1; lines without a tid: 152$", out)
  end)

  describe("--checkpoint on bad answers and lost output", function()
    local REFUNDS = "aftersales.refund.RawRefund.search"
    local ROWS = 50
    local cp

    before_each(function()
      cp = dir .. "/cp.json"
      rows { method = REFUNDS, count = ROWS, from = from, to = to }
    end)

    -- wdt scan REFUNDS with the checkpoint
    local function scan(extra, stdout)
      return wdt(("scan %s --checkpoint %s --since %d --to %d %s"):format(REFUNDS, sh.quote(cp), from, to, extra),
                 nil, stdout)
    end

    -- after a failed run, a clean run still delivers every row
    local function all_rows_still_come(n)
      emu:faults {}
      local code, out, err = scan("--count")
      assert.are.equal(0, code, err)
      assert.are.equal((n or ROWS) .. "\n", out)
    end

    it("a checkpoint that is not JSON exits 1, as a push state that is not (not a network failure)", function()
      sh.write_file(cp, "{not json")
      local code, _, err = scan("")
      assert.are.equal(1, code, err)
      assert.truthy(err:find("store error", 1, true), err)
      assert.are.equal("{not json", sh.read_file(cp))
    end)

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
end)
