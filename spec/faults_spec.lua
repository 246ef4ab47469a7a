-- The fault matrix: every fault mode of the emulator against a query, an update that is
-- safe to repeat (sales.LogisticsSync.update, by the policy table) and the same update
-- declared not repeatable for the call (idempotent = false). Each case checks the result
-- (or the error kind), the number of tries the client made, the number of requests the
-- emulator saw, and the queue afterwards: nothing applied twice, nothing lost.
-- See doc/reliability.md for the policy these expectations come from.
local wdt = require "wdt"
local socket = require "socket"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local compat = require "spec.support.compat"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET
local LIST, UPDATE = "sales.LogisticsSync.getSyncListExt", "sales.LogisticsSync.update"
local FILTER = { shop_no = "s1", is_own_platform = true }
local PENDING = 20
local TIMEOUT, DELAY_MS = 0.6, 1500          -- the delay fault outlasts the call's timeout

-- What each call must come to with one fault of that mode (count 1, retries 3).
--   ok: the call succeeds; kind: it fails with this kind
--   requests: /openapi requests the emulator saw; applied: rows that left the queue
local expected = {
  http_500   = { query = { ok = true, requests = 2 },
                 update = { ok = true, requests = 2, applied = 1 },
                 update_once = { kind = "http", requests = 1, applied = 0 } },
  reset      = { query = { ok = true, requests = 2 },
                 update = { ok = true, requests = 2, applied = 1 },
                 update_once = { kind = "network", requests = 1, applied = 0 } },
  -- the delayed request is carried out after the client gave up on it: the update's
  -- retry applies the row first, the late original is then refused as already reported
  delay      = { query = { ok = true, requests = 2 },
                 update = { ok = true, requests = 2, applied = 1 },
                 update_once = { kind = "timeout", requests = 1, applied = 1 } },
  non_json   = { query = { ok = true, requests = 2 },
                 update = { ok = true, requests = 2, applied = 1 },
                 update_once = { kind = "decode", requests = 1, applied = 0 } },
  -- carried out, answer cut in half: the update's retry finds the row already reported
  truncated  = { query = { ok = true, requests = 2 },
                 update = { ok = true, requests = 2, applied = 1, refused_repeat = true },
                 update_once = { kind = "decode", requests = 1, applied = 1 } },
  -- refused before anything is applied: retried whatever the method
  rate_limit = { query = { ok = true, requests = 2 },
                 update = { ok = true, requests = 2, applied = 1 },
                 update_once = { ok = true, requests = 2, applied = 1 } },
  -- status 7 with the server's Date: learn the offset, re-sign once, not counted as a retry
  skew       = { query = { ok = true, requests = 2 },
                 update = { ok = true, requests = 2, applied = 1 },
                 update_once = { ok = true, requests = 2, applied = 1 } },
}
local MODES = { "http_500", "reset", "delay", "non_json", "truncated", "rate_limit", "skew" }

