-- The client's hooks on_request / on_response (logs and metrics) against the real emulator:
-- once per request around its tries, what they are told, never a credential; a hook that
-- raises changes nothing. Inside nginx: spec/openresty_spec.lua (the example's /metrics).
local wdt = require "wdt"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"

describe("client hooks", function()
  local emu

  setup(function() emu = emulator.start() end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:faults {} end)

  it("tell on_request and on_response each request: method, id, elapsed, tries, status", function()
    local events = {}
    local client = fixtures.client(emu, {
      on_request = function(r) events[#events + 1] = { "request", r } end,
      on_response = function(r) events[#events + 1] = { "response", r } end,
    })
    emu:faults { mode = "http_500", count = 1 }          -- a read: retried
    assert(client:page_call("setting.Shop.queryShop", { page_size = 10 }, {}))
    local refused = assert(client:call("sales.LogisticsSync.update", { { sync_id = 1, status = 0, error_msg = "" } }))
    assert.equal(1, #refused)                            -- status 0: the call went well
    emu:faults { mode = "reset", count = 10 }
    local _, nerr = client:with({ retries = 0 }):call("setting.Shop.queryShop", {}, { page_size = 1, page_no = 0 })
    assert.is_truthy(nerr)
    client:close()
    assert.equal(6, #events)
    local req, resp = events[1][2], events[2][2]
    assert.same({ "request", "response" }, { events[1][1], events[2][1] })
    assert.same({ "setting.Shop.queryShop", fixtures.SID }, { req.method, req.sid })
    assert.equal(req.request_id, resp.request_id)
    assert.same({ true, 2, 0, 200 }, { resp.ok, resp.tries, resp.status, resp.http_status })
    assert.is_true(resp.elapsed > 0)
    assert.are_not.equal(req.request_id, events[3][2].request_id)
    assert.same({ "sales.LogisticsSync.update", true, 1 }, { events[4][2].method, events[4][2].ok, events[4][2].tries })
    local failed = events[6][2]
    assert.same({ false, "network", 1 }, { failed.ok, failed.kind, failed.tries })
    -- nothing a hook sees holds the URL or a credential
    local seen = wdt.json.encode((function() local t = {} for i, e in ipairs(events) do t[i] = e[2] end return t end)())
    for _, secret in ipairs({ fixtures.KEY, "12345", "abcde", emu.url }) do
      assert.is_nil(seen:find(secret, 1, true), secret)
    end
  end)

  it("a hook that raises is logged and the call goes on", function()
    local client = fixtures.client(emu, { on_response = function() error("metrics down") end })
    local stderr = io.stderr
    local said = {}
    io.stderr = { write = function(_, ...) said[#said + 1] = table.concat({ ... }) end }   -- luacheck: ignore
    local data = client:page_call("setting.Shop.queryShop", { page_size = 10 }, {})
    io.stderr = stderr                                                                     -- luacheck: ignore
    client:close()
    assert.is_table(data)
    assert.matches("on_response raised an error: .*metrics down", table.concat(said))
  end)

  it("a client with hooks still tells a push that an earlier try was applied (maybe new)", function()
    emu:reset()
    emu:faults { mode = "truncated", method = "sales.RawTrade.pushSelf2", count = 1 }
    local platform = dofile(require("spec.support.sh").repo_root() .. "/examples/sample_platform.lua")
    local seen = 0
    local client = fixtures.client(emu, { retries = 2, on_response = function() seen = seen + 1 end })
    local s = assert(client:push_orders { shop_no = "s1", orders = platform.orders(1, 10), lock = false })
    client:close()
    assert.same({ 0, 10, 10, 1 }, { s.new, s.changed, s.changed_maybe_new, seen })
  end)

  it("refuses a hook that is not a function, naming it", function()
    assert.has_error(function() fixtures.client(emu, { on_request = "log" }) end)
    local ok, err = pcall(fixtures.client, emu, { on_response = 1 })
    assert.is_false(ok)
    assert.matches("'on_response'", err)
  end)
end)
