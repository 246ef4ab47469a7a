-- The `wdt` command: credentials from the environment or a config file, `wdt call`,
-- `wdt sync logistics|stock`, `wdt emulator`. Testable as a function:
--   require("wdt.cli").main(argv, env, streams) -> exit code
-- argv: the arguments without the program name; env: a table of environment variables
-- (os.getenv when nil); streams: {stdout=, stderr=, stderr_tty=} (the process's when nil).
--
-- Exit codes: 0 success, 1 the API refused something, 2 usage error, 3 network (no valid
-- answer), 130 interrupted, 70 internal error (a bug: please report it).
local cli = {}

cli.EXIT_OK, cli.EXIT_API, cli.EXIT_USAGE, cli.EXIT_NETWORK = 0, 1, 2, 3
cli.EXIT_INTERRUPTED, cli.EXIT_INTERNAL = 130, 70

local VERSION = "wdt scm"

-- Usage errors travel as a raised table, caught in cli.main.
local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end

local function usage(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, UsageError), 0)
end

---------------------------------------------------------------------------- help texts

local help = {}

help.main = [[
Usage: wdt [OPTIONS] COMMAND [ARGS]

A client for the WangDianTong (旺店通) flagship open API.

Commands:
  call METHOD [ARGS_JSON]     call one method and print its data as JSON
  sync logistics              the logistics sync loop (read, push, report back)
  sync stock                  the stock sync loop
  emulator ...                start the local emulator of the API (see 'wdt emulator --help')

Credentials come from the environment: WDT_URL, WDT_SID, WDT_KEY, WDT_SECRET
(appsecret, "secret:salt"), or from --config FILE, whose values override them.

Options (every command):
  --config FILE       read url/sid/key/secret from FILE (JSON object, or KEY=VALUE lines)
  --url URL           the API endpoint (default: WDT_URL, else production)
  --timeout SECONDS   per-request timeout (default 30)
  --retries N         retries of a failed request (default 3)
  -h, --help          show help (also 'wdt COMMAND --help')
  --version           show the version

Exit codes: 0 success, 1 the API refused something, 2 usage error,
            3 network failure (no valid answer), 130 interrupted.
]]

help.call = [[
Usage: wdt call METHOD [ARGS_JSON] [--page-size N] [--page-no N] [--all] [--total]

Calls METHOD and prints the answer's `data` as compact JSON on stdout.

ARGS_JSON is the JSON array of the method's positional arguments, e.g.
  wdt call sales.LogisticsSync.getSyncListExt '[{"shop_no":"s1","is_own_platform":true}]' --page-size 10
A JSON object is taken as the only argument. Without ARGS_JSON the method gets none.

Paged queries:
  --page-size N   ask for one page of N rows (default 100 when another paging option is given)
  --page-no N     the page to ask for, from 0 (default 0)
  --total         ask the server to count the rows (calc_total=1); when the answer's
                  data is the list itself (getSyncListExt), prints {"data":[...],"total":N}
  --all           read every page from --page-no on until a short page; prints one JSON
                  array of all rows

Exit codes: 0 the API answered status 0, 1 it answered an error status,
            2 usage error, 3 network failure.
]]

help.sync = [[
Usage: wdt sync logistics --shop SHOP --handler FILE.lua [OPTIONS]
       wdt sync stock --handler FILE.lua [OPTIONS]

Runs a sync loop: reads what the ERP wants reported, calls the handler for each item,
reports each outcome back. See 'wdt sync logistics --help' and 'wdt sync stock --help'.
]]

