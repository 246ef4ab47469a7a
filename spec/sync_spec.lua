-- The sync loops (client:sync_logistics, client:sync_stock) against the real emulator:
-- every outcome of the handler, refusals, a queue that grows while the loop runs, page
-- sizes that do not divide the queue, reporting that fails after retries, interrupts, and
-- summaries checked against the emulator's own state.
local wdt = require "wdt"
local sync = require "wdt.sync"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local compat = require "spec.support.compat"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET
local UPDATE = "sales.LogisticsSync.update"

local sorted = fixtures.sorted

local function keys(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return out
end

describe("sync loops", function()
  local emu, client

  local function new_client(extra)
    return fixtures.client(emu, { retries = 2, max_backoff = 0.02 }, extra)
  end

  local function lstate() return emu:state().tenants[SID].logistics end
  local function sstate() return emu:state().tenants[SID].stock end
  local function calls(method) return (emu:state().calls[SID] or {})[method] or 0 end

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 50, shop_no = "s1" } },
      stock = { [SID] = { pending = 30 } },
    } }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  before_each(function()
    emu:reset()
    emu:faults {}
    client = new_client()
  end)

  after_each(function()
    client:close()
  end)

  describe("sync_logistics", function()
    it("hands every row to the handler once and reports it", function()
      local handled = {}
      local summary = assert(client:sync_logistics { shop_no = "s1", handler = function(row)
        handled[row.sync_id] = (handled[row.sync_id] or 0) + 1
        return true
      end })
      local ids = keys(handled)
      assert.equal(50, #ids)
      for _, id in ipairs(ids) do assert.equal(1, handled[id]) end
      assert.equal(50, summary.read)
      assert.equal(50, summary.reported)
      assert.equal(50, summary.synced)
      assert.equal(0, summary.failed + summary.deferred + summary.refused)
      assert.equal(50, summary.total)
      local st = lstate()
      assert.equal(0, st.size)
      assert.equal(50, st.acked)
    end)

    it("maps true / false / nil to statuses 0 / 2 / -100; a raise or a bad return is not reported", function()
      local by_id, i = {}, 0
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 10,
        handler = function(row)
          i = i + 1
          local k = i % 6
          by_id[row.sync_id] = k
          if k == 0 then return true end
          if k == 1 then return false, "refused by the platform" end
          if k == 2 then return nil, "platform busy" end
          if k == 3 then error("platform client crashed") end
          if k == 4 then return 42 end
          return nil            -- no message: deferred too
        end })
      local want = { [0] = 0, 0, 0, 0, 0, 0 }
      for _, k in pairs(by_id) do want[k] = want[k] + 1 end
      assert.equal(50, summary.read)
      assert.equal(want[0], summary.synced)
      assert.equal(want[1], summary.failed)
      assert.equal(want[2] + want[5], summary.deferred)
      assert.equal(0, summary.refused)
      -- the glue's bugs: not reported, listed with the error, the rows still in the queue
      assert.equal(want[3] + want[4], summary.handler_errors)
      assert.equal(want[3] + want[4], #summary.unreported)
      for _, u in ipairs(summary.unreported) do
        assert.equal("handler", u.kind)
        local k = by_id[u.sync_id]
        assert.matches(k == 3 and "^handler error: .*platform client crashed$"
                       or "^handler error: it returned number %(expected true, false or nil%)$", u.message)
      end
      -- every item not synced is in summary.outcomes, in one shape: key, id, outcome, message
      local by_outcome = {}
      for _, o in ipairs(summary.outcomes) do
        by_outcome[o.outcome] = (by_outcome[o.outcome] or 0) + 1
        assert.is_number(o.key)
        assert.is_string(o.id)      -- the row's tid
        if o.outcome == "failed" then assert.equal("refused by the platform", o.message) end
      end
      assert.same({ failed = want[1], deferred = want[2] + want[5], unreported = want[3] + want[4] }, by_outcome)
      -- the emulator agrees: nothing failed but the refusals, the rest still pending
      local st = lstate()
      assert.equal(summary.synced, st.acked)
      assert.equal(summary.failed, st.failed)
      assert.equal(summary.deferred, st.kept)
      local left = {}
      for id, k in pairs(by_id) do if k >= 2 then left[#left + 1] = id end end
      assert.same(sorted(left), sorted(st.pending))
    end)

    it("runs the README's first snippet literally: an undefined my_platform_ship fails nothing", function()
      -- the snippet calls my_platform_ship, which it does not define: every call raises
      local summary = assert(client:sync_logistics {
        shop_no = "s1",
        handler = function(row)                  -- row.sync_id, row.tid, row.logistics_no, …
          return my_platform_ship(row)           -- luacheck: ignore (undefined, as in the README)
        end,
      })
      assert.same({ 50, 0, 0, 0, 0, 50 }, { summary.read, summary.synced, summary.failed, summary.deferred,
                                           summary.reported, summary.handler_errors })
      assert.matches("my_platform_ship", summary.unreported[1].message)
      local st = lstate()
      assert.same({ 0, 0, 50 }, { st.acked, st.failed, #st.pending })
      assert.equal(0, calls(UPDATE))
    end)

    it("takes a handler module: handle or batch (a page at once), and finish(summary) at the end", function()
      local pages, finished = {}, nil
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 20, handler = {
        batch = function(rows)
          pages[#pages + 1] = #rows
          local out = {}
          for i, row in ipairs(rows) do
            local k = row.sync_id % 5
            if k == 0 then out[i] = true
            elseif k == 1 then out[i] = { ok = false, message = "bulk refused" }
            elseif k == 2 then out[i] = { ok = nil, message = "bulk later" }
            elseif k == 3 then out[i] = false
            end                                  -- k == 4: no outcome, a bug: not reported
          end
          return out
        end,
        finish = function(s) finished = s end,
      } })
      -- each read's new rows at once (the queue is read again from page 0 after each report)
      local total = 0
      for _, n in ipairs(pages) do total = total + n end
      assert.same({ 20, 50 }, { pages[1], total })
      assert.equal(summary, finished)
      assert.same({ 10, 20, 10, 10 }, { summary.synced, summary.failed, summary.deferred, summary.handler_errors })
      assert.matches("batch gave no outcome for item %d+ %(nil%)", summary.unreported[1].message)
      -- a batch that raises leaves its whole page unreported; a finish that raises is an error
      emu:reset()
      local _, err = client:sync_logistics { shop_no = "s1", handler = {
        batch = function() error("bulk API down") end,
        finish = function() error("commit failed") end,
      } }
      assert.equal("handler", err.kind)
      assert.matches("finish%(summary%) raised: .*commit failed", err.message)
      assert.same({ 0, 50 }, { err.summary.reported, err.summary.handler_errors })
      assert.equal(50, #lstate().pending)
      local ok, berr = pcall(client.sync_logistics, client, { shop_no = "s1", handler = { finish = print } })
      assert.is_false(ok)
      assert.matches("'handler' to 'sync_logistics' %(a function, or a table with handle%(item%) or batch", berr)
    end)

    it("gives every item's outcome to on_outcome, the synced ones too", function()
      local seen = {}
      local summary = assert(client:sync_logistics { shop_no = "s1",
        handler = function(row) if row.sync_id % 2 == 0 then return true end return false, "odd" end,
        on_outcome = function(o) seen[#seen + 1] = o end })
      assert.equal(50, #seen)
      assert.equal(25, #summary.outcomes)
      local n = 0
      for _, o in ipairs(seen) do if o.outcome == "synced" then n = n + 1 end end
      assert.equal(25, n)
    end)

    it("builds the reported status and message from the handler's answer", function()
      local function f(...) local r = compat.pack(...) return function() return compat.unpack(r, 1, r.n) end end
      assert.same({ 0, "" }, { sync.outcome(f(true), {}) })
      assert.same({ 2, "nope" }, { sync.outcome(f(false, "nope"), {}) })
      assert.same({ 2, "failed" }, { sync.outcome(f(false), {}) })
      assert.same({ -100, "later" }, { sync.outcome(f(nil, "later"), {}) })
      assert.same({ -100, "deferred" }, { sync.outcome(f(), {}) })
      -- a raise or another answer is the glue's bug: nil (not reported) and the error
      assert.same({ nil, "handler error: it returned number (expected true, false or nil)" },
                  { sync.outcome(f(1), {}) })
      assert.same({ nil, "handler error: it returned string (expected true, false or nil)" },
                  { sync.outcome(f("ok"), {}) })
      local st, msg = sync.outcome(function() error("boom") end, {})
      assert.is_nil(st)
      assert.matches("^handler error: .*boom$", msg)
      st, msg = sync.outcome(function() error({ code = 1 }) end, {})
      assert.is_nil(st)
      assert.matches("^handler error: table", msg)
      -- messages are made valid UTF-8 and cut, so the report can always be sent
      assert.same({ 2, "bad ? byte, 中文" }, { sync.outcome(f(false, "bad \255 byte, 中文"), {}) })
      assert.same({ 2, "???(" }, { sync.outcome(f(false, "\237\160\128("), {}) })   -- a surrogate
      assert.equal(sync.MAX_MESSAGE, #select(2, sync.outcome(f(false, ("x"):rep(1000)), {})))
      assert.equal(sync.MAX_MESSAGE * 3, #select(2, sync.outcome(f(false, ("中"):rep(300)), {})))
      assert.same({ 2, "12" }, { sync.outcome(f(false, 12), {}) })
      -- an empty message takes the default too
      assert.same({ 2, "failed" }, { sync.outcome(f(false, ""), {}) })
      assert.same({ -100, "deferred" }, { sync.outcome(f(nil, ""), {}) })
    end)

    it("checks every item before reporting it", function()
      assert.is_true(sync.check_item { sync_id = 1, status = 0, error_msg = "" })
      assert.is_true(sync.check_item { sync_id = 1, status = -100, error_msg = "x" })
      assert.is_true(sync.check_item { sync_id = 1, status = 2, error_msg = "x" })
      assert.is_nil(sync.check_item { sync_id = 1.5, status = 0, error_msg = "" })
      assert.is_nil(sync.check_item { sync_id = "1", status = 0, error_msg = "" })
      assert.is_nil(sync.check_item { sync_id = 1, status = 1, error_msg = "" })
      assert.is_nil(sync.check_item { sync_id = 1, status = "0", error_msg = "" })
      local ok, why = sync.check_item { sync_id = 1, status = 0 }
      assert.is_nil(ok)
      assert.equal("error_msg is not a string", why)
    end)

    it("reads from page 0 again, so page sizes that do not divide the queue skip nothing", function()
      for _, size in ipairs({ 7, 1, 49, 50, 51, 1000 }) do
        emu:reset()
        local seen, n = {}, 0
        local summary = assert(client:sync_logistics { shop_no = "s1", page_size = size, batch = 3,
          handler = function(row)
            assert.is_nil(seen[row.sync_id], "row handled twice")
            seen[row.sync_id] = true
            n = n + 1
            if n % 9 == 0 then return nil, "later" end     -- deferred rows stay in the queue
            return true
          end })
        assert.equal(50, summary.read, "page_size " .. size)
        assert.equal(50, summary.reported)
        assert.equal(5, summary.deferred)
        local st = lstate()
        assert.equal(5, st.size, "page_size " .. size)
        assert.equal(45, st.acked)
      end
    end)

    it("reports in batches of `batch` (never across a page)", function()
      -- (one call at a time: with more, a page read while reports are out may hold fewer
      -- new rows, doc/sync.md "Calls in flight")
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 10, batch = 3, concurrency = 1,
        handler = function() return true end })
      assert.equal(50, summary.synced)
      assert.equal(5 * 4, calls(UPDATE))       -- each page of 10: 3 + 3 + 3 + 1
      emu:reset()
      summary = assert(client:sync_logistics { shop_no = "s1", page_size = 50, batch = 100,
        handler = function() return true end })
      assert.equal(50, summary.synced)
      assert.equal(1, calls(UPDATE))
    end)

    it("takes in rows that arrive while it runs", function()
      local added, n = 0, 0
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 7,
        handler = function()
          n = n + 1
          if n % 10 == 0 and added < 40 then
            emu:enqueue { sid = SID, logistics = 8 }
            added = added + 8
          end
          return true
        end })
      assert.equal(40, added)
      assert.equal(90, summary.read)
      assert.equal(90, summary.synced)
      assert.equal(0, lstate().size)
      assert.equal(90, lstate().acked)
    end)

    it("leaves rows of other shops alone", function()
      local s2 = emu:enqueue { sid = SID, logistics = 5, shop_no = "s2" }
      assert.equal(55, s2.logistics)
      local seen = {}
      -- rows do not name their shop (the vendor's field table): the filter is the request's
      local summary = assert(client:sync_logistics { shop_no = "s2", handler = function(row)
        seen[#seen + 1] = row.tid
        return true
      end })
      assert.equal(5, summary.synced)
      assert.equal(5, #seen)
      assert.equal(50, lstate().size)
    end)

    it("lists the items the ERP refused, with its messages, and counts them apart", function()
      -- Another process reports some rows behind the loop's back: the loop's own report of
      -- them is refused by the ERP (unknown or already reported).
      local other = new_client()
      local behind, n = {}, 0
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 10,
        handler = function(row)
          n = n + 1
          if n % 12 == 0 then
            assert(other:call(UPDATE, { { sync_id = row.sync_id, status = 0, error_msg = "" } }))
            behind[#behind + 1] = row.sync_id
          end
          return true
        end })
      other:close()
      assert.equal(4, #behind)
      assert.equal(4, summary.refused)
      assert.equal(50, summary.reported)
      assert.equal(46, summary.synced)
      local refused = {}
      for i, r in ipairs(summary.refused_items) do
        refused[i] = r.sync_id
        assert.is_string(r.message)
        assert.truthy(r.message:find(("%d"):format(r.sync_id), 1, true))
        assert.equal(0, r.status)
        assert.is_table(r.row)
      end
      assert.same(sorted(behind), sorted(refused))
      assert.equal(0, lstate().size)
      assert.equal(50, lstate().acked)
    end)

    it("counts a report applied on its first try as accepted when the retry is refused as gone", function()
      -- The first try of the update is applied but its answer is cut short; the retry is
      -- answered "物流同步id:N 不存在或已回传" for every row it had just reported.
      local n = 0
      local summary = assert(client:sync_logistics { shop_no = "s1", handler = function()
        n = n + 1
        if n == 1 then emu:faults { mode = "truncated", count = 1 } end
        if n % 5 == 0 then return false, "closed" end
        if n % 7 == 0 then return nil, "busy" end
        return true
      end })
      assert.equal(2, calls(UPDATE))
      local st = lstate()
      assert.equal(50, summary.read)
      assert.equal(50, summary.reported)
      assert.equal(0, summary.refused)
      assert.equal(0, #summary.refused_items)
      assert.equal(st.acked, summary.synced)
      assert.equal(10, summary.failed)
      assert.equal(6, summary.deferred)                 -- deferred rows stay: not refused on the retry
      assert.equal(summary.synced + summary.failed, #summary.confirmed_on_retry)
      assert.equal(summary.deferred, st.size)
      assert.equal(0, #summary.unconfirmed)
    end)

    it("lists the items of a chunk as unconfirmed when a refusal names none of them", function()
      local n = 0
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 10, batch = 5,
        handler = function()
          n = n + 1
          -- the next update (rows 11..15) refuses its first item with a message naming none
          if n == 12 then emu:faults { mode = "refuse", item = 1, anonymous = true } end
          return true
        end })
      assert.equal(50, summary.read)
      assert.equal(50, summary.reported)
      assert.equal(1, summary.refused)
      assert.is_nil(summary.refused_items[1].sync_id)
      assert.equal(5, #summary.unconfirmed)
      assert.equal(45, summary.synced)
      assert.equal(summary.reported, summary.synced + summary.failed + summary.deferred + #summary.unconfirmed)
      local st = lstate()
      assert.equal(1, st.size)                          -- the refused row is still waiting
      assert.equal(summary.unconfirmed[1].sync_id, st.pending[1])
      for _, it in ipairs(summary.unconfirmed) do
        assert.equal(0, it.status)
        assert.is_table(it.row)
      end
    end)

    it("matches a refusal that gives the item's position (第N条)", function()
      local n, ids = 0, {}
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 10, batch = 5,
        handler = function(row)
          n = n + 1
          ids[n] = row.sync_id
          if n == 12 then emu:faults { mode = "refuse", item = 2 } end   -- rows 11..15: row 12
          return true
        end })
      assert.equal(1, summary.refused)
      assert.equal(ids[12], summary.refused_items[1].sync_id)
      assert.matches("^第2条", summary.refused_items[1].message)
      assert.equal(49, summary.synced)
      assert.equal(0, #summary.unconfirmed)
      assert.same({ ids[12] }, lstate().pending)
    end)

    it("lists what it could not report after retries, returns an error, and loses nothing", function()
      local n = 0
      -- (one call at a time: with more, the second page is read while the first one's
      -- report is out, spec/concurrency_spec.lua has that case)
      local summary, err = client:sync_logistics { shop_no = "s1", page_size = 10, concurrency = 1,
        handler = function()
          n = n + 1
          -- rows 1..10 are reported; while the second page is handled, the ERP breaks for
          -- longer than the client retries (3 tries)
          if n == 15 then emu:faults { mode = "http_500", count = 3 } end
          return true
        end }
      assert.is_nil(summary)
      assert.truthy(wdt.is_error(err))
      assert.equal("http", err.kind)
      assert.equal(500, err.http_status)
      assert.equal(UPDATE, err.method)
      assert.equal(3, err.tries)
      assert.matches("10 item%(s%) left unreported", tostring(err))
      local s = err.summary
      assert.equal(20, s.read)
      assert.equal(10, s.reported)
      assert.equal(10, s.synced)
      assert.equal(10, #s.unreported)
      assert.equal(s.read, s.reported + #s.unreported)
      -- the unreported rows are still in the ERP's queue, so the next run takes them
      local st = lstate()
      assert.equal(40, st.size)
      local pending = {}
      for _, id in ipairs(st.pending) do pending[id] = true end
      for _, item in ipairs(s.unreported) do
        assert.is_true(pending[item.sync_id])
        assert.equal(0, item.status)
      end
      local again = assert(client:sync_logistics { shop_no = "s1", handler = function() return true end })
      assert.equal(40, again.synced)
      assert.equal(0, lstate().size)
    end)

    it("returns network failures of the report as errors of kind network", function()
      local n = 0
      local summary, err = client:sync_logistics { shop_no = "s1", page_size = 10,
        handler = function()
          n = n + 1
          -- (libcurl itself reconnects once when a kept-alive connection dies: more faults)
          if n == 3 then emu:faults { mode = "reset", count = 20 } end
          return true
        end }
      assert.is_nil(summary)
      assert.equal("network", err.kind)
      assert.equal(10, #err.summary.unreported)
      assert.equal(50, lstate().size)
    end)

    it("returns an error when reading the queue fails", function()
      emu:faults { mode = "rate_limit", count = 10 }
      local handled = 0
      local summary, err = client:sync_logistics { shop_no = "s1", handler = function()
        handled = handled + 1
        return true
      end }
      assert.is_nil(summary)
      assert.equal("api", err.kind)
      assert.equal(100, err.status)
      assert.equal("sales.LogisticsSync.getSyncListExt", err.method)
      assert.equal(0, handled)
      assert.equal(0, #err.summary.unreported)
      assert.equal(50, lstate().size)
    end)

    it("stops on an interrupt, reporting what was handled and nothing else", function()
      local n = 0
      local summary, err = client:sync_logistics { shop_no = "s1", page_size = 10,
        handler = function()
          n = n + 1
          if n == 15 then error("stdin:1: interrupted!") end
          return true
        end }
      assert.is_nil(summary)
      assert.equal("interrupted", err.kind)
      local s = err.summary
      assert.equal(14, s.reported)
      assert.equal(14, s.synced)
      assert.equal(1, #s.unreported)
      assert.equal(36, lstate().size)
      assert.equal(14, lstate().acked)
    end)

    it("dry_run reads the whole queue and changes nothing", function()
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 7, dry_run = true })
      assert.equal(50, summary.read)
      assert.equal(0, summary.reported)
      assert.equal(50, summary.total)
      assert.equal(0, calls(UPDATE))
      assert.equal(50, lstate().size)
      local called = false
      summary = assert(client:sync_logistics { shop_no = "s1", dry_run = true,
        handler = function() called = true return true end })
      assert.equal(50, summary.read)
      assert.is_false(called)
    end)

    it("calls on_progress as it goes, up to done == total", function()
      local seen = {}
      local summary = assert(client:sync_logistics { shop_no = "s1", page_size = 5,
        handler = function() return true end,
        on_progress = function(p) seen[#seen + 1] = { read = p.read, total = p.total, failed = p.failed } end })
      assert.truthy(#seen >= 2)
      for i = 2, #seen do assert.truthy(seen[i].read >= seen[i - 1].read) end
      assert.equal(50, seen[#seen].read)
      assert.equal(50, seen[#seen].total)
      assert.equal(summary.read, seen[#seen].read)
    end)

    it("raises on bad arguments, naming them", function()
      local function msg(opts)
        local ok, e = pcall(client.sync_logistics, client, opts)
        assert.is_false(ok)
        return e
      end
      assert.matches("'handler'", msg { shop_no = "s1" })
      assert.matches("'shop_no'", msg { handler = print })
      assert.matches("'batch'", msg { shop_no = "s1", handler = print, batch = 0 })
      assert.matches("'batch'", msg { shop_no = "s1", handler = print, batch = 1.5 })
      assert.matches("'page_size'", msg { shop_no = "s1", handler = print, page_size = 1001 })
      assert.matches("'page_size'", msg { shop_no = "s1", handler = print, page_size = "10" })
      assert.matches("'colour'", msg { shop_no = "s1", handler = print, colour = 1 })
      assert.matches("'options' to 'sync_logistics'", msg(nil))
      assert.equal(0, calls("sales.LogisticsSync.getSyncListExt"))
    end)
  end)

  describe("sync_stock", function()
    it("computes, hands over and reports every waiting good", function()
      local seen = {}
      local summary = assert(client:sync_stock { count = 10, handler = function(item)
        assert.is_nil(seen[item.api_goods_id])
        seen[item.api_goods_id] = true
        assert.is_number(item.syn_stock)
        assert.is_number(item.stock_change_count)
        return true
      end })
      assert.equal(30, #keys(seen))
      assert.equal(30, summary.read)
      assert.equal(30, summary.synced)
      local st = sstate()
      assert.equal(30, st.synced)
      assert.equal(0, st.size)
      assert.equal(0, st.short_info)   -- every report held all 16 fields of the page's table
      assert.equal(3, calls("sales.StockSync.batchCalcStock"))    -- a call per page of 10
      assert.equal(0, calls("sales.StockSync.calcStock"))
      assert.equal(30, calls("sales.StockSync.syncSuccess"))
    end)

    it("maps true / false / nil / raise to syncSuccess / syncFail / left waiting / not reported", function()
      local kind, n = {}, 0
      local summary = assert(client:sync_stock { count = 10, force_sync = true, handler = function(item)
        n = n + 1
        local k = n % 4
        kind[item.api_goods_id] = k
        if k == 0 then return true end
        if k == 1 then return false, "not listed" end
        if k == 2 then return nil, "platform busy" end
        error("crash")
      end })
      local want = { [0] = 0, 0, 0, 0 }
      for _, k in pairs(kind) do want[k] = want[k] + 1 end
      assert.equal(want[0], summary.synced)
      assert.equal(want[1], summary.failed)
      assert.equal(want[2], summary.deferred)
      assert.equal(want[3], summary.handler_errors)
      assert.equal(30 - want[3], summary.reported)
      for _, u in ipairs(summary.unreported) do
        assert.same({ "handler", 3 }, { u.kind, kind[u.api_goods_id] })
        assert.matches("crash$", u.message)
      end
      local st = sstate()
      assert.equal(summary.synced, st.synced)
      assert.equal(summary.failed, st.failed)
      local waiting = {}
      for id, k in pairs(kind) do if k >= 2 then waiting[#waiting + 1] = id end end
      assert.same(sorted(waiting), sorted(st.pending))
      -- the next run is offered the deferred and the unreported goods again
      local again = assert(client:sync_stock { handler = function() return true end })
      assert.equal(#waiting, again.synced)
      assert.equal(0, sstate().size)
    end)

    it("takes in goods that start waiting while it runs", function()
      local n = 0
      local summary = assert(client:sync_stock { count = 10, handler = function()
        n = n + 1
        if n == 5 or n == 35 then emu:enqueue { sid = SID, stock = 12 } end
        return true
      end })
      assert.equal(54, summary.read)
      assert.equal(54, summary.synced)
      assert.equal(0, sstate().size)
    end)

    it("lists goods the ERP refuses and goes on", function()
      -- a good listed as waiting but taken out of sync before calcStock (an emulator "ghost")
      local ghost = compat.tointeger(emu:enqueue { stock_ghost = 1 }.stock_ghost[1])
      local summary = assert(client:sync_stock { count = 50, handler = function() return true end })
      assert.equal(31, summary.read)
      assert.equal(31, summary.reported)
      assert.equal(30, summary.synced)
      assert.equal(1, summary.refused)
      assert.equal(ghost, summary.refused_items[1].api_goods_id)
      assert.equal("sales.StockSync.batchCalcStock", summary.refused_items[1].stage)
      assert.truthy(summary.refused_items[1].message:find(("%d"):format(ghost), 1, true))
      assert.equal(0, sstate().size)
    end)

    it("lists the goods whose stock it could not compute when that stops the loop", function()
      local BATCH = "sales.StockSync.batchCalcStock"
      -- the first page goes through, the computing of the second fails 3 times
      emu:faults { { mode = "delay", delay_ms = 0, method = BATCH }, { mode = "http_500", count = 3, method = BATCH } }
      local summary, err = client:sync_stock { count = 10, handler = function() return true end }
      assert.is_nil(summary)
      assert.equal("http", err.kind)
      assert.equal(BATCH, err.method)
      assert.matches("10 item%(s%) left unreported", tostring(err))
      local s = err.summary
      assert.equal(20, s.read)
      assert.equal(10, s.reported)
      assert.equal(10, #s.unreported)
      assert.equal(s.read, s.reported + #s.unreported + #s.invalid)
      local pending = {}
      for _, id in ipairs(sstate().pending) do pending[id] = true end
      assert.is_true(pending[s.unreported[1].api_goods_id])
    end)

    it("lists the goods a batchCalcStock answer without data leaves out as invalid, and goes on", function()
      local BATCH = "sales.StockSync.batchCalcStock"
      emu:faults { { mode = "delay", delay_ms = 0, method = BATCH }, { mode = "no_data", method = BATCH } }
      local summary = assert(client:sync_stock { count = 10, handler = function() return true end })
      assert.equal(30, summary.read)
      assert.equal(20, summary.reported)
      assert.equal(20, summary.synced)
      assert.equal(10, #summary.invalid)
      assert.equal(summary.read, summary.reported + #summary.unreported + #summary.invalid)
      local left = {}
      for i, bad in ipairs(summary.invalid) do left[i] = bad.api_goods_id end
      assert.same(sorted(left), sorted(sstate().pending))
    end)

    it("a calcStock answer without syn_stock or stock_change_count: invalid (decode), nothing sent", function()
      local CALC = "sales.StockSync.calcStock"
      emu:faults {
        -- an ERP without batchCalcStock (an API error about the call): calcStock a good a call
        { mode = "echo", method = "sales.StockSync.batchCalcStock" },
        { mode = "data", method = CALC, data = {} },
        { mode = "data", method = CALC, data = { syn_stock = 5 } },
        { mode = "data", method = CALC, data = { syn_stock = "5", stock_change_count = 2 } },
      }
      local handed = {}
      local summary = assert(client:sync_stock { count = 10, concurrency = 1, handler = function(item)
        handed[item.api_goods_id] = true
        assert.is_number(item.syn_stock)
        return true
      end })
      assert.equal(30, summary.read)
      assert.same({ 27, 27, 3 }, { summary.reported, summary.synced, #summary.invalid })
      assert.equal(summary.read, summary.reported + #summary.unreported + #summary.invalid)
      local left = {}
      for _, bad in ipairs(summary.invalid) do
        assert.equal("decode", bad.kind)
        assert.is_nil(handed[bad.api_goods_id])
        left[#left + 1] = bad.api_goods_id
      end
      assert.matches("calcStock answered no syn_stock number %(got nil%)", summary.invalid[1].message)
      assert.matches("no integer stock_change_count %(got nil%)", summary.invalid[2].message)
      assert.matches("no syn_stock number %(got string%)", summary.invalid[3].message)
      assert.equal(27, calls("sales.StockSync.syncSuccess"))
      local st = sstate()
      assert.same({ 27, 0 }, { st.synced, st.stale })
      table.sort(left)
      local pending = st.pending
      table.sort(pending)
      assert.same(left, pending)                          -- still waiting in the ERP
    end)

    it("lists the good it could not report after retries and returns an error", function()
      -- the reports of the first page (10 goods, 3 tries each) all fail; nothing more is read
      emu:faults { mode = "http_500", count = 30, method = "sales.StockSync.syncSuccess" }
      local summary, err = client:sync_stock { count = 10, handler = function() return true end }
      assert.is_nil(summary)
      assert.equal("http", err.kind)
      assert.equal("sales.StockSync.syncSuccess", err.method)
      local s = err.summary
      assert.same({ 10, 0, 10 }, { s.read, s.synced, #s.unreported })
      assert.equal(30, sstate().size)
      local pending = {}
      for _, id in ipairs(sstate().pending) do pending[id] = true end
      assert.is_true(pending[s.unreported[1].api_goods_id])
    end)

    it("dry_run counts the waiting goods and changes nothing", function()
      local summary = assert(client:sync_stock { count = 10, dry_run = true })
      assert.equal(30, summary.read)
      assert.equal(0, summary.reported)
      assert.equal(0, calls("sales.StockSync.calcStock"))
      assert.equal(30, sstate().size)
    end)

    it("raises on bad arguments, naming them", function()
      local ok, e = pcall(client.sync_stock, client, { handler = print, count = 5 })
      assert.is_false(ok)
      assert.matches("'count'", e)
      ok, e = pcall(client.sync_stock, client, { handler = print, force_sync = 1 })
      assert.is_false(ok)
      assert.matches("'force_sync'", e)
      ok, e = pcall(client.sync_stock, client, {})
      assert.is_false(ok)
      assert.matches("'handler'", e)
    end)
  end)
end)
