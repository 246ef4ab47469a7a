-- The wdt command: cli.main in-process (exit codes, outputs) and bin/wdt as a process,
-- against the real emulator.
local cli = require "wdt.cli"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET

local function sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end return self end,
           text = function() return table.concat(buf) end }
end

local function tmpfile(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local p = io.popen("cd '" .. here .. "/..' && pwd")
local ROOT = p:read("*l")
p:close()

describe("wdt command", function()
  local emu, env

  -- run cli.main; returns code, stdout, stderr
  local function run(argv, opts)
    opts = opts or {}
    local out, err = sink(), sink()
    local code = cli.main(argv, opts.env or env, { stdout = out, stderr = err,
      stderr_tty = opts.tty or false, emulator_path = ROOT .. "/bin/wdt-emulator" })
    return code, out.text(), err.text()
  end

  local function lstate() return emu:state().tenants[SID].logistics end

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 50, shop_no = "s1" } },
      stock = { [SID] = { pending = 20 } },
    } }
  end)

  teardown(function()
    if emu then emu:stop() end
    _G.__wdt_cli_spec_handler = nil
  end)

  before_each(function()
    emu:reset()
    emu:faults {}
    env = { WDT_URL = emu.url, WDT_SID = SID, WDT_KEY = KEY, WDT_SECRET = APPSECRET,
            WDT_LOCK_DIR = os.getenv("WDT_LOCK_DIR") }
  end)

  local handler_file = tmpfile("return function(row) return _G.__wdt_cli_spec_handler(row) end\n")

  describe("help and usage errors", function()
    it("prints help for every command with exit 0", function()
      for _, argv in ipairs({ { "--help" }, { "-h" }, { "help" }, { "call", "--help" },
                              { "sync", "--help" }, { "sync", "logistics", "--help" },
                              { "sync", "stock", "--help" }, { "help", "sync", "logistics" },
                              { "help", "call" } }) do
        local code, out, err = run(argv, { env = {} })
        assert.equal(0, code, table.concat(argv, " "))
        assert.matches("^Usage: wdt", out)
        assert.equal("", err)
      end
      local _, out = run({ "sync", "logistics", "--help" }, { env = {} })
      assert.matches("%-%-dry%-run", out)
      assert.matches("%-%-batch", out)
      -- a deferred good is not reported at all (no cancelSync)
      _, out = run({ "sync", "stock", "--help" }, { env = {} })
      assert.is_nil(out:find("cancelSync", 1, true))
      assert.matches("nothing is sent", out)
      local code
      code, out = run({ "--version" }, { env = {} })
      assert.equal(0, code)
      assert.equal("wdt " .. require("wdt.core").version .. "\n", out)
      local code_v, out_v = run({ "-V" }, { env = {} })
      assert.equal(0, code_v)
      assert.equal(out, out_v)
    end)

    it("builds every help page from the command table, and each lists the options it takes", function()
      local _, main = run({ "--help" }, { env = {} })
      local listed = main:match("\nCommands:\n(.-)\n\n")
      local n = 0
      for line in listed:gmatch("[^\n]+") do
        -- "  sync logistics   the ..." -> { "sync", "logistics" }; "push orders|..." -> push orders
        local cmd = {}
        for w in line:match("^  (.-)  "):gmatch("[%l]+") do
          if #cmd < 2 then cmd[#cmd + 1] = w end
        end
        local code, page, err = run({ "help", table.unpack(cmd) }, { env = {} })
        assert.equal(0, code, err)
        assert.matches("^Usage: wdt " .. cmd[1], page)
        if cmd[1] ~= "help" and cmd[1] ~= "emulator" then
          local function argv(...)
            local a = { table.unpack(cmd) }
            for _, x in ipairs({ ... }) do a[#a + 1] = x end
            return a
          end
          local _, same = run(argv("--help"), { env = {} })
          assert.equal(page, same)
          -- every option a page lists is taken by its command (a usage error would name it)
          for flag in page:match("\nOptions:\n(.-)\n\n"):gmatch("\n  (%-%-[%w%-]+)") do
            local _, _, ferr = run(argv(flag, "1"), { env = {} })
            assert.is_nil(ferr:find("apply", 1, true), flag .. ": " .. ferr)
            assert.is_nil(ferr:find("unknown option", 1, true), flag .. ": " .. ferr)
          end
        end
        n = n + 1
      end
      assert.equal(10, n)
      -- a command's option before its word is named as such; --count is per command
      local code, _, err = run({ "--shop", "s1", "sync", "logistics" })
      assert.equal(2, code)
      assert.matches("option '%-%-shop' goes after the command", err)
      code, _, err = run({ "sync", "stock", "--handler", handler_file, "--count" })
      assert.equal(2, code)
      assert.matches("option '%-%-count' needs a value", err)
    end)

    it("exits 2 on usage errors with one readable line on stderr", function()
      local cases = {
        { {}, "a COMMAND is needed" },
        { { "frobnicate" }, "unknown command 'frobnicate'" },
        { { "call" }, "needs a METHOD" },
        { { "call", "x.y", "--colour" }, "unknown option '%-%-colour'" },
        { { "call", "x.y", "--shop", "s1" }, "does not apply" },
        { { "call", "x.y", "[1," }, "not valid JSON" },
        { { "call", "x.y", "42" }, "must be a JSON array" },
        { { "call", "bad method!" }, "not a method name" },
        { { "call", "x.y", "--page-size", "ten" }, "%-%-page%-size" },
        { { "call", "x.y", "--page-size" }, "needs a value" },
        { { "sync" }, "'logistics' or 'stock'" },
        { { "sync", "orders" }, "unknown sync 'orders'" },
        { { "sync", "logistics", "--handler", handler_file }, "'%-%-shop SHOP' is required" },
        { { "sync", "logistics", "--shop", "s1" }, "'%-%-handler FILE.lua' is required" },
        { { "sync", "logistics", "--shop", "s1", "--handler", "/nonexistent.lua" }, "cannot load the handler" },
        { { "sync", "logistics", "--shop", "s1", "--handler", handler_file, "--batch", "0" }, "%-%-batch" },
        { { "sync", "stock", "--handler", handler_file, "--count", "5" }, "%-%-count" },
        { { "sync", "stock", "--handler", handler_file, "--shop", "s1" }, "does not apply" },
      }
      for _, c in ipairs(cases) do
        local code, out, err = run(c[1])
        assert.equal(2, code, table.concat(c[1], " "))
        assert.equal("", out)
        assert.matches("^wdt: ", err)
        assert.matches(c[2], err)
        assert.equal(1, select(2, err:gsub("\n", "")), "one line: " .. err)
      end
    end)

    it("checks that the handler file returns a function", function()
      local bad = tmpfile("return 42\n")
      local code, _, err = run({ "sync", "logistics", "--shop", "s1", "--handler", bad })
      os.remove(bad)
      assert.equal(2, code)
      assert.matches("must return a function, or a table with handle%(item%) or batch%(items%) "
                     .. "%(it returned number%)", err)
      local broken = tmpfile("return function(\n")
      code, _, err = run({ "sync", "logistics", "--shop", "s1", "--handler", broken })
      os.remove(broken)
      assert.equal(2, code)
      assert.matches("cannot load the handler", err)
      assert.equal(50, lstate().size)
    end)

    it("names the missing credentials and never prints secrets", function()
      local code, _, err = run({ "call", "x.y" }, { env = { WDT_URL = emu.url } })
      assert.equal(2, code)
      assert.matches("WDT_SID, WDT_KEY, WDT_SECRET", err)
      code, _, err = run({ "call", "x.y" }, { env = { WDT_SID = SID, WDT_KEY = KEY, WDT_SECRET = "nocolon" } })
      assert.equal(2, code)
      assert.matches("secret:salt", err)
      assert.is_nil(err:find("nocolon", 1, true))
    end)
  end)

  describe("call", function()
    it("prints data as JSON, 64-bit ids exact", function()
      local code, out, err = run({ "call", "sales.LogisticsSync.getSyncListExt",
        '[{"shop_no":"s1","is_own_platform":true}]', "--page-size", "3" })
      assert.equal(0, code, err)
      assert.equal("", err)
      assert.matches('"sync_id":5000000001[,}]', out)
      local rows = cjson.decode(out)
      assert.equal(3, #rows)
      assert.equal("T0000000001", rows[1].tid)
    end)

    it("takes one JSON object as the only argument and pages with --page-no", function()
      local code, out = run({ "call", "sales.LogisticsSync.getSyncListExt",
        '{"shop_no":"s1","is_own_platform":true}', "--page-size=10", "--page-no=4" })
      assert.equal(0, code)
      local rows = cjson.decode(out)
      assert.equal(10, #rows)
      assert.equal("T0000000041", rows[1].tid)
    end)

    it("keeps getSyncListExt's total with --total", function()
      local code, out = run({ "call", "sales.LogisticsSync.getSyncListExt",
        '[{"shop_no":"s1","is_own_platform":true}]', "--page-size", "2", "--total" })
      assert.equal(0, code)
      local v = cjson.decode(out)
      assert.equal(50, v.total)
      assert.equal(2, #v.data)
    end)

    it("reads every page with --all", function()
      local code, out = run({ "call", "sales.LogisticsSync.getSyncListExt",
        '[{"shop_no":"s1","is_own_platform":true}]', "--all", "--page-size", "7" })
      assert.equal(0, code)
      local rows = cjson.decode(out)
      assert.equal(50, #rows)
      assert.equal("T0000000050", rows[50].tid)
      code, out = run({ "call", "setting.Shop.queryShop", "--all" })
      assert.equal(0, code)
      assert.equal("s1", cjson.decode(out)[1].shop_no)
    end)

    it("fails --all as a whole when a page cannot be read", function()
      local n = 0
      local real = require("wdt.client").Client._request    -- every call's road, checked input
      -- the third page read meets a broken server (the first two went through)
      require("wdt.client").Client._request = function(self, ...)
        n = n + 1
        if n == 3 then emu:faults { mode = "http_500", count = 10 } end
        return real(self, ...)
      end
      local code, out, err = run({ "call", "sales.LogisticsSync.getSyncListExt",
        '[{"shop_no":"s1","is_own_platform":true}]', "--all", "--page-size", "7", "--retries", "1" })
      require("wdt.client").Client._request = real
      emu:faults {}
      assert.equal(3, code)
      assert.equal("", out)
      assert.matches("^wdt: http error 500", err)
    end)

    it("calls a plain method and prints the ERP's answer data", function()
      local code, out, err = run({ "call", "sales.LogisticsSync.update",
        '[[{"sync_id":5000000001,"status":0,"error_msg":""}]]' })
      assert.equal(0, code, err)
      assert.equal("[]\n", out)
      assert.equal("", err)
      assert.equal(49, lstate().size)
    end)

    it("exits 1 when a status 0 answer refuses items, printing them as the answer", function()
      local code, out, err = run({ "call", "sales.LogisticsSync.update",
        '[[{"sync_id":5000000001,"status":0,"error_msg":""},{"sync_id":1,"status":0,"error_msg":""}]]' })
      assert.equal(1, code)
      local data = cjson.decode(out)
      assert.equal(1, #data)                   -- the unknown id 1 was refused
      assert.equal("wdt: sales.LogisticsSync.update answered status 0 but refused 1 item(s) (listed above)\n", err)
      assert.equal(49, lstate().size)          -- the known one was applied
    end)

    it("exits 1 when the API answers an error", function()
      local code, out, err = run({ "call", "no.Such.method" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^wdt: api error 1 in no%.Such%.method: ", err)
      env.WDT_KEY = "wrong"
      code, out, err = run({ "call", "sales.LogisticsSync.update", "[[]]" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.is_nil(err:find("12345", 1, true))
      assert.is_nil(err:find("abcde", 1, true))
      assert.is_nil(err:find("sign=", 1, true))
    end)

    it("exits 3 on network failures", function()
      env.WDT_URL = ("http://127.0.0.1:%d/openapi"):format(emulator.free_port())
      local code, out, err = run({ "call", "sales.LogisticsSync.update", "[[]]", "--retries", "0" })
      assert.equal(3, code)
      assert.equal("", out)
      assert.matches("^wdt: network error", err)
      emu:faults { mode = "http_500", count = 10 }
      env.WDT_URL = emu.url
      code = run({ "call", "sales.LogisticsSync.getSyncListExt", "[{}]", "--retries", "1" })
      assert.equal(3, code)
    end)

    it("reads credentials from --config (KEY=VALUE or JSON), over the environment", function()
      local kv = tmpfile(("# wdt\nexport WDT_URL=%s\nWDT_SID=%s\nWDT_KEY='%s'\nWDT_SECRET=\"%s\"\n")
        :format(emu.url, SID, KEY, APPSECRET))
      local code, out, err = run({ "--config", kv, "call", "setting.Shop.queryShop" },
                                 { env = { WDT_KEY = "wrong" } })
      os.remove(kv)
      assert.equal(0, code, err)
      assert.matches("s1", out)
      local js = tmpfile(cjson.encode { url = emu.url, sid = SID, key = KEY, secret = APPSECRET })
      code = run({ "call", "setting.Shop.queryShop", "--config", js }, { env = {} })
      os.remove(js)
      assert.equal(0, code)
      local bad = tmpfile("colour=blue\n")
      code, out, err = run({ "call", "x.y", "--config", bad }, { env = {} })
      os.remove(bad)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("unknown key 'colour'", err)
    end)
  end)

  describe("sync logistics", function()
    it("runs the loop, prints a summary and exits 0", function()
      local n = 0
      _G.__wdt_cli_spec_handler = function()
        n = n + 1
        if n % 10 == 0 then return false, "closed" end
        if n % 17 == 0 then return nil, "busy" end
        return true
      end
      local code, out, err = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file,
                                   "--page-size", "7", "--batch", "5" })
      assert.equal(0, code, err)
      assert.equal("", err)                  -- no progress line: stderr is not a terminal
      assert.matches("logistics sync: 50 rows read, 50 reported", out)
      assert.matches("synced    43\n", out)
      assert.matches("failed    5\n", out)
      assert.matches("deferred  2\n", out)
      local st = lstate()
      assert.equal(43, st.acked)
      assert.equal(5, st.failed)
      assert.equal(2, st.size)
    end)

    it("draws a progress line on stderr when it is a terminal", function()
      _G.__wdt_cli_spec_handler = function() return true end
      local code, _, err = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file,
                                 "--page-size", "10" }, { tty = true })
      assert.equal(0, code)
      assert.matches("\r", err, 1, true)
      assert.matches("logistics  50/50 %(100%%%)  %d+/s  ETA %S+  failed 0  deferred 0\n$", err)
    end)

    it("formats the progress line with done/total, rate, ETA and failures", function()
      local line = cli.progress_line("logistics", { read = 500, total = 2000, elapsed = 2,
                                                    failed = 3, deferred = 1, refused = 2 })
      assert.equal("logistics  500/2000 (25%)  250/s  ETA 6s  failed 3  deferred 1  refused 2", line)
      line = cli.progress_line("stock", { read = 7, elapsed = 0, failed = 0, deferred = 0, refused = 0 })
      assert.equal("stock  7  0/s  ETA ?  failed 0  deferred 0", line)
    end)

    it("exits 1 and lists the refused items when the ERP refuses some", function()
      local wdt = require "wdt"
      local other = wdt.client { sid = SID, key = KEY, secret = APPSECRET, url = emu.url }
      local n = 0
      _G.__wdt_cli_spec_handler = function(row)
        n = n + 1
        if n == 5 then
          assert(other:call("sales.LogisticsSync.update", { { sync_id = row.sync_id, status = 0, error_msg = "" } }))
        end
        return true
      end
      local code, out, err = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file })
      other:close()
      assert.equal(1, code)
      assert.equal("", err)
      assert.matches("refused   1\n", out)
      assert.matches("refused by the ERP %(1%):\n  sync_id 5000000005: ", out)
    end)

    it("exits 0 when a retried report had been applied on its first try", function()
      local n = 0
      _G.__wdt_cli_spec_handler = function()
        n = n + 1
        if n == 1 then emu:faults { mode = "truncated", count = 1 } end   -- the update's answer
        return true
      end
      local code, out, err = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file })
      assert.equal(0, code, out .. err)
      assert.matches("synced    50\n", out)
      assert.matches("refused   0\n", out)
      assert.matches("accepted on an earlier try %(the retry was refused as already reported%) %(50%):", out)
      assert.equal(0, lstate().size)
    end)

    it("exits 1 and lists the items whose outcome the ERP's answer left unclear", function()
      local n = 0
      _G.__wdt_cli_spec_handler = function()
        n = n + 1
        if n == 12 then emu:faults { mode = "refuse", item = 1, anonymous = true } end
        return true
      end
      -- one call at a time: which rows the handler meets 12th depends on the read-ahead's
      -- page otherwise (the second run below reads ahead, and counts)
      local code, out = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file,
                              "--page-size", "10", "--batch", "5", "--concurrency", "1" })
      assert.equal(1, code)
      assert.matches("synced    45\n", out)
      assert.matches("unconfirmed %(the ERP's answer did not say whether it took them%) %(5%):\n"
                     .. "  sync_id 5000000011\n", out)
      emu:reset()
      n = 0
      code, out = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file,
                        "--page-size", "10", "--batch", "5", "--json" })
      assert.equal(1, code)
      local s = cjson.decode(out)
      assert.equal(5, #s.unconfirmed)
      assert.equal(0, #s.confirmed_on_retry)
    end)

    it("exits 3 and lists what was not reported when the network fails", function()
      local n = 0
      _G.__wdt_cli_spec_handler = function()
        n = n + 1
        if n == 2 then emu:faults { mode = "reset", count = 50 } end
        return true
      end
      local code, out, err = run({ "--retries", "1", "sync", "logistics", "--shop", "s1",
                                   "--handler", handler_file, "--page-size", "10" })
      emu:faults {}
      assert.equal(3, code)
      assert.matches("unreported %(still in the ERP's queue%) %(10%):", out)
      assert.matches("^wdt: network error in sales%.LogisticsSync%.update: reporting outcomes: .*"
                     .. "10 item%(s%) left unreported", err)
      assert.equal(50, lstate().size)
    end)

    it("--dry-run reads and counts, calls no handler and reports nothing", function()
      local called = false
      _G.__wdt_cli_spec_handler = function() called = true return true end
      local code, out = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file, "--dry-run" })
      assert.equal(0, code)
      assert.is_false(called)
      assert.matches("^dry run: 50 rows pending; no handler called, nothing reported\n", out)
      assert.equal(50, lstate().size)
      assert.is_nil((emu:state().calls[SID] or {})["sales.LogisticsSync.update"])
    end)

    it("prints the summary as JSON with --json", function()
      _G.__wdt_cli_spec_handler = function() return true end
      local code, out = run({ "sync", "logistics", "--shop", "s1", "--handler", handler_file, "--json" })
      assert.equal(0, code)
      local s = cjson.decode(out)
      assert.equal(50, s.read)
      assert.equal(50, s.synced)
      assert.equal("logistics", s.kind)
    end)
  end)

  describe("sync stock", function()
    it("runs the stock loop", function()
      local n = 0
      _G.__wdt_cli_spec_handler = function(item)
        assert.is_number(item.api_goods_id)
        n = n + 1
        return n % 5 ~= 0, "not listed"
      end
      local code, out, err = run({ "sync", "stock", "--handler", handler_file, "--count", "10" })
      assert.equal(0, code, err)
      assert.matches("stock sync: 20 goods read, 20 reported", out)
      assert.matches("synced    16\n", out)
      assert.matches("failed    4\n", out)
      local st = emu:state().tenants[SID].stock
      assert.equal(16, st.synced)
      assert.equal(4, st.failed)
    end)
  end)

  describe("bin/wdt", function()
    local function sh(cmd)
      local f = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
      local out = f:read("*a")
      f:close()
      local rc = tonumber(out:match("rc=(%d+)\n$"))
      return rc, out:gsub("rc=%d+\n$", "")
    end
    local envs

    before_each(function()
      envs = ("WDT_URL='%s' WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s "):format(emu.url, SID, KEY, APPSECRET)
    end)

    it("runs from any folder, finding src/ and build/ next to itself", function()
      local rc, out = sh("cd / && " .. envs .. "'" .. ROOT .. "/bin/wdt' call setting.Shop.queryShop")
      assert.equal(0, rc, out)
      assert.matches('"shop_no":"s1"', out)
      rc, out = sh("cd / && '" .. ROOT .. "/bin/wdt' --help")
      assert.equal(0, rc)
      assert.matches("^Usage: wdt", out)
    end)

    it("passes the exit code on", function()
      local rc = sh("cd / && '" .. ROOT .. "/bin/wdt' frobnicate")
      assert.equal(2, rc)
      rc = sh("cd / && " .. envs .. "'" .. ROOT .. "/bin/wdt' call no.Such.method")
      assert.equal(1, rc)
    end)

    it("runs a sync with the example handler", function()
      local rc, out = sh("cd / && " .. envs .. "'" .. ROOT .. "/bin/wdt' sync logistics --shop s1 --handler '"
                         .. ROOT .. "/examples/handler.lua'")
      assert.equal(0, rc, out)
      assert.matches("logistics sync: 50 rows read, 50 reported", out)
      -- the example handler defers a few on purpose: exactly those stay in the queue
      local deferred = tonumber(out:match("deferred%s+(%d+)\n"))
      assert.equal(deferred, lstate().size)
      assert.equal(tonumber(out:match("failed%s+(%d+)\n")), lstate().failed)
    end)

    it("hands 'wdt emulator' to bin/wdt-emulator", function()
      local rc, out = sh("cd / && '" .. ROOT .. "/bin/wdt' emulator --help")
      assert.equal(0, rc)
      assert.matches("wdt%-emulator", out)
    end)

    it("takes the emulator down with it when 'wdt emulator' is killed", function()
      local socket = require "socket"
      local port = emulator.free_port()
      local log = os.tmpname()
      local f = io.popen("'" .. ROOT .. "/bin/wdt' emulator --port " .. port .. " >" .. log .. " 2>&1 & echo $!")
      local pid = f:read("*l")
      f:close()
      local function answers()
        local c = socket.tcp()
        c:settimeout(0.2)
        local ok = c:connect("127.0.0.1", port)
        c:close()
        return ok ~= nil
      end
      local deadline = socket.gettime() + 10
      while not answers() and socket.gettime() < deadline do socket.sleep(0.05) end
      assert.is_true(answers(), "the emulator did not start")
      os.execute("kill -TERM " .. pid)                -- only the wdt process, not its group
      deadline = socket.gettime() + 5
      while answers() and socket.gettime() < deadline do socket.sleep(0.1) end
      os.remove(log)
      assert.is_false(answers(), "the emulator outlived 'wdt emulator'")
    end)
  end)

  describe("examples", function()
    it("logistics_sync.lua and stock_sync.lua run against the emulator", function()
      local function sh(cmd)
        local f = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
        local out = f:read("*a")
        f:close()
        return tonumber(out:match("rc=(%d+)\n$")), out
      end
      local envs = ("WDT_URL='%s' WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s "):format(emu.url, SID, KEY, APPSECRET)
      local rc, out = sh("cd / && " .. envs .. "lua5.4 '" .. ROOT .. "/examples/logistics_sync.lua'")
      assert.equal(0, rc, out)
      assert.matches("read 50, reported 50: synced 45, failed 5, deferred 0, refused by the ERP 0", out)
      assert.is_nil(out:find("\r", 1, true), "no progress redrawing when stderr is not a terminal")
      assert.equal(0, lstate().size)
      rc, out = sh("cd / && " .. envs .. "lua5.4 '" .. ROOT .. "/examples/stock_sync.lua'")
      assert.equal(0, rc, out)
      assert.matches("goods read 20: synced 18, failed 2, deferred 0, refused by the ERP 0", out)
      assert.equal(0, emu:state().tenants[SID].stock.size)
    end)
  end)
end)
