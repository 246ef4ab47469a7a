-- What both sync loops share: the handler's outcome, message cleaning, the summary, and
-- what a stopped loop had in hand; the run itself is wdt.flow's.
local check = require "wdt.check"
local errors = require "wdt.errors"
local flow = require "wdt.flow"

local common = {}

local SYNCED, DEFERRED, FAILED = 0, -100, 2
common.SYNCED, common.DEFERRED, common.FAILED = SYNCED, DEFERRED, FAILED

-- error_msg is cut to this many characters (the vendor documents 255 for its messages).
common.MAX_MESSAGE = 255

-- summary field counting each outcome
common.count_field = { [SYNCED] = "synced", [FAILED] = "failed", [DEFERRED] = "deferred" }

function common.append(list, v) list[#list + 1] = v end


-- Valid UTF-8 (invalid bytes become '?'), at most MAX_MESSAGE characters, so that the
-- report can always be encoded and is not refused for its length.
function common.clean_message(s)
  if type(s) ~= "string" then s = tostring(s) end
  local out, n, i, len = {}, 0, 1, #s
  while i <= len and n < common.MAX_MESSAGE do
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

-- handler(row) -> true | false, message | nil, message. Returns the status and error_msg
-- to report; a missing or empty message takes the default ("failed", "deferred"). A
-- handler that raises, or answers anything else, is a bug in the glue, not a refusal by
-- the platform: nil and the error, and the item is not reported (it stays in the ERP's
-- queue, listed as unreported with the error).
function common.outcome(handler, row)
  local ok, result, message = pcall(handler, row)
  if not ok then
    if errors.is_interrupt(result) then error(result, 0) end
    return nil, common.clean_message("handler error: " .. tostring(result))
  end
  return common.answer(result, message)
end

-- One answer of a handler (result, message) -> status, error_msg | nil, the error.
function common.answer(result, message)
  if message ~= nil then message = common.clean_message(message) end
  if message == "" then message = nil end
  if result == true then return SYNCED, "" end
  if result == false then return FAILED, message or "failed" end
  if result == nil then return DEFERRED, message or "deferred" end
  return nil, "handler error: it returned " .. type(result) .. " (expected true, false or nil)"
end

-- The handler option: a function (one item at a time), or a module table with
-- handle(item) and/or batch(items) -> outcomes, and optionally finish(summary). Checked
-- (wdt.check, naming `fname`'s option) and returned as such a table.
function common.handler(fname, h)
  if type(h) == "function" then return { handle = h } end
  for _, k in ipairs({ "handle", "batch", "finish" }) do
    if h[k] ~= nil and type(h[k]) ~= "function" then
      check.fail(fname, "handler." .. k, "function expected, got " .. check.type_name(h[k]))
    end
  end
  if not h.handle and not h.batch then
    check.fail(fname, "handler", "a function, or a table with handle(item) or batch(items)")
  end
  return h
end

-- The outcomes of `items` from a batch handler: one status, message pair each
-- ({ {status, message}, ... }). batch(items) returns a list as long as items, whose i-th
-- entry is item i's answer: true, false, or a table { ok = true|false|nil, message = }.
-- A raise, or an entry of another kind, leaves the items concerned unreported.
function common.batch_outcomes(batch, items)
  local ok, results = pcall(batch, items)
  local out = {}
  if not ok then
    if errors.is_interrupt(results) then error(results, 0) end
    local m = common.clean_message("handler error: " .. tostring(results))
    for i = 1, #items do out[i] = { nil, m } end
    return out
  end
  if type(results) ~= "table" then results = {} end
  for i = 1, #items do
    local r = results[i]
    if r == true or r == false then out[i] = { common.answer(r) }
    elseif type(r) == "table" then out[i] = { common.answer(r.ok, r.message) }
    else
      out[i] = { nil, ("handler error: batch gave no outcome for item %d (%s)"):format(i, check.type_name(r)) }
    end
  end
  return out
end

-- One item's outcome in the run's record (wdt.flow.outcome: key, id, outcome, message):
-- every item not synced is kept in summary.outcomes; every item goes to on_outcome.
function common.record(run, key, id, outcome, message)
  local rec = flow.outcome(key, id, outcome, message)
  if outcome ~= "synced" then common.append(run.summary.outcomes, rec) end
  if run.opts.on_outcome then run:callback("on_outcome", run.opts.on_outcome, rec) end
end

-- The end of a run (a summary, or nil, err): the items left unreported or invalid get
-- their record; the handler module's finish(summary) runs. A finish that raises makes the
-- run's result an error of kind "handler" (the summary kept).
function common.conclude(run, idf, summary, err)
  local s = run.summary
  for _, it in ipairs(s.unreported) do
    common.record(run, it[idf], it.row and it.row.tid, "unreported", it.message)
  end
  for _, it in ipairs(s.invalid) do common.record(run, it[idf], nil, "invalid", it.message) end
  local finish = run.opts.handler and run.opts.handler.finish
  if finish and not s.dry_run then
    local ok, ferr = pcall(finish, s)
    if not ok then
      if errors.is_interrupt(ferr) then error(ferr, 0) end
      if summary then
        return nil, errors.new { kind = "handler", summary = s,
                                 message = "the handler's finish(summary) raised: " .. tostring(ferr) }
      end
      err.message = err.message .. "; and the handler's finish(summary) raised: " .. tostring(ferr)
    end
  end
  return summary, err
end

-- A sync run on the flow runner (wdt.flow): the summary, the outcomes waiting to be
-- reported (`pending`), the items being handled (`current`, a list) and whether a report is in
-- flight. `name` names its run lock, `scope` (the shop) too. run | nil, err.
function common.start(client, kind, opts, name, scope)
  local summary = {
    kind = kind, read = 0, reported = 0, synced = 0, failed = 0, deferred = 0, refused = 0,
    handler_errors = 0, outcomes = {},
    refused_items = {}, unreported = {}, invalid = {}, unconfirmed = {}, confirmed_on_retry = {},
    dry_run = opts.dry_run or false,
  }
  local run, err = flow.start(client, { name = name, scope = scope, summary = summary,
                                        lock = not opts.dry_run and opts.lock, on_progress = opts.on_progress,
                                        concurrency = opts.concurrency })
  if not run then return nil, err end
  run.opts, run.pending, run.in_report = opts, {}, false
  return run
end

-- What a stopped sync had in hand: outcomes already handled are reported when the stop did
-- not hit a report, the rest is unreported.
function common.settle(run)
  if not run.in_report and #run.pending > 0 and run.report then
    pcall(run.report, run)              -- moves what it cannot report to `unreported`
  end
  for _, item in ipairs(run.pending) do common.append(run.summary.unreported, item) end
  run.pending = {}
  for _, item in ipairs(run.current or {}) do common.append(run.summary.unreported, item) end
  run.current = nil
end

return common
