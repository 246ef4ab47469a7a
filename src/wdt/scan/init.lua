-- client:scan{...}: the rows a query method reports as changed in [from, to), window by
-- window, each version once, resumable from a checkpoint (doc/scan.md).
--
--   for row, err in client:scan{ method = "sales.TradeQuery.querySelfOrderWithDetail",
--                                filter = { shop_no = "s1" }, from = "2026-11-28 00:00:00",
--                                checkpoint = "/var/lib/shop/trades.json" } do
--     if not row then error(tostring(err)) end
--     ...
--   end
--
-- A failure comes as `false, err` and ends the loop (a generic `for` would end silently at
-- `nil, err`). The second value returned by scan is the run's state: .stats, .from, .to,
-- .resumed and .from_ignored (after the first step, with a checkpoint that existed: its
-- position, and the `from` given that was not used since the run resumed elsewhere),
-- .bad_modified (up to 20 keys of rows whose `modified` is no time: each delivered once a
-- run, counted in .stats.bad_modified), and :close() (releases the run lock of a scan left
-- before its end; Lua 5.4's `for` calls it on `break`).
--
-- With a checkpoint, the scan holds a run lock (wdt.lock) from its first row to its end:
-- option `lock` as client:sync_logistics's (nil/true the defaults, a table wdt.lock's
-- options, false none). Its name is per seller + method + checkpoint,
-- "wdt.scan.<method>/<sid>/<checkpoint path>": what two runs must not share is the
-- checkpoint (both would deliver the same rows and race its saves); scans of one method
-- with other checkpoints (another filter, another shop) are independent. A scan holding
-- no checkpoint has nothing to protect and takes no lock.
local check = require "wdt.check"
local store = require "wdt.store"
local core = require "wdt.core"
local errors = require "wdt.errors"
local flow = require "wdt.flow"
local time = require "wdt.scan.time"
local ahead = require "wdt.scan.ahead"
local known = require "wdt.scan.methods"
local clock = require "wdt.clock"

local scan = { methods = known }

local MAX_TIME = 2 ^ 40       -- a checkpoint's `next` beyond this is no time
local FUTURE_MARGIN = 600     -- seconds a checkpoint may be ahead of the server's now
-- A run's end is planned on the local clock and fixed by the server's Date in the first
-- answer: earlier when the local clock runs ahead; later only when it is behind by more
-- than this (a window of the seconds between would cost one call more for nothing: the
-- next run reads them)
local CLOCK_SLACK = 60
local POLL_EVERY = 0.002      -- seconds between looks at the calls out while rows are delivered

local FN = "scan"

local option_specs = {
  method = { "string" }, filter = { "table" }, from = { "any" }, to = { "any" },
  checkpoint = { "any" }, page_size = { "number" }, lag = { "number", 120, min = 0, integer = true },
  overlap = { "number", 60, min = 0, integer = true }, window = { "number" }, facts = { "table" },
  lock = flow.LOCK, concurrency = flow.CONCURRENCY,
}

local FACT_TYPES = { from = "string", to = "string", limit = "number", list = "string",
                     key = "string", modified = "string", page_size = "number", required = "table" }
local FACT_ORDER = { "from", "to", "limit", "list", "key", "modified", "page_size" }
local function fact_type(k) return k == "key" and "string or a list of strings" or FACT_TYPES[k] end

-- a composite key: a non-empty list of field names
local function is_names(v)
  if type(v) ~= "table" or #v == 0 then return false end
  for k, name in pairs(v) do
    if type(k) ~= "number" or type(name) ~= "string" then return false end
  end
  return true
end

-- The method's facts: the table's, with the caller's `facts` over them.
local function facts_for(method, given)
  local f = {}
  for k, v in pairs(known[method] or {}) do f[k] = v end
  for k, v in pairs(given or {}) do
    if not FACT_TYPES[k] then check.fail(FN, "facts", "unknown fact '" .. tostring(k) .. "'") end
    if type(v) ~= FACT_TYPES[k] and not (k == "key" and is_names(v)) then
      check.fail(FN, "facts", ("'%s' must be a %s"):format(k, fact_type(k)))
    end
    f[k] = v
  end
  for _, k in ipairs(FACT_ORDER) do
    if f[k] == nil then
      check.fail(FN, "facts", ("'%s' is unknown to wdt: give facts.%s (a %s)"):format(method, k, fact_type(k)))
    end
  end
  check.number(FN, "facts.limit", f.limit, 1, nil, true)
  check.number(FN, "facts.page_size", f.page_size, 1, nil, true)
  return f
