-- The stock sync loop: walk sales.StockSync.getSelfWaitSyncIdListOpen's cursor, compute
-- the waiting goods' stock (batchCalcStock, or calcStock a good a call where the vendor does
-- not offer it), hand each to the handler, report the outcome with syncSuccess / syncFail
-- (nothing for "try later"), up to `concurrency` calls in flight. See doc/sync.md.
local core = require "wdt.core"
local check = require "wdt.check"
local policy = require "wdt.policy"
local common = require "wdt.sync.common"
local flow = require "wdt.flow"

local stock = {}

local WAIT_LIST = "sales.StockSync.getSelfWaitSyncIdListOpen"
local CALC = "sales.StockSync.calcStock"
local SUCCESS = "sales.StockSync.syncSuccess"
local FAIL = "sales.StockSync.syncFail"
local SYNCED, DEFERRED = common.SYNCED, common.DEFERRED
local append, is_integer = common.append, check.is_integer

-- What a report of a stock outcome carries: the 16 fields of the vendor's page for
-- syncSuccess / syncFail (all marked required), from calcStock's answer and the outcome.
-- syn_stock and stock_change_count were checked (calc_problem); another field calcStock
-- did not give is sent empty (0, "" or false): calcStock has no stock_syn_other, and it
-- answers the listing flags as 0/1 where info wants booleans.
local INFO_FIELDS = { syn_stock = 0, stock_change_count = 0, stock_syn_rule_id = 0,
                      stock_syn_rule_no = "", stock_syn_other = "", stock_syn_warehouses = "",
                      stock_syn_mask = 0, stock_syn_percent = 0, stock_syn_plus = 0,
                      stock_syn_min = 0, stock_syn_max = 0 }
local FLAG_FIELDS = { "is_auto_listing", "is_auto_delisting" }

local function sync_info(calc, success, message)
  local info = {}
  for k, empty in pairs(INFO_FIELDS) do
    local v = calc[k]
    if type(empty) == "string" and type(v) == "number" then v = core.encode(v) end
    if type(empty) == "number" and type(v) == "string" then v = tonumber(v) end
    if type(v) ~= type(empty) then v = empty end
    info[k] = v
  end
  for _, k in ipairs(FLAG_FIELDS) do
    local v = calc[k]
    info[k] = v == true or v == 1
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

local function refuse(s, id, status, stage, err)
  s.reported = s.reported + 1           -- settled: the ERP said no about this good
  s.refused = s.refused + 1
  append(s.refused_items, { api_goods_id = id, status = status, stage = stage,
                            message = err.message or tostring(err) })
end

-- The report call of one outcome, or nil for "try later" (nothing is sent: the good stays
-- waiting in the ERP and comes again on the next run).
local function report_request(item)
  if item.status == DEFERRED then return nil end
  local method = item.status == SYNCED and SUCCESS or FAIL
  -- A repeated report of the same outcome (same stock_change_count) changes nothing on
  -- the ERP's side, so the report may be retried after a timeout.
  return { method, item.api_goods_id, sync_info(item.calc, item.status == SYNCED, item.error_msg),
           idempotent = true }
end

