-- Answers of the wrong shape never count as success: the sync loops and `wdt call --all`
-- against an emulator told (fault "data") to answer with other data, or the same page
-- every time. Also: the stock report carries every field of the vendor's page, and an
-- on_progress that raises stops the loop without losing the summary.
local cjson = require "cjson"
local sh = require "spec.support.sh"
local compat = require "spec.support.compat"
local emulator = require "spec.support.emulator"
local wdt = require "wdt"
local cli = require "wdt.cli"

local UPDATE = "sales.LogisticsSync.update"
local LIST = "sales.LogisticsSync.getSyncListExt"
local ROOT = sh.repo_root()

local function sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end return self end,
           text = function() return table.concat(buf) end }
end

describe("answers checked in the loops", function()
  local emu, client

  setup(function()
    emu = emulator.start()
    client = wdt.client { sid = emulator.DEMO.sid, key = emulator.DEMO.key,
                          secret = emulator.DEMO.appsecret, url = emu.url, retries = 0 }
  end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:reset() emu:faults {} end)

  local function lstate() return emu:state().tenants[emulator.DEMO.sid].logistics end
  local function sync(extra)
    -- one call at a time: the first bad answer stops the run before any other batch is sent
    local o = { shop_no = "s1", lock = false, batch = 5, concurrency = 1, handler = function() return true end }
    for k, v in pairs(extra or {}) do o[k] = v end
    return client:sync_logistics(o)
  end

  for _, case in ipairs({
    { "a string", "处理失败" }, { "an object", { x = 1 } }, { "a number", 5 },
  }) do
    it("update answered with data " .. case[1] .. ": a decode error, the batch unconfirmed", function()
      emu:faults { mode = "data", method = UPDATE, data = case[2] }
      local s, err = sync()
      assert.is_nil(s)
      assert.equal("decode", err.kind)
      local sum = err.summary
      assert.equal(0, sum.synced)
      assert.equal(5, #sum.unconfirmed)
      assert.truthy(tostring(err):find("unconfirmed", 1, true))
    end)
  end

  it("update answered without data: a decode error, the batch unconfirmed", function()
    emu:faults { mode = "no_data", method = UPDATE }
    local s, err = sync()
    assert.is_nil(s)
    assert.equal("decode", err.kind)
    assert.equal(0, err.summary.synced)
    assert.equal(5, #err.summary.unconfirmed)
  end)

  it("a queue page without a list of rows is an error, not an empty queue", function()
    emu:faults { mode = "data", method = LIST, data = { rows = "none" } }
    local s, err = sync()
    assert.is_nil(s)
    assert.equal("decode", err.kind)
    assert.truthy(err.message:find("no list of rows", 1, true), err.message)
    assert.equal(50, lstate().size)
  end)

  it("a server answering the same full page whatever page_no stops with an error", function()
    local rows = {}
    for i = 1, 5 do rows[i] = { sync_id = 900 + i, tid = "T" .. i } end
    emu:faults { mode = "data", method = LIST, data = rows, count = 1000 }
    local handled = 0
    local s, err = sync { page_size = 5, handler = function() handled = handled + 1 return true end }
    assert.is_nil(s)
    assert.equal("decode", err.kind)
    assert.truthy(err.message:find("same as page", 1, true), err.message)
    assert.equal(5, handled)                        -- each row handed over once
  end)

  it("a first page whose total is fewer than its rows is an error", function()
    local rows = {}
    for i = 1, 5 do rows[i] = { sync_id = 900 + i } end
    emu:faults { mode = "data", method = LIST, data = rows, total = 2 }
    local handled = 0
    local s, err = sync { handler = function() handled = handled + 1 return true end }
    assert.is_nil(s)
    assert.equal("decode", err.kind)
    assert.truthy(err.message:find("total 2 does not match the 5 row(s)", 1, true), err.message)
    assert.equal(0, handled)
  end)

  it("the stock report carries all 16 fields of the vendor's page (the emulator requires them)", function()
    local s = assert(client:sync_stock { lock = false, handler = function(g) return g.api_goods_id % 3 ~= 0 end })
    assert.equal(0, s.refused)
    assert.equal(20, s.synced + s.failed)
    assert.equal(0, emu:state().tenants[emulator.DEMO.sid].stock.size)
  end)

  it("an on_progress that raises stops the loop; what was handled is reported, the summary kept", function()
    local n = 0
    local s, err = sync { page_size = 10, on_progress = function()
      n = n + 1
      if n == 2 then error("display broke") end
    end }
    assert.is_nil(s)
    assert.equal("callback", err.kind)
    assert.truthy(err.message:find("display broke", 1, true))
    local sum = err.summary
    assert.is_table(sum)
    assert.equal(sum.read, sum.synced)              -- every row handled was reported
    assert.equal(0, #sum.unreported)
    assert.equal(50 - sum.synced, lstate().size)
  end)

  describe("client:page_call and client:pages", function()
    local REFUNDS = "aftersales.refund.RawRefund.search"
    local PARAMS = { start_time = "2026-01-01 00:00:00", end_time = "2026-01-02 00:00:00" }
    local PAGER = { page_size = 10, page_no = 0, calc_total = true }

    for _, data in ipairs({ {}, "x", { total_count = 0 }, { order = {} }, { total_count = 3 } }) do
      it("a page answered with data " .. cjson.encode(data) .. " is a decode error, not an empty page", function()
        emu:faults { mode = "data", method = REFUNDS, data = data, count = 2 }
        local page, err = client:page_call(REFUNDS, PAGER, PARAMS)
        assert.is_nil(page)
        assert.equal("decode", err.kind)
        assert.equal(REFUNDS, err.method)
        assert.truthy(err.message:find("page 0: the answer holds no list of rows", 1, true), err.message)
        local got = {}
        for p, perr in client:pages(REFUNDS, PAGER, PARAMS) do got[#got + 1] = p or perr end
        assert.equal(1, #got)
        assert.equal("decode", got[1].kind)
      end)
    end

    it("a page answered without data is a decode error", function()
      emu:faults { mode = "no_data", method = REFUNDS }
      local page, err = client:page_call(REFUNDS, PAGER, PARAMS)
      assert.is_nil(page)
      assert.equal("decode", err.kind)
    end)

    it("an empty result with its list is an empty page", function()
      local page = assert(client:page_call(REFUNDS, PAGER, PARAMS))
      assert.equal(0, #page.rows)
      assert.equal(0, page.total)
    end)

    it("a paged request in client:call_many with no list gives that item a decode error", function()
      emu:faults { mode = "data", method = REFUNDS, data = { total_count = 0 } }
      local results = client:call_many({ { REFUNDS, PARAMS, pager = PAGER }, { REFUNDS, PARAMS, pager = PAGER } },
                                       { concurrency = 1 })
      assert.equal("decode", results[1].err.kind)
      assert.equal(0, #results[2].data.rows)
    end)
  end)

  describe("wdt call --all", function()
    local function run(argv)
      local out, errs = sink(), sink()
      local env = { WDT_URL = emu.url, WDT_SID = emulator.DEMO.sid, WDT_KEY = emulator.DEMO.key,
                    WDT_SECRET = emulator.DEMO.appsecret }
      local code = cli.main(argv, env, { stdout = out, stderr = errs, stderr_tty = false })
      return code, out.text(), errs.text()
    end
    local ARGS = '[{"shop_no":"s1","is_own_platform":true}]'

    it("an answer without a list is an error (exit 3), not []", function()
      emu:faults { mode = "data", method = LIST, data = "x" }
      local code, out, err = run { "call", LIST, ARGS, "--all" }
      assert.equal(3, code)
      assert.equal("", out)
      assert.truthy(err:find("no list of rows", 1, true), err)
    end)

    it("the same page again stops with an error", function()
      emu:faults { mode = "data", method = LIST, data = { { sync_id = 1 }, { sync_id = 2 } }, count = 1000 }
      local code, out, err = run { "call", LIST, ARGS, "--all", "--page-size", "2" }
      assert.equal(3, code)
      assert.equal("", out)
      assert.truthy(err:find("same as the page before", 1, true), err)
    end)

    it("--max-rows caps the rows (default 100000)", function()
      local code, out, err = run { "call", LIST, ARGS, "--all", "--page-size", "7", "--max-rows", "20" }
      assert.equal(3, code)
      assert.equal("", out)
      assert.truthy(err:find("more than 20 rows", 1, true), err)
      code, out = run { "call", LIST, ARGS, "--all", "--page-size", "7", "--max-rows", "50" }
      assert.equal(0, code)
      assert.equal(50, #cjson.decode(out))
    end)
  end)
end)

describe("wdt command: mistakes and lost output", function()
  local emu, env, dir

  setup(function()
    emu = emulator.start()
    dir = sh.tmpdir()
  end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function()
    emu:reset()
    env = { WDT_URL = emu.url, WDT_SID = emulator.DEMO.sid, WDT_KEY = emulator.DEMO.key,
            WDT_SECRET = emulator.DEMO.appsecret, WDT_LOCK_DIR = dir .. "/locks" }
  end)

  local function run(argv, e)
    local out, errs = sink(), sink()
    local code = cli.main(argv, e or env, { stdout = out, stderr = errs, stderr_tty = false })
    return code, out.text(), errs.text()
  end

  it("refuses a config file others can read (like ssh with a private key), uses a 0600 one", function()
    local path = dir .. "/wdt.conf"
    sh.write_file(path, ("WDT_URL=%s\nWDT_SID=%s\nWDT_KEY=%s\nWDT_SECRET=%s\n"):format(
      emu.url, emulator.DEMO.sid, emulator.DEMO.key, emulator.DEMO.appsecret))
    os.execute("chmod 644 " .. sh.quote(path))
    local code, _, err = run({ "--config", path, "call", "setting.Shop.queryShop" }, {})
    assert.equal(2, code)
    assert.truthy(err:find("accessible by others (mode 644)", 1, true), err)
    assert.truthy(err:find("chmod 600", 1, true), err)
    os.execute("chmod 640 " .. sh.quote(path))
    assert.equal(2, (run({ "--config", path, "call", "setting.Shop.queryShop" }, {})))
    os.execute("chmod 600 " .. sh.quote(path))
    assert.equal(0, (run({ "--config", path, "call", "setting.Shop.queryShop" }, {})))
  end)

  it("exits 2, not 70, for a folder as --config, a URL with a query, a shop name that is not UTF-8", function()
    local code, _, err = run { "--config", "/etc", "call", "setting.Shop.queryShop" }
    assert.equal(2, code, err)
    assert.truthy(err:find("is a folder", 1, true), err)
    code, _, err = run { "--url", "http://h/openapi?x=1", "call", "setting.Shop.queryShop" }
    assert.equal(2, code, err)
    code, _, err = run { "--url", "http://h/open\r\napi", "call", "setting.Shop.queryShop" }
    assert.equal(2, code, err)
    local handler = dir .. "/h.lua"
    sh.write_file(handler, "return function() return true end")
    code, _, err = run { "sync", "logistics", "--shop", "s\255\254", "--handler", handler }
    assert.equal(2, code, err)
    assert.truthy(err:find("UTF-8", 1, true), err)
  end)

  -- lost output exits 74, also over the 1 of a refusal that output listed
  for _, case in ipairs({
    { "a sync summary", "sync logistics --shop s1 --handler %s", 0 },
    { "a call's answer listing a refused item",
      [=[call sales.LogisticsSync.update '[[{"sync_id":1,"status":0,"error_msg":""}]]']=], 1 },
  }) do
    it(case[1] .. " that cannot be written (a full device) exits 74", function()
      local handler = dir .. "/ok.lua"
      sh.write_file(handler, "return function() return true end")
      local function run_to(stdout)
        local _, _, code = compat.execute(("cd %s && WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s WDT_LOCK_DIR=%s"
          .. " lua5.4 bin/wdt %s >%s 2>%s"):format(sh.quote(ROOT), sh.quote(emu.url), emulator.DEMO.sid,
          emulator.DEMO.key, sh.quote(emulator.DEMO.appsecret), sh.quote(dir .. "/locks"),
          case[2]:format(sh.quote(handler)), stdout, sh.quote(dir .. "/full.err")))
        return code
      end
      assert.equal(case[3], run_to(sh.quote(dir .. "/full.out")))
      emu:reset()
      assert.equal(74, run_to("/dev/full"))
      assert.truthy(sh.read_file(dir .. "/full.err"):find("cannot write the output", 1, true))
    end)
  end

  it("the progress line says when it waits for the rate budget", function()
    local line = cli.progress_line("stock", { read = 5, total = 20, elapsed = 1, waiting = 42.2,
                                              waiting_for = "rate limited" })
    assert.truthy(line:find("waiting 43s (rate limited)", 1, true), line)
  end)
end)
