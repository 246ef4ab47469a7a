-- `wdt scan METHOD [FILTER_JSON] --from T --to T | --checkpoint FILE [--since T]`:
-- client:scan's rows as JSON lines on stdout (doc/cli.md, doc/scan.md).
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local usage, one_line = args.usage, output.one_line

local function scan_options(opts, words, env)
  local method, filter_json = args.method_words(words, "scan", "FILTER_JSON")
  if opts.commit and not opts.checkpoint then usage("--commit goes with --checkpoint FILE") end
  if opts.checkpoint then
    if opts.from then usage("--from is for runs without --checkpoint; use --since") end
  else
    if opts.since then usage("--since goes with --checkpoint") end
    if not opts.from then usage("'wdt scan' needs --from T or --checkpoint FILE") end
  end
  local filter = filter_json and args.json(filter_json, "FILTER_JSON")
  if filter_json and not args.is_json_object(filter) then usage("FILTER_JSON must be one JSON object") end
  local so = { method = method, filter = filter, from = opts.from or opts.since,
               to = opts.to, checkpoint = opts.checkpoint,
               lag = args.int_option(opts, "lag", 0, 10 * 86400, nil),
               window = args.int_option(opts, "window", 1, 365 * 86400, nil),
               page_size = args.int_option(opts, "page-size", 1, 100000, nil),
               concurrency = args.concurrency(opts) }
  -- the run lock, per seller + method + checkpoint (client:scan's `lock`; none without one)
  if opts.checkpoint then
    so.lock = config.lock_spec(opts, env)
  elseif opts.wait or opts["lock-dir"] or opts["no-lock"] then
    usage("--wait, --lock-dir and --no-lock go with --checkpoint (a scan without one takes no lock)")
  end
  if not require("wdt.scan").methods[method] then
    usage("wdt does not know how to scan '%s' (from Lua, client:scan takes its facts: doc/scan.md)", method)
  end
  return so
end

-- --since starts a new checkpoint; an existing one decides where the scan resumes
-- (client:scan's from_ignored). Said once on stderr, before any row, and the scan goes on:
-- a cron line that keeps its first run's --since must keep running.
local function say_since_unused(ctx, opts, scan)
  if not scan.from_ignored then return end
  local resumed = scan.resumed
  ctx.err(("wdt: warning: --since %s not used: the checkpoint %s resumes at %s (%d); "
    .. "--since applies only to a new checkpoint\n"):format(one_line(opts.since), one_line(opts.checkpoint),
    require("wdt.scan.time").format(resumed), resumed))
end

-- Where a run's checkpoint saves go (see the help's "Delivery"): -> the store client:scan
-- is given, and the word for stdout when the saves are staged in FILE.uncommitted (nil
-- when they move FILE: stdout is a file synced before each save, or no process stdout).
local function delivery(ctx, opts, so)
  local store = require "wdt.store"
  local real, staged = store.file(so.checkpoint), so.checkpoint .. ".uncommitted"
  -- a stage left by a run whose consumer failed would be committed by this run's commit
  local gone, why, errno = os.remove(staged)
  if not gone and errno ~= 2 then usage("cannot remove %s: %s", staged, one_line(why)) end
  if opts.count or ctx.streams.stdout ~= io.stdout then return real, nil end
  local core = require "wdt.core"
  local _, kind = core.sync_output(1)
  local target = kind == "a file" and real or store.file(staged)
  return { path = so.checkpoint, load = function() return real:load() end,
           save = function(_, doc)
             local flushed, ferr = io.stdout:flush()
             if not flushed then ctx.write_error = ctx.write_error or ferr return nil, ferr end
             local synced, serr = core.sync_output(1)
             if synced == nil then ctx.write_error = ctx.write_error or serr return nil, serr end
             return target:save(doc)
           end }, kind ~= "a file" and kind or nil
end

-- `--commit`: FILE.uncommitted moved over FILE, under the scan's run lock, after checking
-- it is a checkpoint of this METHOD and seller that does not move FILE back.
local function commit(ctx, opts, so)
  local store = require "wdt.store"
  local staged_path = so.checkpoint .. ".uncommitted"
  local cid = config.credentials(opts, ctx.env)
  local function refuse(fmt, ...)
    ctx.err("wdt scan --commit: " .. one_line(fmt:format(...)) .. "\n")
    return exit.API
  end
  local lock, held, lerr = require "wdt.lock", false, nil
  if so.lock then
    held, lerr = lock.take_run(lock.check_options(so.lock, "scan", "lock"), "scan." .. so.method, cid.sid,
      require("wdt.scan").checkpoint_id(so.checkpoint))
  end
  if held == nil then return output.fail(ctx, "wdt scan --commit", lerr) end
  local function done(code) if held then held:release() end return code end
  local doc, err = store.file(staged_path):load()
  if err then return done(refuse("%s", tostring(err))) end
  if doc == nil then
    ctx.err(("wdt scan --commit: nothing to commit (no %s)\n"):format(staged_path))
    return done(exit.OK)
  end
  if type(doc) ~= "table" or doc.method ~= so.method or doc.sid ~= cid.sid or type(doc.next) ~= "number" then
    return done(refuse("%s is not a checkpoint of a scan of %s for seller %s", staged_path, so.method, cid.sid))
  end
  local cur = store.file(so.checkpoint):load()
  if type(cur) == "table" and type(cur.next) == "number" and cur.next > doc.next then
    os.remove(staged_path)
    return done(refuse("%s is behind %s; removed", staged_path, so.checkpoint))
  end
  local ok, serr = store.file(so.checkpoint):save(doc)
  if not ok then return done(refuse("%s", tostring(serr))) end
  os.remove(staged_path)
  ctx.err(("wdt scan --commit: %s now at %s (%d)\n"):format(so.checkpoint,
    require("wdt.scan.time").format(doc.next), doc.next))
  return done(exit.OK)
end

local function run(ctx, opts, so)
  if opts.commit then return commit(ctx, opts, so) end
  local staged_to
  if so.checkpoint then so.checkpoint, staged_to = delivery(ctx, opts, so) end
  local client = config.new_client(opts, ctx.env, ctx)
  local shop_no = type(so.filter) == "table" and so.filter.shop_no
  local refused = type(shop_no) == "string"
    and config.preflight_shop(ctx, client, shop_no, "wdt scan " .. so.method, true)   -- exists only
  if refused then client:close() return refused end
  local ok, it, scan = pcall(client.scan, client, so)   -- checks the options; reads nothing yet
  if not ok then
    client:close()
    local name, why = tostring(it):match("bad argument '([^']*)' to 'scan' %((.*)%)$")
    if name then usage("%s: %s", name, why) end
    error(it, 0)
  end
  local encode = require("wdt").json.encode
  local stdout = ctx.streams.stdout
  local n, failure, said = 0, nil, false
  for row, err in it do
    if not said then said = true say_since_unused(ctx, opts, scan) end
    if not row then failure = err break end
    n = n + 1
    if not opts.count then
      ctx.out(encode(row) .. "\n")
      -- on the way out before the next row is asked for, since asking may advance the
      -- checkpoint; a row not written stops here (cli.main exits 74), the checkpoint behind it
      if not ctx.write_error and stdout.flush then
        local flushed, ferr = stdout:flush()
        if not flushed then ctx.write_error = ferr end
      end
      if ctx.write_error then scan:close() break end   -- its run lock too
    end
  end
  client:close()
  if not said then say_since_unused(ctx, opts, scan) end   -- the scan had no row
  if opts.count then ctx.out(n .. "\n") end
  local odd = scan.stats.bad_modified
  if odd > 0 then
    table.sort(scan.bad_modified)
    ctx.err(("wdt: warning: %d row(s) without a usable '%s' (%s%s): each printed once, in the first "
      .. "window that returned it\n"):format(odd, scan.facts.modified, table.concat(scan.bad_modified, ", "),
      odd > #scan.bad_modified and ", ..." or ""))
  end
  -- the commit is said when there is one to make (a pipe closed at once staged nothing)
  local staged = staged_to and io.open(opts.checkpoint .. ".uncommitted", "rb")
  if staged then
    staged:close()
    ctx.err(("wdt: stdout is %s: the checkpoint %s stays where it was until the consumer confirms; "
      .. "after it succeeded: wdt scan %s --checkpoint %s --commit (doc/scan.md, \"Delivery\")\n")
      :format(staged_to, opts.checkpoint, so.method, opts.checkpoint))
  end
  if failure then return output.fail(ctx, "wdt scan " .. so.method, failure) end
  return exit.OK
end

return {
  name = "scan",
  synopsis = "scan METHOD [FILTER_JSON]",
  summary = "every row a query method reports as changed, as JSON lines",
  usage = { "scan METHOD [FILTER_JSON] --from T [--to T] [OPTIONS]",
            "scan METHOD [FILTER_JSON] --checkpoint FILE [--since T] [--to T] [OPTIONS]" },
  about = [[
Reads every row METHOD reports as modified in [from, to), window by window, and prints
each as one line of JSON (ids exact). Rows that change while a window is read are read
again, never missed, never printed twice (doc/scan.md).

FILTER_JSON is the method's filter object without the time fields, e.g. '{"shop_no":"s1"}'.
T is "YYYY-MM-DD HH:MM:SS" in the ERP's zone (UTC+8) or Unix seconds.]],
  flags = args.flags({
    { "--from T", "where to start (without --checkpoint)" },
    { "--to T", "where to stop (default: now minus the lag)" },
    { "--checkpoint FILE", "resume from FILE and advance it after each window read and printed;\n"
                           .. "one run at a time per seller, METHOD and FILE (the run lock\n"
                           .. "wdt.scan.METHOD/SID/FILE: --wait, --lock-dir, --no-lock, --redis)" },
    { "--since T", "where the first run with a new checkpoint starts; with a checkpoint\n"
                   .. "that exists, the checkpoint decides (a --since elsewhere: a warning\n"
                   .. "on stderr naming the checkpoint's position, and the scan goes on)" },
    { "--lag SECONDS", "stay this far behind the server's now (default 120)" },
    { "--window SECONDS", "window width (default and most: the method's limit)" },
    { "--page-size N", "rows per page (default and most: 1000)" },
    args.CONCURRENCY_FLAG,
    { "--count", "print only the number of rows" },
    { "--commit", "move the checkpoint to where the last run into a pipe stopped\n"
                  .. "(FILE.uncommitted), once its consumer succeeded; reads nothing" },
  }, args.LOCK_FLAGS),
  footer = [[
The run lock options go with --checkpoint (a scan without one takes no lock).

Delivery with --checkpoint (doc/scan.md, "Delivery"): rows go to stdout; when stdout is a
file, it is synced to disk before the checkpoint moves past them. When it is a pipe (or a
terminal, a device), wdt cannot know what the reader took: the run leaves its position in
FILE.uncommitted and FILE stays, so the next run prints those rows again (at least once);
once the consumer succeeded, move the checkpoint with
  wdt scan METHOD --checkpoint FILE --commit
e.g. wdt scan METHOD --checkpoint FILE | consumer && wdt scan METHOD --checkpoint FILE --commit
(run the pipeline and its commit one at a time: a run started before the commit is
committed with it).

Methods wdt knows: sales.TradeQuery.querySelfOrderWithDetail, sales.RawTrade.searchSelfOrder,
aftersales.refund.Refund.search, aftersales.refund.RawRefund.search,
wms.stockout.Sales.queryWithDetail (FILTER_JSON needs status_type),
wms.stockout.Sales.searchLogistics (FILTER_JSON needs status), goods.ApiGoods.search.

Exit codes: 0 done, 1 the API refused a call, or the checkpoint cannot be used, or rows
kept changing, 2 usage error, 3 network failure or an answer of the wrong shape, 74 the
output could not be written (the scan stops there), 75 another run holds the checkpoint's
lock. The checkpoint only ever holds windows printed completely.]],
  run = function(ctx, opts, words) return run(ctx, opts, scan_options(opts, words, ctx.env)) end,
}
