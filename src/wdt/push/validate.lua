-- Checks one input item against the vendor's field tables (wdt.push.fields) before it is
-- sent, and turns it into what the method takes. Never changes the caller's tables.
--
--   validate.prepare(flow, item) -> prepared | nil, field, reason
--     orders:  prepared = { key = tid, trade = {...}, lines = {...} }
--     refunds: prepared = { key = refund_no, record = {...} }
--     goods:   prepared = { key = goods_id .. "\0" .. spec_id, record = {...} }
local core = require "wdt.core"
local fields = require "wdt.push.fields"

local validate = {}

local null = core.null

local function chars(s) return #s - #s:gsub("[\128-\191]", "") end

local function int_value(v)
  if type(v) == "number" then
    if v % 1 == 0 and v == v and v > -2 ^ 53 and v < 2 ^ 53 then return v end
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
validate.decimal_value = decimal_value

local TIME = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"

-- one value against one field spec -> nil | reason
local function shown(v) return type(v) == "string" and ("'" .. v .. "'") or type(v) end

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

-- Lua source, run once per field list at load time (names are quoted with %q).
local function compile_chunk(code, ...)
  local chunk = assert((loadstring or load)(table.concat(code), "=wdt.push.fields"))  -- luacheck: ignore
  return chunk(...)
end

