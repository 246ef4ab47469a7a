-- The push's checks and record writing in C (core.push_checker, src/core/wdt_core_push.c)
-- against the Lua checks they stand in for (wdt.push.validate), without the network: the
-- C pass never accepts a value the Lua check refuses, a record it writes is the JSON of
-- the record the Lua side would send, and the reasons of invalid orders stay the Lua ones.
local core = require "wdt.core"
local fields = require "wdt.push.fields"
local validate = require "wdt.push.validate"
local sh = require "spec.support.sh"

local platform = dofile(sh.repo_root() .. "/examples/sample_platform.lua")
local null = core.null

-- the JSON a raw record stands for, decoded (raw JSON is written as it is inside a list)
local function json_of(raw) return core.decode(core.encode({ raw })) [1] end

local function copy(t, omit)
  local c = {}
  for k, v in pairs(t) do if k ~= omit then c[k] = v end end
  return c
end

local CN40 = ("收"):rep(40)                 -- 40 characters, 120 bytes
local VALUES = { 0, 1, 2, 10, 30, 99, 128, -1, 2.0, 2.5, 1e300, -0.0, math.huge, -math.huge, 0 / 0,
  math.maxinteger, "", "1", "12", "-3", "1.5", ".5", "abc", "2024-01-02 03:04:05",
  "2024-01-02 03:04:5", "2024-01-02T03:04:05", "２024-01-02 03:04:05", CN40, CN40 .. "收",
  ("x"):rep(40), ("x"):rep(41), true, false, null, {}, print }