end

local function check_time(name, v)
  if v == nil then return nil end
  local t, why = time.value(v)
  if not t then check.fail(FN, name, why) end
  return t
end

-- The path a checkpoint's lock is named by: the file's, made absolute (two runs started
-- in other folders name one file alike); a store of your own: its `path` or `name`.
-- wdt scan --commit takes the same lock.
function scan.checkpoint_id(cp)
  local path = type(cp) == "string" and cp or type(cp) == "table" and (cp.path or cp.name)
  if type(path) ~= "string" or path == "" then return nil end
  local pwd = os.getenv("PWD")
  if path:sub(1, 1) ~= "/" and pwd and pwd:sub(1, 1) == "/" then path = pwd .. "/" .. path end
  return (path:gsub("/%./", "/"):gsub("//+", "/"))
end

-- client:scan's options, checked (wdt.check): the scan's state.
function scan.options(opts)
  local cp = type(opts) == "table" and opts.checkpoint
  local o = flow.options(FN, opts, option_specs, cp ~= nil)
  if cp == nil and o.lock then check.fail(FN, "lock", "applies only with 'checkpoint'") end
  if not check.is_method(o.method) then check.raise(check.method_message(FN, o.method)) end
  local s = { method = o.method, facts = facts_for(o.method, o.facts),
              filter = o.filter or {} }
  local f = s.facts
  for k in pairs(s.filter) do
    if k == f.from or k == f.to then
      check.fail(FN, "filter", ("'%s' is set by the scan from `from` and `to`"):format(k))
    end
  end
  for _, k in ipairs(f.required or {}) do
    if s.filter[k] == nil then check.fail(FN, "filter", ("%s needs '%s'"):format(o.method, k)) end
  end
  s.page_size = o.page_size or f.page_size
  check.number(FN, "page_size", s.page_size, 1, f.page_size, true)
  s.width = o.window or f.limit
  check.number(FN, "window", s.width, 1, f.limit, true)
  s.lag, s.overlap, s.concurrency = o.lag, o.overlap, o.concurrency
  s.from, s.to = check_time("from", o.from), check_time("to", o.to)
  if s.from and s.to and s.to < s.from then check.fail(FN, "to", "is before `from`") end
  if type(cp) == "string" then
    s.store = store.file(cp)
  elseif cp ~= nil and not (type(cp) == "table" and cp.load and cp.save) then
    check.fail(FN, "checkpoint", "a file path or a store (with load and save) expected")
  else
    s.store = cp or nil
  end
  if not s.store and not s.from then check.fail(FN, "from", "is required without a checkpoint") end
  s.lock = o.lock
  if s.lock then
    s.lock_id = scan.checkpoint_id(cp)
    if not s.lock_id then
      check.fail(FN, "lock", "the checkpoint store has no `path` or `name` to name its lock by: "
        .. "give it one, or lock = false")
    end
  end
  s.stats = { windows = 0, pages = 0, rereads = 0, splits = 0, rows = 0, overlap_dropped = 0,
              unverified = 0, bad_modified = 0 }
  s.unstamped, s.bad_modified = {}, {}    -- keys of rows without a usable modified time
  return s
end

-- The checkpoint document: what it is about, where the next window starts, and the rows
-- delivered in the last `overlap` seconds before it (dropped when a restart reads them again).
local function load_checkpoint(s)
  s.seen = {}
  s.filter_json = core.encode(s.filter)
  if not s.store then return true end
  local doc, err = s.store:load()
  if err then return nil, err end
  if doc == nil then
    if s.from then return true end
    return nil, errors.new { kind = "store", message =
      "there is no checkpoint yet: give `from` (where the first run starts)" }
  end
  if type(doc) ~= "table" or doc.method ~= s.method or type(doc.next) ~= "number"
     or doc.next % 1 ~= 0 or doc.next < 0 or doc.next > MAX_TIME then
    return nil, errors.new { kind = "store", message =
      "the checkpoint is not one of a scan of " .. s.method }
  end
  if doc.sid ~= s.client.sid then
    return nil, errors.new { kind = "store", message =
      "the checkpoint belongs to seller " .. tostring(doc.sid) }
  end
  if doc.filter ~= s.filter_json then
    return nil, errors.new { kind = "store", message =
      "the checkpoint was written for another filter: " .. tostring(doc.filter) }
  end
  -- `from` says where a new checkpoint starts; an existing one decides where the run
  -- resumes. A `from` elsewhere is not used, and kept for the caller to say so (wdt scan
  -- warns): ignored in silence it would read as honoured.
  if s.from and s.from ~= doc.next then s.from_ignored = s.from end
  s.resumed = doc.next
  s.from = math.max(0, doc.next - s.overlap)
  for _, v in ipairs(doc.seen or {}) do
    s.seen[v] = true
    s.recent[v] = tonumber(tostring(v):match("@(%d+)$"))   -- carried to the next save
  end
  return true
