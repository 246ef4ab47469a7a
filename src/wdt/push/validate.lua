-- Checks one input item against the vendor's field tables (wdt.push.fields) before it is
-- sent, and turns it into what the method takes. Never changes the caller's tables.
--
--   validate.prepare(flow, item) -> prepared | nil, field, reason
--     orders:  prepared = { key = tid, trade = {...}, lines = {...}, discounts = {...} | nil }
--     refunds: prepared = { key = refund_no, record = {...} }
--     goods:   prepared = { key = goods_id .. "\0" .. spec_id, record = {...} }
local core = require "wdt.core"
local list_length, is_integer = require("wdt.check").list_length, require("wdt.check").is_integer
local fields = require "wdt.push.fields"

local validate = {}

local null = core.null

-- characters of a UTF-8 string: its bytes but the continuation bytes
local function chars(s) return #(s:gsub("[\128-\191]", "")) end

-- A list entry that is no table, named: JSON's null is "null", not "userdata".
local function not_a_table(v)
  return "table expected, got " .. (v == null and "null" or type(v))
end

local function int_value(v)
  if type(v) == "number" then
    if is_integer(v) and v > -2 ^ 53 and v < 2 ^ 53 then return v end
    return nil
  end
  if type(v) == "string" and #v <= 16 and v:match("^%-?%d+$") then return tonumber(v) end
  return nil
end

local function decimal_value(v)
  if type(v) == "number" then
    if v == v and v ~= math.huge and v ~= -math.huge then return v end
    return nil
  end
  if type(v) == "string" then
    if v == "" then return 0 end
    if v:match("^%-?%d+%.?%d*$") or v:match("^%-?%.%d+$") then return tonumber(v) end
  end
  return nil
end

local TIME = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"

-- one value against one field spec -> nil | reason
-- A number is shown by its value: NaN and the infinities are numbers to type(), never
-- valid ones (spelt out: tostring(0/0) is "-nan" or "nan" by platform).
local function shown(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) ~= "number" then return type(v) end
  if v ~= v then return "nan" end
  if v == math.huge or v == -math.huge then return v > 0 and "inf" or "-inf" end
  return tostring(v)
end

local function check_value(spec, v)
  local kind = spec[2]
  if kind == "string" then
    if type(v) ~= "string" then return "string expected, got " .. type(v) end
    -- bytes first: a string no longer in bytes than the limit is within it in characters
    if spec.max and #v > spec.max and chars(v) > spec.max then
      return ("longer than %d characters (%d)"):format(spec.max, chars(v))
    end
  elseif kind == "int" then
    local n = int_value(v)
    if n == nil then return "integer expected, got " .. shown(v) end
    if spec.values and not spec.values[n] then return "value " .. tostring(v) .. " is not one the vendor lists" end
  elseif kind == "decimal" then
    if decimal_value(v) == nil then return "number expected, got " .. shown(v) end
  elseif kind == "bool" then
    if type(v) ~= "boolean" then return "boolean expected, got " .. type(v) end
  elseif kind == "time" then
    if type(v) ~= "string" or not v:match(TIME) then
      return "time 'YYYY-MM-DD HH:MM:SS' expected, got " .. shown(v)
    end
  end
  return nil
end
validate.check_value = check_value     -- for the specs: the C pass never accepts what it refuses

-- One checker per field list, in C (src/core/wdt_core_push.c): it finds the first field
-- that does not pass at once; check_value then decides and gives the reason, so both
-- agree by construction. `skip` names fields checked elsewhere.
local checkers, encoders = {}, {}
for _, name in ipairs({ "trade", "line", "discount", "refund", "goods" }) do
  checkers[name], encoders[name] = core.push_checker(fields[name])
end

-- a record against a field list -> nil | field, reason
local function check_record(list_name, rec, skip)
  local list, check = fields[list_name], checkers[list_name]
  local i, absent, v = check(rec, 1)
  while i do
    local spec = list[i]
    local name = spec[1]
    if not (skip and skip[name]) then
      if absent then return name, "required" end
      local r = check_value(spec, v)
      if r then return name, r end
    end
    i, absent, v = check(rec, i + 1)
  end
  return nil
