-- What both sync loops share: the handler's outcome, message cleaning, the summary, progress
-- calls, the errors that stop a loop, and the handling of an interrupt (SIGINT).
local core = require "wdt.core"
local errors = require "wdt.errors"
local lock = require "wdt.lock"

local common = {}

local SYNCED, DEFERRED, FAILED = 0, -100, 2
common.SYNCED, common.DEFERRED, common.FAILED = SYNCED, DEFERRED, FAILED

-- error_msg is cut to this many characters (the vendor documents 255 for its messages).
common.MAX_MESSAGE = 255

-- summary field counting each outcome
common.count_field = { [SYNCED] = "synced", [FAILED] = "failed", [DEFERRED] = "deferred" }

function common.append(list, v) list[#list + 1] = v end

common.is_interrupt = errors.is_interrupt

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

-- handler(row) -> true | false, message | nil, message; raising counts as failed.
-- Returns the status and error_msg to report. A missing or empty message takes the
-- default ("failed", "deferred").
function common.outcome(handler, row)
  local ok, result, message = pcall(handler, row)
  if not ok then
    if common.is_interrupt(result) then error(result, 0) end
    return FAILED, common.clean_message("handler error: " .. tostring(result))
  end
  if message ~= nil then message = common.clean_message(message) end
  if message == "" then message = nil end
  if result == true then return SYNCED, "" end
  if result == false then return FAILED, message or "failed" end
  if result == nil then return DEFERRED, message or "deferred" end
  return FAILED, "handler returned " .. type(result) .. " (expected true, false or nil)"
end

-- A run: the client, the options, the summary, the outcomes waiting to be reported
-- (`pending`), the item being handled (`current`) and whether a report is in flight.
function common.new_run(client, kind, opts)
  local summary = {
    kind = kind, read = 0, reported = 0, synced = 0, failed = 0, deferred = 0, refused = 0,
    refused_items = {}, unreported = {}, invalid = {}, unconfirmed = {}, confirmed_on_retry = {},
    started = core.monotonic(), dry_run = opts.dry_run or false,
  }
  local run = { opts = opts, summary = summary, pending = {}, current = nil, in_report = false }
  -- the client as this run sees it: a view whose rate waits (wdt.rate) show on the
  -- progress line (summary.waiting = seconds left) and keep the run lock renewed
  run.client = setmetatable({ _base = client._base or client, _on_wait = function(seconds, reason)
    summary.waiting, summary.waiting_for = seconds, reason
    common.progress(run)
    summary.waiting, summary.waiting_for = nil, nil
  end }, { __index = client, __tostring = function() return tostring(client) end })
  return run
end

-- A clean stop raised from deep in a loop (the run lock lost, on_progress raised): caught
-- by common.guarded like an interrupt, so what was handled is reported and the summary kept.
local Stop = {}
Stop.__index = Stop
local function stop(kind, message, cause)
  error(setmetatable({ kind = kind, message = message, cause = cause }, Stop), 0)
end

-- on_progress(summary) after every page (logistics) or good (stock), and once at the end.
-- It also renews the run lock when that is due. An error raised by on_progress stops the
-- loop cleanly (kind "callback"): the caller's code is broken, the summary is not lost.
function common.progress(run)
  local s = run.summary
  s.elapsed = core.monotonic() - s.started
  common.touch(run)
  if run.opts.on_progress then
    local ok, perr = pcall(run.opts.on_progress, s)
    if not ok then
      if common.is_interrupt(perr) then error(perr, 0) end
      stop("callback", "on_progress raised an error: " .. tostring(perr))
    end
  end
end

-- Renews the run lock when due; a lock that expired and was taken over stops the run.
function common.touch(run)
  if not run.lock then return end
  local ok, err = run.lock:touch()
  if not ok and err.kind == "locked" then stop("locked", err.message, err) end
end

-- The run lock option of the loops: false = none; nil or true = the defaults of wdt.lock
-- (a file outside nginx, the "wdt_locks" shared dict inside); a table = wdt.lock.acquire's
-- options (its name is set here). Taken out of opts before the option check; `level` as
-- in wdt.check (the loop's own).
function common.split_lock_option(fname, opts, level)
  if type(opts) ~= "table" then return opts, nil end
  local spec = opts.lock
  if spec == nil then return opts, true end
  if type(spec) ~= "boolean" and type(spec) ~= "table" then
    require("wdt.check").fail(fname, "lock", "boolean or table expected, got " .. type(spec), level)
  end
  local rest = {}
  for k, v in pairs(opts) do if k ~= "lock" then rest[k] = v end end
  return rest, spec
end

-- Takes the run lock `spec` names for `flow` (see split_lock_option): handle, or false
-- when none is wanted, or nil, err.
function common.take_lock(client, spec, flow, shop)
  return lock.take_run(spec, flow, client.sid, shop)
end

-- nil, err with err.summary; the message counts what was left unreported.
function common.make_error(run, fields)
  local s = run.summary
  s.elapsed = core.monotonic() - s.started
  fields.summary = s
  if #s.unreported > 0 then
    fields.message = ("%s; %d item(s) left unreported"):format(fields.message, #s.unreported)
  end
  return nil, errors.new(fields)
end

-- A failure that stops the loop; `err` is the client's error, `what` says what was tried.
function common.stop_error(run, err, what)
  return common.make_error(run, {
    kind = err.kind, status = err.status, http_status = err.http_status, method = err.method,
    tries = err.tries, retryable = err.retryable, sent = err.sent, cause = err,
    message = ("%s: %s"):format(what, err.message or (tostring(err.kind) .. " error")),
  })
end

-- Runs body(); a clean stop (see Stop above) or an interrupt (SIGINT) anywhere in it ends
-- the loop cleanly: outcomes already handled are reported when the interrupt did not hit a
-- report, the rest is unreported. The run lock (run.lock) is released however it ends.
function common.guarded(run, body)
  local ok, a, b = pcall(body)
  if ok or not (getmetatable(a) == Stop or common.is_interrupt(a)) then
    if run.lock then run.lock:release() end
    if ok then return a, b end
    error(a, 0)
  end
  local stopped = getmetatable(a) == Stop
  if not run.in_report and #run.pending > 0 and run.report then
    pcall(run.report, run)              -- moves what it cannot report to `unreported`
  end
  for _, item in ipairs(run.pending) do common.append(run.summary.unreported, item) end
  run.pending = {}
  if run.current then common.append(run.summary.unreported, run.current) end
  if run.lock then run.lock:release() end
  if stopped then return common.make_error(run, { kind = a.kind, message = a.message, cause = a.cause }) end
  return common.make_error(run, { kind = "interrupted", message = "stopped by SIGINT (Ctrl-C)" })
end

return common
