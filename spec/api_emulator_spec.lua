-- The emulator answers every method of the catalogue: each page's example request, sent
-- through client:call (checked by the catalogue first), gets status 0 and an answer in the
-- shape the page documents; a request the page forbids gets the page's refusal.
local api = require "wdt.api"
local wdt = require "wdt"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"

local floor = math.floor

local function json_kind(v)
  if v == wdt.null then return "null" end
  local t = type(v)
  if t == "number" then return v == floor(v) and "int" or "decimal" end
  if t == "boolean" then return "bool" end
  if t == "table" then
    if getmetatable(v) ~= nil or v[1] ~= nil then return "list" end
    return next(v) == nil and "empty" or "object"
  end
  return t
end

local FITS = { string = { string = true }, int = { int = true }, decimal = { int = true, decimal = true },
               bool = { bool = true }, object = { object = true, empty = true },
               list = { list = true, empty = true } }

-- Every required field of the tree present, every value of its type: a list of problems.
local function shape_problems(nodes, value, path, out)
  for _, n in ipairs(nodes) do
    local v = value[n.name]
    local p = path .. n.name
    if v == nil then
      if n.required and n.name ~= "message" then out[#out + 1] = p .. " missing" end
    else
      local k = json_kind(v)
      local ok = k == "null" or not FITS[n.type] or FITS[n.type][k]
      for _, a in ipairs(n.also or {}) do if a == k then ok = true end end
      if not ok then out[#out + 1] = ("%s: %s expected, got %s"):format(p, n.type, k) end
      if ok and n.children and k == "object" then shape_problems(n.children, v, p .. ".", out) end
      if ok and n.children and k == "list" then
        for i, item in ipairs(v) do
          if type(item) == "table" then shape_problems(n.children, item, ("%s[%d]."):format(p, i), out) end
        end
      end
    end
  end
  return out
end

local function example_args(e)
  local v = wdt.json.decode(e.examples.request_in_window or e.examples.request)
  local n = 0
  for k in pairs(v) do if type(k) == "number" and k > n then n = k end end
  v.n = n
  return v
end

local unpack = table.unpack or unpack   -- luacheck: ignore

-- Sent page by page when the page documents a list of rows in data: calcStock's page lists
-- page_size among its parameters, but answers one good.
local function documents_rows(e)
  for _, r in ipairs(e.response) do
    if r.name == "data" then
      if r.type == "list" then return true end
      for _, c in ipairs(r.children or {}) do if c.type == "list" then return true end end
    end
  end
  return false
end

-- The goods the stock sync pages' examples name (calcStock, syncSuccess, syncFail: 2447;
-- batchCalcStock: 2447 and 2448; cancelSync: 178238), waiting for a sync as in an ERP that
-- has them.
local EXAMPLE_GOODS = { 2447, 2448, 178238 }

describe("the emulator and the catalogue", function()
  local emu, client
  setup(function()
    -- the shops the pages' examples push to
    emu = emulator.start { config = {
      tenants = { { sid = fixtures.SID, key = fixtures.KEY, secret = fixtures.APPSECRET } },
      shops = { [fixtures.SID] = { { shop_no = "test" }, { shop_no = "LCJ" }, { shop_no = "wdtapi3-test" } } },
      stock = { [fixtures.SID] = { pending = 0, ids = EXAMPLE_GOODS } },
    } }
  end)
  teardown(function() if emu then emu:stop() end end)
  before_each(function() emu:reset() client = fixtures.client(emu, { retries = 0 }) end)
  after_each(function() client:close() end)

  it("answers every page's example request with status 0, in the documented shape", function()
    local failures, sent = {}, 0
    for _, name in ipairs(api.names()) do
      local e = api.get(name)
      if e.examples.request then
        local args = example_args(e)
        local resp, err
        if e.paging and documents_rows(e) then
          local page
          page, err = client:page_call(name, { page_size = 2, page_no = 0, calc_total = true }, unpack(args, 1, args.n))
          resp = page and page.response
        else
          local data, second = client:call(name, unpack(args, 1, args.n))
          if data == nil then err = second else resp = second end
        end
        sent = sent + 1
        if not resp then
          failures[#failures + 1] = name .. ": " .. tostring(err)
        else
          for _, p in ipairs(shape_problems(e.response, resp, "", {})) do
            failures[#failures + 1] = name .. ": " .. p
          end
        end
      end
    end
    assert.is_true(sent >= 175)
    assert.are.same({}, failures)
    -- the reports reached the goods (names in order: calcStock, cancelSync, syncFail,
    -- syncSuccess): 2447 failed, then was no longer waiting; cancelSync's count (-1) is
    -- not the current one, so 178238 waits on, as does 2448 (only calculated)
    local stock = emu:state().tenants[fixtures.SID].stock
    assert.are.same({ { 2448, 178238 }, 1, 0, 1 },
                    { stock.pending, stock.failed, stock.synced, stock.stale })
  end)

  it("pages a generated query consistently: total_count, rows per page, the last page short", function()
    local m = "purchase.PurchaseOrder.queryWithDetail"
    local filter = { start_time = "2026-01-01 00:00:00", end_time = "2026-01-02 00:00:00" }
    local seen = 0
    for page, err in client:pages(m, { page_size = 2, calc_total = true }, filter) do
      assert.is_truthy(page, tostring(err))
      assert.are.equal(3, page.response.data.total_count)
      seen = seen + #page.rows
    end
    assert.are.equal(3, seen)
  end)

  it("refuses what the page forbids, with the page's status and words, when the client does not check", function()
    local raw = client:with { check = false }
    local cases = {
      { "purchase.PurchaseOrder.queryWithDetail",
        { start_time = "2026-01-01 00:00:00", end_time = "2026-03-01 00:00:00" },
        100, "您的查询时间过宽,查询时间不能大于30天" },
      { "setting.Warehouse.queryWarehouse", { warehouse_no = ("w"):rep(41) },
        100, "Data truncation: Data too long for column 'warehouse_no'" },
      { "setting.Warehouse.queryWarehouse", { type = "1" }, 1, "argument type mismatch" },
      { "setting.Warehouse.queryWarehouse", { type = 5 }, 100, "type的值5不在允许的范围内" },
      { "wms.stockin.Other.queryWithDetail", { warehouse_no = "W1" }, 100, "start_time不能为空" },
      -- the stateful queries too: lengths and values of their filters
      { "sales.TradeQuery.querySelfOrderWithDetail",
        { start_time = "2026-01-01 00:00:00", end_time = "2026-01-01 00:30:00", shop_no = ("s"):rep(21) },
        100, "Data truncation: Data too long for column 'shop_no'" },
      { "aftersales.refund.Refund.search",
        { modified_from = "2026-01-01 00:00:00", modified_to = "2026-01-02 00:00:00", status = 77 },
        100, "status的值77不在允许的范围内" },
    }
    for _, c in ipairs(cases) do
      local page, err = raw:page_call(c[1], { page_size = 10 }, c[2])
      assert.is_nil(page)
      assert.are.same({ c[3], c[4] }, { err.status, err.message })
    end
    -- times the page asks for only without an order number
    local by_no, nerr = raw:page_call("wms.stockin.Other.queryWithDetail", { page_size = 10 }, { stockin_no = "RK1" })
    assert.is_truthy(by_no, tostring(nerr))
    -- a page that allows 2000 rows: 1500 answered, 2001 refused with the page's limit
    local outer, window = "wms.outer.OuterIn.queryWithDetail",
      { start_time = "2026-01-01 00:00:00", end_time = "2026-01-02 00:00:00" }
    local big, berr = client:page_call(outer, { page_size = 1500, calc_total = true }, window)
    assert.is_truthy(big, tostring(berr))
    assert.are.equal(3, #big.rows)
    big, berr = raw:page_call(outer, { page_size = 2001 }, window)
    assert.is_nil(big)
    assert.are.same({ 2, "page_size必须是1到2000之间的整数" }, { berr.status, berr.message })
    local args = example_args(api.get("wms.stockout.Other.createOther"))
    args[1].goods_list[1].spec_no = nil
    local data, err = raw:call("wms.stockout.Other.createOther", unpack(args, 1, args.n))
    assert.is_nil(data)
    assert.are.same({ 100, "spec_no不能为空" }, { err.status, err.message })
  end)

  it("a violation the client catches sends nothing", function()
    local before = emu:state().requests
    local page, err = client:page_call("purchase.PurchaseOrder.queryWithDetail", { page_size = 10 },
      { start_time = "2026-01-01 00:00:00", end_time = "2026-03-01 00:00:00" })
    assert.is_nil(page)
    assert.are.equal("invalid", err.kind)
    assert.are.equal("params.end_time", err.field)
    local args = example_args(api.get("wms.stockout.Other.createOther"))
    args[1].goods_list[1].spec_no = nil
    local _, werr = client:call("wms.stockout.Other.createOther", unpack(args, 1, args.n))
    assert.are.equal("stockout_order.goods_list[1].spec_no", werr.field)
    assert.are.equal(before, emu:state().requests)
  end)

  it("client:scan and wdt scan read a query method of the catalogue by name alone", function()
    local m = "purchase.PurchaseOrder.queryWithDetail"
    assert.is_nil(rawget(require("wdt.scan").methods, m))     -- not among the seven
    local from, to = "2026-01-01 00:00:00", "2026-02-15 00:00:00"   -- two windows of 30 days at most
    local rows, keys = 0, {}   -- each row once, by the key the catalogue names (purchase_id)
    local it, s = client:scan { method = m, from = from, to = to }
    for row, err in it do
      assert.is_truthy(row, tostring(err))
      rows = rows + 1
      keys[row.purchase_id] = true
    end
    assert.is_true(rows >= 3)
    local distinct = 0
    for _ in pairs(keys) do distinct = distinct + 1 end
    assert.are.equal(rows, distinct)
    assert.is_true(s.stats.windows >= 2)
    local out, err = {}, {}
    local function sink(buf)
      return { write = function(self, ...) for _, x in ipairs({ ... }) do buf[#buf + 1] = x end return self end }
    end
    local code = require("wdt.cli").main({ "scan", m, "--from", from, "--to", to },
      { WDT_URL = emu.url, WDT_SID = fixtures.SID, WDT_KEY = fixtures.KEY, WDT_SECRET = fixtures.APPSECRET },
      { stdout = sink(out), stderr = sink(err), stderr_tty = false })
    assert.are.equal(0, code, table.concat(err))
    local lines = select(2, table.concat(out):gsub("\n", ""))
    assert.are.equal(rows, lines)
    -- rows without an id (the stock's change log): known by all their fields, `created` the time
    local log = "wms.StockSpec.queryChangeHistory"
    local seen, n = {}, 0
    for row, serr in client:scan { method = log, from = "2026-01-01 00:00:00", to = "2026-01-01 02:00:00" } do
      assert.is_truthy(row, tostring(serr))
      n = n + 1
      seen[row.stockio_no .. "@" .. row.created] = true
    end
    distinct = 0
    for _ in pairs(seen) do distinct = distinct + 1 end
    assert.are.same({ 6, 6 }, { n, distinct })   -- two windows of 60 min, three rows each
    out, err = {}, {}
    code = require("wdt.cli").main({ "scan", log, "--from", "2026-01-01 00:00:00", "--to", "2026-01-01 02:00:00",
                                     "--count" },
      { WDT_URL = emu.url, WDT_SID = fixtures.SID, WDT_KEY = fixtures.KEY, WDT_SECRET = fixtures.APPSECRET },
      { stdout = sink(out), stderr = sink(err), stderr_tty = false })
    assert.are.equal(0, code, table.concat(err))
    assert.are.equal("6\n", table.concat(out))
    -- windows on the time the page names, not a modified field
    for _, named in ipairs({ "wms.GoodsSN.queryWithDetail", "finance.settle.Transfer.search",
                             "wms.stockout.Transfer.queryWithDetail" }) do
      local got = 0
      for row, serr in client:scan { method = named, from = "2026-01-01 00:00:00", to = "2026-01-01 00:30:00" } do
        assert.is_truthy(row, named .. ": " .. tostring(serr))
        got = got + 1
      end
      assert.are.equal(3, got, named)
    end
    -- the catalogue's kind decides retries: a query is safe to repeat, a write is not
    local policy = require "wdt.policy"
    assert.is_true(policy.is_idempotent("wms.StockSpec.stockDetailSearch"))
    assert.is_false(policy.is_idempotent("purchase.PurchaseOrder.createOrder"))
  end)
end)