end

local function base_of(s) return s.client._base or s.client end

-- The local clock with the client's learned offset to the server's. os.time (time(2)),
-- not the finer clock: that one can be a second ahead of a time(2) read just after it.
local function local_now(s)
  return math.floor(os.time() + (base_of(s)._clock_offset or 0))
end

-- The server's now: the `Date` of a one-row query (the window's end must not follow a
-- local clock that runs ahead), else the local clock with the client's learned offset.
-- Only asked when the local clock says there is nothing to read (else the first page's
-- answer says it: see scan.run).
local function server_now(s, a)
  local params = {}
  for k, v in pairs(s.filter) do params[k] = v end
  params[s.facts.from], params[s.facts.to] = time.format(a), time.format(a + 1)
  local base = base_of(s)
  base._server_date = nil
  local page, err = s.client:page_call(s.method, { page_size = 1, page_no = 0, calc_total = false }, params)
  if not page then return nil, err end
  return clock.parse_http_date(base._server_date) or local_now(s)
end

-- A checkpoint past the server's now (a clock that ran ahead once, a hand edit) would pass
-- over every row modified until then: refused.
local function check_future(s, now)
  if s.resumed and s.resumed > now + FUTURE_MARGIN then
    return nil, errors.new { kind = "store", message = ("the checkpoint is at %s, after the server's now %s "
      .. "(more than %d s ahead): refused, it would pass over the rows until then"):format(
      time.format(s.resumed), time.format(now), FUTURE_MARGIN) }
  end
  return true
end

