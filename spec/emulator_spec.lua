-- wdt-emulator: the local open API server (bin/wdt-emulator, emulator/*.lua).
-- Requests are signed by spec/support/signer.lua, not by wdt, so the emulator and the client
-- are not only checked against each other.
local socket = require "socket"
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local signer = require "spec.support.signer"
local compat = require "spec.support.compat"

local LIST = "sales.LogisticsSync.getSyncListExt"
local UPDATE = "sales.LogisticsSync.update"
local OWN = '[{"shop_no":"s1","is_own_platform":true}]'
local RATE_MSG = "超过每分钟最大调用频率限制"

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

local function children(pid)
  local out = {}
  for line in sh("ps -o pid= --ppid " .. pid):gmatch("%d+") do out[#out + 1] = tonumber(line) end
  return out
end

local function cmdline(pid)
  local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
  if not f then return "" end
  local s = f:read("*a"):gsub("%z", " ")
  f:close()
  return s
end

local function list_ids(body)
  local ids = {}
  for i, r in ipairs(body.data) do ids[i] = compat.tointeger(r.sync_id) end
  return ids
end

describe("spec/support/signer.lua", function()
  it("computes MD5", function()
    assert.equal("d41d8cd98f00b204e9800998ecf8427e", signer.md5(""))
    assert.equal("9e107d9d372bb6826bd81d3542a419d6",
                 signer.md5("The quick brown fox jumps over the lazy dog"))
    assert.equal("cabe45dcc9ae5b66ba86600cca6b8ba8", signer.md5(string.rep("a", 1000)))
    assert.equal("7707d6ae4e027c70eea2a935c2296f21", signer.md5(string.rep("a", 1000000)))
  end)

  it("signs the vendor's worked example", function()
    assert.equal("20f557aaf9190797c581bbceeb6d5a5c", signer.sign("693f9fed686bfe13441385da98b436b6", {
      sid = "wdterp30", key = "czhc", salt = "dd488d0802b1e431e4c72cd355847853",
      method = "wms.stockout.Sales.weighingExt", v = "1.0", timestamp = 232623153,
      body = '["xc109393939393939","",1.2,0,false]' }))
  end)

  it("signs the protocol's second example, with the documented canonical string", function()
    local params = { sid = "apidevnew2", key = "test2-xx", salt = "abcde",
                     method = "sales.LogisticsSync.update", v = "1.0", timestamp = 1,
                     body = '[[{"sync_id":88950,"status":0,"error_msg":""}]]' }
    assert.equal('12345body[[{"sync_id":88950,"status":0,"error_msg":""}]]keytest2-xx'
                 .. "methodsales.LogisticsSync.updatesaltabcdesidapidevnew2timestamp1v1.012345",
                 signer.canonical("12345", params))
    assert.equal("22bb377c2960b38cbe675019ce480023", signer.sign("12345", params))
  end)
end)

describe("wdt-emulator launcher", function()
  it("prints where it listens, and leaves no process nor folder behind on SIGTERM", function()
    local e = emulator.start()
    assert.equal("listening on http://127.0.0.1:" .. e.port .. "/openapi\n", e:stdout())
    local masters = children(e.pid)
    local master
    for _, pid in ipairs(masters) do
      if cmdline(pid):find("nginx", 1, true) then master = pid end
    end
    assert.truthy(master, "nginx master runs under the launcher")
    local prefix = cmdline(master):match("%-p (%S+)")
    assert.truthy(prefix and prefix:find("wdt-emulator", 1, true))
    local workers = children(master)
    assert.equal(1, #workers)
    assert.truthy(io.open(prefix .. "nginx.conf")):close()
    e:stop()
    assert.is_false(emulator.alive(e.pid))
    assert.is_false(emulator.alive(master))
    assert.is_false(emulator.alive(workers[1]))
    assert.is_nil(io.open(prefix .. "nginx.conf"))
  end)

  it("start() takes another port when the free one it picked was taken before nginx bound it", function()
    -- many specs at once: two may be handed one port; the second nginx cannot bind it
    local first = emulator.start()
    local picks, real = 0, emulator.free_port
    emulator.free_port = function()
      picks = picks + 1
      if picks == 1 then return first.port end
      return real()
    end
    local ok, second = pcall(emulator.start)
    emulator.free_port = real
    first:stop()
    assert.is_true(ok, tostring(second))
    assert.is_true(second.port ~= first.port)
    assert.equal(200, (second:request { method = "setting.Shop.queryShop", args_json = "[]" }))
    second:stop()
  end)

  it("stops cleanly on SIGINT", function()
    local port = emulator.free_port()
    local tmp = os.tmpname()
    local pid = tonumber(sh("env --default-signal=INT " .. emulator.BIN .. " --port " .. port
                            .. " >" .. tmp .. " 2>&1 </dev/null & echo $!"))
    local deadline = socket.gettime() + 10
    local f
    repeat
      socket.sleep(0.05)
      f = io.open(tmp):read("*a")
    until f:find("listening", 1, true) or socket.gettime() > deadline
    assert.truthy(f:find("listening on http://127.0.0.1:" .. port .. "/openapi", 1, true), f)
    local kids = children(pid)
    os.execute("kill -INT " .. pid)
    deadline = socket.gettime() + 10
    while emulator.alive(pid) and socket.gettime() < deadline do socket.sleep(0.02) end
    assert.is_false(emulator.alive(pid))
    for _, k in ipairs(kids) do assert.is_false(emulator.alive(k)) end
    os.remove(tmp)
  end)

  it("refuses bad arguments and bad configurations with a message", function()
    local out = sh(emulator.BIN .. " --port nope 2>&1; echo rc=$?")
    assert.truthy(out:find("--port", 1, true))
    assert.truthy(out:find("rc=2", 1, true))
    local ok, err = pcall(emulator.start, { config = '{"tenants":[{"sid":"a"}]}' })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("tenants[1] needs string sid, key and secret", 1, true), err)
    ok, err = pcall(emulator.start, { config = "{not json" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("is not JSON", 1, true), err)
    ok, err = pcall(emulator.start, { config = '{"tenants":[{"sid":"a","key":"k","secret":"s:t"}],'
                                      .. '"stock":{"a":{"pending":0,"ids":[5,5]}}}' })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("config: stock.a.ids: 5 is already a good", 1, true), err)
  end)
end)

describe("wdt-emulator", function()
  local e
  setup(function() e = emulator.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset(); e:faults{} end)

  describe("without a config", function()
    it("serves the demo tenant with 50 pending shipments and 20 pending stock items", function()
      local st = e:state()
      local t = st.tenants.apidevnew2
      assert.equal(50, t.logistics.size)
      assert.equal(50, #t.logistics.pending)
      assert.equal(20, t.stock.size)
      local code, body = e:request{ method = LIST, args_json = OWN,
                                    page = { page_size = 100, page_no = 0, calc_total = 1 } }
      assert.equal(200, code)
      assert.equal(0, body.status)
      assert.equal(50, body.total)
      assert.equal(50, #body.data)
    end)
  end)

  describe("checks what the real server checks", function()
    local function status_of(o)
      o.method = o.method or LIST
      o.args_json = o.args_json or OWN
      local code, body, _, raw = e:request(o)
      assert.equal(200, code, raw)
      return body.status, body.message
    end

    it("accepts a well-signed call", function()
      assert.equal(0, (status_of{}))
    end)

    it("rejects an unknown sid", function()
      local st, msg = status_of{ sid = "nobody" }
      assert.equal(1, st)
      assert.equal("sid is not exists", msg)
    end)

    it("rejects a wrong key, salt or sign", function()
      for _, o in ipairs({ { key = "other" }, { salt = "wrong" }, { secret = "99999:abcde" },
                           { sign = string.rep("0", 32) } }) do
        local st, msg = status_of(o)
        assert.equal(1, st)
        assert.equal("验证失败", msg)
      end
    end)

    it("rejects a signature over other bytes than the body sent", function()
      local code, body = e:request{ method = LIST, args_json = OWN,
        sign = signer.sign("12345", { sid = "apidevnew2", key = "test2-xx", salt = "abcde",
          method = LIST, v = "1.0", timestamp = signer.timestamp(), body = "[{}]" }) }
      assert.equal(200, code)
      assert.equal(1, body.status)
    end)

    it("rejects a timestamp more than 120 s off with status 7", function()
      local now = signer.timestamp()
      assert.equal(0, (status_of{ timestamp = now - 100 }))
      assert.equal(0, (status_of{ timestamp = now + 100 }))
      assert.equal(7, (status_of{ timestamp = now - 130 }))
      assert.equal(7, (status_of{ timestamp = now + 130 }))
      assert.equal(7, (status_of{ timestamp = 1 }))
    end)

    it("rejects a millisecond timestamp with status 1", function()
      assert.equal(1, (status_of{ timestamp = (os.time() - 1325347200) * 1000 }))
    end)

    it("rejects a version other than 1.0 with status 8", function()
      assert.equal(8, (status_of{ v = "2.0" }))
      assert.equal(8, (status_of{ v = "1" }))
    end)

    it("rejects a missing public parameter with status 1", function()
      assert.equal(1, (status_of{ drop = { "salt" } }))
      assert.equal(1, (status_of{ drop = { "timestamp" } }))
    end)

    it("rejects a body that is not a JSON array, even when well signed", function()
      for _, body in ipairs({ '{"shop_no":"s1","is_own_platform":true}', '', 'nope', '[1,]' }) do
        local st = status_of{ args_json = body }
        assert.equal(1, st, body)
      end
      -- whitespace: spec/emulator_vendor_spec.lua
    end)

    it("rejects a Content-Type other than application/json", function()
      assert.equal(1, (status_of{ headers = { ["content-type"] = "application/x-www-form-urlencoded" } }))
      assert.equal(1, (status_of{ headers = { ["content-type"] = "text/plain" } }))
      assert.equal(0, (status_of{ headers = { ["content-type"] = "application/json; charset=utf-8" } }))
    end)

    it("rejects an unknown method with status 1", function()
      assert.equal(1, (status_of{ method = "sales.Nothing.here" }))
    end)

    it("never logs salts, signs or secrets", function()
      status_of{ key = "other" }
      status_of{ args_json = "[ ]" }
      e:faults{ mode = "reset" }
      e:request{ method = LIST, args_json = OWN }
      e:request{ method = LIST, args_json = OWN }
      local err = e:stderr()
      assert.is_nil(err:find("abcde", 1, true), err)
      assert.is_nil(err:find("sign", 1, true), err)
      assert.is_nil(err:find("12345", 1, true), err)
    end)

    it("rejects wrong argument shapes for a known method with status 2", function()
      local cases = {
        { LIST, "[]" }, { LIST, "[1]" }, { LIST, '[{"shop_no":1,"is_own_platform":true}]' },
        { LIST, '[{"is_own_platform":"yes"}]' }, { UPDATE, "[]" }, { UPDATE, '[{"sync_id":1}]' },
        { UPDATE, "[[1]]" }, { "sales.StockSync.getSelfWaitSyncIdListOpen", "[5,0]" },
        { "sales.StockSync.getSelfWaitSyncIdListOpen", "[100]" },
        { "sales.StockSync.calcStock", "[7000000001]" },
        { "sales.StockSync.syncSuccess", "[7000000001,{}]" },
        { "sales.StockSync.cancelSync", '[7000000001,"x"]' },
      }
      for _, c in ipairs(cases) do
        local st = status_of{ method = c[1], args_json = c[2] }
        assert.equal(2, st, c[1] .. " " .. c[2])
      end
      assert.equal(2, (status_of{ page = { page_size = 0 } }))
      assert.equal(2, (status_of{ page = { page_size = 1001 } }))
      assert.equal(2, (status_of{ page = { page_size = 10, page_no = -1 } }))
    end)
  end)

  describe("with a config", function()
    local c
    setup(function()
      c = emulator.start{ config = {
        tenants = { { sid = "t1", key = "k1", secret = "s1:salt1" },
                    { sid = "t2", key = "k2", secret = "s2:salt2" } },
        logistics = { t1 = { pending = 7, shop_no = "shopA" }, t2 = { pending = 3 } },
        stock = { t1 = { pending = 12 } },
        rate_limit = { per_minute = 5 },
      } }
    end)
    teardown(function() if c then c:stop() end end)

    it("serves its tenants and queues", function()
      local st = c:state()
      assert.equal(7, st.tenants.t1.logistics.size)
      assert.equal(3, st.tenants.t2.logistics.size)
      assert.equal(12, st.tenants.t1.stock.size)
      assert.equal(0, st.tenants.t2.stock.size)
      assert.is_nil(st.tenants.apidevnew2)
      local code, body = c:request{ sid = "t1", key = "k1", secret = "s1:salt1", method = LIST,
        args_json = '[{"shop_no":"shopA","is_own_platform":true}]',
        page = { page_size = 100, calc_total = 1 } }
      assert.equal(200, code)
      assert.equal(7, body.total)
      -- tenants are apart: t1's secret does not sign for t2
      local _, b2 = c:request{ sid = "t2", key = "k2", secret = "s1:salt2", method = LIST, args_json = OWN }
      assert.equal(1, b2.status)
    end)

    it("limits calls per minute with status 100", function()
      c:reset()
      local o = { sid = "t2", key = "k2", secret = "s2:salt2", method = LIST, args_json = OWN }
      for _ = 1, 5 do
        local _, b = c:request(o)
        assert.equal(0, b.status)
      end
      local _, b = c:request(o)
      assert.equal(100, b.status)
      assert.equal("超过每分钟最大调用频率限制，请稍后重试", b.message)
      -- another tenant has its own budget; a reset starts a new window
      local _, b1 = c:request{ sid = "t1", key = "k1", secret = "s1:salt1", method = LIST, args_json = OWN }
      assert.equal(0, b1.status)
      c:reset()
      local _, b3 = c:request(o)
      assert.equal(0, b3.status)
    end)
  end)

  describe("paging", function()
    it("pages with page_size and page_no from 0", function()
      local seen = {}
      for page = 0, 4 do
        local _, body = e:request{ method = LIST, args_json = OWN,
                                   page = { page_size = 12, page_no = page, calc_total = 1 } }
        assert.equal(0, body.status)
        assert.equal(50, body.total)
        assert.equal(page < 4 and 12 or 2, #body.data)
        for _, id in ipairs(list_ids(body)) do
          assert.is_nil(seen[id]); seen[id] = true
        end
      end
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.equal(50, n)
      local _, beyond = e:request{ method = LIST, args_json = OWN, page = { page_size = 12, page_no = 5 } }
      assert.equal(0, #beyond.data)
    end)

    it("counts the total only with calc_total = 1", function()
      local _, body = e:request{ method = LIST, args_json = OWN,
                                 page = { page_size = 5, page_no = 0, calc_total = 0 } }
      assert.equal(5, #body.data)
      assert.equal(0, body.total)
    end)

    it("answers getSyncListExt with rows in data and the count in total", function()
      local _, body, _, raw = e:request{ method = LIST, args_json = OWN,
                                         page = { page_size = 2, calc_total = 1 } }
      assert.truthy(raw:find('"data":[', 1, true))
      assert.equal(50, body.total)
      assert.is_nil(body.data.total_count)
    end)

    it("answers other queries with total_count and the list inside data", function()
      local _, body = e:request{ method = "setting.Shop.queryShop", args_json = "[]",
                                 page = { page_size = 10, page_no = 0, calc_total = 1 } }
      assert.equal(0, body.status)
      assert.equal(1, body.data.total_count)
      assert.equal("s1", body.data.details[1].shop_no)
    end)

    it("lists only what the filters select, and only to self-owned platform callers", function()
      local _, body = e:request{ method = LIST, args_json = '[{"shop_no":"s1"}]',
                                 page = { page_size = 100, calc_total = 1 } }
      assert.equal(0, #body.data)
      _, body = e:request{ method = LIST, args_json = '[{"shop_no":"elsewhere","is_own_platform":true}]',
                           page = { page_size = 100, calc_total = 1 } }
      assert.equal(0, body.total)
      _, body = e:request{ method = LIST, args_json = '[{"is_own_platform":true,"is_part_sync":1}]',
                           page = { page_size = 100, calc_total = 1 } }
      assert.equal(5, body.total) -- every tenth row is a partial shipment
      _, body = e:request{ method = LIST, args_json = '[{"is_own_platform":true,"tid":"T0000000007"}]',
                           page = { page_size = 100, calc_total = 1 } }
      assert.equal(1, body.total)
      assert.equal(5000000007, body.data[1].sync_id)
    end)
  end)

  describe("the logistics queue", function()
    it("lists rows with every documented field, with ids above 2^32", function()
      local _, body = e:request{ method = LIST, args_json = OWN, page = { page_size = 50 } }
      local ids, trades = {}, {}
      for _, r in ipairs(body.data) do
        for _, f in ipairs({ "sync_id", "tid", "logistics_no", "logistics_code", "logistics_name",
                             "is_part_sync", "oids", "trade_id", "platform_id", "created" }) do
          assert.is_not_nil(r[f], f)
        end
        assert.is_true(r.sync_id > 2 ^ 32 and r.sync_id < 2 ^ 53)
        assert.is_true(r.trade_id > 2 ^ 32 and r.trade_id < 2 ^ 53)
        assert.is_nil(ids[r.sync_id]); ids[r.sync_id] = true
        assert.is_nil(trades[r.trade_id]); trades[r.trade_id] = true
        assert.truthy(r.created:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"))
        assert.equal("string", type(r.oids))
      end
      -- exact big integers on the wire
      local _, _, _, raw = e:request{ method = LIST, args_json = OWN, page = { page_size = 1 } }
      assert.truthy(raw:find('"sync_id":5000000001,', 1, true))
    end)

    it("removes rows reported 0 or 2, keeps -100, and lists the items it refused", function()
      local args = '[[{"sync_id":5000000001,"status":0,"error_msg":""},'
        .. '{"sync_id":5000000002,"status":2,"error_msg":"platform said no"},'
        .. '{"sync_id":5000000003,"status":-100,"error_msg":"later"},'
        .. '{"sync_id":5000000004,"status":"0","error_msg":""},'
        .. '{"sync_id":123,"status":0,"error_msg":""},'
        .. '{"sync_id":5000000005,"status":7,"error_msg":""},'
        .. '{"sync_id":5000000006,"error_msg":""}]]'
      local code, body = e:request{ method = UPDATE, args_json = args }
      assert.equal(200, code)
      assert.equal(0, body.status)
      assert.equal(3, #body.data)
      assert.truthy(body.data[1]:find("123", 1, true))
      assert.truthy(body.data[2]:find("^第6条: ")) -- a bad status: named by its position
      assert.truthy(body.data[3]:find("同步结果状态为空", 1, true))
      local t = e:state().tenants.apidevnew2.logistics
      assert.equal(47, t.size)
      assert.equal(2, t.acked)
      assert.equal(1, t.failed)
      assert.equal(1, t.kept)
      local pending = {}
      for _, id in ipairs(t.pending) do pending[compat.tointeger(id)] = true end
      assert.is_nil(pending[5000000001]); assert.is_nil(pending[5000000002])
      assert.is_nil(pending[5000000004])
      assert.is_true(pending[5000000003]); assert.is_true(pending[5000000005])
      -- a row reported twice is refused the second time
      local _, again = e:request{ method = UPDATE,
                                  args_json = '[[{"sync_id":5000000001,"status":0,"error_msg":""}]]' }
      assert.equal(1, #again.data)
      assert.equal(0, t.repeated)
      assert.equal(1, e:state().tenants.apidevnew2.logistics.repeated)   -- and counted
      -- an empty list is accepted
      local _, empty, _, raw = e:request{ method = UPDATE, args_json = "[[]]" }
      assert.equal(0, empty.status)
      assert.truthy(raw:find('"data":[]', 1, true))
    end)

    it("drains with re-reads from page 0", function()
      local rounds = 0
      repeat
        local _, body = e:request{ method = LIST, args_json = OWN, page = { page_size = 20 } }
        local items = {}
        for _, id in ipairs(list_ids(body)) do
          items[#items + 1] = ('{"sync_id":%d,"status":0,"error_msg":""}'):format(id)
        end
        if #items > 0 then
          local _, up = e:request{ method = UPDATE, args_json = "[[" .. table.concat(items, ",") .. "]]" }
          assert.equal(0, #up.data)
        end
        rounds = rounds + 1
      until #items == 0
      assert.equal(4, rounds)
      assert.equal(0, e:state().tenants.apidevnew2.logistics.size)
    end)
  end)

  describe("the stock queue", function()
    local WAIT = "sales.StockSync.getSelfWaitSyncIdListOpen"

    it("lists waiting goods with a cursor", function()
      local _, b1 = e:request{ method = WAIT, args_json = "[10,0]" }
      assert.equal(0, b1.status)
      assert.equal(10, #b1.data.id_list)
      assert.equal(7000000001, b1.data.id_list[1])
      local _, b2 = e:request{ method = WAIT, args_json = ("[10,%d]"):format(b1.data.position) }
      assert.equal(10, #b2.data.id_list)
      assert.equal(7000000011, b2.data.id_list[1])
      local _, b3 = e:request{ method = WAIT, args_json = ("[10,%d]"):format(b2.data.position) }
      assert.equal(0, #b3.data.id_list)
      -- the vendor's own example sends the numbers as strings
      local _, b4 = e:request{ method = WAIT, args_json = '["500","0"]' }
      assert.equal(20, #b4.data.id_list)
    end)

    it("computes, acknowledges, fails and cancels syncs", function()
      local _, calc = e:request{ method = "sales.StockSync.calcStock", args_json = "[7000000001,false]" }
      assert.equal(0, calc.status)
      local d = calc.data
      assert.equal(7000000001, d.rec_id)
      assert.is_number(d.syn_stock)
      assert.is_number(d.stock_change_count)
      local rest = ',"stock_syn_rule_id":-10000,'
                    .. '"stock_syn_rule_no":"","stock_syn_other":"","stock_syn_warehouses":"1","stock_syn_mask":0,'
                    .. '"stock_syn_percent":100,"stock_syn_plus":0,"stock_syn_min":0,"stock_syn_max":99999,'
                    .. '"is_auto_listing":true,"is_auto_delisting":true,"is_syn_success":true,"is_manual":false,'
                    .. '"syn_result":""}'
      local info = ('{"syn_stock":%d,"stock_change_count":%d'):format(d.syn_stock, d.stock_change_count) .. rest
      -- a field of the page's own example is required: one missing is refused
      local _, short = e:request{ method = "sales.StockSync.syncSuccess", args_json = "[7000000001,"
        .. info:gsub(',"stock_syn_max":99999', "") .. "]" }
      assert.equal(2, short.status)
      assert.truthy(short.message:find("stock_syn_max", 1, true), short.message)
      local _, ok = e:request{ method = "sales.StockSync.syncSuccess", args_json = "[7000000001," .. info .. "]" }
      assert.equal(0, ok.status)
      -- a stale stock_change_count leaves the good waiting
      local _, c2 = e:request{ method = "sales.StockSync.calcStock", args_json = "[7000000002,false]" }
      local stale = ('{"syn_stock":1,"stock_change_count":%d'):format(c2.data.stock_change_count + 1) .. rest
      e:request{ method = "sales.StockSync.syncSuccess", args_json = "[7000000002," .. stale .. "]" }
      e:request{ method = "sales.StockSync.syncFail",
                 args_json = '[7000000003,{"syn_stock":1,"stock_change_count":1' .. rest .. "]" }
      local _, c4 = e:request{ method = "sales.StockSync.calcStock", args_json = '["7000000004",true]' }
      e:request{ method = "sales.StockSync.cancelSync",
                 args_json = ("[7000000004,%d]"):format(c4.data.stock_change_count) }
      local s = e:state().tenants.apidevnew2.stock
      assert.equal(17, s.size)
      assert.equal(1, s.synced)
      assert.equal(1, s.failed)
      assert.equal(1, s.cancelled)
      assert.equal(1, s.stale)
      local _, w = e:request{ method = WAIT, args_json = "[100,0]" }
      assert.equal(17, #w.data.id_list)
      assert.equal(7000000002, w.data.id_list[1])
      -- an unknown good
      local _, unknown = e:request{ method = "sales.StockSync.calcStock", args_json = "[42,false]" }
      assert.equal(100, unknown.status)
    end)
  end)

  describe("control endpoints", function()
    it("counts calls per tenant and method, and connections", function()
      local before = e:state()
      for _ = 1, 3 do e:request{ method = LIST, args_json = OWN } end
      e:request{ method = UPDATE, args_json = "[[]]" }
      e:request{ sid = "ghost", method = UPDATE, args_json = "[[]]" }
      local st = e:state()
      assert.equal(3, st.calls.apidevnew2[LIST])
      assert.equal(1, st.calls.apidevnew2[UPDATE])
      assert.equal(1, st.calls.ghost[UPDATE])
      assert.equal(5, st.requests)
      assert.equal(before.connections + 5, st.connections) -- luasocket closes each time
      -- two calls on one kept-alive connection count one connection
      local s = socket.tcp()
      s:settimeout(5)
      assert(s:connect("127.0.0.1", e.port))
      for _ = 1, 2 do
        local q = signer.signed_query{ sid = "apidevnew2", key = "test2-xx", appsecret = "12345:abcde",
                                       method = LIST, body = OWN }
        s:send(("POST /openapi?%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                .. "Content-Length: %d\r\n\r\n%s"):format(q, #OWN, OWN))
        local len
        repeat
          local line = s:receive("*l")
          len = len or tonumber(line:match("^Content%-Length: (%d+)"))
        until line == ""
        assert.truthy(s:receive(len):find('"status":0', 1, true))
      end
      s:close()
      assert.equal(st.connections + 1, e:state().connections)
    end)

    it("resets to the config", function()
      e:request{ method = UPDATE, args_json = '[[{"sync_id":5000000001,"status":0,"error_msg":""}]]' }
      e:enqueue{ logistics = 5 }
      assert.equal(54, e:state().tenants.apidevnew2.logistics.size)
      e:reset()
      local st = e:state()
      assert.equal(50, st.tenants.apidevnew2.logistics.size)
      assert.equal(0, st.requests)
      assert.same({}, st.calls)
    end)

    it("enqueues new pending rows", function()
      local r = e:enqueue{ sid = "apidevnew2", logistics = 10, stock = 3 }
      assert.equal(60, r.logistics)
      assert.equal(23, r.stock)
      local _, body = e:request{ method = LIST, args_json = OWN,
                                 page = { page_size = 100, calc_total = 1 } }
      assert.equal(60, body.total)
      assert.equal(5000000060, body.data[60].sync_id)
      local _, w = e:request{ method = "sales.StockSync.getSelfWaitSyncIdListOpen", args_json = "[100,0]" }
      assert.equal(23, #w.data.id_list)
      assert.has_error(function() e:enqueue{ sid = "nobody", logistics = 1 } end)
    end)

    it("enqueues goods under the ids given, as goods waiting for a sync", function()
      local r = e:enqueue{ stock = 1, stock_ids = { 2447, 178238 } }
      assert.equal(23, r.stock)
      local _, w = e:request{ method = "sales.StockSync.getSelfWaitSyncIdListOpen", args_json = "[100,0]" }
      assert.same({ 2447, 178238 }, { w.data.id_list[22], w.data.id_list[23] })
      local _, calc = e:request{ method = "sales.StockSync.calcStock", args_json = "[2447,false]" }
      assert.same({ 0, 2447 }, { calc.status, calc.data.rec_id })
      local _, cancel = e:request{ method = "sales.StockSync.cancelSync",
                                   args_json = ("[2447,%d]"):format(calc.data.stock_change_count) }
      assert.equal(0, cancel.status)
      local st = e:state().tenants.apidevnew2.stock
      assert.same({ 22, 1 }, { st.size, st.cancelled })
      for _, bad in ipairs{ { 178238 }, { 0 }, { 7000000001 }, { 1.5 }, "2447" } do
        local ok, err = pcall(e.enqueue, e, { stock_ids = bad })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("stock_ids: ", 1, true), err)
      end
      assert.equal(22, e:state().tenants.apidevnew2.stock.size)
    end)

    it("enqueues ghost goods: listed once, unknown to calcStock, not in the queue's size", function()
      local r = e:enqueue{ stock_ghost = 2 }
      assert.equal(20, r.stock)
      assert.equal(2, #r.stock_ghost)
      local ghost = compat.tointeger(r.stock_ghost[1])
      local WAIT = "sales.StockSync.getSelfWaitSyncIdListOpen"
      local _, w = e:request{ method = WAIT, args_json = "[100,0]" }
      assert.equal(22, #w.data.id_list)
      assert.equal(ghost, compat.tointeger(w.data.id_list[21]))
      local _, calc = e:request{ method = "sales.StockSync.calcStock", args_json = ("[%d,false]"):format(ghost) }
      assert.equal(100, calc.status)
      assert.truthy(calc.message:find(tostring(ghost), 1, true))
      local _, again = e:request{ method = WAIT, args_json = "[100,0]" }
      assert.equal(20, #again.data.id_list)
      assert.equal(20, #e:state().tenants.apidevnew2.stock.pending)
    end)

    it("compresses answers when the client asks", function()
      local code, _, headers, raw = e:request{ method = LIST, args_json = OWN,
        page = { page_size = 50 }, headers = { ["accept-encoding"] = "gzip" } }
      assert.equal(200, code)
      assert.equal("gzip", headers["content-encoding"])
      local tmp = os.tmpname()
      local f = io.open(tmp, "wb"); f:write(raw); f:close()
      local text = sh("gzip -dc < " .. tmp)
      os.remove(tmp)
      assert.equal(0, cjson.decode(text).status)
      local _, _, plain = e:request{ method = LIST, args_json = OWN }
      assert.is_nil(plain["content-encoding"])
    end)
  end)

  describe("faults", function()
    local function ok_call()
      return e:request{ method = LIST, args_json = OWN }
    end

    it("http_500 for the next N calls", function()
      e:faults{ mode = "http_500", count = 2 }
      assert.equal(500, (ok_call()))
      assert.equal(500, (ok_call()))
      local code, body = ok_call()
      assert.equal(200, code)
      assert.equal(0, body.status)
    end)

    it("reset closes the connection without an answer", function()
      e:faults{ mode = "reset", count = 1 }
      local code, err = ok_call()
      assert.is_nil(code)
      assert.is_string(err)
      assert.equal(200, (ok_call()))
    end)

    it("delay answers late without holding up other calls", function()
      e:faults{ mode = "delay", count = 1, delay_ms = 400 }
      local s = socket.tcp()
      s:settimeout(5)
      assert(s:connect("127.0.0.1", e.port))
      local q = signer.signed_query{ sid = "apidevnew2", key = "test2-xx", appsecret = "12345:abcde",
                                     method = LIST, body = OWN }
      local t0 = socket.gettime()
      s:send(("POST /openapi?%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              .. "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(q, #OWN, OWN))
      socket.sleep(0.1)
      local t1 = socket.gettime()
      local code, body = ok_call()
      assert.equal(0, body.status)
      assert.is_true(socket.gettime() - t1 < 0.25, "another call answered at once")
      local answer = s:receive("*a")
      s:close()
      assert.is_true(socket.gettime() - t0 >= 0.39)
      assert.truthy(answer:find('"status":0', 1, true))
      assert.equal(200, code)
    end)

    it("non_json answers something that is not JSON", function()
      e:faults{ mode = "non_json" }
      local code, body, _, raw = ok_call()
      assert.equal(200, code)
      assert.is_nil(body)
      assert.truthy(#raw > 0)
    end)

    it("truncated answers half of the JSON", function()
      e:faults{ mode = "truncated", count = 1 }
      local code, body, _, raw = ok_call()
      assert.equal(200, code)
      assert.is_nil(body)
      assert.equal("{", raw:sub(1, 1))
    end)

    it("rate_limit answers status 100 with the vendor's message", function()
      e:faults{ mode = "rate_limit", count = 1 }
      local _, body = ok_call()
      assert.equal(100, body.status)
      assert.truthy(body.message:find(RATE_MSG, 1, true))
      assert.equal(0, select(2, ok_call()).status)
    end)

    it("skew puts the server's clock off, in its checks and in the Date header", function()
      e:faults{ mode = "skew", count = 2, skew_s = 3600 }
      local _, body, headers = ok_call()
      assert.equal(7, body.status)
      local function parse_date(d)
        local day, mon, year, h, m, s = d:match("%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT")
        local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                         Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
        -- seconds since the epoch, by days from civil (UTC, no time zone involved)
        local y, mo = tonumber(year), months[mon]
        if mo <= 2 then y = y - 1 end
        local era = math.floor(y / 400)
        local yoe = y - era * 400
        local doy = math.floor((153 * (mo + (mo > 2 and -3 or 9)) + 2) / 5) + tonumber(day) - 1
        local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
        local days = era * 146097 + doe - 719468
        return days * 86400 + tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(s)
      end
      local offset = parse_date(headers.date) - os.time()
      assert.is_true(math.abs(offset - 3600) <= 2, "Date is one hour ahead: " .. headers.date)
      -- a client that corrects its clock by the Date header gets through
      local _, b2 = e:request{ method = LIST, args_json = OWN, timestamp = signer.timestamp(os.time() + offset) }
      assert.equal(0, b2.status)
      local _, b3, h3 = ok_call()
      assert.equal(0, b3.status)
      assert.is_true(math.abs(parse_date(h3.date) - os.time()) <= 2)
    end)

    it("no_data carries the call out and answers status 0 without data", function()
      e:faults{ mode = "no_data" }
      local code, body, _, raw = e:request{ method = UPDATE,
        args_json = '[[{"sync_id":5000000001,"status":0,"error_msg":""}]]' }
      assert.equal(200, code)
      assert.equal(0, body.status)
      assert.is_nil(raw:find("data", 1, true))
      assert.equal(49, e:state().tenants.apidevnew2.logistics.size)
    end)

    it("refuse makes update refuse one item, by position or anonymously, without applying it", function()
      local two = '[[{"sync_id":5000000001,"status":0,"error_msg":""},'
                  .. '{"sync_id":5000000002,"status":0,"error_msg":""}]]'
      e:faults{ mode = "refuse", item = 2 }
      local _, body = e:request{ method = UPDATE, args_json = two }
      assert.equal(0, body.status)
      assert.equal(1, #body.data)
      assert.truthy(body.data[1]:find("^第2条: "))
      local st = e:state().tenants.apidevnew2.logistics
      assert.equal(49, st.size)
      assert.equal(5000000002, compat.tointeger(st.pending[1]))
      e:faults{ mode = "refuse", anonymous = true }
      _, body = e:request{ method = UPDATE, args_json = two }
      assert.equal(1, #body.data)
      assert.is_nil(body.data[1]:find("%d"))     -- names no item
      assert.equal(48, e:state().tenants.apidevnew2.logistics.size)  -- item 2 applied this time
      -- other methods are carried out as usual (the fault is used up)
      e:faults{ mode = "refuse" }
      assert.equal(0, select(2, ok_call()).status)
      assert.has_error(function() e:faults{ mode = "refuse", item = 0 } end)
    end)

    it("runs a list of faults in order, and refuses unknown modes", function()
      e:faults{ { mode = "http_500", count = 1 }, { mode = "rate_limit", count = 1 } }
      assert.equal(500, (ok_call()))
      assert.equal(100, select(2, ok_call()).status)
      assert.equal(0, select(2, ok_call()).status)
      assert.has_error(function() e:faults{ mode = "meteor" } end)
    end)
  end)
end)

describe("wdt-emulator under load", function()
  -- 10,000 requests over 64 kept-alive connections from loopback; half of them acknowledge one
  -- distinct row each, so the queue must shrink by exactly that many. Bounded in count and time.
  local TOTAL, CONNS, ROWS = 10000, 64, 6000
  local e
  setup(function()
    e = emulator.start{ config = {
      tenants = { { sid = "apidevnew2", key = "test2-xx", secret = "12345:abcde" } },
      logistics = { apidevnew2 = { pending = ROWS } },
    } }
  end)
  teardown(function() if e then e:stop() end end)

  local function raw_request(method, body, page, ts)
    local q = signer.signed_query{ sid = "apidevnew2", key = "test2-xx", appsecret = "12345:abcde",
                                   method = method, body = body, page = page, timestamp = ts }
    return ("POST /openapi?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            .. "Content-Length: %d\r\n\r\n%s"):format(q, #body, body)
  end

  -- one request in flight per connection; returns the answers by request index
  local function drive(port, requests, conns, time_limit)
    local deadline = socket.gettime() + time_limit
    local results, next_i, by_sock, active = {}, 1, {}, {}
    local function send_next(c)
      if next_i > #requests then c.idx = nil; return false end
      c.idx, next_i = next_i, next_i + 1
      c.sock:settimeout(5)
      assert(c.sock:send(requests[c.idx]))
      c.sock:settimeout(0)
      return true
    end
    for _ = 1, conns do
      local s = socket.tcp()
      s:settimeout(5)
      assert(s:connect("127.0.0.1", port))
      s:setoption("tcp-nodelay", true)
      local c = { sock = s, buf = "" }
      by_sock[s] = c
      if send_next(c) then active[#active + 1] = s end
    end
    while #active > 0 do
      assert(socket.gettime() < deadline, "the load did not finish in " .. time_limit .. " s")
      local readable = socket.select(active, nil, 1)
      for _, s in ipairs(readable) do
        local c = by_sock[s]
        local data, err, partial = s:receive(65536)
        if err == "closed" then error("the emulator closed a connection under load") end
        c.buf = c.buf .. (data or partial or "")
        local hend = c.buf:find("\r\n\r\n", 1, true)
        if hend then
          local head = c.buf:sub(1, hend - 1)
          local len = assert(tonumber(head:match("\r\n[Cc]ontent%-[Ll]ength: *(%d+)")), head)
          if #c.buf >= hend + 3 + len then
            results[c.idx] = { code = tonumber(head:match("^HTTP/1%.%d (%d+)")),
                               body = c.buf:sub(hend + 4, hend + 3 + len) }
            c.buf = c.buf:sub(hend + 4 + len)
            if not send_next(c) then
              for i, a in ipairs(active) do
                if a == s then table.remove(active, i); break end
              end
            end
          end
        end
      end
    end
    for s in pairs(by_sock) do s:close() end
    return results
  end

  it("answers 10,000 requests from 64 connections, losing nothing", function()
    local ts = signer.timestamp()
    local requests = {}
    for i = 1, TOTAL / 2 do
      requests[#requests + 1] = raw_request(UPDATE,
        ('[[{"sync_id":%d,"status":0,"error_msg":""}]]'):format(5000000000 + i), nil, ts)
      requests[#requests + 1] = raw_request(LIST, OWN, { page_size = 20, page_no = 0 }, ts)
    end
    local t0 = socket.gettime()
    local results = drive(e.port, requests, CONNS, 50)
    local elapsed = socket.gettime() - t0
    local bad = 0
    for i = 1, TOTAL do
      local r = results[i]
      if not (r and r.code == 200 and r.body:find('"status":0', 1, true)
              and (i % 2 == 0 or r.body:find('"data":[]', 1, true))) then
        bad = bad + 1
      end
    end
    assert.equal(0, bad)
    local st = e:state()
    local t = st.tenants.apidevnew2.logistics
    assert.equal(ROWS - TOTAL / 2, t.size)
    assert.equal(TOTAL / 2, t.acked)
    assert.equal(TOTAL, st.requests)
    assert.equal(TOTAL / 2, st.calls.apidevnew2[UPDATE])
    assert.equal(TOTAL / 2, st.calls.apidevnew2[LIST])
    assert.equal(CONNS, st.connections)
    -- the rows left are exactly those not acknowledged
    assert.equal(5000000000 + TOTAL / 2 + 1, t.pending[1])
    print(("\n    load: %d requests over %d connections in %.2f s"):format(TOTAL, CONNS, elapsed))
  end)
end)
