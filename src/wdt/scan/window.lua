-- Reading one time window completely while its rows may change (doc/scan.md).
--
-- One attempt: page 0 with calc_total, which gives total_count T; when T fits on that
-- page the answer is one snapshot and complete. Otherwise the other pages are read from
-- the last to page 1 (back to front, as the vendor advises: a row that leaves the window
-- then shifts only pages already read), `concurrency` pages in flight at a time. The
-- attempt is complete when every page reported the same T and T distinct keys were seen.
-- An incomplete attempt is read again (its rows are kept: they were in the window); after
-- `ATTEMPTS` the window is split in two and each half read the same way, down to windows
-- of one second.
local time = require "wdt.scan.time"
local errors = require "wdt.errors"
local paging = require "wdt.paging"

local window = {}

local ATTEMPTS = 3

local function scan_error(method, message)
  return errors.new { kind = "scan", method = method, message = message }
end

local key_text = require("wdt.check").id_text

-- The page's rows under the method's list name, or nil, err: an answer without that list
-- (client:page_call already refuses one with no list at all) is a wrong answer, never an
-- empty window, or the window's rows would be passed over for good.
local function page_rows(s, page)
  local data = page.response.data
  local rows = type(data) == "table" and data[s.facts.list]
  if rows ~= nil and paging.is_list(rows) then return rows end
  return nil, errors.new { kind = "decode", method = s.method, message =
    ("page %d: the answer holds no list '%s'"):format(page.page_no, s.facts.list) }
end

-- Keep the newest version of each key in `found` (key text -> {row, m}); `keys` collects
-- the keys this attempt saw. Returns an error for a row without its key.
local function take(s, rows, found, keys)
  local facts = s.facts
  for _, row in ipairs(rows) do
    local k = type(row) == "table" and row[facts.key]
    if k == nil then
      return scan_error(s.method, ("a row without its key '%s'"):format(facts.key))
    end
    local kt = key_text(k)
    local m = time.modified(row[facts.modified])
    local old = found[kt]
    if not old or (m and (not old.m or m >= old.m)) then found[kt] = { row = row, m = m, key = kt } end
    keys[kt] = true
  end
  return nil
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- One attempt over [a, b]: true when complete, false when not, or nil, err.
local function attempt(s, a, b, found)
  local params = {}
  for k, v in pairs(s.filter) do params[k] = v end
  params[s.facts.from] = time.format(a)
  params[s.facts.to] = time.format(b)
  local size = s.page_size
  local keys = {}
  -- a page read (or its error): its rows taken into `found`; the page and its rows, or nil, err
  local function took(page, err)
    if not page then return nil, err end
    local rows
    rows, err = page_rows(s, page)
    if not rows then return nil, err end
    err = take(s, rows, found, keys)
    if err then return nil, err end
    return page, rows
  end
  local function read(no)
    s.stats.pages = s.stats.pages + 1
    return took(s.client:page_call(s.method, { page_size = size, page_no = no, calc_total = true }, params))
  end
  local first, rows = read(0)
  if not first then return nil, rows end
  local total = first.total
  if total == nil then
    -- no total_count: front to back until a short page; nothing to check against
    local no = 0
    while #rows >= size do
      no = no + 1
      local page
      page, rows = read(no)
      if not page then return nil, rows end
    end
    s.stats.unverified = s.stats.unverified + 1
    return true
  end
  if total <= #rows then return count(keys) >= total end
  -- the other pages, from the last to page 1, up to `concurrency` of them in flight
  -- (wdt.flow's run:calls); their rows are taken in that order
  local requests = {}
  for no = math.ceil(total / size) - 1, 1, -1 do
    requests[#requests + 1] = { s.method, params, pager = { page_size = size, page_no = no, calc_total = true } }
  end
  s.stats.pages = s.stats.pages + #requests
  local stable = true
  for _, r in ipairs(s.run:calls(requests, s.client)) do
    local page, err = took(r.data, r.err)
    if not page then return nil, err end
    if page.total ~= total then stable = false end
  end
  return stable and count(keys) == total
end

-- Read [a, b) completely into `found`; true | nil, err.
function window.read(s, a, b, found)
  for i = 1, ATTEMPTS do
    if i > 1 then s.stats.rereads = s.stats.rereads + 1 end
    local done, err = attempt(s, a, b, found)
    if done == nil then return nil, err end
    if done then return true end
  end
  if b - a <= 1 then
    return nil, scan_error(s.method, ("the rows of %s kept changing while read %d times"):format(
      time.format(a), ATTEMPTS))
  end
  s.stats.splits = s.stats.splits + 1
  local mid = a + math.floor((b - a) / 2)
  local ok, err = window.read(s, a, mid, found)
  if not ok then return nil, err end
  return window.read(s, mid, b, found)
end

return window
