-- The lists of a push call written in C as the items come (core.push_batch,
-- src/core/wdt_core_push_batch.c; wdt.push.validate's `batch`), against the Lua checks and
-- records they stand in for (validate.prepare), without the network: an order the C pass
-- takes is one the Lua side takes, written as the Lua side would write it; what it does not
-- take it leaves unwritten, for the Lua side to decide.
local core = require "wdt.core"
local validate = require "wdt.push.validate"
local sh = require "spec.support.sh"

local platform = dofile(sh.repo_root() .. "/examples/sample_platform.lua")
local null = core.null

-- the two lists of a take, decoded (raw JSON values are written as they are in a list)
local function decoded(l1, l2)
  local both = core.decode(core.encode({ l1, l2 }))
  return both[1], both[2]
end

-- what validate.prepare makes of an item, as the lists would hold it (nil when the Lua side
-- refuses it, or the codec cannot write what it made: the push lists it as invalid)
local function prepared(flow, item)
  local p = validate.prepare(flow, item)
  if not p then return nil end
  local lines = {}
  for i, l in ipairs(p.lines or {}) do lines[i] = l end
  local ok, text = pcall(core.encode, { p.trade or p.record, setmetatable(lines, core.array_mt) })
  if not ok then return nil end
  local rec = core.decode(text)
  return p.key, rec[1], rec[2]
end

-- Changes to an order, each on its own: valid ones the C pass takes or leaves, invalid ones
-- it must leave.
local CN = ("收"):rep(40)
local CHANGES = {
  function(o) o.pay_method = 99 end,
  function(o) o.trade_time = "2024-01-02" end,
  function(o) o.receiver_name = CN:rep(3) end,
  function(o) o.receiver_name = CN end,
  function(o) o.buyer_nick = null end,
  function(o) o.end_time = null end,
  function(o) o.end_time = "2024-01-02 03:04:05" end,
  function(o) o.is_auto_wms = "no" end,
  function(o) o.is_auto_wms = true end,
  function(o) o.is_auto_wms, o.warehouse_no = true, "W1" end,
  function(o) o.process_status = 10.5 end,
  function(o) o.process_status = 10.0 end,
  function(o) o.orders[1].num = "three" end,
  function(o) o.orders[1].num = 2.5 end,
  function(o) o.orders[1].num = 0 / 0 end,
  function(o) o.orders[1].tid = "other" end,
  function(o) o.orders[1].tid = o.tid end,
  function(o) o.orders[1].tid = null end,
  function(o) o.orders[#o.orders].oid = o.orders[1].oid end,
  function(o) o.order_count = #o.orders end,
  function(o) o.order_count = #o.orders + 1 end,
  function(o) o.order_count = tostring(#o.orders) end,
  function(o) local g = 0 for _, l in ipairs(o.orders) do g = g + l.num end o.goods_count = g end,
  function(o) o.goods_count = 1e6 end,
  function(o) o.goods_count = "x" end,
  function(o) o.post_amount, o.orders[1].price = "0.00", "19.00" end,
  function(o)
    o.receiver_area = nil
    o.receiver_province_no, o.receiver_city_no, o.receiver_district_no = 110000, 110100, 110105
  end,
  function(o) o.receiver_area = nil end,
  function(o) o.tid = "" end,
  function(o) o.tid = 7 end,
  function(o) o.orders = {} end,
  function(o) o.orders = { "not a line" } end,
  function(o) o.orders[1] = setmetatable({}, { __index = o.orders[1] }) end,
  function(o) setmetatable(o, {}) end,
  function(o) o.extra = { nested = true } end,
  function(o) o.extra, o.note = 12, "tab\tquote\" 收" end,
  function(o) o[1] = "a list item" end,
  function(o) o[1] = "P-EVIL" end,                  -- a number key is no field (not tid)
  function(o) o[true] = 1 end,
  function(o) o[null] = 1 end,
  function(o) o.orders[1][1] = "x" end,
  function(o) o.buyer_message = "bad \255 byte" end,
  function(o) o.orders[1].remark = "\0nul" end,
  function(o) o.orders[1].extra = false end,
  function(o) o.discounts = { { oid = o.orders[1].oid, amount = 1 } } end,   -- the Lua way, always
  function(o) o.discounts = "none" end,
  function(o) o.discounts = {} end,
}

describe("core.push_batch (orders)", function()
  it("takes every order of the sample platform, as the Lua side writes it", function()
    local add_fast, _, take = validate.batch("orders")
    local want1, want2 = {}, {}
    local in_batch = {}
    for i = 1, 300 do
      local o = platform.order(i)
      local key, trade, lines = prepared("orders", o)
      assert.equal(o.tid, add_fast(o, in_batch), "order " .. i)
      assert.equal(o.tid, key)
      in_batch[key] = true
      want1[#want1 + 1] = trade
      for _, l in ipairs(lines) do want2[#want2 + 1] = l end
    end
    local got1, got2 = decoded(take())
    assert.same(want1, got1)
    assert.same(want2, got2)
  end)

  it("never takes an order the Lua side refuses, and writes what it takes as the Lua side would", function()
    local taken, left = 0, 0
    for seed = 1, 3 do
      for c, change in ipairs(CHANGES) do
        local o = platform.order(seed * 100 + c)
        change(o)
        local add_fast, _, take = validate.batch("orders")
        local key = add_fast(o, {})
        local pkey, trade, lines = prepared("orders", o)
        local got1, got2 = decoded(take())
        if key then
          taken = taken + 1
          assert.is_not_nil(pkey, "change " .. c .. ": the Lua side refuses it")
          assert.equal(pkey, key)
          assert.equal(key, got1[1].tid, "change " .. c .. ": the trade sent is the order's")
          for _, l in ipairs(got2) do assert.equal(key, l.tid, "change " .. c) end
          assert.same({ trade }, got1, "change " .. c)
          assert.same(lines, got2, "change " .. c)
        else
          left = left + 1
          assert.is_nil(key, "change " .. c)
          assert.same({ {}, {} }, { got1, got2 }, "change " .. c .. ": nothing written")
        end
      end
    end
    assert.is_true(taken > 10 and left > 40, ("taken %d, left %d"):format(taken, left))
  end)

  it("leaves the caller's tables alone", function()
    local add_fast = validate.batch("orders")
    local o = platform.order(9)
    o.is_auto_wms = false
    local before = core.encode(o)
    assert.equal(o.tid, add_fast(o, {}))
    assert.equal(before, core.encode(o))
    assert.is_nil(o.orders[1].tid)
  end)

  it("answers false for a tid the batch has, and writes nothing for it", function()
    local add_fast, _, take = validate.batch("orders")
    local in_batch = {}
    local a, b = platform.order(1), platform.order(2)
    assert.equal(a.tid, add_fast(a, in_batch))
    in_batch[a.tid] = true
    assert.is_false(add_fast(platform.order(1), in_batch))
    local bad = platform.order(3)
    bad.pay_method = 99
    assert.is_nil(add_fast(bad, in_batch), "a refused order: nil, even before its tid is looked at")
    assert.equal(b.tid, add_fast(b, in_batch))
    local got1, got2 = decoded(take())
    assert.same({ a.tid, b.tid }, { got1[1].tid, got1[2].tid })
    assert.equal(#a.orders + #b.orders, #got2)
  end)

  it("writes what the Lua side prepared (add), and refuses what the codec cannot write", function()
    local _, add, take = validate.batch("orders")
    local o = platform.order(4)
    o.post_amount = "0.00"                             -- a numeric string: the Lua way
    local p = assert(validate.prepare("orders", o))
    assert.is_true(add(p.trade, p.lines))
    local bad = platform.order(5)
    bad.buyer_message = "bad \255 byte"
    local q = assert(validate.prepare("orders", bad))
    local ok, err = add(q.trade, q.lines)
    assert.is_nil(ok)
    assert.matches("buyer_message: invalid UTF%-8", err)
    local got1, got2 = decoded(take())
    assert.same({ o.tid }, { got1[1].tid, got1[2] and got1[2].tid })
    assert.equal(#o.orders, #got2)
  end)

  it("take: raw lists that go stale once anything is added again", function()
    local add_fast, _, take = validate.batch("orders")
    local o = platform.order(6)
    add_fast(o, {})
    local l1, l2 = take()
    assert.equal(1, #decoded(l1, l2))
    local e1, e2 = take()                              -- a second take: empty lists
    assert.same({ {}, {} }, { decoded(e1, e2) })
    assert.has_error(function() core.encode({ l1 }) end)   -- the first take is stale now
    add_fast(platform.order(7), {})
    local ok, err = pcall(core.encode, { e1 })
    assert.is_false(ok)
    assert.matches("text has changed", err)
  end)

  it("keeps its field names alive with the encoders alone, and refuses lists without the rules it needs", function()
    -- names made at run time: nothing but the checker holds them (a collection frees them
    -- when it does not; valgrind and the sanitizers run this spec)
    local function n(a, b) return a .. b end
    local function enc(list) return (select(2, core.push_checker(list))) end
    local trade = enc({ { n("t", "id"), "string", req = true }, { n("order", "_count"), "int", req = true },
      { n("goods", "_count"), "decimal", req = true }, { n("is_auto", "_wms"), "bool", req = true },
      { n("end", "_time"), "time", null_ok = true }, { n("ware", "house_no"), "string" } })
    local line = enc({ { n("t", "id"), "string", req = true }, { n("o", "id"), "string", req = true },
      { n("nu", "m"), "decimal", req = true } })
    collectgarbage()
    collectgarbage()
    local order, _, take = core.push_batch(trade, line)
    local o = { tid = "T", is_auto_wms = false, orders = { { oid = "a", num = 2 }, { oid = "b", num = 0.5 } } }
    assert.equal("T", order(o, {}))
    local got1, got2 = decoded(take())
    local t1 = got1[1]
    assert.same({ 2, 2.5, "", null }, { t1.order_count, t1.goods_count, t1.warehouse_no, t1.end_time })
    assert.same({ "T", "T" }, { got2[1].tid, got2[2].tid })
    assert.is_nil(order({ tid = "T", is_auto_wms = "no", orders = { { oid = "a", num = 2 } } }, {}))
    local loose = enc({ { "tid", "string", req = true }, { "oid", "other" }, { "num", "decimal", req = true } })
    assert.has_error(function() core.push_batch(trade, loose) end,
      "push_batch: the field 'oid' has not the rule the order's checks need")
  end)

  it("refuses what is not an encoder of core.push_checker", function()
    assert.has_error(function() core.push_batch(print, print) end)
    assert.has_error(function() core.push_batch(function() end, function() end) end)
    local _, _, take = core.push_batch()
    assert.same({ {}, {} }, { decoded(take()) })
  end)
end)

describe("validate.batch (refunds and goods)", function()
  it("takes valid records with their key, as the Lua side writes them", function()
    for _, flow in ipairs({ "refunds", "goods" }) do
      local add_fast, _, take = validate.batch(flow)
      local item = flow == "refunds" and platform.refund(platform.order(3), 1) or platform.goods(3)
      local key, rec = prepared(flow, item)
      assert.equal(key, add_fast(item, {}))
      assert.is_false(add_fast(item, { [key] = true }))
      local got1 = decoded(take())
      assert.same({ rec }, got1)
    end
  end)
end)
