-- `wdt push orders|refunds|goods --shop SHOP (FILE.jsonl | - | --source FILE.lua --state STATE)`
-- Runs client:push_orders / push_refunds / upload_goods (doc/push.md) under a run lock,
-- one per seller + shop + flow, and prints the summary (text, or JSON with --json).
-- Exit codes as `wdt sync`: 0 every item taken, 1 some refused / invalid / unreported /
-- given up (listed), the source failed or the state cannot be used, 2 usage, 3 no valid
-- answer, 75 the lock is held by another run, 130 interrupted.
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local usage, one_line, key_text = args.usage, output.one_line, output.id_text

local FLOW_FN = { orders = "push_orders", refunds = "push_refunds", goods = "upload_goods" }
local KEY_NAME = { orders = "tid", refunds = "refund_no", goods = "goods_id/spec_id" }

-- The UTF-8 byte order mark Windows editors write at the start of a file.
local BOM = "\239\187\191"

-- JSON lines from a file or stdin: an iterator of items; lines that are not a JSON object
-- are kept in `bad` ({line, reason}) and merged into the summary as invalid. A BOM is
-- skipped at the very start of the input only; anywhere else the line is not JSON.
local function json_lines(ctx, path)
  local f
  if path == "-" then f = ctx.streams.stdin or io.stdin
  else
    local err
    f, err = io.open(path, "rb")
    if not f then usage("cannot read %s", one_line(err)) end
  end
  local json = require("wdt").json
  local bad, line_of, n, read = {}, {}, 0, 0
  local function next_item()
    while true do
      local line, rerr = f:read("*l")
      if line == nil then
        if path ~= "-" then f:close() end
        -- a read error (EIO, a folder given as the file) is no end of file: the push stops
        -- there as after a source that raised, the lines after it never taken as absent
        if rerr then
          error(("cannot read %s after line %d: %s"):format(path == "-" and "stdin" or path, n, rerr), 0)
        end
        return nil
      end
      n = n + 1
      if n == 1 and line:sub(1, 3) == BOM then line = line:sub(4) end
      if line:match("%S") then
        local v, err = json.safe.decode(line)
        if args.is_json_object(v) then
          read = read + 1
          line_of[read] = n
          return v
        end
        bad[#bad + 1] = { line = n, reason = v == nil and err and ("not JSON: " .. err) or "not a JSON object" }
      end
    end
  end
  return next_item, bad, line_of
end

-- An outcome record as the input knows it: its id (the item's position) its line in the
-- input, its key as printed.
local function as_input(o, line_of)
  if o.id and line_of[o.id] then o.id = line_of[o.id] end
  if o.key ~= nil then o.key = key_text(o.key) end
  return o
end

-- The lines that were not items join the summary (and the outcome log): invalid, by line.
local function merge_bad(s, bad, line_of, on_outcome)
  for _, x in ipairs(s.invalids) do x.line = line_of[x.index] end
  for _, o in ipairs(s.outcomes or {}) do as_input(o, line_of) end
  for _, b in ipairs(bad) do
    s.read, s.invalid = s.read + 1, s.invalid + 1
    s.invalids[#s.invalids + 1] = { line = b.line, field = "(line)", reason = b.reason }
    local o = require("wdt.flow").outcome(nil, b.line, "invalid", "(line): " .. b.reason)
    if s.outcomes then s.outcomes[#s.outcomes + 1] = o end
    if on_outcome then on_outcome(o) end
  end
end

-- The command that pushes the given-up items again (listed under them).
local function retry_command(flow, s, opts)
  if not (opts and opts.source and opts.state) then return nil end
  local q = args.shell_quote
  return ("wdt push %s --shop %s --source %s --state %s --retry-given-up"):format(flow, q(s.shop_no),
    q(opts.source), q(opts.state))
end

local function summary_text(s, opts)
  local flow, add, list, text = s.flow, output.lines()
  add("%s push to shop %s: %d read, %d call(s)", flow, s.shop_no, s.read, s.calls)
  for _, b in ipairs({ "new", "changed", "failed", "invalid", "unreported" }) do
    if b == "changed" and (s.changed_maybe_new or 0) > 0 then
      add("  %-11s %d (%d of them may be new: their call was tried again after a try that may "
        .. "have been applied)", b, s[b], s.changed_maybe_new)
    else
      add("  %-11s %d", b, s[b])
    end
  end
  if s.retried then
    add("  %-11s %d (from earlier runs)", "retried", s.retried)
    add("  %-11s %d (already settled before an interruption)", "skipped", s.skipped)
    add("  %-11s %d (kept in the state for the next run)", "pending", s.pending or 0)
    add("  %-11s %d", "given up", #s.given_up)
  end
  if (s.elapsed or 0) > 0 then
    add("  %-11s %.1fs (%.0f %s/s)", "elapsed", s.elapsed, s.read / s.elapsed, flow)
  end
  local kn = KEY_NAME[flow]
  list("refused by the ERP", s.failures, function(x) return ("%s %s: %s"):format(kn, key_text(x.key), x.error) end)
  list("invalid (not sent)", s.invalids, function(x)
    local where = x.line and ("line " .. x.line) or ("item " .. tostring(x.index))
    if x.key then where = where .. (" (%s %s)"):format(kn, key_text(x.key)) end
    return ("%s: %s: %s"):format(where, x.field, x.reason)
  end)
  -- only a resumable push (--source/--state) keeps them; a file or stdin is read once
  list(s.retried and "unreported (outcome unknown; kept in the state, pushed again on the next run)"
         or "unreported (outcome unknown; nothing keeps them: push them again, safe as the ERP overwrites by key)",
       s.unreported_items,
       function(x) return ("%s %s: %s"):format(kn, key_text(x.key), x.error) end)
  list("given up (kept in the state, listed on every run)", s.given_up, function(x)
    return ("%s %s after %d tries: %s"):format(kn, key_text(x.key), x.tries, tostring(x.error))
  end)
  local again = s.given_up and #s.given_up > 0 and retry_command(flow, s, opts)
  if again then add("  to push them again: %s", again) end
  list("answers that did not add up", s.anomalies, function(x) return x end)
  return text()
end

local function summary_json(s)
  local wdt = require "wdt"
  local function strip(list, fields)
    local out = wdt.array()
    for i, x in ipairs(list or {}) do
      local o = {}
      for _, f in ipairs(fields) do o[f] = x[f] end
      if o.key ~= nil then o.key = key_text(o.key) end
      out[i] = o
    end
    return out
  end
  local anomalies = wdt.array()
  for i, a in ipairs(s.anomalies) do anomalies[i] = a end
  local j = {
    flow = s.flow, method = s.method, shop_no = s.shop_no, read = s.read, calls = s.calls,
    new = s.new, changed = s.changed, failed = s.failed, invalid = s.invalid,
    unreported = s.unreported, elapsed = s.elapsed, changed_maybe_new = s.changed_maybe_new,
    failures = strip(s.failures, { "key", "error" }),
    invalids = strip(s.invalids, { "index", "line", "key", "field", "reason" }),
    unreported_items = strip(s.unreported_items, { "key", "error" }),
    anomalies = anomalies,
    outcomes = output.outcomes_json(s.outcomes),
  }
  if s.retried then
    j.retried, j.skipped, j.pages, j.pending = s.retried, s.skipped, s.pages, s.pending or 0
    j.given_up = strip(s.given_up, { "key", "tries", "error" })
    j.cursor = s.cursor
  end
  return j
end

local function run(ctx, flow, opts, words)
  local shop, input = args.shop(opts), words[1]
  if #words > 1 then usage("unexpected argument '%s'", words[2]) end
  local popts = { shop_no = shop, batch = args.int_option(opts, "batch", 1, 100, nil),
                  concurrency = args.concurrency(opts) }
  local bad, line_of = {}, {}
  if opts.source then
    if input then usage("give FILE.jsonl or --source, not both") end
    if not opts.state then usage("'--source' needs '--state STATE'") end
    popts.source = args.load_function(opts.source, "source")
    popts.state = require("wdt.store").file(opts.state)
    popts.max_tries = args.int_option(opts, "max-tries", 1, 1000, nil)
    popts.retry_given_up = opts["retry-given-up"] or nil
    popts.source_name = require("wdt.scan").checkpoint_id(opts.source)   -- the absolute path
  else
    if not input then usage("'wdt push %s' needs FILE.jsonl, '-' or --source FILE.lua", flow) end
    if opts.state or opts["max-tries"] or opts["retry-given-up"] then
      usage("'--state', '--max-tries' and '--retry-given-up' go with '--source'")
    end
    popts[flow], bad, line_of = json_lines(ctx, input)
  end
  -- the run lock (wdt.lock), per seller + shop + flow, taken by the push itself, for a
  -- JSON-lines file as for a source: "wdt.push.orders/SID/SHOP"
  popts.lock = config.lock_spec(opts, ctx.env)
  local client = config.new_client(opts, ctx.env, ctx)
  local refused = config.preflight_shop(ctx, client, opts.shop, "wdt push " .. flow)
  if refused then client:close() return refused end
  local draw, finish = output.progress_drawer(ctx, flow)
  if draw then
    popts.on_progress = function(s)
      draw({ read = s.read, failed = s.failed, deferred = s.unreported, elapsed = s.elapsed })
    end
  end
  local log, close_log
  if opts.log then
    log, close_log = output.outcome_log(opts.log, "push." .. flow)
    popts.on_outcome = function(o) log(as_input(o, line_of)) end
  end
  local summary, err = client[FLOW_FN[flow]](client, popts)
  client:close()
  finish()
  local s = summary or (err and err.summary)
  if s then merge_bad(s, bad, line_of, log) end
  if close_log then close_log() end
  if s then ctx.out(opts.json and require("wdt").json.encode(summary_json(s)) .. "\n" or summary_text(s, opts)) end
  if not summary then return output.fail(ctx, "wdt push " .. flow, err) end
  if s.failed > 0 or s.invalid > 0 or s.unreported > 0 or #(s.given_up or {}) > 0 then return exit.API end
  return exit.OK
end

local HELP = {
  usage = { "push orders|refunds|goods --shop SHOP FILE.jsonl [OPTIONS]",
            "push orders|refunds|goods --shop SHOP - [OPTIONS]            (JSON lines on stdin)",
            "push orders|refunds|goods --shop SHOP --source FILE.lua --state STATE [OPTIONS]" },
  about = [[
Pushes the platform's orders (sales.RawTrade.pushSelf2), refunds
(aftersales.refund.RawRefund.upload2) or goods (goods.ApiGoods.upload) into the ERP.
Every item is checked before sending; the summary puts each in one bucket: new, changed,
failed (refused by the ERP, with its message), invalid (not sent: field and reason),
unreported (sent, outcome unknown: safe to push again).

FILE.jsonl holds one item per line, a JSON object; an order carries its lines under "orders".]],
  flags = args.flags({
    { "--shop SHOP", "the ERP's shop number (required)" },
    { "--source FILE.lua", "FILE returns function(cursor) return items, next_cursor end; wdt pulls\n"
                           .. "until it gets no items" },
    { "--state STATE", "with --source: the resumable state (cursor, failed and unreported\nitems to retry)" },
    { "--max-tries N", "with --source: attempts that reached the ERP before an item is given\n"
                       .. "up (default 5); given-up items stay in the state, listed by every run" },
    { "--retry-given-up", "with --source: put the given-up items back to be pushed again" },
    { "--batch N", "items per call (1..100, default 100)" },
    args.CONCURRENCY_FLAG,
    { "--json", "print the summary as JSON" },
    { "--log FILE", "append one JSON line per item and outcome to FILE (an audit log)" },
  }, args.LOCK_FLAGS),
  footer = [[
One run at a time per seller, shop and flow (the run lock wdt.push.FLOW/SID/SHOP, as for
'wdt sync'; in Redis with --redis URL).
Exit codes: 0 all taken, 1 some refused/invalid/unreported/given up, the source failed or
            the state cannot be used, 2 usage error, 3 network failure, 75 another run
            holds the lock, 130 interrupted.]],
}

-- `wdt push FLOW`: one sub-command per flow, each with the same help as `wdt push`
local function with_help(def)
  for k, v in pairs(HELP) do def[k] = v end
  return def
end

local function flow_command(flow)
  return with_help { name = flow, run = function(ctx, opts, words) return run(ctx, flow, opts, words) end }
end

return with_help {
  name = "push",
  synopsis = "push orders|refunds|goods",
  summary = "push the platform's orders, refunds or goods into the ERP",
  subcommands = { flow_command("orders"), flow_command("refunds"), flow_command("goods") },
}
