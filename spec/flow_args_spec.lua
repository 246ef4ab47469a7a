-- A wrong option to a flow, a lock or a batch, or a wrong argument to any public function,
-- raises at the line of the user's script that made the call, however deep in wdt the option
-- is checked (wdt.check, wdt.flow): also from a script in a folder named `wdt`.
local wdt = require "wdt"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET

-- Runs `line` (line 3 of a script in DIR/proj/wdt/job.lua, whose client sends nowhere) and
-- returns what it raised.
local function raised(line)
  local root = sh.tmpdir()
  local dir = root .. "/proj/wdt"
  os.execute("mkdir -p " .. sh.quote(dir))
  local script = dir .. "/job.lua"
  sh.write_file(script, table.concat({
    "local wdt, opts = ...",
    "local client = wdt.client(opts)",
    line,
    "return true",
  }, "\n"))
  local ok, msg = pcall(assert(loadfile(script)), wdt,
                        { sid = SID, key = KEY, secret = APPSECRET, url = "http://127.0.0.1:9/openapi" })
  os.execute("rm -rf " .. sh.quote(root))
  assert.is_false(ok, "no error raised by: " .. line)
  return tostring(msg)
end

describe("a wrong option names the caller's file and line", function()
  local cases = {
    { "client:sync_logistics", "client:sync_logistics { shop_no = 's1', handler = print, batch = 0 }",
      "bad argument 'batch' to 'sync_logistics'" },
    { "client:sync_logistics, lock", "client:sync_logistics { shop_no = 's1', handler = print, lock = { ttl = 'x' } }",
      "bad argument 'lock.ttl' to 'sync_logistics'" },
    { "client:sync_stock", "client:sync_stock { handler = print, bogus = 1 }",
      "bad argument 'bogus' to 'sync_stock' (unknown option)" },
    { "client:push_orders", "client:push_orders { shop_no = 's1', orders = {}, batch = 101 }",
      "bad argument 'batch' to 'push_orders'" },
    { "client:upload_goods", "client:upload_goods { shop_no = 's1' }",
      "bad argument 'goods' to 'upload_goods'" },
    { "client:scan", "client:scan { method = 'sales.TradeQuery.querySelfOrderWithDetail', from = 0, lag = -1 }",
      "bad argument 'lag' to 'scan'" },
    { "wdt.lock.acquire", "require('wdt.lock').acquire { name = 'n', backend = 'disk' }",
      "bad argument 'backend' to 'wdt.lock.acquire'" },
    { "client:call_many", "client:call_many({ { 'sales.TradeQuery.querySelfOrderWithDetail' } }, { concurrency = 0 })",
      "bad argument 'opts.concurrency' to 'call_many'" },
    { "client:call_many, a request", "client:call_many({ { 'a.b', pager = { page_size = 0 } } })",
      "bad argument 'requests[1].pager' to 'call_many'" },
    { "wdt.sign", "wdt.sign('s', 'x')", "bad argument 'params' to 'wdt.sign' (table expected, got string)" },
    { "wdt.array", "wdt.array(setmetatable({}, {}))",
      "bad argument 't' to 'wdt.array' (table already has a metatable)" },
    { "wdt.store.lock", "require('wdt.store').lock('')",
      "bad argument 'path' to 'wdt.store.lock' (non-empty string expected, got \"\")" },
    { "wdt.api.get", "require('wdt.api').get(1)",
      "bad argument 'name' to 'wdt.api.get' (string expected, got number)" },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      local msg = raised(case[2])
      assert.truthy(msg:find("/proj/wdt/job.lua:3: " .. case[3], 1, true), msg)
    end)
  end
end)
