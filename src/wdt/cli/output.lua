-- What the `wdt` command prints: the progress line on stderr, the summary of a sync (text
-- or JSON) on stdout.
local output = {}

function output.one_line(s)
  return (tostring(s):gsub("[\r\n]+", " "))
end
local one_line = output.one_line

local function fmt_duration(s)
  if s == nil or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return ("%dm%02ds"):format(math.floor(s / 60), s % 60) end
  return ("%dh%02dm"):format(math.floor(s / 3600), math.floor(s / 60) % 60)
end

-- The progress line for a summary `p` (see wdt.sync): done/total, rate, ETA, failures.
function output.progress_line(kind, p)
  local done = p.read or 0
  local total = p.total
  if total and total < done then total = done end
  local elapsed = p.elapsed or 0
  local rate = elapsed > 0 and done / elapsed or 0
  local parts = { kind }
  if total then
    parts[#parts + 1] = ("%d/%d"):format(done, total)
    if total > 0 then parts[#parts] = parts[#parts] .. (" (%d%%)"):format(math.floor(done * 100 / total)) end
  else
    parts[#parts + 1] = tostring(done)
  end
  parts[#parts + 1] = ("%.0f/s"):format(rate)
  if total and rate > 0 then
    parts[#parts + 1] = "ETA " .. fmt_duration((total - done) / rate)
  else
    parts[#parts + 1] = "ETA ?"
  end
  parts[#parts + 1] = ("failed %d"):format(p.failed or 0)
  parts[#parts + 1] = ("deferred %d"):format(p.deferred or 0)
  if (p.refused or 0) > 0 then parts[#parts + 1] = ("refused %d"):format(p.refused) end
  if p.waiting then
    parts[#parts + 1] = ("waiting %ds (%s)"):format(math.ceil(p.waiting), p.waiting_for or "rate limit")
  end
  return table.concat(parts, "  ")
end

local function id_text(v)
  if v == nil then return "?" end
  return require("wdt.check").id_text(v)
end

-- The lines of a summary: add(fmt, ...) appends one; list(title, items, f) the items to
-- look at, up to 20, f(item) on one line each; text() all of them, newline-ended.
local MAX_LISTED = 20
function output.lines()
  local out = {}
  local function add(fmt, ...) out[#out + 1] = fmt:format(...) end
  local function list(title, items, f)
    if not items or #items == 0 then return end
    add("%s (%d):", title, #items)
    for i = 1, math.min(#items, MAX_LISTED) do add("  %s", one_line(f(items[i]))) end
    if #items > MAX_LISTED then add("  ... and %d more", #items - MAX_LISTED) end
  end
  return add, list, function() return table.concat(out, "\n") .. "\n" end
end

-- The plain summary, one fact per line, then the items to look at (up to 20 of each).
function output.summary_text(kind, s, dry_run)
  local add, list, text = output.lines()
  local what = kind == "stock" and "goods" or "rows"
  if dry_run then
    add("dry run: %d %s pending; no handler called, nothing reported", s.read or 0, what)
  else
    add("%s sync: %d %s read, %d reported", kind, s.read or 0, what, s.reported or 0)
    add("  synced    %d", s.synced or 0)
    add("  failed    %d", s.failed or 0)
    add("  deferred  %d", s.deferred or 0)
    add("  refused   %d", s.refused or 0)
    if (s.handler_errors or 0) > 0 then
      add("  handler errors %d (not reported: still in the ERP's queue)", s.handler_errors)
    end
  end
  local elapsed = s.elapsed or 0
  if elapsed > 0 then
    add("  elapsed   %.1fs (%.0f %s/s)", elapsed, (s.read or 0) / elapsed, what)
  end
  local idf = kind == "stock" and "api_goods_id" or "sync_id"
  local function just_id(r) return ("%s %s"):format(idf, id_text(r[idf])) end
  list("refused by the ERP", s.refused_items, function(r)
    return ("%s %s: %s"):format(idf, id_text(r[idf]), one_line(r.message))
  end)
  local function with_message(r)
    local id = just_id(r)
    if r.message and r.message ~= "" then id = id .. ": " .. one_line(r.message) end
    return id
  end
  local failed, deferred = {}, {}
  for _, o in ipairs(s.outcomes or {}) do
    local into = o.outcome == "failed" and failed or o.outcome == "deferred" and deferred
    if into then into[#into + 1] = { [idf] = o.key, message = o.message } end
  end
  list("failed (reported as refused by the platform)", failed, with_message)
  list("deferred (left in the ERP's queue for the next run)", deferred, with_message)
  list("unconfirmed (the ERP's answer did not say whether it took them)", s.unconfirmed, just_id)
  list("unreported (still in the ERP's queue)", s.unreported, with_message)
  list("invalid rows from the ERP (not handled)", s.invalid, function(r)
    return one_line(r.message)
  end)
  list("accepted on an earlier try (the retry was refused as already reported)",
       s.confirmed_on_retry, function(id) return ("%s %s"):format(idf, id_text(id)) end)
  return text()
end

-- A JSON-ready copy of a summary (rows left out of the item lists).
function output.summary_json(s)
  local wdt = require "wdt"
  local idf = s.kind == "stock" and "api_goods_id" or "sync_id"
  local function items(list)
    local out = wdt.array()
    for i, r in ipairs(list or {}) do
      out[i] = { [idf] = r[idf] == nil and wdt.null or r[idf], status = r.status, message = r.message,
                 kind = r.kind }
    end
    return out
  end
  local confirmed = wdt.array()
  for i, id in ipairs(s.confirmed_on_retry or {}) do confirmed[i] = id end
  return {
    kind = s.kind, read = s.read, reported = s.reported, synced = s.synced, failed = s.failed,
    deferred = s.deferred, refused = s.refused, total = s.total, elapsed = s.elapsed,
    dry_run = s.dry_run or false, handler_errors = s.handler_errors or 0,
    outcomes = output.outcomes_json(s.outcomes, idf),
    refused_items = items(s.refused_items), unreported = items(s.unreported),
    invalid = items(s.invalid), unconfirmed = items(s.unconfirmed),
    confirmed_on_retry = confirmed,
  }
end

-- Outcome records (wdt.flow.outcome) as JSON values: key, id, outcome, message, and the
-- key under its own name (`idf`: sync_id, api_goods_id, tid) when given.
function output.outcome_json(o, idf)
  local null = require("wdt").null
  local j = { key = o.key == nil and null or o.key, id = o.id == nil and null or o.id,
              outcome = o.outcome, message = o.message == nil and null or o.message }
  if idf then j[idf] = j.key end
  return j
end

function output.outcomes_json(list, idf)
  local out = require("wdt").array()
  for i, o in ipairs(list or {}) do out[i] = output.outcome_json(o, idf) end
  return out
end

-- The outcome log of --log FILE: on_outcome(record) appending one JSON line per item and
-- outcome ({time, flow, key, id, outcome, message}), flushed line by line; and close().
function output.outcome_log(path, flow)
  local f, err = io.open(path, "ab")
  if not f then require("wdt.cli.args").usage("--log: cannot open %s", one_line(err)) end
  local encode = require("wdt").json.encode
  local function on_outcome(o)
    local j = output.outcome_json(o)
    j.time, j.flow = os.date("!%Y-%m-%dT%H:%M:%SZ"), flow
    assert(f:write(encode(j), "\n"))
    f:flush()
  end
  return on_outcome, function() f:close() end
end

-- Progress on stderr, redrawn in place at most 10 times a second, only on a terminal.
-- ctx: {err = function(text), stderr_tty = boolean}. Returns draw(summary), finish(summary).
function output.progress_drawer(ctx, kind)
  if not ctx.stderr_tty then return nil, function() end end
  local last, drawn = -1, false
  local core = require "wdt.core"
  local function draw(p, force)
    local now = core.unix_time()
    if not force and now - last < 0.1 then return end
    last = now
    drawn = true
    ctx.err("\r\27[K" .. output.progress_line(kind, p))
  end
  local function finish(p)
    if p then draw(p, true) end
    if drawn then ctx.err("\n") end
  end
  return draw, finish
end

-- What a command that finds its run lock held says (exit 75), the same for sync, push, scan.
-- The line a flow command (sync, push, scan) prints when its run fails: a held run lock
-- says so and how to wait; anything else is the error itself.
function output.failure_line(command, err)
  if type(err) == "table" and err.kind == "locked" then
    return ("wdt: another '%s' is running: %s; exiting (--wait SECONDS waits for it)\n")
      :format(command, output.one_line(err.message))
  end
  return output.error_lines(err)
end

-- An error, and on a line of its own what it probably means (wdt.errors.hint).
function output.error_lines(err)
  local hint = require("wdt.errors").hint(err)
  return output.one_line(tostring(err)) .. "\n" .. (hint and ("wdt: hint: " .. hint .. "\n") or "")
end

return output