help.sync_logistics = [[
Usage: wdt sync logistics --shop SHOP --handler FILE.lua [--batch N] [--page-size N]
                          [--dry-run] [--json]

Reads the shop's pending shipments (sales.LogisticsSync.getSyncListExt), calls the
handler for each one and reports every outcome (sales.LogisticsSync.update).

FILE.lua returns the handler function: handler(row) returns
  true              synced            (reported as status 0)
  false, message    failed            (status 2, the message as error_msg)
  nil, message      try again later   (status -100; the row stays in the queue)
A handler that raises counts as failed with the error as its message.

Options:
  --shop SHOP       the shop_no (required)
  --handler FILE    the handler file (required)
  --batch N         outcomes per update call, 1..1000 (default 100)
  --page-size N     rows per read, 1..1000 (default 100)
  --dry-run         read the queue and count it; call no handler, report nothing
  --json            print the summary as JSON instead of text

A progress line is drawn on stderr when stderr is a terminal; a summary is printed on
stdout at the end. Exit codes: 0 every outcome reported and accepted, 1 the ERP refused
some items (listed) or an API error stopped the loop, 2 usage error, 3 network failure
(the items handled but not reported are listed; they stay in the ERP's queue),
130 interrupted.
]]

help.sync_stock = [[
Usage: wdt sync stock --handler FILE.lua [--count N] [--force] [--dry-run] [--json]

Reads the goods waiting for a stock sync (sales.StockSync.getSelfWaitSyncIdListOpen),
computes each one's stock (sales.StockSync.calcStock), calls the handler with it and
reports the outcome: syncSuccess (true), syncFail (false, message) or cancelSync
(nil, message: try again later).

Options:
  --handler FILE    the handler file (required); it returns handler(item) where item has
                    api_goods_id, syn_stock, stock_change_count and calcStock's other fields
  --count N         ids per read, 10..5000 (default 100)
  --force           calcStock with force_sync = true
  --dry-run         read the waiting ids and count them; call no handler, report nothing
  --json            print the summary as JSON instead of text

Exit codes as for 'wdt sync logistics'.
]]

help.emulator = [[
Usage: wdt emulator [ARGS]

Runs the local emulator of the API (bin/wdt-emulator) with ARGS; see 'wdt emulator --help'
once it is found. The emulator needs nginx with the Lua module.
]]

---------------------------------------------------------------------------- parsing

-- name -> takes a value?  Every option of every command; which command accepts which is
-- checked after parsing.
local option_takes_value = {
  config = true, url = true, timeout = true, retries = true, help = false, version = false,
  ["page-size"] = true, ["page-no"] = true, all = false, total = false,
  shop = true, handler = true, batch = true, count = true, ["dry-run"] = false,
  force = false, json = false,
}

local global_options = { config = true, url = true, timeout = true, retries = true, help = true, version = true }

local command_options = {
  call = { ["page-size"] = true, ["page-no"] = true, all = true, total = true },
  ["sync logistics"] = { shop = true, handler = true, batch = true, ["page-size"] = true,
                         ["dry-run"] = true, json = true },
  ["sync stock"] = { handler = true, count = true, force = true, ["dry-run"] = true, json = true },
  sync = {},
}

local function parse(argv)
  local opts, words = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do words[#words + 1] = argv[j] end
      break
    elseif a == "-h" then
      opts.help = true
    elseif a:sub(1, 2) == "--" then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local takes = option_takes_value[name]
      if takes == nil then usage("unknown option '--%s'", name) end
      if takes then
        if value == nil then
          i = i + 1
          value = argv[i]
          if value == nil then usage("option '--%s' needs a value", name) end
        end
        opts[name] = value
      else
        if value ~= nil then usage("option '--%s' takes no value", name) end
        opts[name] = true
      end
    elseif a:sub(1, 1) == "-" and #a > 1 and not a:match("^%-%d") then
      usage("unknown option '%s'", a)
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  return opts, words
end

local function check_allowed(opts, command)
  local allowed = command_options[command] or {}
  for name in pairs(opts) do
    if not global_options[name] and not allowed[name] then
      usage("option '--%s' does not apply to 'wdt %s'", name, command)
    end
  end
end

local function int_option(opts, name, min, max, default)
  local v = opts[name]
  if v == nil then return default end
  local n = tonumber(v)
  if not n or n % 1 ~= 0 or n < min or n > max then
    usage("option '--%s' wants a whole number from %d to %d, got '%s'", name, min, max, v)
  end
  return math.floor(n)
end

local function number_option(opts, name, min)
  local v = opts[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n ~= n or n < min or n == math.huge then
    usage("option '--%s' wants a number >= %s, got '%s'", name, tostring(min), v)
  end
  return n
end

---------------------------------------------------------------------------- credentials

local config_keys = { url = "url", sid = "sid", key = "key", secret = "secret",
                      WDT_URL = "url", WDT_SID = "sid", WDT_KEY = "key", WDT_SECRET = "secret" }

-- A config file: a JSON object {"url","sid","key","secret"} or KEY=VALUE lines (the
-- WDT_* names or the short ones), '#' comments, optional quotes around values.
function cli.read_config(path)
  local f, err = io.open(path, "rb")
  if not f then usage("cannot read the config file: %s", err) end
  local text = f:read("*a")
  f:close()
  local out = {}
  if text:match("^%s*{") then
    local ok, v = pcall(require("wdt").json.decode, text)
    if not ok or type(v) ~= "table" then usage("config file %s: not a JSON object", path) end
    for k, val in pairs(v) do
      if not config_keys[k] then usage("config file %s: unknown key '%s'", path, tostring(k)) end
      if type(val) ~= "string" then usage("config file %s: '%s' must be a string", path, k) end
      out[config_keys[k]] = val
    end
    return out
  end
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if not line:match("^%s*#") and line:match("%S") then
      local k, v = line:match("^%s*export%s+([%w_]+)%s*=%s*(.-)%s*$")
      if not k then k, v = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$") end
      if not k then usage("config file %s, line %d: KEY=VALUE expected", path, n) end
      if not config_keys[k] then usage("config file %s, line %d: unknown key '%s'", path, n, k) end
      local q = v:match("^\"(.*)\"$") or v:match("^'(.*)'$")
      out[config_keys[k]] = q or v
    end
  end
  return out
end

local function credentials(opts, env)
  local c = {
    url = env.WDT_URL, sid = env.WDT_SID, key = env.WDT_KEY, secret = env.WDT_SECRET,
  }
  if opts.config then
    for k, v in pairs(cli.read_config(opts.config)) do c[k] = v end
  end
  if opts.url then c.url = opts.url end
  for k, v in pairs(c) do if v == "" then c[k] = nil end end
  local missing = {}
  for _, k in ipairs({ "sid", "key", "secret" }) do
    if not c[k] then missing[#missing + 1] = "WDT_" .. k:upper() end
  end
  if #missing > 0 then
    usage("missing credentials: set %s (or use --config FILE)", table.concat(missing, ", "))
  end
  if not c.secret:find(":", 1, true) then
    usage("the appsecret (WDT_SECRET) must have the form 'secret:salt'")
  end
  if c.url and not c.url:match("^https?://[^/?#]+") then
    usage("the URL must start with http:// or https://")
  end
  return c
end

local function new_client(opts, env)
  local c = credentials(opts, env)
  local copts = { sid = c.sid, key = c.key, secret = c.secret, url = c.url }
  copts.timeout = number_option(opts, "timeout", 0.001)
  copts.retries = int_option(opts, "retries", 0, 100, nil)
  local wdt = require "wdt"
  return wdt.client(copts)
end

---------------------------------------------------------------------------- output

local function exit_code_for(err)
  if err.kind == "api" then return cli.EXIT_API end
  if err.kind == "interrupted" then return cli.EXIT_INTERRUPTED end
  return cli.EXIT_NETWORK
end

local function one_line(s)
  return (tostring(s):gsub("[\r\n]+", " "))
end

local function fmt_duration(s)
  if s == nil or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s < 60 then return s .. "s" end
  if s < 3600 then return ("%dm%02ds"):format(math.floor(s / 60), s % 60) end
  return ("%dh%02dm"):format(math.floor(s / 3600), math.floor(s / 60) % 60)
end

-- The progress line for a summary `p` (see wdt.sync): done/total, rate, ETA, failures.
function cli.progress_line(kind, p)
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
  return table.concat(parts, "  ")
end

local function id_text(v)
  if v == nil then return "?" end
  if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
  if type(v) == "number" and v % 1 == 0 then return ("%.0f"):format(v) end
  return tostring(v)
end

local MAX_LISTED = 20

-- The plain summary, one fact per line.
function cli.summary_text(kind, s, dry_run)
  local out = {}
  local function add(fmt, ...) out[#out + 1] = fmt:format(...) end
  local what = kind == "stock" and "goods" or "rows"
  if dry_run then
    add("dry run: %d %s pending; no handler called, nothing reported", s.read or 0, what)
  else
    add("%s sync: %d %s read, %d reported", kind, s.read or 0, what, s.reported or 0)
    add("  synced    %d", s.synced or 0)
    add("  failed    %d", s.failed or 0)
    add("  deferred  %d", s.deferred or 0)
    add("  refused   %d", s.refused or 0)
  end
  local elapsed = s.elapsed or 0
  if elapsed > 0 then
    add("  elapsed   %.1fs (%.0f %s/s)", elapsed, (s.read or 0) / elapsed, what)
  end
  local function list(title, items, f)
    if not items or #items == 0 then return end
    add("%s (%d):", title, #items)
    for i = 1, math.min(#items, MAX_LISTED) do add("  %s", f(items[i])) end
    if #items > MAX_LISTED then add("  ... and %d more", #items - MAX_LISTED) end
  end
  local idf = kind == "stock" and "api_goods_id" or "sync_id"
  list("refused by the ERP", s.refused_items, function(r)
    return ("%s %s: %s"):format(idf, id_text(r[idf]), one_line(r.message))
  end)
  list("unreported (still in the ERP's queue)", s.unreported, function(r)
    return ("%s %s"):format(idf, id_text(r[idf]))
  end)
  list("invalid rows from the ERP (not handled)", s.invalid, function(r)
    return one_line(r.message)
  end)
  return table.concat(out, "\n") .. "\n"
end

-- A JSON-ready copy of a summary (rows left out of the item lists).
local function summary_json(s)
  local wdt = require "wdt"
  local function items(list, idf)
    local out = wdt.array()
    for i, r in ipairs(list or {}) do
      out[i] = { [idf] = r[idf] == nil and wdt.null or r[idf], status = r.status, message = r.message }
    end
    return out
  end
  local idf = s.kind == "stock" and "api_goods_id" or "sync_id"
  return {
    kind = s.kind, read = s.read, reported = s.reported, synced = s.synced, failed = s.failed,
    deferred = s.deferred, refused = s.refused, total = s.total, elapsed = s.elapsed,
    dry_run = s.dry_run or false,
    refused_items = items(s.refused_items, idf), unreported = items(s.unreported, idf),
    invalid = items(s.invalid, idf),
  }
end

---------------------------------------------------------------------------- commands

local commands = {}

local function decode_args(text)
  local wdt = require "wdt"
  local v, err = wdt.json.safe.decode(text)
  if v == nil and err then usage("ARGS_JSON is not valid JSON: %s", one_line(err)) end
  if type(v) ~= "table" then usage("ARGS_JSON must be a JSON array of arguments (or one object)") end
  -- An array of arguments, or one object taken as the only argument.
  local core = require "wdt.core"
  local is_array = getmetatable(v) == core.array_mt or v[1] ~= nil
  if is_array then return v, #v end
  return { v }, 1
end

function commands.call(ctx, opts, words)
  check_allowed(opts, "call")
  if opts.help then ctx.out(help.call) return cli.EXIT_OK end
  local method = words[2]
  if not method then usage("'wdt call' needs a METHOD") end
  if #words > 3 then usage("'wdt call' takes METHOD and at most one ARGS_JSON") end
  if not method:match("^[%w_][%w%._]*$") then usage("'%s' is not a method name", method) end
  local args, n = {}, 0
  if words[3] then args, n = decode_args(words[3]) end
  local paged = opts["page-size"] or opts["page-no"] or opts.all or opts.total
  local pager
  if paged then
    pager = { page_size = int_option(opts, "page-size", 1, 100000, 100),
              page_no = int_option(opts, "page-no", 0, 1e9, 0),
              calc_total = opts.total and true or false }
  end
  local client = new_client(opts, ctx.env)
  local wdt = require "wdt"
  local unpack = table.unpack or unpack  -- luacheck: ignore
  local data, err
  if opts.all then
    local rows = wdt.array()
    for page, perr in client:pages(method, pager, unpack(args, 1, n)) do
      if not page then err = perr break end
      for _, r in ipairs(page.rows) do rows[#rows + 1] = r end
    end
    if err == nil then data = rows end
  elseif pager then
    local page
    page, err = client:page_call(method, pager, unpack(args, 1, n))
    if page then
      data = page.response.data
      if data == nil then data = wdt.null end
      -- getSyncListExt's total stands beside its list: keep it when it was asked for
      if pager.calc_total and page.total and type(data) == "table" and page.rows == data then
        data = { total = page.total, data = data }
      end
    end
  else
    data, err = client:call(method, unpack(args, 1, n))
  end
  client:close()
  if data == nil then
    ctx.err(one_line(tostring(err)) .. "\n")
    return exit_code_for(err)
  end
  ctx.out(wdt.json.encode(data) .. "\n")
  return cli.EXIT_OK
end

-- Load FILE.lua, which returns the handler function.
function cli.load_handler(path)
  if not path then usage("'--handler FILE.lua' is required") end
  local chunk, err = loadfile(path)
  if not chunk then usage("cannot load the handler: %s", one_line(err)) end
  local ok, fn = pcall(chunk)
  if not ok then usage("the handler file raised an error: %s", one_line(fn)) end
  if type(fn) ~= "function" then
    usage("the handler file %s must return a function (it returned %s)", path, type(fn))
  end
  return fn
end

-- Progress on stderr, redrawn in place at most 10 times a second, only on a terminal.
local function progress_drawer(ctx, kind)
  if not ctx.stderr_tty then return nil, function() end end
  local last, drawn = -1, false
  local core = require "wdt.core"
  local function draw(p, force)
    local now = core.unix_time()
    if not force and now - last < 0.1 then return end
    last = now
    drawn = true
    ctx.err("\r\27[K" .. cli.progress_line(kind, p))
  end
  local function finish(p)
    if p then draw(p, true) end
    if drawn then ctx.err("\n") end
  end
  return draw, finish
end

local function run_sync(ctx, kind, opts)
  local dry_run = opts["dry-run"] or false
  local handler
  if dry_run then
    if opts.handler then handler = cli.load_handler(opts.handler) end   -- checked, not called
  else
    handler = cli.load_handler(opts.handler)
  end
  local sopts = { handler = handler, dry_run = dry_run or nil }
  if kind == "logistics" then
    if not opts.shop or opts.shop == "" then usage("'--shop SHOP' is required") end
    sopts.shop_no = opts.shop
    sopts.batch = int_option(opts, "batch", 1, 1000, nil)
    sopts.page_size = int_option(opts, "page-size", 1, 1000, nil)
  else
    sopts.count = int_option(opts, "count", 10, 5000, nil)
    sopts.force_sync = opts.force or nil
  end
  local client = new_client(opts, ctx.env)
  local draw, finish = progress_drawer(ctx, kind)
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
      ctx.out(require("wdt").json.encode(summary_json(s)) .. "\n")
    else
      ctx.out(cli.summary_text(kind, s, dry_run))
    end
  end
  if not summary then
    ctx.err(one_line(tostring(err)) .. "\n")
    return exit_code_for(err)
  end
  if summary.refused > 0 or #summary.invalid > 0 then return cli.EXIT_API end
  return cli.EXIT_OK
end

function commands.sync(ctx, opts, words)
  local kind = words[2]
  if kind == nil then
    check_allowed(opts, "sync")
    if opts.help then ctx.out(help.sync) return cli.EXIT_OK end
    usage("'wdt sync' needs 'logistics' or 'stock'")
  end
  if kind ~= "logistics" and kind ~= "stock" then
    usage("unknown sync '%s' (logistics or stock)", kind)
  end
  check_allowed(opts, "sync " .. kind)
  if opts.help then ctx.out(help["sync_" .. kind]) return cli.EXIT_OK end
  if #words > 2 then usage("unexpected argument '%s'", words[3]) end
  return run_sync(ctx, kind, opts)
end

-- `wdt emulator ...`: hand the arguments, untouched, to bin/wdt-emulator's logic.
function cli.emulator(ctx, argv)
  local ok, emu = pcall(require, "wdt.emulator.cli")
  if ok and type(emu) == "table" and type(emu.main) == "function" then
    return emu.main(argv, ctx.env, ctx.streams)
  end
  -- Fall back to the launcher next to this command.
  local launcher = ctx.emulator_path
  if not launcher then
    ctx.err("wdt: the emulator is not available here (no wdt.emulator.cli, no bin/wdt-emulator)\n")
    return cli.EXIT_USAGE
  end
  local quoted = { "'" .. launcher:gsub("'", "'\\''") .. "'" }
  for _, a in ipairs(argv) do quoted[#quoted + 1] = "'" .. a:gsub("'", "'\\''") .. "'" end
  local r1, how, r3 = os.execute(table.concat(quoted, " "))
  if type(r1) == "number" then return math.floor(r1 / 256) end   -- Lua 5.1
  if how == "signal" then return 128 + r3 end
  return r3 or (r1 and 0 or 1)
end

---------------------------------------------------------------------------- main

local function default_streams()
  return {
    stdout = io.stdout, stderr = io.stderr,
    stderr_tty = nil,   -- probed lazily
  }
end

local function is_tty_stderr()
  local r = os.execute("test -t 2")
  return r == true or r == 0
end

function cli.main(argv, env, streams)
  argv = argv or {}
  if env == nil then
    env = setmetatable({}, { __index = function(_, k) return os.getenv(k) end })
  end
  streams = streams or default_streams()
  local ctx = { env = env, streams = streams, emulator_path = streams.emulator_path }
  ctx.out = function(s) streams.stdout:write(s) end
  ctx.err = function(s) streams.stderr:write(s) end
  if streams.stderr_tty == nil then
    ctx.stderr_tty = streams.stderr == io.stderr and is_tty_stderr()
  else
    ctx.stderr_tty = streams.stderr_tty
  end

  -- `wdt [GLOBAL OPTIONS] emulator ...` passes everything after the word through untouched.
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "emulator" then
      local rest = {}
      for j = i + 1, #argv do rest[#rest + 1] = argv[j] end
      return cli.emulator(ctx, rest)
    elseif a:sub(1, 2) == "--" and not a:find("=", 1, true) and option_takes_value[a:sub(3)] then
      i = i + 2
    elseif a:sub(1, 1) == "-" then
      i = i + 1
    else
      break
    end
  end

  local ok, code = xpcall(function()
    local opts, words = parse(argv)
    local command = words[1]
    if opts.version then ctx.out(VERSION .. "\n") return cli.EXIT_OK end
    if command == nil or command == "help" then
      local topic = words[2]
      if command == "help" and topic then
        if topic == "sync" and words[3] then topic = "sync_" .. words[3] end
        if not help[topic] then usage("no help on '%s'", table.concat(words, " ", 2)) end
        ctx.out(help[topic])
        return cli.EXIT_OK
      end
      if opts.help or command == "help" then ctx.out(help.main) return cli.EXIT_OK end
      usage("a COMMAND is needed")
    end
    local f = commands[command]
    if not f then usage("unknown command '%s'", command) end
    return f(ctx, opts, words)
  end, function(e)
    if getmetatable(e) == UsageError then return e end
    if type(e) == "string" and e:find("interrupted!$") then return { interrupted = true } end
    if type(e) == "string" and e:match("^bad argument") then
      return setmetatable({ message = e }, UsageError)
    end
    return { internal = tostring(e), trace = debug.traceback("", 2) }
  end)
  if ok then return code end
  if getmetatable(code) == UsageError then
    ctx.err("wdt: " .. one_line(code.message) .. " (see 'wdt --help')\n")
    return cli.EXIT_USAGE
  end
  if code.interrupted then
    ctx.err("wdt: interrupted\n")
    return cli.EXIT_INTERRUPTED
  end
  ctx.err("wdt: internal error: " .. one_line(code.internal) .. "\n")
  if env.WDT_DEBUG then ctx.err(code.trace .. "\n") end
  return cli.EXIT_INTERNAL
end

return cli
