-- The client against the real emulator on loopback: calls, paging, errors, keep-alive.
local wdt = require "wdt"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local compat = require "spec.support.compat"
local sh = require "spec.support.sh"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET

describe("wdt.client", function()
  local emu, client

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 25, shop_no = "s1" } },
      stock = { [SID] = { pending = 5 } },
    } }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:reset()
    client = fixtures.client(emu)
  end)

  after_each(function()
    client:close()
  end)

  describe("tostring and secrets", function()
    it("shows only the sid", function()
      assert.equal("wdt.client<sid=apidevnew2>", tostring(client))
    end)

    it("keeps neither secret nor salt readable from Lua", function()
      local seen = {}
      local function walk(v, depth)
        if depth > 4 or seen[v] then return end
        if type(v) == "string" then
          assert.is_nil(v:find("12345", 1, true), "secret found in the client object")
          assert.is_nil(v:find("abcde", 1, true), "salt found in the client object")
        elseif type(v) == "table" then
          seen[v] = true
          for k, x in pairs(v) do walk(k, depth + 1) walk(x, depth + 1) end
        end
      end
      walk(client, 0)
      assert.is_nil(tostring(client._core):find("12345", 1, true))
    end)
  end)

  describe("call", function()
    it("forced to the ngx transport outside nginx, raises at the caller's line", function()
      local forced = wdt.client { url = emu.url, sid = SID, key = KEY, secret = APPSECRET, transport = "ngx" }
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, err = pcall(function() return forced:call("setting.Shop.queryShop") end)
      assert.is_false(ok)
      assert.matches("client_spec%.lua:" .. line .. ": wdt%.client: transport 'ngx' is forced, but this Lua "
        .. "outside nginx has no cosockets", err)
      ok, err = pcall(function() return forced:transport() end)
      assert.is_false(ok)
      assert.matches("client_spec%.lua:" .. line + 4 .. ": ", err)
      assert.equal(0, emu:state().requests)
    end)

    it("reports outcomes and returns the list of refused items", function()
      local page = assert(client:page_call("sales.LogisticsSync.getSyncListExt",
        { page_size = 3, page_no = 0 }, { shop_no = "s1", is_own_platform = true }))
      assert.equal(3, #page.rows)
      local items = {}
      for i, row in ipairs(page.rows) do
        items[i] = { sync_id = row.sync_id, status = 0, error_msg = "" }
      end
      items[#items + 1] = { sync_id = 1, status = 0, error_msg = "" }   -- unknown to the ERP
      local data, response = client:call("sales.LogisticsSync.update", items)
      assert.is_table(data)
      assert.equal(1, #data)                     -- the unknown id was refused
      assert.equal(0, response.status)
      assert.equal(22, emu:state().tenants[SID].logistics.size)
    end)

    it("keeps 64-bit ids exact on the wire", function()
      local page = assert(client:page_call("sales.LogisticsSync.getSyncListExt",
        { page_size = 1 }, { shop_no = "s1", is_own_platform = true }))
      local id = page.rows[1].sync_id
      assert.is_true(compat.is_integer(id))
      assert.is_true(id > 2 ^ 32)
    end)

    it("returns api errors as objects with fields", function()
      local data, err = client:call("no.Such.method", {})
      assert.is_nil(data)
      assert.equal("api", err.kind)
      assert.equal(1, err.status)
      assert.equal("no.Such.method", err.method)
      assert.is_false(err.retryable)
      assert.matches("^wdt: api error 1 in no%.Such%.method: ", tostring(err))
    end)

    it("reports a wrong key as an authentication error without leaking credentials", function()
      local bad = wdt.client { sid = SID, key = "wrong", secret = "12345:abcde", url = emu.url, retries = 0 }
      local data, err = bad:call("sales.LogisticsSync.update", { { sync_id = 1, status = 0, error_msg = "" } })
      bad:close()
      assert.is_nil(data)
      assert.equal("api", err.kind)
      assert.equal(1, err.status)
      local text = tostring(err)
      assert.is_nil(text:find("12345", 1, true))
      assert.is_nil(text:find("abcde", 1, true))
      assert.is_nil(text:find("sign=", 1, true))
    end)

    it("raises at once on arguments it cannot encode, naming where", function()
      assert.has_error(function()
        client:call("sales.LogisticsSync.update", { { sync_id = 1, status = 0, error_msg = print } })
      end, "args[1][1].error_msg: cannot encode a function")
    end)

    it("raises on bad method names and option types, naming them", function()
      assert.has_error(function() client:call("bad method!") end)
      local ok, msg = pcall(client.call, client, 42)
      assert.is_false(ok)
      assert.matches("method", msg)
      ok, msg = pcall(wdt.client, { sid = SID, key = KEY, secret = APPSECRET, timeout = "5" })
      assert.is_false(ok)
      assert.matches("'timeout'", msg)
      ok, msg = pcall(wdt.client, { sid = SID, key = KEY, secret = "nocolon" })
      assert.is_false(ok)
      assert.matches("'secret'", msg)
      assert.is_nil(msg:find("nocolon", 1, true))
      ok, msg = pcall(wdt.client, { sid = "", key = KEY, secret = APPSECRET })
      assert.is_false(ok)
      assert.matches("'sid'", msg)
      ok, msg = pcall(wdt.client, { sid = SID, key = KEY, secret = APPSECRET, tiemout = 5 })
      assert.is_false(ok)
      assert.matches("'tiemout'", msg)
      -- a query in the base URL would not be signed: refused at once
      ok, msg = pcall(wdt.client, { sid = SID, key = KEY, secret = APPSECRET, url = emu.url .. "?tenant=1" })
      assert.is_false(ok)
      assert.matches("'url'", msg)
      for _, bad in ipairs({ "12345:", ":abcde" }) do
        ok, msg = pcall(wdt.client, { sid = SID, key = KEY, secret = bad })
        assert.is_false(ok)
        assert.matches("'secret'", msg)
      end
      for _, t in ipairs({ 0, -1, 0 / 0, math.huge }) do
        ok, msg = pcall(wdt.client, { sid = SID, key = KEY, secret = APPSECRET, timeout = t })
        assert.is_false(ok)
        assert.matches("'timeout'", msg)
      end
      -- the position is the caller's line, not one inside wdt (no tail call: as for Lua's
      -- own functions, a tail call leaves no caller's line to point at)
      ok, msg = pcall(function()
        local c = wdt.client { sid = SID, key = KEY, secret = APPSECRET, retries = 1.5 }
        return c
      end)
      assert.is_false(ok)
      assert.matches("^spec/client_spec%.lua:%d+: bad argument 'retries'", msg)
    end)

    it("points argument errors at the caller's line, in a script under a folder named wdt too", function()
      local dir = sh.tmpdir() .. "/proj/wdt"
      os.execute("mkdir -p " .. sh.quote(dir))
      local script = dir .. "/job.lua"
      sh.write_file(script, table.concat({
        "local wdt, opts = ...",
        "local client = wdt.client(opts)",
        "local data = client:call('bad method!')",
        "return data",
      }, "\n"))
      local ok, msg = pcall(assert(loadfile(script)), wdt, { sid = SID, key = KEY, secret = APPSECRET, url = emu.url })
      os.execute("rm -rf " .. sh.quote(dir:gsub("/proj/wdt$", "")))
      assert.is_false(ok)
      assert.truthy(msg:find("/proj/wdt/job.lua:3: bad argument 'method' to 'call'", 1, true), msg)
    end)

    it("refuses a URL with control characters when the client is made, naming url", function()
      for _, bad in ipairs({ emu.url .. "\r\nX-Evil: 1", emu.url .. "\n", "http://h\0st/openapi",
                             "http://127.0.0.1:9/a b", "http://user:pw@127.0.0.1:9/openapi",
                             "http://127.0.0.1:70000/openapi" }) do
        local ok, msg = pcall(wdt.client, { sid = SID, key = KEY, secret = APPSECRET, url = bad })
        assert.is_false(ok, bad)
        assert.matches("bad argument 'url' to 'wdt.client'", msg)
      end
    end)

    it("says nan for a NaN option", function()
      for _, opts in ipairs({ { timeout = 0 / 0 }, { retries = 0 / 0 }, { backoff = 0 / 0 } }) do
        opts.sid, opts.key, opts.secret = SID, KEY, APPSECRET
        local ok, msg = pcall(wdt.client, opts)
        assert.is_false(ok)
        assert.truthy(msg:find("number expected, got nan", 1, true), msg)
      end
      local ok, msg = pcall(client.request, client, { method = "a.b", timeout = 0 / 0 })
      assert.is_false(ok)
      assert.truthy(msg:find("number expected, got nan", 1, true), msg)
      ok, msg = pcall(client.with, client, { retries = 0 / 0 })
      assert.is_false(ok)
      assert.truthy(msg:find("number expected, got nan", 1, true), msg)
    end)

    it("sends call_ex through system.ScriptExtension.call", function()
      local _, err = client:call_ex("custom.script", 1, "two")
      -- the emulator knows no script extensions: the call reaches it under the wrapper's name
      assert.equal("system.ScriptExtension.call", err and err.method)
      local calls = emu:state().calls[SID]
      assert.truthy(calls["system.ScriptExtension.call"])
    end)
  end)

  describe("paging", function()
    it("gives rows and total for the getSyncListExt shape", function()
      local page = assert(client:page_call("sales.LogisticsSync.getSyncListExt",
        { page_size = 10, page_no = 2, calc_total = true }, { shop_no = "s1", is_own_platform = true }))
      assert.equal(5, #page.rows)
      assert.equal(25, page.total)
      assert.equal(2, page.page_no)
      assert.is_table(page.response)
    end)

    it("leaves total out when calc_total was not asked", function()
      local page = assert(client:page_call("sales.LogisticsSync.getSyncListExt",
        { page_size = 10 }, { shop_no = "s1", is_own_platform = true }))
      assert.is_nil(page.total)
    end)

    it("iterates every page once with pages()", function()
      local ids, n = {}, 0
      for page, err in client:pages("sales.LogisticsSync.getSyncListExt", { page_size = 7 },
                                    { shop_no = "s1", is_own_platform = true }) do
        assert.is_nil(err)
        for _, row in ipairs(page.rows) do
          assert.is_nil(ids[row.sync_id])
          ids[row.sync_id] = true
          n = n + 1
        end
      end
      assert.equal(25, n)
    end)

    it("hands a failure to the loop body as false, err, then ends", function()
      emu:faults { mode = "http_500", count = 10 }
      local seen = {}
      for page, err in client:pages("sales.LogisticsSync.getSyncListExt", { page_size = 7 },
                                    { shop_no = "s1", is_own_platform = true }) do
        seen[#seen + 1] = { page = page, err = err }
      end
      assert.equal(1, #seen)
      assert.is_false(seen[1].page)
      assert.equal("http", seen[1].err.kind)
      assert.equal(500, seen[1].err.http_status)
    end)

    it("rejects a bad pager at once", function()
      assert.has_error(function()
        client:page_call("sales.LogisticsSync.getSyncListExt", { page_size = 0 }, {})
      end)
      assert.has_error(function()
        client:page_call("sales.LogisticsSync.getSyncListExt", { page_size = 10, calc_total = 1 }, {})
      end)
    end)
  end)

  describe("prepare and parse", function()
    it("give the bytes call sends and read an answer", function()
      local req = client:prepare("sales.LogisticsSync.update", { { { sync_id = 7, status = 0, error_msg = "" } } })
      assert.equal('[[{"error_msg":"","status":0,"sync_id":7}]]', req.body)
      assert.equal("application/json", req.headers["Content-Type"])
      assert.matches("^" .. emu.url:gsub("%p", "%%%0") .. "%?", req.url)
      local data, resp = client:parse(200, '{"status":0,"data":[]}')
      assert.same({}, data)
      assert.equal(0, resp.status)
      local err
      data, err = client:parse(200, '{"status":7,"message":"timestamp"}')
      assert.is_nil(data)
      assert.equal("api", err.kind)
      assert.equal(7, err.status)
      data, err = client:parse(502, "<html>")
      assert.is_nil(data)
      assert.equal("http", err.kind)
      assert.equal(502, err.http_status)
      data, err = client:parse(200, "not json")
      assert.is_nil(data)
      assert.equal("decode", err.kind)
    end)
  end)

  describe("the connection", function()
    it("is kept alive between calls of one client", function()
      local before = emu:state().connections
      for _ = 1, 5 do
        assert(client:page_call("sales.LogisticsSync.getSyncListExt", { page_size = 1 },
          { shop_no = "s1", is_own_platform = true }))
      end
      assert.equal(before + 1, emu:state().connections)
    end)

    it("reports a refused connection as a network error that never reached the server", function()
      local dead = wdt.client { sid = SID, key = KEY, secret = APPSECRET, url = "http://127.0.0.1:9/openapi",
                                retries = 1, backoff = 0.01 }
      local data, err = dead:call("sales.LogisticsSync.getSyncListExt", {})
      dead:close()
      assert.is_nil(data)
      assert.equal("network", err.kind)
      assert.is_false(err.sent)
      assert.equal(2, err.tries)
      assert.matches("after 2 tries", tostring(err))
    end)

    it("waits out its back-off between tries", function()
      -- a refused connect fails at once: what the call takes is its back-off (policy.delay,
      -- whose values the policy spec checks): at least 0.05 + 0.075 s (half of 0.1, then
      -- half of 0.2 capped at 0.15). A lower bound only: a busy machine makes it longer.
      local dead = wdt.client { sid = SID, key = KEY, secret = APPSECRET, url = "http://127.0.0.1:9/openapi",
                                retries = 2, backoff = 0.1, max_backoff = 0.15 }
      local t0 = require("wdt.core").unix_time()
      local _, err = dead:call("sales.LogisticsSync.getSyncListExt", {})
      local elapsed = require("wdt.core").unix_time() - t0
      dead:close()
      assert.equal(3, err.tries)
      assert.is_true(elapsed >= 0.125, ("took %.3f s"):format(elapsed))
    end)

    it("can be closed twice and refuses calls after", function()
      client:close()
      client:close()
      assert.has_error(function() client:call("sales.LogisticsSync.getSyncListExt", {}) end)
    end)
  end)
end)
