-- What the `wdt` command prints: the progress line on stderr; a sync's summary (text or
-- JSON) and the pieces push's shares (lines, id_text); a flow's failure line.
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
  local count = total and ("%d/%d"):format(done, total) or tostring(done)
  if total and total > 0 then count = count .. (" (%d%%)"):format(math.floor(done * 100 / total)) end
  local parts = { kind, count, ("%.0f/s"):format(rate),
                  "ETA " .. (total and rate > 0 and fmt_duration((total - done) / rate) or "?"),
                  ("failed %d"):format(p.failed or 0), ("deferred %d"):format(p.deferred or 0) }
  if (p.refused or 0) > 0 then parts[#parts + 1] = ("refused %d"):format(p.refused) end
  if p.waiting then
    parts[#parts + 1] = ("waiting %ds (%s)"):format(math.ceil(p.waiting), p.waiting_for or "rate limit")
  end
  return table.concat(parts, "  ")
end

-- An id or a push's key as the summaries print it: as wdt.check.id_text writes it, "?" for
-- none, a goods key (goods_id, a zero byte, spec_id) as goods_id/spec_id.
function output.id_text(v)
  if v == nil then return "?" end
  return (require("wdt.check").id_text(v):gsub("%z", "/"))
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

-- Outcome records (wdt.flow.outcome) as JSON values: key, id, outcome, message, and the
-- key under its own name (`idf`: sync_id, api_goods_id, tid) when given.
local function outcome_json(o, idf)
  local null = require("wdt").null
  local j = { key = o.key == nil and null or o.key, id = o.id == nil and null or o.id,
              outcome = o.outcome, message = o.message == nil and null or o.message }
  if idf then j[idf] = j.key end
  return j
end

function output.outcomes_json(list, idf)
  local out = require("wdt").array()
  for i, o in ipairs(list or {}) do out[i] = outcome_json(o, idf) end
  return out
end

-- The outcome log of --log FILE: on_outcome(record) appending one JSON line per item and
-- outcome ({time, flow, key, id, outcome, message}), flushed line by line; and close().
function output.outcome_log(path, flow)
  local f, err = io.open(path, "ab")
  if not f then require("wdt.cli.args").usage("--log: cannot open %s", one_line(err)) end
  local encode = require("wdt").json.encode
  local function on_outcome(o)
    local j = outcome_json(o)
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

-- An error, and on a line of its own what it probably means (wdt.errors.hint).
function output.error_lines(err)
  local hint = require("wdt.errors").hint(err)
  return output.one_line(tostring(err)) .. "\n" .. (hint and ("wdt: hint: " .. hint .. "\n") or "")
end

-- A command's failed run or call: its line (a held run lock says so and how to wait;
-- anything else is the error itself) -> the exit code of its error.
function output.fail(ctx, command, err)
  if type(err) == "table" and err.kind == "locked" then
    ctx.err(("wdt: another '%s' is running: %s; exiting (--wait SECONDS waits for it)\n")
      :format(command, output.one_line(err.message)))
  else
    ctx.err(output.error_lines(err))
  end
  return require("wdt.cli.exit").for_error(err)
end

return output
