-- The response rows of the windowed query methods, read off the catalogue of the vendor's
-- pages (src/wdt/api, through emulator/catalogue_data.lua: one source of facts for wdt and
-- the emulator). For each method: `list` (the rows' key in data), `row` (every field of a
-- row, in the page's order, "name:type" with type int, dec (Decimal(19,4), a JSON number),
-- str, bool, list (a nested list: its fields under `nested`) or map), and `ms`: time fields
-- the table calls String but the page answers in milliseconds (its example sends a number,
-- or its description says 毫秒级时间戳): the example wins ("list.field" for a field of a
-- nested list). emulator/rows.lua fills every field. Runs in nginx's LuaJIT (Lua 5.1).
-- A spec may load this file with wdt's own accessor of the same data (`require "wdt.api"`,
-- whose get(name) answers the same entries) as its argument.
local given = ...
local catalogue = type(given) == "table" and given or require "emulator.catalogue_data"

local LISTS = {
  ["sales.TradeQuery.querySelfOrderWithDetail"] = "order",
  ["sales.RawTrade.searchSelfOrder"] = "order",
  ["aftersales.refund.Refund.search"] = "order",
  ["aftersales.refund.RawRefund.search"] = "order",
  ["wms.stockout.Sales.queryWithDetail"] = "order",
  ["wms.stockout.Sales.searchLogistics"] = "order_list",
  ["goods.ApiGoods.search"] = "goods_list",
}

local TYPES = { string = "str", int = "int", decimal = "dec", bool = "bool", object = "map", list = "list" }

local function child(nodes, name)
  for _, n in ipairs(nodes or {}) do if n.name == name then return n end end
  return nil
end

local function in_ms(node)
  if node.type ~= "string" then return false end
  if (node.description or ""):find("毫秒", 1, true) then return true end
  local int = false
  for _, t in ipairs(node.also or {}) do int = int or t == "int" end
  return int and (node.name:find("time") or node.name == "created" or node.name == "modified") ~= nil
end

-- the fields of a list of nodes; nested lists and objects go to `out.nested`
local function fields(nodes, out, prefix)
  local list = {}
  for _, n in ipairs(nodes) do
    list[#list + 1] = n.name .. ":" .. (TYPES[n.type] or "str")
    if in_ms(n) then out.ms[#out.ms + 1] = prefix .. n.name end
    if (n.type == "list" or n.type == "object") and n.children then
      out.nested[n.name] = fields(n.children, out, n.name .. ".")
    end
  end
  return list
end

local M = {}
for method, key in pairs(LISTS) do
  local entry = assert(catalogue.get(method), "the catalogue has no " .. method)
  local data = child(entry.response, "data")
  local rows = child(data and data.children, key)
  -- querySelfOrderWithDetail's page puts the row's fields beside `order`, under data
  local nodes = rows and rows.children
  if not nodes then
    nodes = {}
    for _, n in ipairs(data.children) do
      if n.name ~= key and n.name ~= "total_count" then nodes[#nodes + 1] = n end
    end
  end
  local out = { list = key, nested = {}, ms = {} }
  out.row = fields(nodes, out, "")
  M[method] = out
end
return M
