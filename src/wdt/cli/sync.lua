-- `wdt sync logistics|stock`: client:sync_logistics / sync_stock with a handler file, a
-- progress line on a terminal, the summary (text or JSON).
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local usage = args.usage

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
  end
  if (s.elapsed or 0) > 0 then add("  elapsed   %.1fs (%.0f %s/s)", s.elapsed, s.read / s.elapsed, what) end
  local idf = kind == "stock" and "api_goods_id" or "sync_id"
  local function just_id(r) return ("%s %s"):format(idf, id_text(r[idf])) end
  list("refused by the ERP", s.refused_items, function(r)
    return ("%s %s: %s"):format(idf, id_text(r[idf]), one_line(r.message))
  end)
  list("unconfirmed (the ERP's answer did not say whether it took them)", s.unconfirmed, just_id)
  list("unreported (still in the ERP's queue)", s.unreported, just_id)
  list("invalid rows from the ERP (not handled)", s.invalid, function(r)
    return one_line(r.message)
  end)
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
    dry_run = s.dry_run or false,
    refused_items = items(s.refused_items), unreported = items(s.unreported),
    invalid = items(s.invalid), unconfirmed = items(s.unconfirmed),
    confirmed_on_retry = confirmed,
  }
end

local function run_sync(ctx, kind, opts, words)
  if #words > 0 then usage("unexpected argument '%s'", words[1]) end
  local dry_run = opts["dry-run"] or false
  local handler   -- a dry run's is checked, not called
  if not (dry_run or opts.handler) then usage("'--handler FILE.lua' is required") end
  if opts.handler then handler = args.load_function(opts.handler, "handler") end
  local sopts = { handler = handler, dry_run = dry_run or nil, lock = config.lock_spec(opts, ctx.env) }
  if kind == "logistics" then
    sopts.shop_no = args.shop(opts)
    sopts.batch = args.int_option(opts, "batch", 1, 1000, nil)
    sopts.page_size = args.int_option(opts, "page-size", 1, 1000, nil)
  else
    sopts.count = args.int_option(opts, "count", 10, 5000, nil)
    sopts.force_sync = opts.force or nil
  end
  local client = config.new_client(opts, ctx.env)
  local finish
  sopts.on_progress, finish = output.progress_drawer(ctx, kind)
  local summary, err = client["sync_" .. kind](client, sopts)
  client:close()
  finish(summary or err and err.summary)
  local failed = output.print_summary(ctx, "wdt sync " .. kind, opts, summary, err, summary_json, summary_text)
  if failed then return failed end
  if summary.refused > 0 or #summary.invalid > 0 or #summary.unconfirmed > 0 then
    return exit.API
  end
  return exit.OK
end

local DRY_RUN = { "--dry-run", "read the queue and count it; call no handler, report nothing" }
local JSON = { "--json", "print the summary as JSON instead of text" }

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
A handler that raises counts as failed with the error as its message.]],
  flags = args.flags({
    { "--shop SHOP", "the shop_no (required)" },
    { "--handler FILE", "the handler file (required)" },
    { "--batch N", "outcomes per update call, 1..1000 (default 100)" },
    { "--page-size N", "rows per read, 1..1000 (default 100)" },
    DRY_RUN, JSON,
  }, args.LOCK_FLAGS),
  footer = [[
The run lock is per seller and shop (wdt.sync.logistics/SID/SHOP).
A progress line is drawn on stderr when stderr is a terminal; a summary is printed on
stdout at the end. Exit codes: 0 every outcome reported and accepted, 1 the ERP refused
some items, its answer left some outcomes unclear, or it sent rows that cannot be handled
(all listed), or an API error stopped the loop, 2 usage error, 3 network failure (the
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
    DRY_RUN, JSON,
  }, args.LOCK_FLAGS),
  footer = "The run lock is per seller (wdt.sync.stock/SID). Exit codes as for 'wdt sync logistics'.",
  run = function(ctx, opts, words) return run_sync(ctx, "stock", opts, words) end,
}

return {
  name = "sync",
  usage = { "sync logistics --shop SHOP --handler FILE.lua [OPTIONS]",
            "sync stock --handler FILE.lua [OPTIONS]" },
  about = [[
Runs a sync loop: reads what the ERP wants reported, calls the handler for each item,
reports each outcome back. See 'wdt sync logistics --help' and 'wdt sync stock --help'.]],
  subcommands = { logistics, stock },
}
