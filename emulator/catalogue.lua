-- The emulator's answers for every method of the catalogue it has no stateful handler for,
-- and the catalogue's request checks for every method (the stateful handlers may call
-- check_request too). Reads the catalogue's data (emulator/catalogue_data.lua), none of
-- wdt's code: the checks here are a second, independent reading of the same facts.
--   catalogue.check_request(method, args, pager) -> nil | {status, message}
--   catalogue.handler(method) -> function(tenant, args, pager, sid, fault) or nil
--   catalogue.max_page_size(method) -> the page size its page allows, or nil
--   catalogue.check_values(method, args) -> nil | {status, message}: lengths and values
--     alone, for the stateful queries
-- Runs in nginx's LuaJIT (Lua 5.1 syntax).
local json = require "emulator.json"
local data = require "emulator.catalogue_data"

local M = {}
local floor = math.floor
local null = json.null

local function kind_of(v)
  if v == nil or v == null then return "null" end
  local t = type(v)
  if t == "number" then return v == floor(v) and "int" or "decimal" end
  if t == "boolean" then return "bool" end
  if t == "string" then return "string" end
  if t == "table" then
    if json.is_array(v) then return #v == 0 and "empty" or "list" end
    if json.is_object(v) then return next(v) == nil and "empty" or "object" end
    return v[1] ~= nil and "list" or "object"
  end
  return t
end

local ACCEPTS = {
  string = { string = true }, int = { int = true }, decimal = { int = true, decimal = true },
  bool = { bool = true }, object = { object = true, empty = true }, list = { list = true, empty = true },
}

local function accepts(n, k)
  if k == "null" or n.type == "pager" then return true end
  local a = ACCEPTS[n.type]
  if not a or a[k] then return true end
  for _, extra in ipairs(n.also or {}) do
    if extra == k or k == "empty" then return true end
  end
  return false
end

-- characters of a UTF-8 string
local function chars(s)
  local n = 0
  for _ in s:gmatch("[^\128-\191]") do n = n + 1 end
  return n
end

-- the vendor's wording where its error page gives one (guide: 错误码说明)
local function missing(name) return { status = 100, message = name .. "不能为空" } end
local function mismatch() return { status = 1, message = "argument type mismatch" } end

local check_value

-- `only_values`: lengths and allowed values alone (for the stateful handlers, whose own
-- checks of presence, types and windows come with their documented words)
-- required, unless one of the fields the page names instead is given (`unless`)
local function needed(n, obj)
  if not n.required then return false end
  for _, k in ipairs(n.unless or {}) do
    if obj[k] ~= nil then return false end
  end
  return true
end

local function check_fields(nodes, obj, only_values)
  for _, n in ipairs(nodes) do
    local v = obj[n.name]
    if v == nil then       -- null is a value: the pages ask for it ("若无则传null")
      if needed(n, obj) and not only_values then return missing(n.name) end
    else
      local bad = check_value(n, v, only_values)
      if bad then return bad end
    end
  end
end

function check_value(n, v, only_values)
  local k = kind_of(v)
  if not accepts(n, k) then
    if only_values then return nil end
    return mismatch()
  end
  local main = ACCEPTS[n.type]
  if k == "null" or (main and not main[k]) then return nil end   -- a type only the example uses
  if n.type == "string" and k == "string" and n.length and chars(v) > n.length then
    return { status = 100, message = "Data truncation: Data too long for column '" .. n.name .. "'" }
  end
  if n.values and not n.values_open and (k == "int" or k == "bool") then
    local ok = false
    for _, a in ipairs(n.values) do if a.value == v then ok = true end end
    if not ok then return { status = 100, message = n.name .. "的值" .. tostring(v) .. "不在允许的范围内" } end
  end
  if n.children and n.type == "object" and k == "object" then return check_fields(n.children, v, only_values) end
  if n.children and n.type == "list" and k == "list" then
    for _, item in ipairs(v) do
      if kind_of(item) == "object" then
        local bad = check_fields(n.children, item, only_values)
        if bad then return bad end
      elseif kind_of(item) ~= "empty" and not only_values then
        return mismatch()
      end
    end
  end
end

-- "YYYY-MM-DD HH:MM:SS" -> seconds (UTC+8 wall time read as UTC: only differences count)
local function seconds(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)-(%d%d)-(%d%d) (%d%d):(%d%d):(%d%d)$")
  if not y then return nil end
  return os.time({ year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h),
                   min = tonumber(mi), sec = tonumber(se) })
end

