-- client:call_many against the real emulator: order, mixed outcomes, the retry rules of
-- client:call, connection reuse, and bad input.
local wdt = require "wdt"
local core = require "wdt.core"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET
local LIST = "sales.LogisticsSync.getSyncListExt"
local FILTER = { shop_no = "s1", is_own_platform = true }
local FIRST_ID = 5000000001

local function page_req(page_no, extra)
  local r = { LIST, FILTER, pager = { page_size = 1, page_no = page_no } }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local function requests_made(emu)
  return emu:state().requests
end

describe("client:call_many", function()
  local emu, client

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 60, shop_no = "s1" } },
    } }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  local function new_client(extra) return fixtures.client(emu, extra) end

  before_each(function()
    emu:reset()
    client = new_client()
  end)

  after_each(function()
    client:close()
  end)

  it("answers in request order", function()
    local reqs = {}
    for i = 1, 40 do reqs[i] = page_req(40 - i) end       -- pages in reverse order
    local results, failed = client:call_many(reqs, { concurrency = 8 })
    assert.equal(0, failed)
    assert.equal(40, #results)
    for i, r in ipairs(results) do
      assert.is_nil(r.err)
      assert.equal(1, #r.data.rows)
      assert.equal(FIRST_ID + 40 - i, r.data.rows[1].sync_id)   -- exact 64-bit ids
      assert.equal(40 - i, r.data.page_no)
      assert.equal(0, r.response.status)
    end
    assert.equal(40, requests_made(emu))
  end)

  it("gives data like call for requests without a pager, nils kept with n", function()
    local results = client:call_many({
      { LIST, FILTER },
      { "sales.LogisticsSync.update", { { sync_id = FIRST_ID, status = 0, error_msg = "" } } },
      { "sales.LogisticsSync.update", { { sync_id = 1, status = 0, error_msg = "" } } },
    })
    assert.equal(30, #results[1].data)                     -- the default page size
    assert.same({}, results[2].data)                       -- all accepted: an empty list
    assert.equal(1, #results[3].data)                      -- one refused item
    assert.truthy(results[3].data[1]:find("不存在或已回传", 1, true))
    -- n counts the method: a trailing nil argument is sent as null
    local r = client:call_many({ { LIST, FILTER, nil, n = 3 } })
    assert.equal(2, r[1].err.status)
  end)

  it("mixes successes and failures, each failure a wdt error", function()
    local results, failed = client:call_many({
      page_req(0),
      { "no.Such.method" },
      page_req(1),
      { LIST, FILTER, pager = { page_size = 1001 }, check = false }, -- the server refuses page_size
      page_req(2),
    }, { concurrency = 3 })
    assert.equal(2, failed)
    assert.equal(FIRST_ID, results[1].data.rows[1].sync_id)
    assert.equal(FIRST_ID + 1, results[3].data.rows[1].sync_id)
    assert.equal(FIRST_ID + 2, results[5].data.rows[1].sync_id)
    assert.is_true(wdt.is_error(results[2].err))
    assert.equal("api", results[2].err.kind)
    assert.equal(1, results[2].err.status)
    assert.equal("no.Such.method", results[2].err.method)
    assert.equal(2, results[4].err.status)
    assert.is_false(results[4].err.retryable)
    assert.equal(1, results[4].err.tries)
    assert.is_nil(results[2].data)
  end)

  it("returns an empty list for no requests", function()
    local results, failed = client:call_many({})
    assert.same({}, results)
    assert.equal(0, failed)
  end)

  describe("retries, with the rules of call", function()
    it("retries HTTP 500 and resets of queries, signing each try anew", function()
      emu:faults { { mode = "http_500", count = 3 }, { mode = "reset", count = 2 } }
      local reqs = {}
      for i = 1, 10 do reqs[i] = page_req(i - 1) end
      local results, failed = client:call_many(reqs, { concurrency = 4 })
      assert.equal(0, failed)
      for i = 1, 10 do assert.equal(FIRST_ID + i - 1, results[i].data.rows[1].sync_id) end
      assert.equal(15, requests_made(emu))
    end)

    it("retries rate limits even for writes, but not an HTTP 500 of a write", function()
      emu:faults { { mode = "rate_limit", count = 2 } }
      -- an incomplete info, past the catalogue's checks: the emulator answers it
      local write = { "sales.StockSync.syncFail", 1, { syn_stock = 1, stock_change_count = 1 }, check = false }
      local results = client:call_many({ write, write }, { concurrency = 2 })
      -- refused twice by the rate limit, then answered (status 100: unknown goods id)
      for i = 1, 2 do
        assert.equal(100, results[i].err.status)
        assert.equal(2, results[i].err.tries)
      end
      emu:faults { mode = "http_500", count = 1 }
      results = client:call_many({ write }, { concurrency = 2 })
      assert.equal("http", results[1].err.kind)
      assert.equal(500, results[1].err.http_status)
      assert.is_false(results[1].err.retryable)
      assert.equal(1, results[1].err.tries)
    end)

    it("stops after `retries` and reports the tries", function()
      emu:faults { mode = "http_500", count = 100 }
      local results, failed = client:call_many({ page_req(0), page_req(1) },
                                               { concurrency = 2, retries = 2 })
      assert.equal(2, failed)
      for i = 1, 2 do
        assert.equal(3, results[i].err.tries)
        assert.is_true(results[i].err.retryable)
      end
      -- a per-request option wins over the batch's
      emu:faults { mode = "http_500", count = 100 }
      results = client:call_many({ page_req(0, { retries = 0 }), page_req(1) }, { retries = 1 })
      assert.equal(1, results[1].err.tries)
      assert.equal(2, results[2].err.tries)
      emu:faults {}
    end)

    it("learns the server's clock from a status 7 and re-signs", function()
      emu:faults { mode = "skew", count = 100, skew_s = 3600 }
      local results, failed = client:call_many({ page_req(0), page_req(1), page_req(2) })
      assert.equal(0, failed)
      assert.equal(FIRST_ID + 2, results[3].data.rows[1].sync_id)
      emu:faults {}
    end)

    it("times out one slow request without holding the others", function()
      emu:faults { mode = "delay", count = 1, delay_ms = 3000 }
      local t0 = core.unix_time()
      local results, failed = client:call_many(
        { page_req(0, { timeout = 0.5, retries = 0 }), page_req(1), page_req(2) },
        { concurrency = 3 })
      assert.is_true(core.unix_time() - t0 < 2.5)
      assert.equal(1, failed)
      assert.equal("timeout", results[1].err.kind)
      assert.equal(FIRST_ID + 2, results[3].data.rows[1].sync_id)
    end)

    it("reports a refused connection as not sent, after the retries", function()
      local port = emulator.free_port()
      local c = new_client { url = ("http://127.0.0.1:%d/openapi"):format(port), retries = 1 }
      local results, failed = c:call_many({ { LIST, FILTER }, { "sales.StockSync.syncFail", 1, {} } })
      c:close()
      assert.equal(2, failed)
      for i = 1, 2 do
        assert.equal("network", results[i].err.kind)
        assert.is_false(results[i].err.sent)
        assert.equal(2, results[i].err.tries)             -- never sent: retried even for a write
      end
    end)

    it("waits out back-offs side by side, without blocking the batch", function()
      emu:faults { mode = "http_500", count = 6 }
      local c = new_client { backoff = 0.4, max_backoff = 0.4 }
      local waits = 0
      c = c:_using { sleep = function(seconds)   -- the scheduler's own waits, when nothing is to be sent
        waits = waits + 1
        return require("wdt.clock").sleep(seconds)
      end }
      local reqs = {}
      for i = 1, 6 do reqs[i] = page_req(i - 1) end
      local t0 = core.unix_time()
      local results, failed = c:call_many(reqs, { concurrency = 6 })
      local dt = core.unix_time() - t0
      c:close()
      assert.equal(0, failed)
      for i = 1, 6 do assert.equal(FIRST_ID + i - 1, results[i].data.rows[1].sync_id) end
      assert.equal(12, requests_made(emu))
      -- six back-offs of 0.2 to 0.4 s: one after the other they would take 1.2 s at least
      assert.is_true(dt < 1.15, ("took %.2f s"):format(dt))
      assert.is_true(waits >= 1 and waits <= 6, tostring(waits))
    end)

    it("does not leave clock.sleep patched", function()
      local clock = require "wdt.clock"
      local before = clock.sleep
      emu:faults { mode = "rate_limit", count = 2 }
      client:call_many({ page_req(0), page_req(1) })
      assert.equal(before, clock.sleep)
      assert.has_error(function() client:call_many({ { "bad method" } }) end)
      assert.equal(before, clock.sleep)
    end)
  end)

  describe("connections", function()
    it("keeps at most `concurrency` connections, reused across batches and calls", function()
      local reqs = {}
      for i = 1, 60 do reqs[i] = page_req(i % 10) end
      for _ = 1, 3 do
        local _, failed = client:call_many(reqs, { concurrency = 4 })
        assert.equal(0, failed)
      end
      for _ = 1, 5 do assert(client:call(LIST, FILTER)) end
      local st = emu:state()
      assert.equal(185, st.requests)
      assert.is_true(st.connections >= 1 and st.connections <= 4,
                     "connections: " .. tostring(st.connections))
    end)

    it("uses one connection for sequential calls and concurrency 1", function()
      for _ = 1, 5 do assert(client:call(LIST, FILTER)) end
      client:call_many({ page_req(0), page_req(1), page_req(2) }, { concurrency = 1 })
      assert.equal(1, emu:state().connections)
    end)
  end)

  describe("bad input raises before anything is sent", function()
    local cases = {
      { "not a list", function() return client:call_many("x") end, "list of requests" },
      { "opts not a table", function() return client:call_many({}, 5) end, "opts" },
      { "concurrency 0", function() return client:call_many({ page_req(0) }, { concurrency = 0 }) end,
        "concurrency" },
      { "concurrency too big", function() return client:call_many({ page_req(0) }, { concurrency = 257 }) end,
        "concurrency" },
      { "unknown option", function() return client:call_many({ page_req(0) }, { speed = 1 }) end,
        "unknown option 'speed'" },
      { "request not a table", function() return client:call_many({ page_req(0), LIST }) end,
        "requests%[2%]" },
      { "bad method", function() return client:call_many({ page_req(0), { "a b" } }) end,
        "requests%[2%]%[1%]" },
      { "unknown request field", function() return client:call_many({ { LIST, FILTER, foo = 1 } }) end,
        "unknown field 'foo'" },
      { "bad pager", function() return client:call_many({ { LIST, FILTER, pager = { page_size = 0 } } }) end,
        "page_size" },
      { "bad option type", function() return client:call_many({ page_req(0, { timeout = "1" }) }) end,
        "timeout" },
      { "a hole in the list", function()
          return client:call_many({ page_req(0), nil, page_req(2) })
        end, "bad argument 'requests%[2%]' to 'call_many' %(a request expected, got nil" },
      { "a NaN option", function() return client:call_many({ page_req(0) }, { timeout = 0 / 0 }) end,
        "number expected, got nan" },
      { "args that cannot be encoded", function()
          return client:call_many({ page_req(0), { LIST, { f = print } } })
        end, "requests%[2%].*cannot encode a function" },
    }
    for _, case in ipairs(cases) do
      it(case[1], function()
        local ok, err = pcall(case[2])
        assert.is_false(ok)
        assert.truthy(tostring(err):find(case[3]), tostring(err))
        assert.equal(0, requests_made(emu))
      end)
    end

    it("names the caller's line", function()
      local ok, err = pcall(function() client:call_many("x") end)
      assert.is_false(ok)
      assert.truthy(err:find("batch_spec.lua:%d+:"), err)
    end)

    it("raises on a closed client", function()
      client:close()
      assert.has_error(function() client:call_many({ page_req(0) }) end)
    end)
  end)

  describe("cl:send_many (the C binding)", function()
    it("answers each {url, body} in order, failures as kind/message/sent", function()
      local p = client:prepare(LIST, { FILTER }, { page_size = 1 })
      local port = emulator.free_port()
      local dead = ("http://127.0.0.1:%d/openapi"):format(port)
      local r = client._core:send_many({ { p.url, p.body }, { dead, "[]" }, { p.url, p.body } }, 2)
      assert.equal(3, #r)
      assert.equal(200, r[1].status)
      assert.truthy(r[1].body:find('"status":0', 1, true))
      assert.truthy(r[1].date:find("GMT", 1, true))
      assert.equal("network", r[2].kind)
      assert.is_false(r[2].sent)
      assert.equal(200, r[3].status)
      assert.same({}, client._core:send_many({}, 4))
    end)

    it("checks its arguments", function()
      local c = client._core
      assert.has_error(function() c:send_many({ { "http://x/" } }, 1) end)
      assert.has_error(function() c:send_many({ "x" }, 1) end)
      assert.has_error(function() c:send_many({}, 0) end)
      assert.has_error(function() c:send_many({}, 1.5) end)
      assert.has_error(function() c:send_many({ { "http://x/", "[]", timeout = "1" } }, 1) end)
      assert.has_error(function() c:send_many({ { "http://x/", "[]", fresh_connect = 1 } }, 1) end)
    end)
  end)

  describe("flights sharing the client's pool", function()
    local batch = require "wdt.batch"
    local function req(page_no) return batch.build(1, page_req(page_no), {}, {}) end

    it("an answer another flight's wait took in goes to its request, its slot since reused or not", function()
      emu:faults { mode = "delay", delay_ms = 300, count = 1, method = "sales.TradeQuery.querySelfOrderWithDetail" }
      local a = batch.flight(client, 3)
      local want = { [a:add(req(0))] = 0, [a:add(req(1))] = 1 }
      a:poll()                                     -- both out, on the pool's first two slots
      local b = batch.flight(client, 1)
      b:add(batch.build(1, { "sales.TradeQuery.querySelfOrderWithDetail",
        { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 00:01:00" },
        pager = { page_size = 1, page_no = 0 } }, {}, {}))
      assert.truthy(b:next())                      -- held 300 ms: a's answers came meanwhile
      want[a:add(req(2))] = 2
      a:poll()                                     -- starts on a slot b's wait freed
      local got = {}
      while true do
        local i, r = a:next()
        if not i then break end
        assert.is_nil(r.err)
        got[i] = r.data.page_no
      end
      assert.same(want, got)
    end)

    it("an answer of another flight taken in by a wait whose own request raises is not lost", function()
      local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
      emu:faults { { mode = "delay", delay_ms = 200, count = 1, method = TRADES },
                   { mode = "delay", delay_ms = 250, count = 2, method = LIST } }
      -- an interrupt (SIGINT) raised in the request of TRADES: it passes through the wait
      local c = new_client { on_response = function(info)
        if info.method == TRADES then error("stdin:1: interrupted!", 0) end
      end }
      local b = batch.flight(c, 1)
      b:add(batch.build(1, { TRADES, { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 00:01:00" },
                             pager = { page_size = 1, page_no = 0 } }, {}, {}))
      local a = batch.flight(c, 2)
      local want = { [a:add(req(0))] = 0, [a:add(req(1))] = 1 }
      local socket = require "socket"
      local t0 = socket.gettime()
      while socket.gettime() - t0 < 0.1 do         -- all three sent, none answered yet
        b:poll()
        a:poll()
        socket.sleep(0.005)
      end
      socket.sleep(0.4)                            -- all three answered: one wait takes them in
      local ok, err = pcall(b.next, b)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("interrupted!", 1, true))
      b:close()
      local started = os.time()
      debug.sethook(function()                     -- a's answers lost: its next() would spin
        if os.time() - started > 5 then error("a's answers were lost") end
      end, "", 100000)
      local got = {}
      local gok, gerr = pcall(function()
        while true do
          local i, r = a:next()
          if not i then break end
          assert.is_nil(r.err)
          got[i] = r.data.page_no
        end
      end)
      debug.sethook()
      c:close()
      assert(gok, gerr)
      assert.same(want, got)
    end)
  end)

  describe("cl:prepare_job and cl:start(job) (a flight's tries)", function()
    local function wait_one(c)
      for _ = 1, 50 do
        local done = c:wait(0.2)
        if done[1] then return done end
      end
    end

    it("sends the request cl:prepare makes, the body's buffer reused by the next job", function()
      local c = client._core
      local ids = {}
      for page = 0, 2 do                         -- one after another: the spare buffer goes round
        local job = c:prepare_job(LIST, { FILTER }, { page_size = 1, page_no = page })
        local id = assert(c:start(job, { timeout = 5 }))
        local done = assert(wait_one(c))
        assert.equal(1, #done)
        assert.equal(id, done[1].id)
        assert.equal(200, done[1].status)
        local answer = core.decode(done[1].body)
        assert.equal(0, answer.status)
        ids[#ids + 1] = answer.data[1].sync_id
      end
      assert.same({ FIRST_ID, FIRST_ID + 1, FIRST_ID + 2 }, ids)
    end)

    it("two jobs in flight at once, each answered for its own page", function()
      local c = client._core
      local a = c:prepare_job(LIST, { FILTER }, { page_size = 1, page_no = 0 })
      local b = c:prepare_job(LIST, { FILTER }, { page_size = 1, page_no = 1 })
      local ia, ib = assert(c:start(a)), assert(c:start(b))
      local got = {}
      while not (got[ia] and got[ib]) do
        for _, r in ipairs(assert(wait_one(c))) do got[r.id] = core.decode(r.body).data[1].sync_id end
      end
      assert.equal(FIRST_ID, got[ia])
      assert.equal(FIRST_ID + 1, got[ib])
    end)

    it("a job is used up by its start; one never started is freed with it; bad input raises", function()
      local c = client._core
      local job = c:prepare_job(LIST, { FILTER }, { page_size = 1 })
      assert(c:start(job))
      assert.has_error(function() c:start(job) end, "bad argument #1 to 'start' (job: started already)")
      assert(wait_one(c))
      c:prepare_job(LIST, { FILTER }, { page_size = 1 })     -- dropped: its __gc frees it
      collectgarbage()
      collectgarbage()
      assert.has_error(function() c:prepare_job(LIST, { { bad = function() end } }) end)
      assert.has_error(function() c:start(c:prepare_job(LIST, { FILTER }), { timeout = "1" }) end)
      local p = client:prepare(LIST, { FILTER }, { page_size = 1 })   -- the client's buffers still whole
      assert.truthy(p.body:find('"shop_no":"s1"', 1, true))
    end)
  end)
end)
