-- `wdt sync logistics|stock`: client:sync_logistics / sync_stock with a handler file, a
-- progress line on a terminal, the summary (text or JSON).
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local usage = args.usage

-- Load FILE.lua, which returns the handler function, or a handler module: a table with
-- handle(item) and/or batch(items), and optionally finish(summary).
local function load_handler(path)
  if not path then usage("'--handler FILE.lua' is required") end
  local chunk, err = loadfile(path)
  if not chunk then usage("cannot load the handler: %s", output.one_line(err)) end
  local ok, h = pcall(chunk)
  if not ok then usage("the handler file raised an error: %s", output.one_line(h)) end
  if type(h) == "table" and (type(h.handle) == "function" or type(h.batch) == "function") then return h end
  if type(h) ~= "function" then
    usage("the handler file %s must return a function, or a table with handle(item) or batch(items) "
          .. "(it returned %s)", path, type(h))
  end
  return h
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
    if not args.is_utf8(opts.shop) then usage("'--shop' is not valid UTF-8") end
    sopts.shop_no = opts.shop
    sopts.batch = args.int_option(opts, "batch", 1, 1000, nil)
    sopts.page_size = args.int_option(opts, "page-size", 1, 1000, nil)
  else
    sopts.count = args.int_option(opts, "count", 10, 5000, nil)
    sopts.force_sync = opts.force or nil
  end
  local client = config.new_client(opts, ctx.env, ctx)
  local refused = sopts.shop_no and config.preflight_shop(ctx, client, sopts.shop_no, "wdt sync " .. kind)
  if refused then client:close() return refused end
  local draw, finish = output.progress_drawer(ctx, kind)
  sopts.on_progress = draw
  local close_log
  if opts.log then sopts.on_outcome, close_log = output.outcome_log(opts.log, "sync." .. kind) end
  local summary, err
  if kind == "logistics" then
    summary, err = client:sync_logistics(sopts)
  else
    summary, err = client:sync_stock(sopts)
  end
  client:close()
  if close_log then close_log() end
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
  if s and (s.handler_errors or 0) > 0 then
    -- the glue's bug, not the platform's refusal: said on stderr, the run fails
    local first
    for _, u in ipairs(s.unreported) do if u.kind == "handler" then first = u break end end
    ctx.err(("wdt sync %s: the handler failed on %d item(s), not reported (they stay in the ERP's "
      .. "queue); the first: %s\n"):format(kind, s.handler_errors, output.one_line(first and first.message)))
  end
  if not summary then
    ctx.err(output.failure_line("wdt sync " .. kind, err))
    return exit.for_error(err)
  end
  if summary.refused > 0 or summary.handler_errors > 0 or #summary.invalid > 0 or #summary.unconfirmed > 0 then
    return exit.API
  end
  return exit.OK
end

local HANDLER = { "--handler FILE", "the handler file (required)" }
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
    HANDLER,
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
  usage = { "sync logistics --shop SHOP --handler FILE.lua [OPTIONS]",
            "sync stock --handler FILE.lua [OPTIONS]" },
  about = [[
Runs a sync loop: reads what the ERP wants reported, calls the handler for each item,
reports each outcome back. See 'wdt sync logistics --help' and 'wdt sync stock --help'.]],
  subcommands = { logistics, stock },
}