end

-- A record to send: the caller's table without the key `omit` (or false), plus the pairs
-- given (key, value, ...) for the keys it lacks; a pair whose key is false is left out.
-- Checked and written as JSON text in one pass in C when it passes every check (the
-- common case): nothing is copied in Lua. Otherwise (a failing value, the vendor's
-- numeric strings, a skipped check) the record is copied and the Lua checks decide and
-- give the reason. Either way the caller's tables are never changed, and what is sent is
-- the item as it was when it was read.
local function record(list_name, t, skip, omit, ...)
  if not skip then
    local raw = encoders[list_name](t, omit or false, ...)
    if raw then return raw end
  end
  local rec, pairs_ = {}, { ... }
  for k, v in pairs(t) do
    if k ~= omit then rec[k] = v end
  end
  for j = 1, select("#", ...), 2 do
    local k = pairs_[j]
    if k and rec[k] == nil then rec[k] = pairs_[j + 1] end
  end
  local f, r = check_record(list_name, rec, skip)
  if f then return nil, f, r end
  return rec
end

local SKIP_AREA = { receiver_area = true }

local function has_area_ids(t)
  return t.receiver_province_no ~= nil and t.receiver_city_no ~= nil and t.receiver_district_no ~= nil
end

local encode_line = encoders.line

-- An order's discounts (discountList), each with the order's tid when absent and the oid
-- of one of its lines -> list | nil, field, reason
local function prepare_discounts(list, tid, lines_in, n)
  if type(list) ~= "table" then return nil, "discounts", "a list expected, got " .. type(list) end
  local count, hole = list_length(list)
  if not count then return nil, ("discounts[%d]"):format(hole), "table expected, got nil (a hole in the list)" end
  if count == 0 and next(list) ~= nil then return nil, "discounts", "a list expected, got a table with named keys" end
  local own = {}
  for i = 1, n do own[lines_in[i].oid] = true end
  local out = {}
  for i = 1, count do
    local d = list[i]
    local at = ("discounts[%d]"):format(i)
    if type(d) ~= "table" then return nil, at, not_a_table(d) end
    local rec, f, r = record("discount", d, nil, false, "tid", tid)
    if not rec then return nil, at .. "." .. f, r end
    if d.tid ~= nil and d.tid ~= tid then return nil, at .. ".tid", "is not the order's tid '" .. tid .. "'" end
    if not own[d.oid] then return nil, at .. ".oid", "'" .. d.oid .. "' is not the oid of one of the order's lines" end
    out[i] = rec
  end
  return out
end

local TRADE_TID = fields.trade[1]      -- { "tid", "string", req = true, max = 40 }