local function positional(e)
  local list = {}
  for _, n in ipairs(e.args) do if n.type ~= "pager" then list[#list + 1] = n end end
  return list
end

-- The request against the method's page: nil when it passes, else the answer to give.
function M.check_request(method, args, pager)
  local e = data.get(method)
  if not e then return nil end
  local nodes = positional(e)
  for i, n in ipairs(nodes) do
    local v = args[i]
    if v == nil then
      local optional_filter = n.type == "object"
      for _, c in ipairs(n.children or {}) do if c.required then optional_filter = false end end
      if n.required and not optional_filter then return missing(n.name) end
    else
      local bad = check_value(n, v)
      if bad then return bad end
    end
  end
  local w = e.window
  if w then
    local holder = args[1]
    local k = 0
    for i, n in ipairs(e.args) do
      if n.type ~= "pager" then k = k + 1 end
      if i == w.arg then holder = args[k] end
    end
    if type(holder) == "table" then
      local a, b = seconds(holder[w.from]), seconds(holder[w.to])
      if a and b and b - a > w.max_seconds then return { status = 100, message = w.message } end
    end
  end
  if pager and e.paging and pager.page_size > e.paging.max_page_size then
    return { status = 2, message = "page_size必须是1到" .. e.paging.max_page_size .. "之间的整数" }
  end
  return nil
end

---------------------------------------------------------------------------------------------
-- answers in the documented shape

M.TOTAL = 3          -- the rows every generated query has
local BASE_ID = 8000000000

-- The time the generated rows carry: the start of the request's window, when it has one.
-- Ids are told apart by it too: the rows of two windows are other rows.
local stamp = "2026-01-01 00:00:00"
local id_base = BASE_ID

local function sample(n, i)
  local t = n.type
  if n.values and n.values[1] then return n.values[1].value end
  if t == "string" then
    local name = n.name
    if name:find("time$") or name:find("date$") or name == "created" or name == "modified" then
      return stamp
    end
    return name .. "-" .. i
  elseif t == "int" then
    if n.name:find("id$") then return id_base + i end
    return i
  elseif t == "decimal" then return i + 0.5
  elseif t == "bool" then return false
  end
  return null
end

local fill

local function fill_object(nodes, i)
  local obj = json.object()
  for _, n in ipairs(nodes) do obj[n.name] = fill(n, i) end
  return obj
end

function fill(n, i)
  if n.type == "object" then return fill_object(n.children or {}, i) end
  if n.type == "list" then
    if n.of == "object" then return json.array({ fill_object(n.children or {}, i) }) end
    if n.of == "int" then return json.array({ i }) end
    return json.array({ n.name .. "-" .. i })
  end
  return sample(n, i)
end

-- The node of the rows in a query's answer: the first list of objects under data (or data).
local function rows_node(data_node)
  if data_node.type == "list" then return nil end
  for _, c in ipairs(data_node.children or {}) do
    if c.type == "list" and c.of == "object" then return c end
  end
end

local function window_start(e, args)
  local w = e.window
  if not w then return nil end
  local k = 0
  for i, n in ipairs(e.args) do
    if n.type ~= "pager" then k = k + 1 end
    if i == w.arg and type(args[k]) == "table" and seconds(args[k][w.from]) then return args[k][w.from] end
  end
end

local function query_answer(e, args, pager)
  stamp = window_start(e, args) or "2026-01-01 00:00:00"
  id_base = BASE_ID + (floor(seconds(stamp) / 60) % 1000000) * 1000
  local resp = json.object({ status = 0, message = "" })
  local size = pager and pager.page_size or 30
  local first = (pager and pager.page_no or 0) * size
  local count = math.max(0, math.min(size, M.TOTAL - first))
  for _, n in ipairs(e.response) do
    if n.name == "data" then
      local rn = n.type == "list" and n or rows_node(n)
      local function rows()
        local list = json.array()
        for k = 1, count do list[k] = fill_object(rn.children or {}, first + k) end
        return list
      end
      if n.type == "list" then
        resp.data = rows()
      else
        local obj = fill_object(n.children or {}, 1)
        if rn then obj[rn.name] = rows() end
        if obj.total_count ~= nil then obj.total_count = M.TOTAL end
        resp.data = obj
      end
    elseif n.name == "total_count" then
      resp.total_count = M.TOTAL
    elseif n.name ~= "status" and n.name ~= "message" then
      resp[n.name] = fill(n, 1)
    end
  end
  return resp
end

-- The fields of `nodes` that `obj` lacks, generated (nested objects completed too).
local function complete(nodes, obj)
  for _, n in ipairs(nodes) do
    local v = obj[n.name]
    if v == nil then
      obj[n.name] = fill(n, 1)
    elseif n.children and type(v) == "table" then
      if n.type == "list" then
        for _, item in ipairs(v) do if type(item) == "table" then complete(n.children, item) end end
      else
        complete(n.children, v)
      end
    end
  end
  return obj
end

-- A write answers as its page's example shows, with the fields its table adds.
local function write_answer(e)
  local resp
  if e.examples.response then
    local v = json.decode(e.examples.response)
    if type(v) == "table" and v.status == 0 then resp = v end
  end
  resp = resp or json.object({ status = 0 })
  if resp.message == nil then resp.message = "" end
  return complete(e.response, resp)
end

-- the largest page the method's page allows, or nil (no paging, or no such method)
function M.max_page_size(method)
  local e = data.get(method)
  return e and e.paging and e.paging.max_page_size or nil
end

-- A stateful query's filter against its page: too long a string or a value outside the
-- page's list; nil when it passes, else the answer to give.
function M.check_values(method, args)
  local e = data.get(method)
  if not e or e.kind ~= "query" then return nil end
  for i, n in ipairs(positional(e)) do
    if args[i] ~= nil then
      local bad = check_value(n, args[i], true)
      if bad then return bad end
    end
  end
end

local handlers = {}

function M.handler(method)
  if handlers[method] then return handlers[method] end
  local e = data.get(method)
  if not e then return nil end
  handlers[method] = function(_, args, pager)
    local bad = M.check_request(method, args, pager)
    if bad then return bad end
    if e.kind == "write" then return write_answer(e) end
    return query_answer(e, args, pager)
  end
  return handlers[method]
end

return M
