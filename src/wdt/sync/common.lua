-- What both sync loops share: the handler's outcome, message cleaning, the summary, and
-- what a stopped loop had in hand; the run itself is wdt.flow's.
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

-- handler(row) -> true | false, message | nil, message; raising counts as failed.
-- Returns the status and error_msg to report. A missing or empty message takes the
-- default ("failed", "deferred").
function common.outcome(handler, row)
  local ok, result, message = pcall(handler, row)
  if not ok then
    if errors.is_interrupt(result) then error(result, 0) end
    return FAILED, common.clean_message("handler error: " .. tostring(result))
  end
  if message ~= nil then message = common.clean_message(message) end
  if message == "" then message = nil end
  if result == true then return SYNCED, "" end
  if result == false then return FAILED, message or "failed" end
  if result == nil then return DEFERRED, message or "deferred" end
  return FAILED, "handler returned " .. type(result) .. " (expected true, false or nil)"
end

-- A sync run on the flow runner (wdt.flow): the summary, the outcomes waiting to be
-- reported (`pending`), the item being handled (`current`) and whether a report is in
-- flight. `name` names its run lock, `scope` (the shop) too. run | nil, err.
function common.start(client, kind, opts, name, scope)
  local summary = {
    kind = kind, read = 0, reported = 0, synced = 0, failed = 0, deferred = 0, refused = 0,
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
  if run.current then common.append(run.summary.unreported, run.current) end
end

return common
