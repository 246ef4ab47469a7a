-- `wdt sync logistics|stock`: client:sync_logistics / sync_stock with a handler file, a
-- progress line on a terminal, the summary (text or JSON).
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local usage = args.usage

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
  local s = summary or (err and err.summary)
  finish(s)
  if s then
    if opts.json then
      s.kind, s.dry_run = kind, dry_run
      ctx.out(require("wdt").json.encode(output.summary_json(s)) .. "\n")
    else
      ctx.out(output.summary_text(kind, s, dry_run))
    end
  end
  if not summary then
    ctx.err(output.failure_line("wdt sync " .. kind, err))
    return exit.for_error(err)
  end
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