local function prepare_order(item)
  local tid = item.tid
  if type(tid) ~= "string" or tid == "" then return nil, "tid", "required (a non-empty string)" end
  -- the order's own, before its lines (which take it over) report it as theirs
  local bad_tid = check_value(TRADE_TID, tid)
  if bad_tid then return nil, "tid", bad_tid end
  local lines_in = item.orders
  if type(lines_in) ~= "table" or lines_in[1] == nil then
    return nil, "orders", "the order's lines are required (a non-empty list under 'orders')"
  end
  local lines, goods, n = {}, 0, #lines_in
  local seen = n > 1 and {} or nil
  for i = 1, n do
    local l = lines_in[i]
    if type(l) ~= "table" then return nil, ("orders[%d]"):format(i), not_a_table(l) end
    local line = encode_line(l, false, "tid", tid)     -- the order's tid when absent
    if not line then
      local f, r
      line, f, r = record("line", l, nil, false, "tid", tid)
      if not line then return nil, ("orders[%d]."):format(i) .. f, r end
    end
    if l.tid ~= nil and l.tid ~= tid then
      return nil, ("orders[%d].tid"):format(i), "is not the order's tid '" .. tid .. "'"
    end
    local oid = l.oid
    if seen then
      if seen[oid] then
        return nil, ("orders[%d].oid"):format(i), "repeats oid '" .. oid .. "' of this order"
      end
      seen[oid] = true
    end
    local num = l.num
    goods = goods + (type(num) == "number" and num or decimal_value(num))
    lines[i] = line
  end
  local discounts
  if item.discounts ~= nil then
    local f, r
    discounts, f, r = prepare_discounts(item.discounts, tid, lines_in, n)
    if not discounts then return nil, f, r end
  end
  -- the trade: the item without its lines, with what it lacks and wdt derives
  local skip = has_area_ids(item) and SKIP_AREA or nil
  local whole = math.floor(goods)
  local trade, f, r = record("trade", item, skip, "orders",
    item.is_auto_wms == false and "warehouse_no", "", "end_time", null, "order_count", n,
    "goods_count", whole == goods and whole or goods)
  if not trade then return nil, f, r end
  -- with discounts the trade is always the Lua copy (C leaves a table value to it): the
  -- discounts go in their own list, not in the trade
  if discounts then trade.discounts = nil end
  local oc = item.order_count
  if oc ~= nil and oc ~= n and int_value(oc) ~= n then
    return nil, "order_count", ("is %s but the order has %d line(s)"):format(tostring(oc), n)
  end
  local gc = item.goods_count
  if gc ~= nil and gc ~= goods and math.abs(decimal_value(gc) - goods) > 1e-4 then
    return nil, "goods_count",
      ("is %s but its lines' num add up to %s"):format(tostring(gc), tostring(goods))
  end
  return { key = tid, trade = trade, lines = lines, discounts = discounts }
end

-- The key of an item as the caller gave it, for listing an invalid one (may be nil); of
-- an item that passed the checks, its key.
local function raw_key(flow, item)
  if type(item) ~= "table" then return nil end
  if flow == "orders" then return type(item.tid) == "string" and item.tid or nil end
  if flow == "refunds" then return type(item.refund_no) == "string" and item.refund_no or nil end
  if type(item.goods_id) == "string" and type(item.spec_id) == "string" then
    return item.goods_id .. "\0" .. item.spec_id
  end
  return nil
end
validate.raw_key = raw_key

-- The flows of one record per item: its field list, and the pair added when absent.
local RECORDS = {
  refunds = { list = "refund", k = "refund_version", v = "1" },   -- the page's default
  goods = { list = "goods", k = false },
}

local function prepare_record(flow, item)
  local r = RECORDS[flow]
  local rec, f, why = record(r.list, item, nil, false, r.k, r.v)
  if not rec then return nil, f, why end
  return { key = raw_key(flow, item), record = rec }
end

function validate.prepare(flow, item)
  if type(item) ~= "table" then return nil, "(item)", "table expected, got " .. type(item) end
  if flow == "orders" then return prepare_order(item) end
  return prepare_record(flow, item)
end

-- The builder of one call's lists (core.push_batch) for a flow, and its quick way in:
--   add_fast(item, in_batch) -> key | false | nil, add, take
-- add_fast checks and writes an item in C when it passes every check (the common case):
-- key, the item is in the batch; false: it passed, but its key is in the batch already
-- (send the batch first); nil: nothing written, validate.prepare decides (and words the
-- reason). add writes what prepare made; take gives the lists (core.push_batch).
function validate.batch(flow)
  if flow == "orders" then return core.push_batch(encoders.trade, encoders.line) end
  local _, add, take = core.push_batch()
  local r = RECORDS[flow]
  local encode, k, v = encoders[r.list], r.k, r.v
  local function add_fast(item, in_batch)
    if type(item) ~= "table" then return nil end
    local raw = encode(item, false, k, v)
    if not raw then return nil end
    local key = raw_key(flow, item)
    if in_batch[key] then return false end
    if not add(raw) then return nil end     -- out of memory: the Lua way decides and reports
    return key
  end
  return add_fast, add, take
end

return validate
