-- wdt.api.check: a call's arguments against the catalogue (wdt.api), before anything is sent.
--   check.request(method, args, pager) -> true | nil, err
-- args: the positional arguments (with n); pager: {page_size, page_no, calc_total} or nil.
-- err: kind "invalid", field (the path: "params.warehouse_no", "rawTradeList[3].pay_method"),
-- meaning (the page's title and description of the field), message.
-- Checked: required fields, JSON types, string lengths in characters, allowed values,
-- the time window's width, the page size. Not checked: fields the page does not list
-- (passed through), methods the catalogue does not know. The pages can be wrong: the
-- client's and the call's option `check = false` turn this off (doc/api.md).
local api = require "wdt.api"
local core = require "wdt.core"
local errors = require "wdt.errors"

local M = {}

local null, array_mt = core.null, core.array_mt
local floor = math.floor

local function chars(s)
  local _, cont = s:gsub("[\128-\191]", "")
  return #s - cont
end

local function json_type(v)
  local t = type(v)
  if v == null then return "null" end
  if t == "number" then return v == floor(v) and "int" or "decimal" end
  if t == "boolean" then return "bool" end
  if t == "table" then
    local mt = getmetatable(v)
    if mt ~= nil and mt ~= array_mt then return "opaque" end   -- e.g. a record the push encoded
    if mt == array_mt or v[1] ~= nil then return "list" end
    if next(v) == nil then return "empty" end
    return "object"
  end
  return t
end

-- not looked into: null, values JSON cannot carry (the encoder raises for them), records
-- already encoded (the push flows check theirs themselves)
local OPAQUE = { null = true, ["function"] = true, userdata = true, thread = true, opaque = true }

local FITS = {
  string = { string = true },
  int = { int = true },
  decimal = { int = true, decimal = true },
  bool = { bool = true },
  object = { object = true, empty = true },
  list = { list = true, empty = true },
}

local function meaning_of(n)
  local m = n.title or ""
  if n.description and n.description ~= n.title then
    m = m ~= "" and (m .. ": " .. n.description) or n.description
  end
  return m
end

local function fail(method, path, node, problem)
  local meaning = node and meaning_of(node) or nil
  local msg = path .. ": " .. problem
  if meaning and meaning ~= "" then msg = msg .. " (" .. meaning .. ")" end
  return nil, errors.new { kind = "invalid", method = method, field = path, meaning = meaning,
                           message = msg .. "; nothing was sent" }
end

-- The checks below answer nil when a value is fine, else the node at fault, what is wrong
-- and the path's pieces from the inside out ({"pay_method", "[3]"}): the path is written
-- only for a value that fails, so a passing call builds no strings.
local check_node

-- a field the page requires unless one of `unless` is given (an order number for the times)
local function needed(n, obj)
  if not n.required then return false end
  for _, k in ipairs(n.unless or {}) do
    if obj[k] ~= nil then return false end
  end
  return true
end

local function check_fields(nodes, obj)
  for _, n in ipairs(nodes) do
    local v = obj[n.name]
    if v == nil then
      if needed(n, obj) then
        return n, n.unless and "required without " .. table.concat(n.unless, " or ") .. ", missing"
          or "required, missing", { n.name }
      end
    else
      local bad, problem, parts = check_node(n, v)
      if bad then
        parts[#parts + 1] = n.name
        return bad, problem, parts
      end
    end
  end
end

local function also(n, jt)
  if not n.also then return false end
  for _, a in ipairs(n.also) do
    if a == jt or (a == "list" and jt == "empty") or (a == "object" and jt == "empty") then return true end
  end
  return false
end

function check_node(n, v)
  -- the common cases first: a scalar of its type (characters are never more than bytes:
  -- counted only for a string that may be too long)
  local t, vt = n.type, type(v)
  if vt == "string" and t == "string" then
    if n.length and #v > n.length and chars(v) > n.length then
      return n, ("at most %d characters, got %d"):format(n.length, chars(v)), {}
    end
    return nil
  elseif vt == "number" and (t == "decimal" or (t == "int" and not n.values and v == floor(v))) then
    return nil
  elseif vt == "boolean" and t == "bool" and not n.values then
    return nil
  end
  local jt = json_type(v)
  -- null, the pager, and what JSON cannot carry (the encoder raises for a function)
  if OPAQUE[jt] or n.type == "pager" then return nil end
  if also(n, jt) then return nil end
  local fits = FITS[n.type]
  if fits and not fits[jt] then
    return n, ("%s expected, got %s"):format(n.type, jt == "empty" and "{}" or jt), {}
  end
  if n.values and not n.values_open and (jt == "int" or jt == "bool") then
    local known = false
    for _, a in ipairs(n.values) do if a.value == v then known = true break end end
    if not known then
      local list = {}
      for _, a in ipairs(n.values) do list[#list + 1] = tostring(a.value) .. " " .. a.meaning end
      return n, ("%s is not one of %s"):format(tostring(v), table.concat(list, ", ")), {}
    end
  end
  if n.type == "object" and n.children and jt == "object" then
    local bad, problem, parts = check_fields(n.children, v)
    if bad then parts[#parts] = "." .. parts[#parts] end
    return bad, problem, parts
  end
  if n.type == "list" and jt == "list" then
    for i, item in ipairs(v) do
      local ijt = json_type(item)
      local bad, problem, parts
      if OPAQUE[ijt] then       -- luacheck: ignore 542
      elseif n.of == "object" and n.children then
        if ijt ~= "object" and ijt ~= "empty" then
          bad, problem, parts = n, "an object expected, got " .. ijt, {}
        else
          bad, problem, parts = check_fields(n.children, item)
          if bad then parts[#parts] = "." .. parts[#parts] end
        end
      elseif n.of and FITS[n.of] and not FITS[n.of][ijt] then
        bad, problem, parts = n, n.of .. " expected, got " .. ijt, {}
      end
      if bad then
        parts[#parts + 1] = "[" .. i .. "]"
        return bad, problem, parts
      end
    end
  end
  return nil
end

-- a failing value's answer: the path from its pieces (outermost last)
local function failed(method, top, bad, problem, parts)
  local path = top
  for i = #parts, 1, -1 do path = path .. parts[i] end
  return fail(method, path, bad, problem)
end

-- "YYYY-MM-DD HH:MM:SS" (or a date alone) -> seconds on a common scale (no zone needed:
-- only differences are used), or nil
local function seconds(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)[ T]?(%d?%d?):?(%d?%d?):?(%d?%d?)")
  if not y then return nil end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- days from civil (proleptic Gregorian)
  if mo <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe
  return days * 86400 + (tonumber(h) or 0) * 3600 + (tonumber(mi) or 0) * 60 + (tonumber(se) or 0)
end
M.seconds = seconds

-- args: the positional arguments (the Pager, which is not among them, skipped)
local function check_window(method, e, args)
  local w = e.window
  local k, holder = 0, nil
  local from, to, path
  for i, n in ipairs(e.args) do
    if n.type ~= "pager" then
      k = k + 1
      if i == w.arg then holder = args[k] end
      -- the window's fields as positional arguments themselves
      if n.name == w.from then from = args[k] end
      if n.name == w.to then to, path = args[k], n.name end
    end
  end
  if type(holder) == "table" and holder ~= null then
    from, to = holder[w.from], holder[w.to]
  end
  local a, b = seconds(from), seconds(to)
  if a and b and b - a > w.max_seconds then
    local tnode
    api.walk(e.args, function(n, p) if n.name == w.to and not tnode then tnode = n; path = p end end)
    return fail(method, path or w.to, tnode, ("the window %s to %s is wider than the page allows (%s: %s)")
      :format(from, to, w.text, w.message))
  end
  return true
end

local function has_required(n)
  for _, c in ipairs(n.children or {}) do if c.required then return true end end
  return false
end

function M.request(method, args, pager)
  local e = api.get(method)
  if not e then return true end
  local pos = 0
  for _, n in ipairs(e.args) do
    if n.type ~= "pager" then
      pos = pos + 1
      local v = args[pos]
      if v == nil then
        -- a filter object of optional fields may be left out: the server takes none as {}
        if n.required and not (n.type == "object" and not has_required(n)) then
          return fail(method, n.name, n, "required, missing")
        end
      else
        local bad, problem, parts = check_node(n, v)
        if bad then return failed(method, n.name, bad, problem, parts) end
      end
    end
  end
  if e.window then
    local ok, err = check_window(method, e, args)
    if not ok then return nil, err end
  end
  if pager and e.paging and pager.page_size and pager.page_size > e.paging.max_page_size then
    return fail(method, "pager.page_size", { title = "分页大小" },
      ("at most %d, got %d"):format(e.paging.max_page_size, pager.page_size))
  end
  return true
end

return M
