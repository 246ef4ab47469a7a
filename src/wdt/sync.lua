-- The sync loops: read what the ERP wants reported, hand each item to the caller's
-- handler, report every outcome back. Nothing read is ever dropped: each item gets exactly
-- one report, or is listed in the summary as unreported (and the loop returns an error).
--
--   client:sync_logistics{shop_no=, handler=, batch=, page_size=, on_progress=, dry_run=,
--                         tid=, logistics_no=, is_part_sync=}
--   client:sync_stock{handler=, count=, force_sync=, on_progress=, dry_run=}
--     -> summary | nil, err (err.summary holds the summary so far)
--
-- handler(item) returns true (synced), false, message (failed) or nil, message (try
-- later); a handler that raises counts as failed with its error as the message.
-- See doc/sync.md.
local core = require "wdt.core"
local errors = require "wdt.errors"
local policy = require "wdt.policy"

local sync = {}

local LIST = "sales.LogisticsSync.getSyncListExt"
local UPDATE = "sales.LogisticsSync.update"
local WAIT_LIST = "sales.StockSync.getSelfWaitSyncIdListOpen"
local CALC = "sales.StockSync.calcStock"
local SUCCESS = "sales.StockSync.syncSuccess"
local FAIL = "sales.StockSync.syncFail"

local SYNCED, DEFERRED, FAILED = 0, -100, 2
sync.SYNCED, sync.DEFERRED, sync.FAILED = SYNCED, DEFERRED, FAILED

-- error_msg is cut to this many characters (the vendor documents 255 for its messages).
sync.MAX_MESSAGE = 255

local function is_integer(v)
  if math.type then return math.type(v) == "integer" end
  return type(v) == "number" and v % 1 == 0 and v == v and v ~= math.huge and v ~= -math.huge
end

local function argerror(fname, name, msg)
  error(("bad argument '%s' to '%s' (%s)"):format(name, fname, msg), 3)
end

local function check_opts(fname, opts, allowed)
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (options table expected, got %s)"):format(fname, type(opts)), 3)
  end
  for k, v in pairs(opts) do
    local want = allowed[k]
    if not want then argerror(fname, tostring(k), "unknown option") end
    if type(v) ~= want then argerror(fname, k, want .. " expected, got " .. type(v)) end
  end
  if not opts.dry_run and type(opts.handler) ~= "function" then
    argerror(fname, "handler", "function expected, got " .. type(opts.handler))
  end
end

local function check_range(fname, opts, name, min, max)
  local v = opts[name]
  if v ~= nil and (v % 1 ~= 0 or v < min or v > max) then
    argerror(fname, name, ("integer from %d to %d expected"):format(min, max))
  end
end

-- lua.c (and LuaJIT) turn SIGINT into the error "interrupted!" raised in running Lua code.
local function is_interrupt(e)
  return type(e) == "string" and e:find("interrupted!$") ~= nil
end

-- Valid UTF-8 (invalid bytes become '?'), at most sync.MAX_MESSAGE characters, so that the
-- report can always be encoded and is not refused for its length.
function sync.clean_message(s)
  if type(s) ~= "string" then s = tostring(s) end
  local out, n, i, len = {}, 0, 1, #s
  while i <= len and n < sync.MAX_MESSAGE do
    local c = s:byte(i)
    local need, min
    if c < 0x80 then need, min = 0, 0
    elseif c >= 0xC2 and c <= 0xDF then need, min = 1, 0x80
    elseif c >= 0xE0 and c <= 0xEF then need, min = 2, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then need, min = 3, 0x10000
    else need = -1 end
    local ok = need >= 0 and i + need <= len
    if ok and need > 0 then
      local cp = c % (2 ^ (6 - need))
      for j = 1, need do
        local b = s:byte(i + j)
        if b < 0x80 or b > 0xBF then ok = false break end
        cp = cp * 64 + (b - 0x80)
      end
      if ok and (cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF)) then ok = false end
    end
    n = n + 1
    if ok then
      out[n] = s:sub(i, i + need)
      i = i + need + 1
    else
      out[n] = "?"
      i = i + 1
    end
  end
  return table.concat(out)
end

-- handler(row) -> true | false, message | nil, message; raising counts as failed.
-- Returns the status and error_msg to report.
function sync.outcome(handler, row)
  local ok, result, message = pcall(handler, row)
  if not ok then
    if is_interrupt(result) then error(result, 0) end
    return FAILED, sync.clean_message("handler error: " .. tostring(result))
  end
  if message ~= nil then message = sync.clean_message(message) end
  if result == true then return SYNCED, "" end
  if result == false then return FAILED, message or "failed" end
  if result == nil then return DEFERRED, message or "deferred" end
  return FAILED, "handler returned " .. type(result) .. " (expected true, false or nil)"
