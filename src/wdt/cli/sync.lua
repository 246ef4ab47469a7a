-- `wdt sync logistics|stock`: client:sync_logistics / sync_stock with a handler file, a
-- progress line on a terminal, the summary (text or JSON).
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local usage = args.usage

-- Load FILE.lua, which returns the handler function.
local function load_handler(path)
  if not path then usage("'--handler FILE.lua' is required") end
  return args.load_function(path, "handler")
end

local function is_utf8(s)
  if utf8 and utf8.len then return utf8.len(s) ~= nil end   -- luacheck: ignore (5.3+ global)
  return require("wdt.sync.common").clean_message(s) == s
end

local function run_sync(ctx, kind, opts, words)
  if #words > 0 then usage("unexpected argument '%s'", words[1]) end
  local dry_run = opts["dry-run"] or false
  local handler
  if dry_run then
    if opts.handler then handler = load_handler(opts.handler) end   -- checked, not called
  else
    handler = load_handler(opts.handler)
  end
  local sopts = { handler = handler, dry_run = dry_run or nil, lock = config.lock_spec(opts, ctx.env),
                  concurrency = args.concurrency(opts) }
  if kind == "logistics" then
    if not opts.shop or opts.shop == "" then usage("'--shop SHOP' is required") end
    if not is_utf8(opts.shop) then usage("'--shop' is not valid UTF-8") end
    sopts.shop_no = opts.shop
    sopts.batch = args.int_option(opts, "batch", 1, 1000, nil)
    sopts.page_size = args.int_option(opts, "page-size", 1, 1000, nil)
  else
    sopts.count = args.int_option(opts, "count", 10, 5000, nil)
    sopts.force_sync = opts.force or nil
  end
  local client = config.new_client(opts, ctx.env)
  local draw, finish = output.progress_drawer(ctx, kind)
  sopts.on_progress = draw
  local summary, err
  if kind == "logistics" then
    summary, err = client:sync_logistics(sopts)
  else
    summary, err = client:sync_stock(sopts)
  end
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

local HANDLER = { "--handler FILE", "the handler file (required)" }
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
    HANDLER,
    { "--batch N", "outcomes per update call, 1..1000 (default 100)" },
    { "--page-size N", "rows per read, 1..1000 (default 100)" },
    args.CONCURRENCY_FLAG,
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
    args.CONCURRENCY_FLAG,
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
