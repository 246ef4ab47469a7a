-- `wdt sync logistics|stock`: client:sync_logistics / sync_stock with a handler file, a
-- progress line on a terminal, the summary (text or JSON).
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local usage = args.usage

local function is_module(h) return type(h.handle) == "function" or type(h.batch) == "function" end

-- The plain summary, one fact per line, then the items to look at (up to 20 of each).
local id_text, one_line = output.id_text, output.one_line
local function summary_text(s)
  local kind, add, list, text = s.kind, output.lines()
  local what = kind == "stock" and "goods" or "rows"
  if s.dry_run then
    add("dry run: %d %s pending; no handler called, nothing reported", s.read, what)
  else
    add("%s sync: %d %s read, %d reported", kind, s.read, what, s.reported)
    for _, b in ipairs({ "synced", "failed", "deferred", "refused" }) do add("  %-10s%d", b, s[b]) end
    if s.handler_errors > 0 then
      add("  handler errors %d (not reported: still in the ERP's queue)", s.handler_errors)
    end
  end
  if (s.elapsed or 0) > 0 then add("  elapsed   %.1fs (%.0f %s/s)", s.elapsed, s.read / s.elapsed, what) end
  local idf = kind == "stock" and "api_goods_id" or "sync_id"
  local function just_id(r) return ("%s %s"):format(idf, id_text(r[idf])) end
  local function with_message(r)
    local id = just_id(r)
    if r.message and r.message ~= "" then id = id .. ": " .. one_line(r.message) end
    return id
  end
  list("refused by the ERP", s.refused_items, function(r)
    return ("%s %s: %s"):format(idf, id_text(r[idf]), one_line(r.message))
  end)
  local failed, deferred = {}, {}
  for _, o in ipairs(s.outcomes) do
    local into = o.outcome == "failed" and failed or o.outcome == "deferred" and deferred
    if into then into[#into + 1] = { [idf] = o.key, message = o.message } end
  end
  list("failed (reported as refused by the platform)", failed, with_message)
  list("deferred (left in the ERP's queue for the next run)", deferred, with_message)
  list("unconfirmed (the ERP's answer did not say whether it took them)", s.unconfirmed, just_id)
  list("unreported (still in the ERP's queue)", s.unreported, with_message)
  list("invalid rows from the ERP (not handled)", s.invalid, function(r) return r.message end)
  list("accepted on an earlier try (the retry was refused as already reported)",
       s.confirmed_on_retry, function(id) return ("%s %s"):format(idf, id_text(id)) end)
  return text()
end

-- A JSON-ready copy of a summary (rows left out of the item lists).
local function summary_json(s)
  local wdt = require "wdt"
  local idf = s.kind == "stock" and "api_goods_id" or "sync_id"
  local function items(list)
    local out = wdt.array()
    for i, r in ipairs(list) do
      out[i] = { [idf] = r[idf] == nil and wdt.null or r[idf], status = r.status, message = r.message,
                 kind = r.kind }
    end
    return out
  end
  local confirmed = wdt.array()
  for i, id in ipairs(s.confirmed_on_retry) do confirmed[i] = id end
  return {
    kind = s.kind, read = s.read, reported = s.reported, synced = s.synced, failed = s.failed,
    deferred = s.deferred, refused = s.refused, total = s.total, elapsed = s.elapsed,
    dry_run = s.dry_run, handler_errors = s.handler_errors,
    outcomes = output.outcomes_json(s.outcomes, idf),
    refused_items = items(s.refused_items), unreported = items(s.unreported),
    invalid = items(s.invalid), unconfirmed = items(s.unconfirmed),
    confirmed_on_retry = confirmed,
  }
end

local function run_sync(ctx, kind, opts, words)
  if #words > 0 then usage("unexpected argument '%s'", words[1]) end
  local dry_run = opts["dry-run"] or false
  local handler   -- a function, or a module: a table with handle(item) and/or batch(items)
  if not (dry_run or opts.handler) then usage("'--handler FILE.lua' is required") end
  if opts.handler then   -- a dry run's is checked, not called
    handler = args.load_function(opts.handler, "handler", is_module, "a table with handle(item) or batch(items)")
  end
  local sopts = { handler = handler, dry_run = dry_run or nil, lock = config.lock_spec(opts, ctx.env),
                  concurrency = args.concurrency(opts) }
  if kind == "logistics" then
    sopts.shop_no = args.shop(opts)
    sopts.batch = args.int_option(opts, "batch", 1, 1000, nil)
    sopts.page_size = args.int_option(opts, "page-size", 1, 1000, nil)
  else
    sopts.count = args.int_option(opts, "count", 10, 5000, nil)
    sopts.force_sync = opts.force or nil
  end
  local client = config.new_client(opts, ctx.env, ctx)
  local refused = sopts.shop_no and config.preflight_shop(ctx, client, sopts.shop_no, "wdt sync " .. kind)
  if refused then client:close() return refused end
  local finish, close_log
  sopts.on_progress, finish = output.progress_drawer(ctx, kind)
  if opts.log then sopts.on_outcome, close_log = output.outcome_log(opts.log, "sync." .. kind) end
  local summary, err = client["sync_" .. kind](client, sopts)
  client:close()
  if close_log then close_log() end
  local s = summary or (err and err.summary)
  finish(s)
  if s then ctx.out(opts.json and require("wdt").json.encode(summary_json(s)) .. "\n" or summary_text(s)) end
  if s and s.handler_errors > 0 then
    -- the glue's bug, not the platform's refusal: said on stderr, the run fails
    local first
    for _, u in ipairs(s.unreported) do if u.kind == "handler" then first = u break end end
    ctx.err(("wdt sync %s: the handler failed on %d item(s), not reported (they stay in the ERP's "
      .. "queue); the first: %s\n"):format(kind, s.handler_errors, one_line(first and first.message)))
  end
  if not summary then return output.fail(ctx, "wdt sync " .. kind, err) end
  if s.refused > 0 or s.handler_errors > 0 or #s.invalid > 0 or #s.unconfirmed > 0 then return exit.API end
  return exit.OK
end

local DRY_RUN = { "--dry-run", "read the queue and count it; call no handler, report nothing" }
local JSON = { "--json", "print the summary as JSON instead of text" }
local LOG = { "--log FILE", "append one JSON line per item and outcome to FILE (an audit log)" }

local logistics = {
  name = "logistics",
  synopsis = "sync logistics",
  summary = "the logistics sync loop (read, push, report back)",
  usage = { "sync logistics --shop SHOP --handler FILE.lua [OPTIONS]" },
  about = [[
Reads the shop's pending shipments (sales.LogisticsSync.getSyncListExt), calls the
handler for each one and reports every outcome (sales.LogisticsSync.update).

FILE.lua returns the handler function: handler(row) returns
  true              synced            (reported as status 0)
  false, message    failed            (status 2, the message as error_msg)
  nil, message      try again later   (status -100; the row stays in the queue)
A handler that raises (or returns anything else) is a bug in the glue, not a refusal:
the row is not reported and stays in the queue, the error is listed and the run exits 1.
FILE.lua may also return a module: { handle = function(row), batch = function(rows),
finish = function(summary) } (batch: a page's new rows at once, returning a list of
true, false or { ok = true|false|nil, message = }; finish: once, at the end).]],
  flags = args.flags({
    { "--shop SHOP", "the shop_no (required)" },
    { "--handler FILE", "the handler file (required)" },
    { "--batch N", "outcomes per update call, 1..1000 (default 100)" },
    { "--page-size N", "rows per read, 1..1000 (default 100)" },
    args.CONCURRENCY_FLAG,
    DRY_RUN, JSON, LOG,
  }, args.LOCK_FLAGS),
  footer = [[
The run lock is per seller and shop (wdt.sync.logistics/SID/SHOP).
A progress line is drawn on stderr when stderr is a terminal; a summary is printed on
stdout at the end. Exit codes: 0 every outcome reported and accepted, 1 the ERP refused
some items, its answer left some outcomes unclear, or it sent rows that cannot be handled
(all listed), or the handler failed on some (not reported), or an API error stopped the
loop, 2 usage error (also a shop that is missing, disabled or not self-owned), 3 network failure (the
items handled but not reported are listed; they stay in the ERP's queue), 75 another
run holds the lock, 130 interrupted.]],
  run = function(ctx, opts, words) return run_sync(ctx, "logistics", opts, words) end,
}

local stock = {
  name = "stock",
  synopsis = "sync stock",
  summary = "the stock sync loop",
  usage = { "sync stock --handler FILE.lua [OPTIONS]" },
  about = [[
Reads the goods waiting for a stock sync (sales.StockSync.getSelfWaitSyncIdListOpen),
computes each one's stock (sales.StockSync.calcStock), calls the handler with it and
reports the outcome: syncSuccess (true) or syncFail (false, message). For nil, message
(try again later) nothing is sent: the good stays waiting and the next run offers it again.]],
  flags = args.flags({
    { "--handler FILE", "the handler file (required); it returns handler(item) where item has\n"
                        .. "api_goods_id, syn_stock, stock_change_count and calcStock's other fields" },
    { "--count N", "ids per read, 10..5000 (default 100)" },
    { "--force", "calcStock with force_sync = true" },
    args.CONCURRENCY_FLAG,
    DRY_RUN, JSON, LOG,
  }, args.LOCK_FLAGS),
  footer = "The run lock is per seller (wdt.sync.stock/SID). Exit codes as for 'wdt sync logistics'.",
  run = function(ctx, opts, words) return run_sync(ctx, "stock", opts, words) end,
}

return {
  name = "sync",
  usage = { logistics.usage[1], stock.usage[1] },
  about = [[
Runs a sync loop: reads what the ERP wants reported, calls the handler for each item,
reports each outcome back. See 'wdt sync logistics --help' and 'wdt sync stock --help'.]],
  subcommands = { logistics, stock },
}