end

-- One report item of the logistics flow, as sales.LogisticsSync.update wants it.
function sync.check_item(item)
  if type(item) ~= "table" then return nil, "item is not a table" end
  if not is_integer(item.sync_id) then return nil, "sync_id is not an integer" end
  local st = item.status
  if st ~= SYNCED and st ~= DEFERRED and st ~= FAILED then
    return nil, "status must be 0, -100 or 2, got " .. tostring(st)
  end
  if type(item.error_msg) ~= "string" then return nil, "error_msg is not a string" end
  return true
end

local count_field = { [SYNCED] = "synced", [FAILED] = "failed", [DEFERRED] = "deferred" }

local function new_run(client, kind, opts)
  local summary = {
    kind = kind, read = 0, reported = 0, synced = 0, failed = 0, deferred = 0, refused = 0,
    refused_items = {}, unreported = {}, invalid = {}, started = core.unix_time(),
    dry_run = opts.dry_run or false,
  }
  return { client = client, opts = opts, summary = summary, pending = {}, current = nil,
           in_report = false }
end

-- on_progress(summary) after every page (logistics) or good (stock), and once at the end.
local function progress(run)
  local s = run.summary
  s.elapsed = core.unix_time() - s.started
  if run.opts.on_progress then run.opts.on_progress(s) end
end