-- The check a present value of `spec` passes without a call, as Lua source over `v`
-- (`V<i>` is the spec's set of values, `match`/`TIME` the time pattern); anything else
-- goes to check_value, which decides and gives the reason.
local function fast_test(spec, i)
  local kind = spec[2]
  if kind == "string" then
    return spec.max and ('type(v) == "string" and #v <= ' .. spec.max) or 'type(v) == "string"'
  elseif kind == "decimal" then return 'type(v) == "number" and v == v and v - v == 0'
  elseif kind == "int" then
    return 'type(v) == "number" and v % 1 == 0' .. (spec.values and (" and V" .. i .. "[v]") or "")
  elseif kind == "bool" then return 'type(v) == "boolean"'
  elseif kind == "time" then return 'type(v) == "string" and match(v, TIME)' end
  return "false"
end

-- A field list compiled into one Lua function (the checks run for every field of every
-- item: a loop over the specs costs several times more). Everything it uses is an
-- upvalue (no global lookups), the common cases are decided inline, and check_value runs
-- only for a value that fails them, to decide and give the reason.
--   checker(rec, skip) -> nil | field name, reason
local function compile(list)
  local params, sets = { "S, check_value, null, type, match, TIME" }, {}
  for i, spec in ipairs(list) do
    if spec.values then
      params[#params + 1] = "V" .. i
      sets[#sets + 1] = spec.values
    end
  end
  local code = { "local ", table.concat(params, ", "), " = ...\nreturn function(rec, skip)\nlocal v, r\n" }
  for i, spec in ipairs(list) do
    local name = spec[1]
    local fast = fast_test(spec, i)
    if spec.null_ok then fast = "v == null or " .. fast end
    local absent = spec.null_ok and "v == nil" or "v == nil or v == null"
    code[#code + 1] = ("v = rec[%q]\nif %s then\n"):format(name, absent)
    if spec.req then
      code[#code + 1] = ("  if not (skip and skip[%q]) then return %q, \"required\" end\n"):format(name, name)
    end
    code[#code + 1] = ("elseif %s then\nelseif not (skip and skip[%q]) then\n"):format(fast, name)
    code[#code + 1] = ("  r = check_value(S[%d], v)\n  if r then return %q, r end\nend\n"):format(i, name)
  end
  code[#code + 1] = "end\n"
  local unpack_ = table.unpack or unpack  -- luacheck: ignore
  return compile_chunk(code, list, check_value, null, type, string.match, TIME, unpack_(sets))
end

-- A constructor of an empty table with room for the fields of the list (up to 32): an
-- item copied into it grows no table on the way (a table grown key by key is rebuilt at
-- every power of two, which costs more than the copying). Lua sizes a constructor's hash
-- part to the power of two above its field count, so p/2 + 1 nil fields give room for p.
local function sized_table(list)
  local room = 1
  while room < math.min(#list, 32) do room = room * 2 end
  local code = { "return function() return {" }
  for i = 1, math.floor(room / 2) + 1 do code[#code + 1] = ("[%q] = nil, "):format(list[i][1]) end
  code[#code + 1] = "} end"
  return compile_chunk(code)
end

local checkers, new_record = {}, {}
for _, name in ipairs({ "trade", "line", "refund", "goods" }) do
  checkers[name], new_record[name] = compile(fields[name]), sized_table(fields[name])
end

-- a record against a field list -> nil | field, reason. `skip` names fields checked elsewhere.
local function check_record(list_name, rec, prefix, skip)
  local field, reason = checkers[list_name](rec, skip)
  if field then return prefix .. field, reason end
  return nil
end

-- every field of t but `except`, into `out` (a fresh table from new_record)
local function copy_into(out, t, except)
  for k, v in pairs(t) do
    if k ~= except then out[k] = v end
  end
  return out
end

local SKIP_AREA = { receiver_area = true }

local function has_area_ids(t)
  return t.receiver_province_no ~= nil and t.receiver_city_no ~= nil and t.receiver_district_no ~= nil
end

local function prepare_order(item)
  if type(item.tid) ~= "string" or item.tid == "" then return nil, "tid", "required (a non-empty string)" end
  local lines_in = item.orders
  if type(lines_in) ~= "table" or lines_in[1] == nil then
    return nil, "orders", "the order's lines are required (a non-empty list under 'orders')"
  end
  local trade = copy_into(new_record.trade(), item, "orders")
  if trade.warehouse_no == nil and trade.is_auto_wms == false then trade.warehouse_no = "" end
  if trade.end_time == nil then trade.end_time = null end
  local lines, goods, n = {}, 0, #lines_in
  local seen = n > 1 and {} or nil
  for i = 1, n do
    local l = lines_in[i]
    if type(l) ~= "table" then return nil, ("orders[%d]"):format(i), "table expected, got " .. type(l) end
    local line = l
    if l.tid == nil then                    -- copied only to add the tid
      line = copy_into(new_record.line(), l)
      line.tid = trade.tid
    end
    local f, r = check_record("line", line, "")
    if f then return nil, ("orders[%d]."):format(i) .. f, r end
    if line.tid ~= trade.tid then
      return nil, ("orders[%d].tid"):format(i), "is not the order's tid '" .. trade.tid .. "'"
    end
    if seen then
      if seen[line.oid] then
        return nil, ("orders[%d].oid"):format(i), "repeats oid '" .. line.oid .. "' of this order"
      end
      seen[line.oid] = true
    end
    local num = line.num
    goods = goods + (type(num) == "number" and num or decimal_value(num))
    lines[i] = line
  end
  if trade.order_count == nil then trade.order_count = #lines end
  if trade.goods_count == nil then
    trade.goods_count = math.floor(goods) == goods and math.floor(goods) or goods
  end
  local skip = has_area_ids(trade) and SKIP_AREA or nil
  local f, r = check_record("trade", trade, "", skip)
  if f then return nil, f, r end
  local oc = trade.order_count
  if oc ~= n and int_value(oc) ~= n then
    return nil, "order_count", ("is %s but the order has %d line(s)"):format(tostring(trade.order_count), #lines)
  end
  local gc = trade.goods_count
  if gc ~= goods and math.abs(decimal_value(gc) - goods) > 1e-4 then
    return nil, "goods_count",
      ("is %s but its lines' num add up to %s"):format(tostring(trade.goods_count), tostring(goods))
  end
  return { key = trade.tid, trade = trade, lines = lines }
end

local function prepare_refund(item)
  local rec = copy_into(new_record.refund(), item)
  if rec.refund_version == nil then rec.refund_version = "1" end
  local f, r = check_record("refund", rec, "")
  if f then return nil, f, r end
  return { key = rec.refund_no, record = rec }
end

local function prepare_goods(item)
  local rec = copy_into(new_record.goods(), item)
  local f, r = check_record("goods", rec, "")
  if f then return nil, f, r end
  return { key = rec.goods_id .. "\0" .. rec.spec_id, record = rec }
end

local preparers = { orders = prepare_order, refunds = prepare_refund, goods = prepare_goods }

function validate.prepare(flow, item)
  if type(item) ~= "table" then return nil, "(item)", "table expected, got " .. type(item) end
  return preparers[flow](item)
end

-- The key of an item as the caller gave it, for listing an invalid one (may be nil).
function validate.raw_key(flow, item)
  if type(item) ~= "table" then return nil end
  if flow == "orders" then return type(item.tid) == "string" and item.tid or nil end
  if flow == "refunds" then return type(item.refund_no) == "string" and item.refund_no or nil end
  if type(item.goods_id) == "string" and type(item.spec_id) == "string" then
    return item.goods_id .. "\0" .. item.spec_id
  end
  return nil
end

return validate