local function save_checkpoint(s, next_start)
  if not s.store then return true end
  -- a run that stops short of the last one's end (a longer lag) does not move it back
  if s.resumed and s.resumed > next_start then next_start = s.resumed end
  local keep, seen = next_start - s.overlap, {}
  for v, m in pairs(s.recent) do
    if m >= keep then seen[#seen + 1] = v else s.recent[v] = nil end
  end
  table.sort(seen)
  return s.store:save({ sid = s.client.sid, method = s.method, filter = s.filter_json, next = next_start,
                        seen = setmetatable(seen, core.array_mt) })
end

-- The rows of [a, b) to deliver, oldest first: the newest version of each key whose
-- modified time is in the window, minus versions delivered before a restart.
local function window_rows(s, found, a, b)
  local list = {}
  for _, e in pairs(found) do
    local inside = e.m ~= nil and e.m >= a and e.m < b
    if e.m == nil and not s.unstamped[e.key] then
      -- no usable `modified` (null, "garbage", -1, ISO "…T…"): no window is its own, and
      -- the server may return it in every one: delivered once a run, by key, and reported
      inside = true
      s.unstamped[e.key] = true
      s.stats.bad_modified = s.stats.bad_modified + 1
      if #s.bad_modified < 20 then s.bad_modified[#s.bad_modified + 1] = e.key end
    end
    if inside then
      local id = e.key .. "@" .. (e.m or "")
      if s.seen[id] then
        s.stats.overlap_dropped = s.stats.overlap_dropped + 1
      else
        list[#list + 1] = e
        e.id = id
      end
    end
  end
  table.sort(list, function(x, y)
    local mx, my = x.m or -1, y.m or -1
    if mx ~= my then return mx < my end
    return x.key < y.key
  end)
  return list
end

-- The run (wdt.flow) from the first row to the end: it takes the run lock (see the
-- header) and renews it when due, on every row and while a call waits for the rate budget.
local function hold(s)
  if s.run then return s.run:touch() end
  local run, err = flow.start(s.client, { name = "scan." .. s.method, scope = s.lock_id, lock = s.lock,
                                          summary = s.stats, concurrency = s.concurrency })
  if not run then return err end
  s.run, s.client = run, run.client
end

local State = {}
State.__index = State
function State:close()
  if self.reader then self.reader:close() end
  if self.run then self.run:release() end
end
State.__close = State.close

-- scan.run(client, s): s as scan.options returned it -> the iterator, the state, nil, the
-- state again (Lua 5.4's `for` closes it, and so its run lock, when left by `break`).
function scan.run(client, s)
  setmetatable(s, State)
  s.client = client
  s.recent = {}
  local failed, done = false, false
  local pending, pi, next_start      -- the window being delivered
  local to_given = s.to
  local polled = 0

  local function fail(err)
    failed = true
    s:close()
    return false, err
  end

  -- where the run stops by the clock `now`: never closer to it than the lag
  local function stop_at(now)
    local stop = now - s.lag
    if to_given and to_given < stop then stop = to_given end
    return stop
  end

  -- the same by the server's now, after refusing a checkpoint past it: stop | nil, err
  local function server_stop(now)
    local ok, err = check_future(s, now)
    if not ok then return nil, err end
    return stop_at(now)
  end

  -- the end planned on the local clock, fixed at the first answer that carries the
  -- server's Date (wdt.scan.ahead); a checkpoint past the server's now is refused then,
  -- before any row is delivered
  local function confirm(planned, must)
    local now = clock.parse_http_date(base_of(s)._server_date)
    if not now and not must then return false end
    local stop, err = server_stop(now or local_now(s))
    if not stop then return nil, err end
    if stop > planned and stop <= planned + CLOCK_SLACK then stop = planned end
    s.to = stop
    return stop
  end

  local function start()
    local ok, err = load_checkpoint(s)
    if not ok then return nil, err end
    local a = s.from
    local stop, confirmed = stop_at(local_now(s)), false
    if stop <= a then
      -- nothing to read by the local clock: the server's says, from a one-row call
      local now, nerr = server_now(s, a)
      if not now then return nil, nerr end
      stop, err = server_stop(now)
      if not stop then return nil, err end
      confirmed = true
    else
      base_of(s)._server_date = nil           -- the first page's answer brings it
    end
    s.to = stop
    s.reader = ahead.new(s, a, stop, confirm)
    s.reader.confirmed = confirmed
    return true
  end

  local function next_row()
    if failed or done then return nil end
    local lerr = hold(s)
    if lerr then return fail(lerr) end
    if pending then
      pi = pi + 1
      local e = pending[pi]
      if e then
        s.stats.rows = s.stats.rows + 1
        if e.m then s.recent[e.id] = e.m end
        local t = core.monotonic()
        if t >= polled + POLL_EVERY then        -- the windows ahead go on while rows are taken
          polled = t
          local ok, err = s.reader:poll()
          if not ok then return fail(err) end
        end
        return e.row
      end
      pending = nil                    -- the caller took every row: the window is done
      local ok, err = save_checkpoint(s, next_start)
      if not ok then return fail(err) end
    end
    if not s.reader then
      local ok, err = start()
      if not ok then return fail(err) end
    end
    -- windows in order, read ahead while earlier ones are delivered (wdt.scan.ahead)
    while true do
      local w, err = s.reader:next_window()
      if not w then
        if err then return fail(err) end
        break
      end
      if not w.ok then return fail(w.err) end
      s.stats.windows = s.stats.windows + 1
      local b = w.upto or w.b
      pending, pi, next_start = window_rows(s, w.found, w.a, b), 0, b
      if pending[1] then return next_row() end
      pending = nil
      local ok, serr = save_checkpoint(s, b)
      if not ok then return fail(serr) end
    end
    done = true
    s:close()
    return nil
  end

  -- the run's stop marker (the lock lost) or SIGINT ends the scan with false, err
  local function step()
    local ok, row, err = pcall(next_row)
    if ok then return row, err end
    if s.reader then s.reader:close(true) end   -- raised while calls were out: they are aborted
    local why = flow.stop_error(row)
    if not why or why.kind == "interrupted" then
      s:close()
      error(row, 0)
    end
    return fail(errors.is(why) and why or errors.new(why))
  end

  return step, s, nil, s
end

return scan