local function append(list, v) list[#list + 1] = v end

local function make_error(run, fields)
  local s = run.summary
  s.elapsed = core.unix_time() - s.started
  fields.summary = s
  if #s.unreported > 0 then
    fields.message = ("%s; %d item(s) left unreported"):format(fields.message, #s.unreported)
  end
  return nil, errors.new(fields)
end

local function describe_kind(err)
  return tostring(err.kind) .. " error"
end

-- A failure that stops the loop; `err` is the client's error, `what` says what was tried.
local function stop_error(run, err, what)
  return make_error(run, {
    kind = err.kind, status = err.status, http_status = err.http_status, method = err.method,
    tries = err.tries, retryable = err.retryable, sent = err.sent, cause = err,
    message = ("%s: %s"):format(what, err.message or describe_kind(err)),
  })
end

-- Runs body(); an interrupt (SIGINT) anywhere in it ends the loop cleanly: outcomes already
-- handled are reported when the interrupt did not hit a report, the rest is unreported.
local function guarded(run, body)
  local ok, a, b = pcall(body)
  if ok then return a, b end
  if not is_interrupt(a) then error(a, 0) end
  if not run.in_report and #run.pending > 0 and run.report then
    pcall(run.report, run)              -- moves what it cannot report to `unreported`
  end
  for _, item in ipairs(run.pending) do append(run.summary.unreported, item) end
  run.pending = {}
  if run.current then append(run.summary.unreported, run.current) end
  return make_error(run, { kind = "interrupted", message = "stopped by SIGINT (Ctrl-C)" })
end

---------------------------------------------------------------------------- logistics

-- Which item a refusal message names: messages are free text, so an item is matched when
-- its sync_id stands in the message as a whole number, or by a "第N条" (N-th item) prefix.
local function match_refusal(chunk, text)
  for _, item in ipairs(chunk) do
    local id = ("%d"):format(item.sync_id)
    local s = text:find(id, 1, true)
    while s do
      local before, after = text:sub(s - 1, s - 1), text:sub(s + #id, s + #id)
      if not before:match("%d") and not after:match("%d") then return item end
      s = text:find(id, s + 1, true)
    end
  end
  local n = tonumber(text:match("^第(%d+)条"))
  return n and chunk[n] or nil
end

-- Report run.pending in batches. Items that fail the check are never sent and are listed
-- as unreported with the reason; on a failure that retries did not cure, the rest is too.
local function report_logistics(run)
  local s, batch = run.summary, run.opts.batch or 100
  local valid = {}
  for _, item in ipairs(run.pending) do
    local ok, why = sync.check_item(item)
    if ok then append(valid, item)
    else item.message = why append(s.unreported, item) end
  end
  run.pending = valid
  while #run.pending > 0 do
    local chunk, wire = {}, {}
    for j = 1, math.min(batch, #run.pending) do
      local it = run.pending[j]
      chunk[j] = it
      wire[j] = { sync_id = it.sync_id, status = it.status, error_msg = it.error_msg }
    end
    run.in_report = true
    local data, err = run.client:call(UPDATE, wire)
    run.in_report = false
    if data == nil then
      for _, it in ipairs(run.pending) do append(s.unreported, it) end
      run.pending = {}
      return nil, err
    end
    local refused_ids = {}
    if type(data) == "table" then
      for i = 1, #data do
        local text = data[i]
        if type(text) ~= "string" then text = core.encode(text) end
        local hit = match_refusal(chunk, text)
        append(s.refused_items, { sync_id = hit and hit.sync_id, status = hit and hit.status,
                                  row = hit and hit.row, message = text })
        s.refused = s.refused + 1
        if hit then refused_ids[hit.sync_id] = true end
      end
    end
    for _, it in ipairs(chunk) do
      s.reported = s.reported + 1
      if not refused_ids[it.sync_id] then
        local f = count_field[it.status]
        s[f] = s[f] + 1
      end
    end
    local rest = {}
    for j = #chunk + 1, #run.pending do rest[#rest + 1] = run.pending[j] end
    run.pending = rest
  end
  return true
end

function sync.logistics(client, opts)
  check_opts("sync_logistics", opts, {
    shop_no = "string", handler = "function", batch = "number", page_size = "number",
    on_progress = "function", tid = "string", logistics_no = "string", is_part_sync = "number",
    dry_run = "boolean",
  })
  if opts.shop_no == nil or opts.shop_no == "" then
    argerror("sync_logistics", "shop_no", "non-empty string expected")
  end
  check_range("sync_logistics", opts, "batch", 1, 1000)
  check_range("sync_logistics", opts, "page_size", 1, 1000)
  if opts.is_part_sync ~= nil and opts.is_part_sync ~= 0 and opts.is_part_sync ~= 1 then
    argerror("sync_logistics", "is_part_sync", "0 or 1 expected")
  end
  local page_size = opts.page_size or 100
  local filter = { shop_no = opts.shop_no, is_own_platform = true,
                   tid = opts.tid, logistics_no = opts.logistics_no, is_part_sync = opts.is_part_sync }
  local run = new_run(client, "logistics", opts)
  run.report = report_logistics
  local s, seen = run.summary, {}

  -- A pass walks the queue from page 0. Handled rows are reported before the next read and
  -- leave the queue (deferred ones stay in place), so the same page_no is read again; it
  -- moves on only over a page of rows already seen. Passes repeat until one finds nothing
  -- new; a pass that never left page 0 has seen the whole queue at once and is the last.
  return guarded(run, function()
    repeat
      local fresh_in_pass, page_no, stepped = 0, 0, false
      while true do
        local page, err = client:page_call(LIST, { page_size = page_size, page_no = page_no,
          calc_total = page_no == 0 }, filter)
        if not page then return stop_error(run, err, "reading the queue") end
        if page.total then
          -- what this run will have handled: rows read so far + rows pending that are new
          -- (of the pending rows, the deferred ones were read already)
          local est = s.read + page.total - s.deferred
          if est < s.read then est = s.read end
          s.total = est
        end
        local fresh = 0
        for _, row in ipairs(page.rows) do
          local id = type(row) == "table" and row.sync_id
          if not is_integer(id) then
            local key = core.encode(row)        -- the same bad row is read again on each pass
            if not seen[key] then
              seen[key] = true
              append(s.invalid, { row = row, message = "row without an integer sync_id: " .. key })
            end
          elseif not seen[id] then
            seen[id] = true
            s.read = s.read + 1
            if not opts.dry_run then
              fresh = fresh + 1
              run.current = { sync_id = id, row = row }
              local status, message = sync.outcome(opts.handler, row)
              append(run.pending, { sync_id = id, status = status, error_msg = message, row = row })
              run.current = nil
            end
          end
        end
        fresh_in_pass = fresh_in_pass + fresh
        if fresh > 0 then
          local ok, rerr = report_logistics(run)
          if not ok then return stop_error(run, rerr, "reporting outcomes") end
        elseif #page.rows < page_size then
          break
        else
          page_no = page_no + 1
          stepped = true
        end
        progress(run)
      end
    until fresh_in_pass == 0 or not stepped
    if s.total == nil or s.total < s.read then s.total = s.read end
    progress(run)
    return s
  end)
end

---------------------------------------------------------------------------- stock

-- What a report of a stock outcome carries: the fields of calcStock's answer that the
-- vendor's SDK echoes back (SyncInfo), and the outcome.
local INFO_FIELDS = { "syn_stock", "stock_change_count", "stock_syn_rule_id", "stock_syn_rule_no",
                      "stock_syn_warehouses", "stock_syn_mask", "stock_syn_percent",
                      "stock_syn_plus", "stock_syn_min", "stock_syn_max" }

local function sync_info(calc, success, message)
  local info = {}
  for _, k in ipairs(INFO_FIELDS) do
    local v = calc[k]
    if v ~= nil and v ~= core.null and type(v) ~= "table" then info[k] = v end
  end
  info.is_syn_success = success
  info.is_manual = false
  info.syn_result = message
  return info
end

-- An API refusal about one good (a field it does not accept, a good it does not know):
-- the loop goes on. Anything else (authentication, clock, rate limits after retries,
-- network) stops it.
local function refuses_item(err)
  if err.kind ~= "api" then return false end
  if err.status == 2 then return true end
  return err.status == 100 and not policy.is_rate_limit(err)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Report one stock outcome (run.pending holds at most the one item being reported).
local function report_stock(run)
  local s = run.summary
  local item = run.pending[1]
  if not item then return true end
  if item.status == DEFERRED then
    -- nothing to send: the good stays waiting in the ERP and comes again on the next run
    s.reported = s.reported + 1
    s.deferred = s.deferred + 1
    run.pending = {}
    return true
  end
  local method = item.status == SYNCED and SUCCESS or FAIL
  local info = sync_info(item.calc, item.status == SYNCED, item.error_msg)
  run.in_report = true
  -- A repeated report of the same outcome (same stock_change_count) changes nothing on
  -- the ERP's side, so the report may be retried after a timeout.
  local resp, err = run.client:request { method = method, idempotent = true,
                                         args = { n = 2, item.api_goods_id, info } }
  run.in_report = false
  run.pending = {}
  if not resp then
    if refuses_item(err) then
      s.reported = s.reported + 1
      s.refused = s.refused + 1
      append(s.refused_items, { api_goods_id = item.api_goods_id, status = item.status,
                                stage = method, message = err.message or tostring(err) })
      return true
    end
    append(s.unreported, item)
    return nil, err
  end
  s.reported = s.reported + 1
  local f = count_field[item.status]
  s[f] = s[f] + 1
  return true
end

function sync.stock(client, opts)
  check_opts("sync_stock", opts, {
    handler = "function", count = "number", batch = "number", force_sync = "boolean",
    on_progress = "function", dry_run = "boolean",
  })
  check_range("sync_stock", opts, "count", 10, 5000)
  check_range("sync_stock", opts, "batch", 10, 5000)
  local count = opts.count or opts.batch or 100
  local force = opts.force_sync or false
  local run = new_run(client, "stock", opts)
  run.report = report_stock
  local s, seen = run.summary, {}

  -- getSelfWaitSyncIdListOpen is a cursor: it lists waiting goods after `position` and
  -- answers the position to continue from. Goods that become waiting during the run get a
  -- later position and are read in this run; a good left waiting (deferred) is not read
  -- again before the next run, which starts from position 0.
  return guarded(run, function()
    local position = 0
    while true do
      local data, err = client:call(WAIT_LIST, count, position)
      if data == nil then return stop_error(run, err, "reading the wait list") end
      local ids = type(data) == "table" and data.id_list
      local next_pos = type(data) == "table" and data.position
      if type(ids) ~= "table" or (#ids > 0 and not is_integer(next_pos)) then
        return make_error(run, { kind = "decode", method = WAIT_LIST,
          message = "reading the wait list: the answer has no id_list/position" })
      end
      if #ids == 0 then break end
      local fresh = 0
      for i = 1, #ids do
        local id = ids[i]
        if not is_integer(id) then
          local key = core.encode(id)
          if not seen[key] then
            seen[key] = true
            append(s.invalid, { api_goods_id = id, message = "id that is not an integer: " .. key })
          end
        elseif not seen[id] then
          seen[id] = true
          fresh = fresh + 1
          s.read = s.read + 1
          if not opts.dry_run then
            run.current = { api_goods_id = id }
            local calc, cerr = client:call(CALC, id, force)
            if calc == nil then
              if not refuses_item(cerr) then return stop_error(run, cerr, "computing the stock") end
              s.reported = s.reported + 1       -- settled: the ERP said no about this good
              s.refused = s.refused + 1
              append(s.refused_items, { api_goods_id = id, stage = CALC,
                                        message = cerr.message or tostring(cerr) })
              run.current = nil
            elseif type(calc) ~= "table" then
              run.current = nil
              append(s.invalid, { api_goods_id = id, message = "calcStock answered no object" })
            else
              local item = copy(calc)
              item.api_goods_id = id
              local status, message = sync.outcome(opts.handler, item)
              append(run.pending, { api_goods_id = id, status = status, error_msg = message,
                                    calc = calc })
              run.current = nil
              local ok, rerr = report_stock(run)
              if not ok then return stop_error(run, rerr, "reporting the outcome") end
            end
          end
          progress(run)
        end
      end
      if fresh == 0 and next_pos <= position then break end   -- the cursor does not move
      if next_pos > position then position = next_pos end
      progress(run)
    end
    s.total = s.read
    progress(run)
    return s
  end)
end

return sync
