-- The logistics sync loop: read sales.LogisticsSync.getSyncListExt from page 0 again after
-- every report, hand each new row to the handler, report the outcomes with
-- sales.LogisticsSync.update in batches, and match the ERP's refusal messages to items.
-- See doc/sync.md.
local core = require "wdt.core"
local check = require "wdt.check"
local errors = require "wdt.errors"
local paging = require "wdt.paging"
local common = require "wdt.sync.common"
local flow = require "wdt.flow"

local logistics = {}

local LIST = "sales.LogisticsSync.getSyncListExt"
local UPDATE = "sales.LogisticsSync.update"
local SYNCED, DEFERRED, FAILED = common.SYNCED, common.DEFERRED, common.FAILED
local append, is_integer = common.append, check.is_integer

-- One report item, as sales.LogisticsSync.update wants it.
function logistics.check_item(item)
  if type(item) ~= "table" then return nil, "item is not a table" end
  if not is_integer(item.sync_id) then return nil, "sync_id is not an integer" end
  local st = item.status
  if st ~= SYNCED and st ~= DEFERRED and st ~= FAILED then
    return nil, "status must be 0, -100 or 2, got " .. tostring(st)
  end
  if type(item.error_msg) ~= "string" then return nil, "error_msg is not a string" end
  return true
end

