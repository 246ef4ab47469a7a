-- The stock sync loop: walk sales.StockSync.getSelfWaitSyncIdListOpen's cursor, compute
-- each waiting good's stock (calcStock), hand it to the handler, report the outcome with
-- syncSuccess / syncFail (nothing for "try later"). See doc/sync.md.
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

-- Report one stock outcome (run.pending holds at most the one item being reported).
local function report(run)
  local s = run.summary
  local item = run.pending[1]
  if not item then return true end
  if item.status == DEFERRED then
    -- nothing to send: the good stays waiting in the ERP and comes again on the next run
    s.reported = s.reported + 1
    s.deferred = s.deferred + 1
    run.pending = {}
    common.record(run, item.api_goods_id, nil, "deferred", item.error_msg)
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
      refuse(s, item.api_goods_id, item.status, method, err)
      common.record(run, item.api_goods_id, nil, "refused", err.message)
      return true
    end
    append(s.unreported, item)
    return nil, err
  end
  s.reported = s.reported + 1
  local f = common.count_field[item.status]
  s[f] = s[f] + 1
  common.record(run, item.api_goods_id, nil, f, item.status ~= SYNCED and item.error_msg or nil)
  return true
end

local FN = "sync_stock"
local option_specs = {
  handler = { "function|table" }, on_outcome = { "function" },
  count = { "number", min = 10, max = 5000, integer = true },
  batch = { "number", min = 10, max = 5000, integer = true },
  force_sync = { "boolean" }, dry_run = { "boolean" }, lock = flow.LOCK, on_progress = flow.ON_PROGRESS,
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

-- One good read from the wait list: its stock computed -> the item for the handler, or
-- false (refused or invalid: listed), or nil, err when the loop must stop.
local function compute(run, id, force)
  local s = run.summary
  local calc, cerr = run.client:call(CALC, id, force)
  if calc == nil then
    if not refuses_item(cerr) then
      -- the good stays waiting in the ERP: listed as unreported, offered again next run
      append(s.unreported, { api_goods_id = id,
                             message = "stock not computed: " .. (cerr.message or tostring(cerr.kind)) })
      return run:fail(cerr, "computing the stock")
    end
    refuse(s, id, nil, CALC, cerr)
    common.record(run, id, nil, "refused", cerr.message)
    return false
  end
  local problem = calc_problem(calc)
  if problem then
    -- not handed over, nothing reported: the good stays waiting in the ERP
    append(s.invalid, { api_goods_id = id, kind = "decode", message = "calcStock answered " .. problem })
    return false
  end
  local item = {}                   -- the handler's own copy
  for k, v in pairs(calc) do item[k] = v end
  item.api_goods_id = id
  return item, calc
end

-- A handler's outcome for one computed good, reported at once (a handler that failed as
-- code, status nil: nothing reported, listed unreported with the error). true | nil, err.
local function settle_handled(run, item, calc, status, message)
  if status == nil then
    local s = run.summary
    s.handler_errors = s.handler_errors + 1
    append(s.unreported, { api_goods_id = item.api_goods_id, kind = "handler", message = message })
    return true
  end
  append(run.pending, { api_goods_id = item.api_goods_id, status = status, error_msg = message, calc = calc })
  local ok, rerr = report(run)
  if not ok then return run:fail(rerr, "reporting the outcome") end
  return true
end

-- The new goods of one wait-list page: each counted as read, computed, handed over and
-- reported in turn; for a batch handler, all computed, handed over at once, then reported.
-- run.current holds the goods in hand (unreported if the run stops there).
local function handle(run, ids, force)
  local s, h, computed = run.summary, run.opts.handler, {}
  run.current = {}
  for _, id in ipairs(ids) do
    s.read = s.read + 1
    append(run.current, { api_goods_id = id })
    local item, calc = compute(run, id, force)
    if item == nil then table.remove(run.current) run.current = nil return nil, calc end
    if not item then
      table.remove(run.current)
    elseif h.batch then
      append(computed, { item, calc })
    else
      local status, message = common.outcome(h.handle, item)
      table.remove(run.current)
      local ok, err = settle_handled(run, item, calc, status, message)
      if not ok then run.current = nil return nil, err end
    end
    run:progress()
  end
  if #computed > 0 then
    local items = {}
    for i, c in ipairs(computed) do items[i] = c[1] end
    local outcomes = common.batch_outcomes(h.batch, items)
    for i, c in ipairs(computed) do
      table.remove(run.current, 1)
      local ok, err = settle_handled(run, c[1], c[2], outcomes[i][1], outcomes[i][2])
      if not ok then
        for _, rest in ipairs(run.current) do append(s.unreported, rest) end
        run.current = nil
        return nil, err
      end
    end
  end
  run.current = nil
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
