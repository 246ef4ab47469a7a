-- wdt.api: the catalogue of the open API's methods, read off the vendor's pages
-- (tools/gen-catalogue.lua made the data files beside this one; facts only).
--
--   local api = require "wdt.api"
--   api.names()            --> every method name, sorted
--   api.get(name)          --> the entry below, or nil for a method the pages do not document
--   api.summary(name)      --> { title, category, kind, paged, window } without loading the entry
--   api.guide()            --> the guide pages' facts (see the end of this comment)
--   api.addresses()        --> the address codes: { provinces, cities, districts }
--
-- Entries are loaded one by one when asked for; `require "wdt"` loads none of them.
--
-- An entry (every field but name, title, category, group, kind, args, response and examples
-- may be absent):
--   name         "setting.Warehouse.queryWarehouse"
--   title        "仓库查询" (the page's Chinese title)
--   category     "setting" (the name's first part); group "setting.Warehouse"
--   kind         "query" (reads only: safe to retry) | "write"
--   description, version, incremental, notes (strings; notes a list), url, deprecated (the
--                name of the method the page says replaces this one)
--   paging       { max_page_size = 1000, max_page_size_on_page = bool (false: the page gives
--                no limit and 1000, the server's, is assumed), calc_total = bool }
--   window       { from = "start_time", to = "end_time", arg = 1 (the position of the argument
--                holding both; the fields are that argument's children, or the argument
--                itself when it is a scalar), max_seconds = 2592000, text = the page's 1.4,
--                message = the refusal's message (status 100) }
--   args         the body's positional arguments, in order: a list of nodes. A node of type
--                "pager" is the page's Pager argument: it is sent as the query string's
--                page_size/page_no, not in the body.
--   response     the answer's top-level fields (status, message, data…): a list of nodes
--   examples     { request = JSON text of the page's example body, response = its normal
--                answer, error = its error answer, request_in_window = the request with its
--                window's end moved in, when the page's own example is wider than its 1.4
--                allows, notes = { what was mended, moved or left out } }
--                (each text may be absent when the page has none that parses)
--
-- A node:
--   name         the field's name ("warehouse_no")
--   title        its Chinese name on the page
--   description  the page's description
--   type         "string" | "int" | "decimal" | "bool" | "object" | "list" | "pager"
--   of           for a list: "object" | "string" | "int" (the items' type)
--   type_on_page the page's own spelling ("Decimal(19,4)", "List<Map<String, Object>>")
--   length       the largest length in characters (strings) or digits, when the page gives one
--   required     true when the page says 是/Y and its example agrees
--   required_on_page  true when the page says required but its own example leaves it out
--                (then required is false: the example is followed)
--   unless       for a required field: sibling fields any one of which makes it optional
--                (a query's times, when an order number is given: "若无订单编号…，则为必填",
--                "传入出库单号可以不传时间条件")
--   also         other JSON types the page's example uses for it ({ "string" } for a
--                Decimal sent as ""); a value of one of them passes the checks
--   values       allowed values with meanings: { { value = 10, meaning = "待递交" }, … }
--   values_open  true when the page's example uses a value outside that list (then the
--                list is documentation only, not checked)
--   length_on_page  the page's length when its example is longer (then length is absent)
--   note         what the generator changed or noticed, in words
--   children     for "object" and lists of objects: the fields, a list of nodes
--
-- The guide: { errors = { url, codes = { { code, message, remedy } } },
--   platforms = { url, list = { { id, name, sub = { { id, name } } } } },
--   logistics_types = { url, list = { { value, name } } }, signing = { url, note, rule } }
local M = {}

local index, entries, guide, addresses = nil, {}, nil, nil

local function load_index()
  if not index then index = require "wdt.api.index" end
  return index
end

function M.names()
  local names = {}
  for name in pairs(load_index()) do names[#names + 1] = name end
  table.sort(names)
  return names
end

function M.summary(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'summary' (method name expected, got " .. type(name) .. ")", 2)
  end
  return load_index()[name]
end

function M.get(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'get' (method name expected, got " .. type(name) .. ")", 2)
  end
  local e = entries[name]
  if e == nil and load_index()[name] then
    e = require("wdt.api.methods." .. name:gsub("%.", "_"))
    entries[name] = e
  end
  return e
end

function M.guide()
  if not guide then guide = require "wdt.api.guide" end
  return guide
end

function M.addresses()
  if not addresses then addresses = require "wdt.api.addresses" end
  return addresses
end

-- Every node of a tree, depth first, with its path ("params.warehouse_no",
-- "rawTradeList[].pay_method"): f(node, path). Stops early when f returns a true value.
function M.walk(nodes, f, prefix)
  for _, n in ipairs(nodes or {}) do
    local path = prefix and (prefix .. "." .. n.name) or n.name
    if f(n, path) then return true end
    if n.children then
      local sub = n.type == "list" and path .. "[]" or path
      if M.walk(n.children, f, sub) then return true end
    end
  end
  return false
end

return M
