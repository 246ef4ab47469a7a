-- The `wdt` command: credentials from the environment or a config file, `wdt call`,
-- `wdt sync logistics|stock`, `wdt emulator`. Testable as a function:
--   require("wdt.cli").main(argv, env, streams) -> exit code
-- argv: the arguments without the program name; env: a table of environment variables
-- (os.getenv when nil); streams: {stdout=, stderr=, stderr_tty=} (the process's when nil).
--
-- Exit codes: 0 success, 1 the API refused something, 2 usage error, 3 network (no valid
-- answer), 74 the output could not be written, 75 another run holds the run lock,
-- 130 interrupted, 70 internal error (a bug: please report it).
-- The pieces: wdt.cli.args (command line), wdt.cli.config (credentials), wdt.cli.output
-- (progress and summaries), wdt.cli.help (help texts), wdt.cli.exit (exit codes).
local check = require "wdt.check"
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local help = require "wdt.cli.help"
local exit = require "wdt.cli.exit"

local cli = {}

cli.EXIT_OK, cli.EXIT_API, cli.EXIT_USAGE, cli.EXIT_NETWORK = exit.OK, exit.API, exit.USAGE, exit.NETWORK
cli.EXIT_INTERRUPTED, cli.EXIT_INTERNAL = exit.INTERRUPTED, exit.INTERNAL
cli.EXIT_IO, cli.EXIT_LOCKED = exit.IO, exit.LOCKED

local VERSION = require("wdt")._VERSION

local usage, one_line = args.usage, output.one_line

-- kept as functions of wdt.cli for callers and specs
cli.read_config = config.read
cli.progress_line = output.progress_line
cli.summary_text = output.summary_text

local exit_code_for = exit.for_error

---------------------------------------------------------------------------- commands

local commands = {}

function commands.call(ctx, opts, words)
  args.check_allowed(opts, "call")
  if opts.help then ctx.out(help.call) return cli.EXIT_OK end
  local method = words[2]
  if not method then usage("'wdt call' needs a METHOD") end
  if #words > 3 then usage("'wdt call' takes METHOD and at most one ARGS_JSON") end
  if not method:match("^[%w_][%w%._]*$") then usage("'%s' is not a method name", method) end
  local list, n = {}, 0
  if words[3] then list, n = args.decode_args(words[3]) end
  local paged = opts["page-size"] or opts["page-no"] or opts.all or opts.total
  local pager
  if paged then
    pager = { page_size = args.int_option(opts, "page-size", 1, 100000, 100),
              page_no = args.int_option(opts, "page-no", 0, 1e9, 0),
              calc_total = opts.total and true or false }
  end
  local client = config.new_client(opts, ctx.env)
  local wdt = require "wdt"
  local unpack = table.unpack or unpack  -- luacheck: ignore
  local data, err
  if opts.all then
    data, err = cli.read_all(client, method, pager, args.int_option(opts, "max-rows", 1, 1e9, cli.MAX_ROWS),
                             unpack(list, 1, n))
  elseif pager then
    local page
    page, err = client:page_call(method, pager, unpack(list, 1, n))
    if page then
      data = page.response.data
      if data == nil then data = wdt.null end
      -- getSyncListExt's total stands beside its list: keep it when it was asked for
      if pager.calc_total and page.total and type(data) == "table" and page.rows == data then
        data = { total = page.total, data = data }
      end
    end
  else
    data, err = client:call(method, unpack(list, 1, n))
  end
  client:close()
  if data == nil then
    ctx.err(one_line(tostring(err)) .. "\n")
    return exit_code_for(err)
  end
  ctx.out(wdt.json.encode(data) .. "\n")
  local refused = not pager and require("wdt.cli.refusals").count(method, data) or 0
  if refused > 0 then
    ctx.err(("wdt: %s answered status 0 but refused %d item(s) (listed above)\n"):format(method, refused))
    return cli.EXIT_API
  end
  return cli.EXIT_OK
end

-- `wdt call --all`: every page, in one list of at most max_rows rows. An answer without a
-- list of rows (client:pages), a page equal to the one before (a server ignoring page_no) or more rows
-- than the cap stop with an error rather than print a wrong list or grow without end.
cli.MAX_ROWS = 100000

function cli.read_all(client, method, pager, max_rows, ...)
  local wdt = require "wdt"
  local errors = require "wdt.errors"
  local rows, last = wdt.array(), nil
  local function fail(message) return nil, errors.new { kind = "decode", method = method, message = message } end
  for page, perr in client:pages(method, pager, ...) do
    if not page then return nil, perr end
    local key = #page.rows > 0 and wdt.json.encode(page.rows) or nil
    if key and key == last then
      return fail(("page %d is the same as the page before (the server ignores page_no?)"):format(page.page_no))
    end
    last = key
    if #rows + #page.rows > max_rows then
      return fail(("more than %d rows (--max-rows); nothing printed"):format(max_rows))
    end
    for _, r in ipairs(page.rows) do rows[#rows + 1] = r end
  end
  return rows
end

-- Load FILE.lua, which returns the handler function.
function cli.load_handler(path)
  if not path then usage("'--handler FILE.lua' is required") end
  return args.load_function(path, "handler")
end

local function run_sync(ctx, kind, opts)
  local dry_run = opts["dry-run"] or false
  local handler
  if dry_run then
    if opts.handler then handler = cli.load_handler(opts.handler) end   -- checked, not called
  else
    handler = cli.load_handler(opts.handler)
  end
  local sopts = { handler = handler, dry_run = dry_run or nil, lock = config.lock_spec(opts, ctx.env) }
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
    return exit_code_for(err)
  end
  if summary.refused > 0 or #summary.invalid > 0 or #summary.unconfirmed > 0 then
    return cli.EXIT_API
  end
  return cli.EXIT_OK
end

function commands.sync(ctx, opts, words)
  local kind = words[2]
  if kind == nil then
    args.check_allowed(opts, "sync")
    if opts.help then ctx.out(help.sync) return cli.EXIT_OK end
    usage("'wdt sync' needs 'logistics' or 'stock'")
  end
  if kind ~= "logistics" and kind ~= "stock" then
    usage("unknown sync '%s' (logistics or stock)", kind)
  end
  args.check_allowed(opts, "sync " .. kind)
  if opts.help then ctx.out(help["sync_" .. kind]) return cli.EXIT_OK end
  if #words > 2 then usage("unexpected argument '%s'", words[3]) end
  return run_sync(ctx, kind, opts)
end

commands.push = require("wdt.cli.push").command   -- wdt push orders|refunds|goods

-- This process's id (Linux): /proc/self is whoever reads it.
local function own_pid()
  local f = io.open("/proc/self/stat", "r")
  if not f then return nil end
  local pid = (f:read("*l") or ""):match("^(%d+)")
  f:close()
  return pid
end

-- `wdt emulator ...`: hand the arguments, untouched, to bin/wdt-emulator's logic.
function cli.emulator(ctx, argv)
  local launcher = ctx.emulator_path
  if not launcher then
    ctx.err("wdt: the emulator is not available here (no bin/wdt-emulator)\n")
    return cli.EXIT_USAGE
  end
  local quoted = { "'" .. launcher:gsub("'", "'\\''") .. "'" }
  -- The launcher runs as a child of this process, which cannot exec it: tell it to stop
  -- when this process goes, so that a `kill` of `wdt emulator` leaves nothing behind.
  local pid = own_pid()
  local watched = false
  for _, a in ipairs(argv) do
    if a == "--watch-pid" or a:match("^%-%-watch%-pid=") then watched = true end
  end
  if pid and not watched then quoted[#quoted + 1] = "--watch-pid " .. pid end
  for _, a in ipairs(argv) do quoted[#quoted + 1] = "'" .. a:gsub("'", "'\\''") .. "'" end
  local r1, how, r3 = os.execute(table.concat(quoted, " "))
  if type(r1) == "number" then return math.floor(r1 / 256) end   -- Lua 5.1
  if how == "signal" then return 128 + r3 end
  return r3 or (r1 and 0 or 1)
end

commands.scan = require("wdt.cli.scan").command

---------------------------------------------------------------------------- main

local function is_tty_stderr()
  local r = os.execute("test -t 2")
  return r == true or r == 0
end

local FN = "wdt.cli.main"

local function check_main_args(argv, env, streams)
  if type(argv) ~= "table" then check.fail(FN, "argv", "table expected, got " .. type(argv), 3) end
  for i = 1, #argv do
    if type(argv[i]) ~= "string" then
      check.fail(FN, "argv", ("strings expected, argv[%d] is %s"):format(i, type(argv[i])), 3)
    end
  end
  if env ~= nil and type(env) ~= "table" then check.fail(FN, "env", "table expected, got " .. type(env), 3) end
  if streams ~= nil and type(streams) ~= "table" then
    check.fail(FN, "streams", "table expected, got " .. type(streams), 3)
  end
end

-- `wdt [GLOBAL OPTIONS] emulator ...` passes everything after the word through untouched:
-- the arguments after it, or nil when the command is another one.
local function emulator_args(argv)
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "emulator" then
      local rest = {}
      for j = i + 1, #argv do rest[#rest + 1] = argv[j] end
      return rest
    elseif a:sub(1, 2) == "--" and not a:find("=", 1, true) and args.option_takes_value[a:sub(3)] then
      i = i + 2
    elseif a:sub(1, 1) == "-" then
      i = i + 1
    else
      return nil
    end
  end
  return nil
end

local function dispatch(ctx, argv)
  local opts, words = args.parse(argv)
  local command = words[1]
  if opts.version then ctx.out(VERSION .. "\n") return cli.EXIT_OK end
  if command == nil or command == "help" then
    local topic = words[2]
    if command == "help" and topic then
      if (topic == "sync" or topic == "push") and words[3] then topic = topic .. "_" .. words[3] end
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
end

function cli.main(argv, env, streams)
  argv = argv or {}
  check_main_args(argv, env, streams)
  if env == nil then
    env = setmetatable({}, { __index = function(_, k) return os.getenv(k) end })
  end
  streams = streams or { stdout = io.stdout, stderr = io.stderr }
  local ctx = { env = env, streams = streams, emulator_path = streams.emulator_path }
  ctx.out = function(s)
    local ok, werr = streams.stdout:write(s)
    if not ok then ctx.write_error = ctx.write_error or werr end
  end
  ctx.err = function(s) streams.stderr:write(s) end
  if streams.stderr_tty == nil then
    ctx.stderr_tty = streams.stderr == io.stderr and is_tty_stderr()
  else
    ctx.stderr_tty = streams.stderr_tty
  end

  local rest = emulator_args(argv)
  if rest then return cli.emulator(ctx, rest) end

  local code = cli.run(ctx, argv, env)
  -- output that did not reach stdout (a full disk, a closed pipe) is a failure of its own
  if streams.stdout.flush then
    local ok, ferr = streams.stdout:flush()
    if not ok then ctx.write_error = ctx.write_error or ferr end
  end
  if ctx.write_error then
    ctx.err("wdt: cannot write the output: " .. one_line(ctx.write_error) .. "\n")
    -- lost output wins: a refusal or failure listed on stdout was listed to no one
    if code == cli.EXIT_OK or code == cli.EXIT_API or code == cli.EXIT_NETWORK then code = cli.EXIT_IO end
  end
  return code
end

function cli.run(ctx, argv, env)
  local ok, code = xpcall(function() return dispatch(ctx, argv) end, function(e)
    if args.is_usage_error(e) then return e end
    if require("wdt.errors").is_interrupt(e) then return { interrupted = true } end
    if type(e) == "string" and e:match("^bad argument") then return args.usage_error(e) end
    return { internal = tostring(e), trace = debug.traceback("", 2) }
  end)
  if ok then return code end
  if args.is_usage_error(code) then
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