describe("core.push_checker", function()
  it("never accepts a value the Lua check refuses, and decides the plain ones itself", function()
    local n = 0
    for _, list_name in ipairs({ "trade", "line", "refund", "goods" }) do
      local list = fields[list_name]
      local check, encode = core.push_checker(list)
      for _, spec in ipairs(list) do
        local one_check, one_encode = core.push_checker({ spec })
        for _, v in ipairs(VALUES) do
          local lua_ok                    -- null is absent unless the field takes null
          if v == null then lua_ok = spec.null_ok or not spec.req
          else lua_ok = validate.check_value(spec, v) == nil end
          local i = one_check({ [spec[1]] = v })
          local raw = one_encode({ [spec[1]] = v }, false)
          if not lua_ok then
            assert.equal(1, i, list_name .. "." .. spec[1] .. " = " .. tostring(v))
            assert.is_nil(raw, list_name .. "." .. spec[1] .. " = " .. tostring(v))
          end
          if type(v) == "number" and v == v and v - v == 0 and lua_ok then
            assert.is_nil(i, list_name .. "." .. spec[1] .. " = " .. tostring(v))
          end
          n = n + 1
        end
      end
      assert.is_function(check)
      assert.is_function(encode)
    end
    assert.is_true(n > 100 * #VALUES / 10)
  end)

  it("counts characters as the Lua side does: 40 Chinese characters fit 40, 41 do not", function()
    local _, encode = core.push_checker({ { "s", "string", max = 40 } })
    assert.is_table(encode({ s = CN40 }, false))
    assert.is_nil(encode({ s = CN40 .. "收" }, false))
  end)

  it("check: the first failing field from `start` on, whether it is absent, and its value", function()
    local check = core.push_checker({ { "a", "int", req = true }, { "b", "time" }, { "c", "string", req = true } })
    assert.same({ 1, true, nil }, { check({}, 1) })
    assert.same({ 2, false, "soon" }, { check({ a = 1, b = "soon" }, 1) })
    assert.same({ 3, true, nil }, { check({ a = 1, b = "soon" }, 3) })
    assert.same({ 3, true, null }, { check({ a = 1, c = null }, 1) })
    assert.same({}, { check({ a = 1, c = "" }, 1) })
  end)

  it("writes the record without `omit`, with the pairs for the keys it lacks, as the codec would", function()
    local _, encode = core.push_checker(fields.trade)
    local item = platform.order(7)
    item.extra = { nested = true }               -- not a scalar: left to the Lua side
    assert.is_nil(encode(item, "orders"))
    item.extra = nil
    local exact64 = math.type ~= nil             -- an integer subtype: Lua 5.3+ (make matrix)
    if exact64 then item.big = 9007199254740993 end  -- a 64-bit integer, exact
    item.note = "tab\tquote\" 收"
    local before = copy(item)
    local raw = assert(encode(item, "orders", false, "left out", "warehouse_no", "", "end_time", null,
                              "order_count", 3, "goods_count", 4, "tid", "not used: the item has one"))
    assert.same(before, copy(item), "the caller's table is left alone")
    local want = copy(item, "orders")
    want.warehouse_no, want.end_time, want.order_count, want.goods_count = "", null, 3, 4
    assert.same(core.decode(core.encode(want)), json_of(raw))
    local text = core.encode({ raw })
    if exact64 then assert.truthy(text:find('"big":9007199254740993', 1, true)) end
    assert.truthy(text:find('"note":"tab\\tquote\\" 收"', 1, true))
    assert.falsy(text:find('"orders"', 1, true))
    item.tid = "changed"                          -- the text is a snapshot
    assert.same(want.tid, json_of(raw).tid)
  end)

  it("leaves to the Lua side what it does not write: invalid UTF-8, NaN, numeric strings", function()
    local _, encode = core.push_checker(fields.line)
    local line = platform.order(1).orders[1]
    line.tid = "T"
    assert.is_table(encode(line, false))
    for k, v in pairs({ remark = "bad \255 byte", other = 0 / 0, num = "1", price = "12.50" }) do
      local l = copy(line)
      l[k] = v
      assert.is_nil(encode(l, false), k)
    end
  end)

  it("leaves a record with a key that is no string to the Lua side (it is no field)", function()
    local _, encode = core.push_checker(fields.goods)
    for _, k in ipairs({ 1, true, null, 2.5 }) do
      assert.is_nil(encode({ goods_id = "G1", spec_id = "S1", [k] = "EVIL" }, false), tostring(k))
    end
    assert.is_table(encode({ goods_id = "G1", spec_id = "S1" }, false))
  end)

  it("keeps its field names alive with the encoder alone (a key is found by the name's address)", function()
    local function n(a, b) return a .. b end       -- made at run time: no constant holds them
    local encode = select(2, core.push_checker({ { n("count_of", "_things"), "int" } }))
    collectgarbage()
    collectgarbage()
    assert.is_nil(encode({ [n("count_of", "_things")] = "not an int" }, false))
    assert.is_table(encode({ [n("count_of", "_things")] = 3 }, false))
  end)

  it("refuses lists it cannot hold", function()
    local long = {}
    for i = 1, 65 do long[i] = { "f" .. i, "int" } end
    assert.has_error(function() core.push_checker(long) end)
    assert.has_error(function() core.push_checker({ { "v", "int", values = { [200] = true } } }) end)
    assert.has_error(function() core.push_checker({ { ("n"):rep(41), "int" } }) end)
  end)
end)

describe("validate.prepare, checked in C", function()
  local function reason(item)
    local p, field, why = validate.prepare("orders", item)
    if p then return "ok" end
    return field .. ": " .. why
  end

  it("gives the Lua reasons for invalid orders", function()
    local cases = {
      { function(o) o.pay_method = 99 end, "pay_method: value 99 is not one the vendor lists" },
      { function(o) o.trade_time = "2024-01-02" end,
        "trade_time: time 'YYYY-MM-DD HH:MM:SS' expected, got '2024-01-02'" },
      { function(o) o.receiver_name = ("收"):rep(101) end, "receiver_name: longer than 100 characters (101)" },
      { function(o) o.receiver_name = ("收"):rep(100) end, "ok" },
      { function(o) o.buyer_nick = null end, "buyer_nick: required" },
      { function(o) o.end_time = null end, "ok" },
      { function(o) o.is_auto_wms = "no" end, "is_auto_wms: boolean expected, got string" },
      { function(o) o.process_status = 10.5 end, "process_status: integer expected, got 10.5" },
      { function(o) o.orders[1].num = "three" end, "orders[1].num: number expected, got 'three'" },
      { function(o) o.orders[1].tid = "other" end, "orders[1].tid: is not the order's tid 'P00000007'" },
      { function(o) o.orders[1].oid = o.orders[2].oid end, "orders[2].oid: repeats oid '" },
      { function(o) o.order_count = 9 end, "order_count: is 9 but the order has 3 line(s)" },
      -- the vendor's own examples send numbers as strings: accepted, through the Lua checks
      { function(o) o.post_amount, o.orders[1].price, o.process_status = "0.00", "19.00", "10" end, "ok" },
      -- the area ids instead of receiver_area
      { function(o)
          o.receiver_area = nil
          o.receiver_province_no, o.receiver_city_no, o.receiver_district_no = 110000, 110100, 110105
        end, "ok" },
    }
    for _, c in ipairs(cases) do
      local o = platform.order(7)
      c[1](o)
      local got = reason(o)
      assert.equal(c[2], got:sub(1, #c[2]))
    end
  end)

  it("sends what the Lua side sent: the trade without its lines, derived counts, lines with the tid", function()
    for _, fast in ipairs({ true, false }) do
      local o = platform.order(7)
      o.is_auto_wms = false
      if not fast then o.post_amount = "0.00" end   -- a numeric string: the copy and Lua checks
      local p = assert(validate.prepare("orders", o))
      local trade = json_of(p.trade)
      assert.is_nil(trade.orders)
      local goods = 0
      for _, l in ipairs(o.orders) do goods = goods + l.num end
      assert.same({ 3, goods, null, "" }, { trade.order_count, trade.goods_count, trade.end_time, trade.warehouse_no })
      for i, l in ipairs(p.lines) do
        local line = json_of(l)
        assert.equal(o.tid, line.tid)
        assert.equal(o.orders[i].oid, line.oid)
        assert.is_nil(o.orders[i].tid, "the caller's line is left alone")
      end
      assert.is_nil(o.order_count, "the caller's order is left alone")
    end
  end)

  it("an invalid UTF-8 string still fails at encoding, naming the place", function()
    local o = platform.order(7)
    o.buyer_message = "bad \255"
    local p = assert(validate.prepare("orders", o))
    local ok, err = pcall(core.encode, { "s1", { p.trade } })
    assert.is_false(ok)
    assert.matches("value%[2%]%[1%]%.buyer_message: invalid UTF%-8", err)
  end)
end)
