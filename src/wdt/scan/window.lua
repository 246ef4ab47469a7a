-- Reading one time window completely while its rows may change (doc/scan.md).
--
-- One attempt: page 0 with calc_total, which gives total_count T; when T fits on that
-- page the answer is one snapshot and complete. Otherwise the other pages are read from
-- the last to page 1 (back to front, as the vendor advises: a row that leaves the window
-- then shifts only pages already read), up to `concurrency` pages in flight. The
-- attempt is complete when every page reported the same T and T distinct keys were seen.
-- The calls go through `wire` (wdt.scan.ahead), which runs several windows' reads at once.
-- An incomplete attempt is read again (its rows are kept: they were in the window); after
-- `ATTEMPTS` the window is split in two and each half read the same way, down to windows
-- of one second.
local time = require "wdt.scan.time"
local errors = require "wdt.errors"
local paging = require "wdt.paging"

local window = {}

local ATTEMPTS = 3
local MAX_TOTAL = 2 ^ 31      -- rows one window may claim (more: a wrong answer)

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

-- The row's key as text, or nil and the field it lacks. A composite key (a list of
-- fields, for rows without an id) is its fields' values joined by " | ".
local function row_key(row, key)
  if type(row) ~= "table" then return nil, type(key) == "table" and key[1] or key end
  if type(key) ~= "table" then
    if row[key] == nil then return nil, key end
    return key_text(row[key])
  end
  local parts = {}
  for i, name in ipairs(key) do
    if row[name] == nil then return nil, name end
    parts[i] = key_text(row[name])
  end
  return table.concat(parts, " | ")
end

-- Keep the newest version of each key in `found` (key text -> {row, m}); `keys` collects
-- the keys this attempt saw. Returns an error for a row without its key, else nil and
-- how many of the keys were new to this attempt.
local function take(s, rows, found, keys)
  local facts = s.facts
  local added = 0
  for _, row in ipairs(rows) do
    local kt, lacks = row_key(row, facts.key)
    if kt == nil then
      return scan_error(s.method, ("a row without its key '%s'"):format(lacks))
    end
    local m = time.modified(row[facts.modified])
    local old = found[kt]
    if not old or (m and (not old.m or m >= old.m)) then found[kt] = { row = row, m = m, key = kt } end
    if not keys[kt] then keys[kt] = true; added = added + 1 end
  end
  return nil, added
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

-- One attempt over [a, b]: true when complete, false when not, or nil, err. `wire` sends the
-- page calls (wdt.scan.ahead: wire.send(pager, params) -> a handle at once, wire.await(handle)
-- -> page | nil, err, wire.drop(handle): its answer is not wanted).
local function attempt(s, a, b, found, wire)
  local params = {}
  for k, v in pairs(s.filter) do params[k] = v end
  params[s.facts.from] = time.format(a)
  params[s.facts.to] = time.format(b)
  local size = s.page_size
  local keys = {}
  local function send(no)
    s.stats.pages = s.stats.pages + 1
    return wire.send({ page_size = size, page_no = no, calc_total = true }, params)
  end
  -- a page answered (or its error): its rows taken into `found`; the page, its rows and how
  -- many of them were new, or nil, err
  local function took(page, err)
    if not page then return nil, err end
    local rows
    rows, err = page_rows(s, page)
    if not rows then return nil, err end
    local added
    err, added = take(s, rows, found, keys)
    if err then return nil, err end
    return page, rows, added
  end
  local first, rows = took(wire.await(send(0)))
  if not first then return nil, rows end
  local total = first.total
  if total == nil then
    -- no total_count: front to back until a short page; nothing to check against
    local no = 0
    while #rows >= size do
      no = no + 1
      local page
      page, rows = took(wire.await(send(no)))
      if not page then return nil, rows end
    end
    s.stats.unverified = s.stats.unverified + 1
    return true
  end
  -- a total no count can be, or one its own page contradicts (a short page 0 that says
  -- more rows follow), is a wrong answer: taken as given it passes rows over (a negative
  -- total reads as complete) or asks for pages without end (10^11)
  if type(total) ~= "number" or total < 0 or total % 1 ~= 0 or total > MAX_TOTAL
     or (#rows < size and total > #rows) then
    return nil, errors.new { kind = "decode", method = s.method, message =
      ("page 0: total_count %s does not fit its %d row(s) of at most %d"):format(tostring(total), #rows, size) }
  end
  if total <= #rows then return count(keys) >= total end
  -- the other pages, from the last to page 1, up to `concurrency` asked for ahead of the
  -- one taken next, their rows taken in that order as if read one by one; once a page
  -- decides the attempt (another total, a page of nothing new, an error) the answers still
  -- out are dropped and nothing more is asked for
  local no, out = math.ceil(total / size) - 1, {}
  while no >= 1 or out[1] do
    while no >= 1 and #out < s.concurrency do
      out[#out + 1] = { no = no, handle = send(no) }
      no = no - 1
    end
    local pg = table.remove(out, 1)
    local page, perr, added = took(wire.await(pg.handle))
    local verdict
    if not page then
      verdict = perr
    elseif page.total ~= total then
      verdict = false            -- another total: the pages planned from the first no longer hold
    elseif added == 0 then
      -- the same total, so no row left the window (a changed row leaves it: its modified is
      -- now), yet this page holds no row unseen: the total is not this window's (or it asks
      -- for pages without end, 2*10^9 / 2 a page)
      verdict = errors.new { kind = "decode", method = s.method, message =
        ("page %d: only rows other pages held, while total_count %s stays"):format(pg.no, tostring(total)) }
    end
    if verdict ~= nil then
      for _, o in ipairs(out) do wire.drop(o.handle) end
      if verdict == false then return false end
      return nil, verdict
    end
  end
  return count(keys) == total
end

-- Read [a, b) completely into `found`; true | nil, err.
function window.read(s, a, b, found, wire)
  for i = 1, ATTEMPTS do
    if i > 1 then s.stats.rereads = s.stats.rereads + 1 end
    local done, err = attempt(s, a, b, found, wire)
    if done == nil then return nil, err end
    if done then return true end
  end
  if b - a <= 1 then
    return nil, scan_error(s.method, ("the rows of %s kept changing while read %d times"):format(
      time.format(a), ATTEMPTS))
  end
  s.stats.splits = s.stats.splits + 1
  local mid = a + math.floor((b - a) / 2)
  local ok, err = window.read(s, a, mid, found, wire)
  if not ok then return nil, err end
  return window.read(s, mid, b, found, wire)
end

return window
