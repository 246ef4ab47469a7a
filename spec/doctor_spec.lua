-- Mistakes caught before they cost: `wdt doctor`, the preflight shop check of the flows,
-- no URL is no run, hints for wrong credentials and URLs, a checkpoint's missing folder.
-- cli.main in-process against the real emulator.
local cli = require "spec.support.cli"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET
local SECRET, SALT = APPSECRET:match("^([^:]+):(.*)$")


describe("before a run", function()
  local emu, env, dir

  local function run(argv, e, tty) return cli.run(argv, e or env, tty) end

  -- "ok"/"FAIL"/"skip" of each check by name, from doctor's lines
  local function checks(out)
    local t = {}
    for line in out:gmatch("[^\n]+") do   -- "%-4s  %-12s %s"
      t[(line:sub(7, 18):gsub("%s+$", ""))] = (line:sub(1, 4):gsub("%s+$", ""))
    end
    return t
  end

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 5, shop_no = "s1" } },
      shops = { [SID] = { { shop_no = "s1" }, { shop_no = "tb1", platform_id = 1 },
                          { shop_no = "old", is_disabled = true } } },
    } }
    dir = sh.tmpdir()
  end)
  teardown(function()
    if emu then emu:stop() end
    if dir then os.execute("rm -rf " .. sh.quote(dir)) end
  end)
  before_each(function()
    emu:reset()
    emu:faults {}
    env = { WDT_URL = emu.url, WDT_SID = SID, WDT_KEY = KEY, WDT_SECRET = APPSECRET,
            WDT_LOCK_DIR = dir .. "/locks" }
  end)

  describe("wdt doctor", function()
    it("passes against the emulator: one line per check, exit 0", function()
      local code, out, err = run({ "doctor", "--shop", "s1" })
      assert.equal(0, code, out .. err)
      assert.same({ url = "ok", clock = "ok", credentials = "ok", ["shop s1"] = "ok", locks = "ok" }, checks(out))
      assert.equal(5, select(2, out:gsub("\n", "")))
    end)

    it("names the wrong credential as far as the answers tell, and never prints the secret", function()
      local function credentials(e)
        local code, out = run({ "doctor" }, e)
        assert.equal(1, code)
        assert.equal("FAIL", checks(out).credentials)
        assert.is_nil(out:find(SECRET, 1, true))
        return out:match("credentials%s+([^\n]*)")
      end
      local e = {}
      for k, v in pairs(env) do e[k] = v end
      e.WDT_SECRET = "wrongsecret:" .. SALT
      assert.matches("^the secret %(WDT_SECRET's part before ':'%) is wrong", credentials(e))
      e.WDT_SECRET = SECRET .. ":wrongsalt"
      assert.matches("^the appkey %(WDT_KEY%) or the salt", credentials(e))
      e.WDT_SECRET, e.WDT_KEY = APPSECRET, "wrongkey"
      assert.matches("^the appkey %(WDT_KEY%) or the salt", credentials(e))
      e.WDT_KEY, e.WDT_SID = KEY, "nosuchsid"
      assert.matches("^the sid %(WDT_SID%) 'nosuchsid' is unknown", credentials(e))
    end)

    it("fails each shop that is missing, disabled or not self-owned", function()
      local code, out = run({ "doctor", "--shop", "s1,typo,old,tb1" })
      assert.equal(1, code)
      local c = checks(out)
      assert.same({ "ok", "FAIL", "FAIL", "FAIL" }, { c["shop s1"], c["shop typo"], c["shop old"], c["shop tb1"] })
      assert.matches("shop 'typo' does not exist", out)
      assert.matches("shop 'old' is disabled", out)
      assert.matches("shop 'tb1' is not a self%-owned platform's", out)
    end)

    it("fails the clock when the server's is off, and still checks the credentials on its time", function()
      emu:faults { mode = "skew", count = 10, skew_s = 3600 }
      local code, out = run({ "doctor" })
      assert.equal(1, code)
      local c = checks(out)
      assert.same({ "ok", "FAIL", "ok" }, { c.url, c.clock, c.credentials })
      assert.matches("clock%s+the server's clock is %+3[56]%d%d s", out)
    end)

    it("fails a URL without /openapi (hint), skips what needs an answer; a lock folder that cannot be", function()
      env.WDT_URL = emu.url:gsub("/openapi$", "/")
      local code, out = run({ "doctor", "--shop", "s1", "--lock-dir", "/proc/nope" })
      assert.equal(1, code)
      assert.same({ url = "FAIL", clock = "skip", credentials = "skip", shops = "skip", locks = "FAIL" }, checks(out))
      assert.matches("HTTP 404.*the API's URL ends in /openapi", out)
    end)
  end)

  describe("the preflight shop check", function()
    it("refuses a mistyped shop with exit 2 naming it, reading and sending nothing", function()
      for _, argv in ipairs({
        { "sync", "logistics", "--shop", "typo", "--dry-run" },
        { "scan", "aftersales.refund.Refund.search", '{"shop_no":"typo"}', "--from", "1795000000", "--count" },
      }) do
        local code, out, err = run(argv)
        assert.equal(2, code, err)
        assert.equal("", out)
        assert.matches("shop 'typo' does not exist", err)
      end
      local l = emu:state().tenants[SID].logistics
      assert.same({ 5, 0, 0 }, { #l.pending, l.acked, l.failed })
      -- a scan may read a disabled or another platform's shop: only a missing one is refused
      local code = run({ "scan", "aftersales.refund.Refund.search", '{"shop_no":"tb1"}', "--from", "1795000000",
                         "--count" })
      assert.equal(0, code)
    end)
  end)

  describe("the URL", function()
    it("is required by the command: no URL is a usage error, not production", function()
      env.WDT_URL = nil
      local code, _, err = run({ "call", "setting.Shop.queryShop" })
      assert.equal(2, code)
      assert.matches("no URL: set WDT_URL .* 'production' %(http://wdt%.wangdian%.cn/openapi%) or 'emulator'", err)
    end)

    it("may be named; on a terminal it is printed first", function()
      env.WDT_URL = "emulator"
      local _, _, err = run({ "--retries", "0", "--timeout", "0.5", "call", "x.y" }, env, true)
      assert.matches("^wdt: emulator http://127%.0%.0%.1:8080/openapi, sid " .. SID .. "\n", err)
      assert.equal("http://wdt.wangdian.cn/openapi",
        require("wdt").client { sid = SID, key = KEY, secret = APPSECRET, url = "production" }.url)
    end)
  end)

  describe("hints", function()
    it("say what a refused credential or a 404 probably means", function()
      env.WDT_SECRET = SECRET .. ":wrongsalt"
      local code, _, err = run({ "call", "setting.Shop.queryShop" })
      assert.equal(1, code)
      assert.matches("验证失败\nwdt: hint: the appkey %(WDT_KEY%), or the secret or salt", err)
      env.WDT_SECRET, env.WDT_URL = APPSECRET, emu.url:gsub("/openapi$", "/api")
      code, _, err = run({ "call", "setting.Shop.queryShop" })
      assert.equal(3, code)
      assert.matches("\nwdt: hint: nothing answers at this URL's path: the API's URL ends in /openapi", err)
    end)
  end)

  it("a checkpoint in a folder that does not exist: says to create it, before reading", function()
    local code, out, err = run({ "scan", "aftersales.refund.Refund.search", "--checkpoint", dir .. "/no/cp.json",
                                 "--since", "1795000000" })
    assert.equal(1, code)
    assert.equal("", out)
    assert.matches("the folder " .. dir .. "/no of .* does not exist: create it %(mkdir %-p " .. dir .. "/no%)", err)
  end)
end)