-- Report run.pending (the outcomes of a page, in list order), up to `concurrency` reports
-- in flight; each outcome is settled once: counted, refused, or (the run stops) unreported.
local function report(run)
  local s, items, requests, of = run.summary, run.pending, {}, {}
  for i, item in ipairs(items) do
    local req = report_request(item)
    if req then requests[#requests + 1], of[#requests + 1] = req, i end
  end
  local results = {}
  if requests[1] then
    run.in_report = true
    results = run:calls(requests)
    run.in_report = false
  end
  local by_item = {}
  for k, r in ipairs(results) do by_item[of[k]] = r end
  run.pending = {}
  local first_err
  for i, item in ipairs(items) do
    local r, id = by_item[i], item.api_goods_id
    if r and r.err then
      if refuses_item(r.err) then
        refuse(s, id, item.status, item.status == SYNCED and SUCCESS or FAIL, r.err)
        common.record(run, id, nil, "refused", r.err.message)
      else
        append(s.unreported, item)
        first_err = first_err or r.err
      end
    else
      s.reported = s.reported + 1
      local f = common.count_field[item.status]
      s[f] = s[f] + 1
      common.record(run, id, nil, f, item.status ~= SYNCED and item.error_msg or nil)
    end
  end
  if first_err then return nil, first_err end
  return true
end

local FN = "sync_stock"
local option_specs = {
  handler = { "function|table" }, on_outcome = { "function" },
  count = { "number", min = 10, max = 5000, integer = true },
  batch = { "number", min = 10, max = 5000, integer = true },
  force_sync = { "boolean" }, dry_run = { "boolean" }, lock = flow.LOCK, on_progress = flow.ON_PROGRESS,
  concurrency = flow.CONCURRENCY,
}

-- client:sync_stock's options, checked (wdt.check) and defaulted.
function stock.options(opts)
  local o = flow.options(FN, opts, option_specs, true)
  if not o.dry_run and o.handler == nil then check.fail(FN, "handler", "function expected, got nil") end
  if o.handler ~= nil then o.handler = common.handler(FN, o.handler) end
  return o
end

-- What is wrong with a calcStock answer, or nil. The stock to publish and the count the
-- ERP's guard compares (the page marks both required, Int) must be there: a report without
-- them would confirm a stock nobody published.
local function calc_problem(calc)
  if type(calc) ~= "table" then return "no object" end
  local stock_num, change = calc.syn_stock, calc.stock_change_count
  if type(stock_num) ~= "number" or stock_num ~= stock_num or stock_num == math.huge
      or stock_num == -math.huge then
    return "no syn_stock number (got " .. check.type_name(stock_num) .. ")"
  end
  if not is_integer(change) then
    return "no integer stock_change_count (got " .. check.type_name(change) .. ")"
  end
  return nil
end

local BATCH_CALC = "sales.StockSync.batchCalcStock"
stock.CALC_CHUNK = 100   -- goods per batchCalcStock call (its page names no limit)

-- The stock of `ids` computed: calcs[id] = calcStock's object, or refusals[id] = the error
-- about that good. batchCalcStock in chunks where the vendor offers it (an API error about
-- the call itself, no such method on an older ERP, turns to calcStock for the rest of the
-- run), else calcStock a good a call; either way up to `concurrency` calls in flight.
-- Returns calcs, refusals, or nil, err when the run must stop.
local function compute(run, ids, force)
  local calcs, refusals = {}, {}
  if run.batch_calc ~= false then
    local requests = {}
    for i = 1, #ids, stock.CALC_CHUNK do
      local params = {}
      for j = i, math.min(i + stock.CALC_CHUNK - 1, #ids) do
        params[#params + 1] = { api_goods_id = ids[j], force_sync = force }
      end
      requests[#requests + 1] = { BATCH_CALC, params }
    end
    local offered = true
    for _, r in ipairs(run:calls(requests)) do
      if r.err then
        -- anything but an API answer about the call (network, rate limits after waiting) stops
        if r.err.kind ~= "api" or policy.is_rate_limit(r.err) then return nil, r.err end
        offered = false
      else
        local d = type(r.data) == "table" and r.data or {}
        for _, c in ipairs(type(d.success_date) == "table" and d.success_date or {}) do
          if type(c) == "table" and c.rec_id ~= nil then calcs[c.rec_id] = c end
        end
        for _, e in ipairs(type(d.error_date) == "table" and d.error_date or {}) do
          if type(e) == "table" and e.rec_id ~= nil then
            refusals[e.rec_id] = { kind = "api", message = tostring(e.err_msg or "refused") }
          end
        end
      end
    end
    if offered then return calcs, refusals end
    run.batch_calc = false
    calcs, refusals = {}, {}
  end
  local requests = {}
  for i, id in ipairs(ids) do requests[i] = { CALC, id, force } end
  for i, r in ipairs(run:calls(requests)) do
    if r.err then
      if not refuses_item(r.err) then return nil, r.err end
      refusals[ids[i]] = r.err
    else
      calcs[ids[i]] = r.data
    end
  end
  return calcs, refusals
end

-- A handler's outcome for one computed good, to report (a handler that failed as code,
-- status nil: nothing reported, listed unreported with the error).
local function settle_handled(run, item, calc, status, message)
  if status == nil then
    local s = run.summary
    s.handler_errors = s.handler_errors + 1
    append(s.unreported, { api_goods_id = item.api_goods_id, kind = "handler", message = message })
    return
  end
  append(run.pending, { api_goods_id = item.api_goods_id, status = status, error_msg = message, calc = calc })
end

-- The new goods of one wait-list page: counted as read, computed together (compute),
-- handed to the handler one by one in list order (a batch handler: all at once), then
-- their outcomes reported together (report). run.current holds the goods in hand
-- (unreported if the run stops there). true, or the loop's nil, err.
local function handle(run, ids, force)
  if not ids[1] then return true end
  local s, h = run.summary, run.opts.handler
  s.read = s.read + #ids
  run.current = {}
  for i, id in ipairs(ids) do run.current[i] = { api_goods_id = id } end
  local calcs, refusals = compute(run, ids, force)
  if not calcs then
    local err = refusals     -- the goods stay waiting in the ERP: offered again next run
    for _, it in ipairs(run.current) do
      it.message = "stock not computed: " .. (err.message or tostring(err.kind))
      append(s.unreported, it)
    end
    run.current = nil
    return run:fail(err, "computing the stock")
  end
  local computed = {}
  for _, id in ipairs(ids) do
    local calc = calcs[id]
    if refusals[id] then
      refuse(s, id, nil, run.batch_calc == false and CALC or BATCH_CALC, refusals[id])
      common.record(run, id, nil, "refused", refusals[id].message)
    else
      local problem = calc == nil and "nothing for this good" or calc_problem(calc)
      if problem then
        -- not handed over, nothing reported: the good stays waiting in the ERP
        append(s.invalid, { api_goods_id = id, kind = "decode", message = "calcStock answered " .. problem })
      else
        local item = {}               -- the handler's own copy
        for k, v in pairs(calc) do item[k] = v end
        item.api_goods_id = id
        append(computed, { item, calc })
      end
    end
  end
  run.current = {}
  for i, c in ipairs(computed) do run.current[i] = { api_goods_id = c[1].api_goods_id } end
  if h.batch then
    local items = {}
    for i, c in ipairs(computed) do items[i] = c[1] end
    local outcomes = common.batch_outcomes(h.batch, items)
    for i, c in ipairs(computed) do
      table.remove(run.current, 1)
      settle_handled(run, c[1], c[2], outcomes[i][1], outcomes[i][2])
    end
  else
    for _, c in ipairs(computed) do
      local status, message = common.outcome(h.handle, c[1])
      table.remove(run.current, 1)
      settle_handled(run, c[1], c[2], status, message)
      run:touch()
    end
  end
  run.current = nil
  local ok, rerr = report(run)
  if not ok then return run:fail(rerr, "reporting the outcome") end
  return true
end

-- stock.run(client, opts): opts as stock.options returned them.
function stock.run(client, opts)
  local count = opts.count or opts.batch or 100
  local force = opts.force_sync or false
  local run, lerr = common.start(client, "stock", opts, "sync.stock")
  if not run then return nil, lerr end
  run.report = report
  local summary, err = run:guard(function() return stock.walk(run, count, force) end, common.settle)
  return common.conclude(run, "api_goods_id", summary, err)
end

-- The wait list's cursor walked to its end -> run:finish() | run:fail(...).
function stock.walk(run, count, force)
  local s, seen = run.summary, {}
  -- getSelfWaitSyncIdListOpen is a cursor: it lists waiting goods after `position` and
  -- answers the position to continue from. Goods that become waiting during the run get a
  -- later position and are read in this run; a good left waiting (deferred) is not read
  -- again before the next run, which starts from position 0.
  do
    local position = 0
    while true do
      local data, err = run.client:call(WAIT_LIST, count, position)
      if data == nil then return run:fail(err, "reading the wait list") end
      local ids = type(data) == "table" and data.id_list
      local next_pos = type(data) == "table" and data.position
      if type(ids) ~= "table" or (#ids > 0 and not is_integer(next_pos)) then
        return run:fail({ kind = "decode", method = WAIT_LIST,
                          message = "the answer has no id_list/position" }, "reading the wait list")
      end
      if #ids == 0 then break end
      local fresh, new_ids = 0, {}
      for i = 1, #ids do
        local id = ids[i]
        if not is_integer(id) then
          local key = core.encode(id)
          if not seen[key] then
            seen[key] = true
            s.read = s.read + 1
            append(s.invalid, { api_goods_id = id, message = "id that is not an integer: " .. key })
          end
        elseif not seen[id] then
          seen[id] = true
          fresh = fresh + 1
          if run.opts.dry_run then
            s.read = s.read + 1
            run:progress()
          else
            append(new_ids, id)
          end
        end
      end
      local ok, herr = handle(run, new_ids, force)
      if not ok then return nil, herr end
      if fresh == 0 and next_pos <= position then break end   -- the cursor does not move
      if next_pos > position then position = next_pos end
      run:progress()
    end
    s.total = s.read
    run:progress()
    return run:finish()
  end
end

return stock