describe("fault matrix", function()
  local emu

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = PENDING, shop_no = "s1" } },
    } }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  local function new_client(extra)
    return fixtures.client(emu, { timeout = TIMEOUT, retries = 3 }, extra)
  end

  local function queue() return emu:state().tenants[SID].logistics end

  -- wait until the emulator is done with a request the client gave up on
  local function settle(mode)
    if mode == "delay" then socket.sleep(DELAY_MS / 1000 + 0.3) end
  end

  local function fault(mode, count)
    local f = { mode = mode, count = count or 1 }
    if mode == "delay" then f.delay_ms = DELAY_MS end
    if mode == "skew" then f.skew_s = 3600; f.count = (count or 1) + 1 end   -- the re-signed try too
    emu:faults(f)
  end

  local function check_error(err, want, client_tries)
    assert.is_true(wdt.is_error(err), "an error object expected, got " .. tostring(err))
    assert.equal(want.kind, err.kind, tostring(err))
    assert.equal(client_tries, err.tries, tostring(err))
    local s = tostring(err)
    assert.is_nil(s:find("abcde", 1, true), "salt in the error: " .. s)
    assert.is_nil(s:find("sign=", 1, true), "query string in the error: " .. s)
  end

  for _, mode in ipairs(MODES) do
    describe(mode, function()
      local client
      before_each(function()
        emu:reset()
        client = new_client()
      end)
      after_each(function() client:close() end)

      it("query: " .. (expected[mode].query.ok and "retried to success" or "fails"), function()
        local want = expected[mode].query
        fault(mode)
        local page, err = client:page_call(LIST, { page_size = 5, page_no = 0, calc_total = true }, FILTER)
        settle(mode)
        local st = emu:state()
        assert.equal(want.requests, st.requests)
        if want.ok then
          assert.is_nil(err, tostring(err))
          assert.equal(5, #page.rows)
          assert.equal(PENDING, page.total)
        else
          check_error(err, want, want.requests)
        end
        assert.equal(PENDING, st.tenants[SID].logistics.size, "a query changed the queue")
      end)

      for _, variant in ipairs({ "update", "update_once" }) do
        local want = expected[mode][variant]
        local label = variant == "update" and "update (idempotent by the table)"
                      or "update with idempotent = false"
        it(label .. ": " .. (want.ok and "succeeds" or ("fails with kind " .. want.kind)), function()
          local q0 = queue()
          local id = compat.tointeger(q0.pending[1])   -- cjson gives floats
          local items = { { sync_id = id, status = 0, error_msg = "" } }
          fault(mode)
          local data, err
          if variant == "update" then
            data, err = client:call(UPDATE, items)
          else
            data, err = client:with { idempotent = false }:call(UPDATE, items)
          end
          if data ~= nil then err = nil end         -- on success the second result is the answer
          settle(mode)
          local st = emu:state()
          local q = st.tenants[SID].logistics
          assert.equal(want.requests, st.requests, "requests the emulator saw")
          if want.ok then
            assert.is_nil(err, tostring(err))
            assert.equal("table", type(data))
            if want.refused_repeat then
              -- the repeat of an applied report is refused item by item, status 0
              assert.equal(1, #data)
              assert.truthy(tostring(data[1]):find(tostring(id), 1, true))
            else
              assert.equal(0, #data, "refused: " .. table.concat(data, "; "))
            end
          else
            check_error(err, want, 1)
            assert.is_false(err.retryable, "a write that may have been applied is not retryable")
          end
          -- nothing applied twice, nothing lost: the row left the queue exactly `applied` times
          assert.equal(want.applied, q.acked, "acknowledged items")
          assert.equal(q0.size - want.applied, q.size)
          local still = false
          for _, v in ipairs(q.pending) do if v == id then still = true end end
          assert.equal(want.applied == 0, still, "the row is in the queue iff it was not applied")
        end)
      end
    end)
  end

  describe("when every try fails", function()
    local client
    before_each(function()
      emu:reset()
      client = new_client { retries = 2 }
    end)
    after_each(function() client:close() end)

    for _, mode in ipairs({ "http_500", "reset", "non_json", "rate_limit" }) do
      it(mode .. ": gives up after retries + 1 tries and says so", function()
        fault(mode, 10)
        local page, err = client:page_call(LIST, { page_size = 5 }, FILTER)
        assert.is_nil(page)
        assert.equal(3, err.tries)
        assert.equal(3, emu:state().requests)
        assert.truthy(tostring(err):find("after 3 tries", 1, true), tostring(err))
        if mode == "rate_limit" then
          assert.equal("api", err.kind)
          assert.equal(100, err.status)
        end
      end)
    end

    it("per-call retries override the client's", function()
      fault("http_500", 10)
      local resp, err = client:request { method = LIST, pager = { page_size = 5 }, args = { FILTER },
                                        retries = 0 }
      assert.is_nil(resp)
      assert.equal(1, err.tries)
      assert.equal(1, emu:state().requests)
      emu:reset()
      fault("http_500", 10)
      local _, err2 = client:with { retries = 4 }:page_call(LIST, { page_size = 5 }, FILTER)
      assert.equal(5, err2.tries)
      assert.equal(5, emu:state().requests)
    end)

    it("a non-repeatable write is never sent twice, even on a kept-alive connection", function()
      -- warm the connection up, then let the server drop the next request unanswered
      assert(client:page_call(LIST, { page_size = 1 }, FILTER))
      local id = compat.tointeger(emu:state().tenants[SID].logistics.pending[1])
      fault("reset", 1)
      local _, err = client:with { idempotent = false }:call(UPDATE,
        { { sync_id = id, status = 0, error_msg = "" } })
      assert.equal("network", err.kind)
      assert.equal(1, err.tries)
      assert.equal(2, emu:state().requests)        -- the list, then the update once
    end)
  end)

  describe("failures before the request was sent", function()
    it("are retried even for writes, and counted", function()
      local port = emulator.free_port()             -- nothing listens there
      local client = wdt.client { sid = SID, key = KEY, secret = APPSECRET, retries = 2,
        url = ("http://127.0.0.1:%d/openapi"):format(port), backoff = 0.01, max_backoff = 0.02 }
      local _, err = client:with { idempotent = false }:call(UPDATE,
        { { sync_id = 1, status = 0, error_msg = "" } })
      assert.equal("network", err.kind)
      assert.is_false(err.sent)
      assert.equal(3, err.tries)
      assert.truthy(tostring(err):find("after 3 tries", 1, true))
      client:close()
    end)
  end)
end)
