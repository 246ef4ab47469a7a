-- The same failure gives the same exit code whatever the command: a state or checkpoint
-- file that cannot be used is 1 (not a network failure), lost output is 74 even when the
-- lost output listed refused items. And what `wdt push FILE.jsonl` says of unreported items.
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"

local ROOT = sh.repo_root()
local SID = fixtures.SID

describe("exit codes across commands", function()
  local emu, dir

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = fixtures.KEY, secret = fixtures.APPSECRET } },
      shops = { [SID] = { { shop_no = "tb1", platform_id = 1 } } },
    } }
    dir = sh.tmpdir()
    sh.write_file(dir .. "/source.lua", "return function() return nil end")
  end)
  teardown(function()
    if emu then emu:stop() end
    if dir then os.execute("rm -rf " .. sh.quote(dir)) end
  end)
  before_each(function() emu:reset(); emu:faults {} end)

  -- bin/wdt ARGS with stdout to `stdout` (default: a file); exit code, stdout, stderr
  local function wdt(args, stdout)
    local out, err = dir .. "/out", dir .. "/err"
    os.remove(out)
    local ok, _, code = os.execute(("cd %s && WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s WDT_LOCK_DIR=%s "
      .. "lua5.4 bin/wdt %s >%s 2>%s"):format(sh.quote(ROOT), sh.quote(emu.url), SID, fixtures.KEY,
      fixtures.APPSECRET, sh.quote(dir .. "/locks"), args, stdout or sh.quote(out), sh.quote(err)))
    return ok and 0 or code, sh.read_file(out) or "", sh.read_file(err) or ""
  end

  it("a corrupt push state exits 1, as a corrupt scan checkpoint does; the file is kept", function()
    local state, cp = dir .. "/state.json", dir .. "/cp.json"
    sh.write_file(state, "{not json")
    sh.write_file(cp, "{not json")
    local code, _, err = wdt(("push orders --shop tb1 --source %s --state %s"):format(
      sh.quote(dir .. "/source.lua"), sh.quote(state)))
    assert.equal(1, code, err)
    assert.truthy(err:find("store error", 1, true), err)
    assert.equal("{not json", sh.read_file(state))
    code, _, err = wdt(("scan goods.ApiGoods.search --checkpoint %s"):format(sh.quote(cp)))
    assert.equal(1, code, err)
    assert.truthy(err:find("store error", 1, true), err)
  end)

  it("wdt call of a report with a refused item, its answer lost on a full disk: 74", function()
    local args = [=[call sales.LogisticsSync.update '[[{"sync_id":1,"status":0,"error_msg":""}]]']=]
    local code, out, err = wdt(args)
    assert.equal(1, code, err)                          -- printed: the refusal is listed
    assert.truthy(out:find("sync_id", 1, true) or #out > 2, out)
    local full_code, _, full_err = wdt(args, "/dev/full")
    assert.equal(74, full_code, full_err)
    assert.truthy(full_err:find("cannot write the output", 1, true), full_err)
  end)

  it("wdt push FILE.jsonl does not promise a next run for its unreported items", function()
    local order = require("wdt").json.encode(dofile(ROOT .. "/examples/sample_platform.lua").order(1))
    sh.write_file(dir .. "/one.jsonl", order .. "\n")
    emu:faults { mode = "reset", method = "sales.RawTrade.pushSelf2", count = 10 }
    local code, out, err = wdt("--retries 0 push orders --shop tb1 " .. sh.quote(dir .. "/one.jsonl"))
    assert.equal(3, code, err)
    assert.truthy(out:find("unreported (outcome unknown", 1, true), out)
    assert.is_nil(out:find("next run", 1, true), out)
    assert.truthy(out:find("push them again", 1, true), out)
  end)
end)