-- Which item a refusal message names: messages are free text, so an item is matched when
-- its sync_id stands in the message as a whole number, or by a "第N条" (N-th item) prefix.
local function match_refusal(chunk, text)
  for _, item in ipairs(chunk) do
    local id = check.id_text(item.sync_id)
    local s = text:find(id, 1, true)
    while s do
      local before, after = text:sub(s - 1, s - 1), text:sub(s + #id, s + #id)
      if not before:match("%d") and not after:match("%d") then return item end
      s = text:find(id, s + 1, true)
    end
  end
  local n = tonumber(text:match("^%s*第(%d+)条"))
  return n and chunk[n] or nil
end

-- The refusals that say the item is unknown or already reported ("物流同步id:N 不存在或已回传"):
-- after a retry they mean an earlier try was applied.
local GONE = { "不存在", "已回传" }

local function says_gone(text)
  for _, w in ipairs(GONE) do
    if text:find(w, 1, true) then return true end
  end
  return false
end

-- Sorts one answer of update about `chunk` into the summary. `tries` > 1: an earlier try
-- may have been applied, so "unknown or already reported" is that try's success.
local OUTCOME = { [SYNCED] = "synced", [FAILED] = "failed", [DEFERRED] = "deferred" }

-- Returns how many of the chunk's items left the ERP's queue (all but the deferred and the
-- refused ones; an unconfirmed one is counted as gone): the read-ahead's estimate.
local function settle(run, chunk, data, tries)
  local s = run.summary
  local refused, confirmed, anonymous = {}, {}, false
  if type(data) == "table" then
    for i = 1, #data do
      local text = data[i]
      if type(text) ~= "string" then text = core.encode(text) end
      local hit = match_refusal(chunk, text)
      if hit and tries > 1 and says_gone(text) and not refused[hit.sync_id] then
        confirmed[hit.sync_id] = true
      else
        append(s.refused_items, { sync_id = hit and hit.sync_id, status = hit and hit.status,
                                  row = hit and hit.row, message = text })
        s.refused = s.refused + 1
        if hit then
          refused[hit.sync_id], confirmed[hit.sync_id] = true, nil
        else
          anonymous = true
        end
      end
    end
  end
  local messages = {}
  for _, r in ipairs(s.refused_items) do if r.sync_id ~= nil then messages[r.sync_id] = r.message end end
  local left = 0
  for _, it in ipairs(chunk) do
    s.reported = s.reported + 1
    if it.status ~= DEFERRED and not refused[it.sync_id] then left = left + 1 end
    local id, tid = it.sync_id, it.row and it.row.tid
    if anonymous and not refused[id] and not confirmed[id] then
      -- a refusal naming no item: any item it did not name may be the refused one
      append(s.unconfirmed, it)
      common.record(run, id, tid, "unconfirmed", it.error_msg)
    elseif not refused[id] then                -- (refused ones are counted in `refused`)
      local f = common.count_field[it.status]
      s[f] = s[f] + 1
      if confirmed[id] then append(s.confirmed_on_retry, id) end
      common.record(run, id, tid, OUTCOME[it.status], it.error_msg ~= "" and it.error_msg or nil)
    else
      common.record(run, id, tid, "refused", messages[id])
    end
  end
  return left
end

local FN = "sync_logistics"
local option_specs = {
  shop_no = { "string" }, handler = { "function|table" }, on_outcome = { "function" },
  batch = { "number", min = 1, max = 1000, integer = true },
  page_size = { "number", min = 1, max = 1000, integer = true }, tid = { "string" },
  logistics_no = { "string" }, is_part_sync = { "number" }, dry_run = { "boolean" },
  lock = flow.LOCK, on_progress = flow.ON_PROGRESS, concurrency = flow.CONCURRENCY,
}

-- client:sync_logistics's options, checked (wdt.check) and defaulted.
function logistics.options(opts)
  local o = flow.options(FN, opts, option_specs, true)
  if not o.dry_run and o.handler == nil then check.fail(FN, "handler", "function expected, got nil") end
  if o.handler ~= nil then o.handler = common.handler(FN, o.handler) end
  if o.shop_no == nil or o.shop_no == "" then check.fail(FN, "shop_no", "non-empty string expected") end
  if o.is_part_sync ~= nil and o.is_part_sync ~= 0 and o.is_part_sync ~= 1 then
    check.fail(FN, "is_part_sync", "0 or 1 expected")
  end
  return o
end

-- A page that is not what getSyncListExt answers: nil, or a message. `first`: page 0 with
-- its total.
local function bad_page(page, page_size, first)
  local total = page.response.total
  if first and total ~= nil and (not is_integer(total) or total < #page.rows) then
    return ("total %s does not match the %d row(s) of the first page"):format(core.encode(total), #page.rows)
  end
  if #page.rows > page_size then
    return ("%d rows in a page of %d"):format(#page.rows, page_size)
  end
end

-- The ids of a page, to tell a page answered twice (a server that ignores page_no).
local function page_key(rows)
  local ids = {}
  for i, row in ipairs(rows) do ids[i] = core.encode(type(row) == "table" and row.sync_id or row) end
  return table.concat(ids, ",")
end

-- An outcome of the handler for `row` (status, message from wdt.sync.common): to report
-- (run.pending), or, when the handler failed as code (status nil), unreported with the
-- error: the row stays in the ERP's queue.
local function settle_handled(run, id, row, status, message)
  if status == nil then
    local s = run.summary
    s.handler_errors = s.handler_errors + 1
    append(s.unreported, { sync_id = id, row = row, kind = "handler", message = message })
  else
    append(run.pending, { sync_id = id, status = status, error_msg = message, row = row })
  end
end

-- Counts the rows of a page not seen before and hands them to the handler (one by one, or
-- the page's new rows at once to a batch handler); their outcomes join run.pending. A row
-- without an integer sync_id is listed as invalid once. Returns how many rows were handed.
local function take_rows(run, rows, seen)
  local s, opts = run.summary, run.opts
  local fresh = {}
  for _, row in ipairs(rows) do
    local id = type(row) == "table" and row.sync_id
    if not is_integer(id) then
      local key = core.encode(row)        -- the same bad row is read again on each pass
      if not seen[key] then
        seen[key] = true
        s.read = s.read + 1
        append(s.invalid, { row = row, message = "row without an integer sync_id: " .. key })
      end
    elseif not seen[id] then
      seen[id] = true
      s.read = s.read + 1
      if not opts.dry_run then append(fresh, row) end
    end
  end
  local h = opts.handler
  if #fresh > 0 and h and h.batch then
    run.current = {}
    for i, row in ipairs(fresh) do run.current[i] = { sync_id = row.sync_id, row = row } end
    local outcomes = common.batch_outcomes(h.batch, fresh)
    run.current = nil
    for i, row in ipairs(fresh) do settle_handled(run, row.sync_id, row, outcomes[i][1], outcomes[i][2]) end
    run:touch()
  else
    for _, row in ipairs(fresh) do
      run.current = { { sync_id = row.sync_id, row = row } }
      local status, message = common.outcome(h.handle, row)
      run.current = nil
      settle_handled(run, row.sync_id, row, status, message)
      run:touch()
    end
  end
  return #fresh
end

-- Moves the items of run.pending that fail the check to `unreported` (never sent, with
-- the reason). Only with none of them in a call.
local function admit(run)
  local valid = {}
  for _, item in ipairs(run.pending) do
    local ok, why = logistics.check_item(item)
    if ok then append(valid, item)
    else item.message = why append(run.summary.unreported, item) end
  end
  run.pending = valid
end

-- Report run.pending in batches (on the flow runner: run:batches); on a failure that
-- retries did not cure, what is left is unreported. `ahead` (a pass's read-ahead, nil for
-- none): while the reports of a full page are out, the queue's next page is read too, and
-- once every call before it settled (it ends the window's building), its new rows go to the
-- handler and their reports out, with the next read-ahead, until one brings nothing new.
-- Such a read decides nothing about the end of the pass or of the run (doc/sync.md): its
-- rows only go through `seen` like any other. ahead = { page_size, filter, seen, full (the
-- last read was a full page), unread (where the first unread row is, assuming no report
-- out was applied yet), fresh (rows it brought) }.
local function report(run, ahead)
  local s, size = run.summary, run.opts.batch or 100
  admit(run)
  -- run.pending[1..taken] are in calls of the window (settled in order, from the front);
  -- `built`: a chunk was built since the last read, so a read-ahead has reports to overlap
  -- with; `stopping`: a report failed, so the run stops once the window is empty
  local taken, built, stopping = 0, false, false
  local function drop_front(n)
    local rest = {}
    for j = n + 1, #run.pending do rest[#rest + 1] = run.pending[j] end
    run.pending, taken = rest, taken - n
  end
  local ok, err = run:batches {
    next = function()
      if taken < #run.pending then
        local chunk, wire = {}, {}
        for j = taken + 1, math.min(taken + size, #run.pending) do
          local it = run.pending[j]
          chunk[#chunk + 1] = it
          wire[#wire + 1] = { sync_id = it.sync_id, status = it.status, error_msg = it.error_msg }
        end
        taken, built = taken + #chunk, true
        chunk.wire = wire
        return chunk
      end
      if not (ahead and ahead.full and built) then return nil end
      built = false
      -- the page of the first unread row, counting the rows of the reports out as still in
      -- the queue (they most likely are: the server has only just got them)
      local out = 0
      for j = 1, taken do if run.pending[j].status ~= DEFERRED then out = out + 1 end end
      local page_no = math.max(0, math.floor(ahead.unread / ahead.page_size))
      return { read_ahead = true, out = out,
               pager = { page_size = ahead.page_size, page_no = page_no, calc_total = false } }, true
    end,
    call = function(b)
      if b.read_ahead then
        return { method = LIST, args = { n = 1, ahead.filter }, pager = b.pager }
      end
      run.in_report = true
      return { method = UPDATE, args = { n = 1, b.wire } }
    end,
    -- `tries` > 1 tells that an earlier try may have been applied (update is retried)
    settle = function(chunk, resp, tries)
      if chunk.read_ahead then
        -- every call before it settled and none is out. Failed, or not a page: dropped
        -- (the quiet read that follows decides); and nothing more once the run stops
        local page = not stopping and resp and paging.page(resp, chunk.pager, LIST)
        if not page or bad_page(page, ahead.page_size) then ahead.full = false return true end
        ahead.full = #page.rows >= ahead.page_size
        ahead.unread = chunk.pager.page_no * ahead.page_size + #page.rows - chunk.out  -- those left since
        local fresh = take_rows(run, page.rows, ahead.seen)
        ahead.fresh = ahead.fresh + fresh
        admit(run)
        if s.total and s.total < s.read then s.total = s.read end
        run:progress()
        return true
      end
      run.in_report = false
      drop_front(#chunk)
      if resp == nil then
        -- the run stops: this chunk and what no call of the window carries are unreported
        stopping = true
        for _, it in ipairs(chunk) do append(s.unreported, it) end
        for j = taken + 1, #run.pending do append(s.unreported, run.pending[j]) run.pending[j] = nil end
        return nil, tries                         -- the error
      end
      if not paging.is_list(resp.data) then
        -- not the answer update gives: whether the chunk was applied is unknown
        stopping = true
        for _, it in ipairs(chunk) do append(s.unconfirmed, it) end
        return nil, errors.new { kind = "decode", method = UPDATE,
          message = ("the answer's data is %s, not a list of refusals: %d item(s) unconfirmed")
            :format(type(resp.data), #chunk) }
      end
      local left = settle(run, chunk, resp.data, tries or 1)
      if ahead then ahead.unread = ahead.unread - left end
      return true
    end,
  }
  if not ok then            -- the run stops: what no call carried is unreported
    for _, it in ipairs(run.pending) do append(s.unreported, it) end
    run.pending = {}
  end
  return ok, err
end

-- How many pages beyond the queue's size (as page 0 gave it) a pass may step: rows that
-- arrive during the pass, no more. Past that the paging does not end.
local SPARE_PAGES = 10

-- logistics.run(client, opts): opts as logistics.options returned them.
function logistics.run(client, opts)
  local page_size = opts.page_size or 100
  local filter = { shop_no = opts.shop_no, is_own_platform = true,
                   tid = opts.tid, logistics_no = opts.logistics_no, is_part_sync = opts.is_part_sync }
  local run, lerr = common.start(client, "logistics", opts, "sync.logistics", opts.shop_no)
  if not run then return nil, lerr end
  run.report = report
  local summary, err = run:guard(function() return logistics.passes(run, filter, page_size) end,
                                 common.settle)
  return common.conclude(run, "sync_id", summary, err)
end

-- The passes over the queue, until one finds nothing new -> run:finish() | run:fail(...).
function logistics.passes(run, filter, page_size)
  local s, seen = run.summary, {}
  -- A pass walks the queue from page 0. Handled rows are reported before the next read and
  -- leave the queue (deferred and unreported ones stay in place), so the same page_no is
  -- read again; it moves on only over a page of rows already seen. Passes repeat until one
  -- finds nothing new; a pass that never left page 0 has seen the whole queue at once and
  -- is the last. These reads are made with no call out; the read-aheads of report() are
  -- not: they move no page_no and end nothing.
  repeat
    local fresh_in_pass, page_no, stepped = 0, 0, false
    local pass_total, last_key, just_stepped = 0, nil, false
    while true do
      local page, err = run.client:page_call(LIST, { page_size = page_size, page_no = page_no,
        calc_total = page_no == 0 }, filter)
      if not page then return run:fail(err, "reading the queue") end
      local why = bad_page(page, page_size, page_no == 0)
      if why then
        return run:fail({ kind = "decode", method = LIST, message = why }, "reading the queue")
      end
      local this_key = page_key(page.rows)
      if just_stepped and #page.rows > 0 and this_key == last_key then
        return run:fail { kind = "decode", method = LIST, message =
          ("reading the queue: page %d is the same as page %d (the server ignores page_no?)")
            :format(page_no, page_no - 1) }
      end
      last_key, just_stepped = this_key, false
      if page_no == 0 then pass_total = page.total or 0 end
      if page.total then
        -- what this run will have read: rows read so far + rows pending that are new (of
        -- the pending rows, the deferred and the invalid ones were read already)
        local est = s.read + page.total - s.deferred - #s.invalid - s.handler_errors
        if est < s.read then est = s.read end
        s.total = est
      end
      local fresh = take_rows(run, page.rows, seen)
      fresh_in_pass = fresh_in_pass + fresh
      if fresh > 0 then
        -- with calls in flight, the pages after this one are read while its reports are out
        -- (report's `ahead`: their rows are only handed over, they decide nothing here)
        local ahead = run.concurrency > 1 and { page_size = page_size, filter = filter, seen = seen, fresh = 0,
          full = #page.rows >= page_size, unread = page_no * page_size + #page.rows } or nil
        local ok, rerr = report(run, ahead)
        if not ok then return run:fail(rerr, "reporting outcomes") end
        if ahead then fresh_in_pass = fresh_in_pass + ahead.fresh end
      elseif #page.rows < page_size then
        break
      else
        page_no = page_no + 1
        stepped, just_stepped = true, true
        if page_no * page_size > math.max(pass_total, s.read) + SPARE_PAGES * page_size then
          return run:fail { kind = "decode", method = LIST, message =
            ("reading the queue: paging does not end (page %d of a queue of %d)"):format(page_no, pass_total) }
        end
      end
      run:progress()
    end
  until fresh_in_pass == 0 or not stepped
  if s.total == nil or s.total < s.read then s.total = s.read end
  run:progress()
  return run:finish()
end

return logistics
