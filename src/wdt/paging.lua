-- One shape for both kinds of paged answer:
--   most queries:      {"status":0,"data":{"total_count":N,"order":[rows]}}
--   getSyncListExt:    {"status":0,"total":N,"data":[rows]}
local paging = {}

local core = require "wdt.core"
local check = require "wdt.check"
local errors = require "wdt.errors"

local function is_list(v)
  return type(v) == "table" and (v[1] ~= nil or getmetatable(v) == core.array_mt)
end
paging.is_list = is_list

-- A pager table given by the caller -> the pager to use | nil, what is wrong with it.
function paging.check(pager)
  if type(pager) ~= "table" then return nil, "pager table expected, got " .. type(pager) end
  local size, no, calc = pager.page_size, pager.page_no, pager.calc_total
  if no == nil then no = 0 end
  if not check.is_integer(size) or size < 1 then
    return nil, "page_size must be an integer >= 1"
  end
  if not check.is_integer(no) or no < 0 then
    return nil, "page_no must be an integer >= 0"
  end
  if calc ~= nil and type(calc) ~= "boolean" then
    return nil, "calc_total must be a boolean"
  end
  for k in pairs(pager) do
    if k ~= "page_size" and k ~= "page_no" and k ~= "calc_total" then
      return nil, ("unknown pager field '%s'"):format(tostring(k))
    end
  end
  return { page_size = size, page_no = no, calc_total = calc or false }
end

-- Build the page object: rows, total (when asked for), the pager used, the whole answer;
-- or nil, err (kind "decode") for an answer without its list of rows. The vendor's pages
-- mark the list (`order`, `goods_list`, getSyncListExt's `data`, ...) as always present,
-- an empty result included (`[]`), so a missing list is a wrong answer, never an empty
-- page: read as one, it would let rows disappear (README "Paging").
function paging.page(response, pager, method)
  local data, rows, total = response.data, nil, nil
  if is_list(data) then
    rows, total = data, response.total
  elseif type(data) == "table" then
    total = data.total_count
    -- the list beside total_count ("order", "details", …); by sorted name when there are
    -- several, so the choice does not depend on the hash order
    local names = {}
    for k, v in pairs(data) do
      if type(k) == "string" and is_list(v) then names[#names + 1] = k end
    end
    table.sort(names)
    if names[1] then rows = data[names[1]] end
  end
  if rows == nil then
    return nil, errors.new { kind = "decode", method = method, message =
      ("page %d: the answer holds no list of rows"):format(pager.page_no) }
  end
  if type(total) ~= "number" then total = nil end
  if not pager.calc_total then total = nil end
  return {
    rows = rows,
    total = total,
    page_no = pager.page_no,
    page_size = pager.page_size,
    response = response,
  }
end

return paging
