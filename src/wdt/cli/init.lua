-- The `wdt` command: credentials from the environment or a config file, and the commands
-- of the table below (`wdt --help` lists them). Testable as a function:
--   require("wdt.cli").main(argv, env, streams) -> exit code
-- argv: the arguments without the program name; env: a table of environment variables
-- (os.getenv when nil); streams: {stdout=, stderr=, stderr_tty=} (the process's when nil);
-- exit codes: wdt.cli.exit. The pieces: this file (the table, dispatch, main), one module
-- per command, wdt.cli.args (flags, parsing), wdt.cli.config (credentials, client, run
-- lock), wdt.cli.output (progress, summaries), wdt.cli.help (help built from the table).
local check = require "wdt.check"
local args = require "wdt.cli.args"
local output = require "wdt.cli.output"
local help = require "wdt.cli.help"
local exit = require "wdt.cli.exit"

local cli = {}

local usage, one_line = args.usage, output.one_line
local unpack = table.unpack or unpack   -- luacheck: ignore (5.1 global)

cli.progress_line = output.progress_line   -- the progress line of the flows, for specs

-- The commands, in the order `wdt --help` lists them. Each module returns its definition,
-- read here and by wdt.cli.help, written by no one else:
--   name                the word after `wdt`
--   synopsis, summary   its line in `wdt --help`
--   usage               { "call METHOD [ARGS_JSON] [OPTIONS]", ... }: Usage lines, after "wdt "
--   about, footer       the help's text before and after its "Options:" list
--   flags               { { "--page-size N", "what it does" }, ... } (wdt.cli.args): the
--                       options it takes besides the global ones, as its help lists them
--   run(ctx, opts, words) -> exit code; words: the arguments after the command's word(s)
-- or, for a command with sub-commands (`wdt sync logistics`), no run and
--   subcommands         { definition, ... } (each as above; `wdt sync --help` renders the
--                       parent's usage/about)
-- or, for a command that parses nothing itself (`wdt emulator`),
--   passthrough = true  run(ctx, argv): the arguments after its word, untouched.
-- To add a command: write src/wdt/cli/NAME.lua returning its definition, add one line
-- here, and its section to doc/cli.md. Help, usage errors and option checks follow.
local COMMANDS = {
  require "wdt.cli.call",
  require "wdt.cli.sync",
  require "wdt.cli.scan",
  require "wdt.cli.push",
  require "wdt.cli.methods",
  require "wdt.cli.describe",
  require "wdt.cli.emulator",
  require "wdt.cli.doctor",
  require("wdt.cli.help").command,
}

---------------------------------------------------------------------------- dispatch

local GLOBAL_TAKES, SHORT = args.flag_index(args.GLOBAL_FLAGS)

local named = help.named

-- "'a', 'b' or 'c'" (quote "'") or "a, b or c" (quote "")
local function one_of(defs, quote)
  local names = {}
  for i, def in ipairs(defs) do names[i] = quote .. def.name .. quote end
  return table.concat(names, ", ", 1, #names - 1) .. " or " .. names[#names]
end

-- The command that declares option --name, or nil.
local function declaring(name)
  for _, def in ipairs(COMMANDS) do
    for _, d in ipairs(def.subcommands or { def }) do
      if (args.flag_index(d.flags or {}))[name] ~= nil then return def end
    end
  end
end

-- An option the parse does not know: one that another command declares goes after that
-- command's word (`command` nil: before any) or does not apply to `command`; else unknown.
-- (It has no arity: the parse cannot go on past it.)
local function misplaced(command)
  return function(name)
    local def = declaring(name)
    if def and not command then
      usage("option '--%s' goes after the command ('wdt %s ... --%s')", name, def.name, name)
    end
    if def then usage("option '--%s' does not apply to 'wdt %s'", name, command) end
    usage("unknown option '--%s'", name)
  end
end

-- The flags a command's arguments are parsed with: its own, its sub-commands', the global ones.
local function flag_index(def)
  local lists = { args.GLOBAL_FLAGS, def.flags or {} }
  for _, sub in ipairs(def.subcommands or {}) do lists[#lists + 1] = sub.flags end
  return args.flag_index(unpack(lists))
end

local function dispatch(ctx, argv)
  local opts, words, at = args.parse(argv, 1, GLOBAL_TAKES, SHORT, misplaced(nil), true)
  local def = words[1] and named(COMMANDS, words[1])
  if def and def.passthrough then return def.run(ctx, { unpack(argv, at + 1) }) end
  if def then
    local more
    more, words = args.parse(argv, at + 1, flag_index(def), SHORT, misplaced(def.name))
    for k, v in pairs(more) do opts[k] = v end
  end
  if opts.version then ctx.out(require("wdt")._VERSION .. "\n") return exit.OK end
  if not def then
    if words[1] then usage("unknown command '%s'", words[1]) end
    if opts.help then ctx.out(help.main(COMMANDS)) return exit.OK end
    usage("a COMMAND is needed")
  end
  local path = def.name
  if def.subcommands then
    local sub_name = table.remove(words, 1)
    if sub_name then
      local sub = named(def.subcommands, sub_name)
      if not sub then usage("unknown %s '%s' (%s)", def.name, sub_name, one_of(def.subcommands, "")) end
      def, path = sub, path .. " " .. sub_name
    else
      args.check_allowed(opts, GLOBAL_TAKES, path)
      if opts.help then ctx.out(help.render(def)) return exit.OK end
      usage("'wdt %s' needs %s", path, one_of(def.subcommands, "'"))
    end
  end
  args.check_allowed(opts, args.flag_index(args.GLOBAL_FLAGS, def.flags), path)
  if opts.help then ctx.out(help.render(def)) return exit.OK end
  return def.run(ctx, opts, words)
end

---------------------------------------------------------------------------- main

local FN = "wdt.cli.main"

local function check_main_args(argv, env, streams)
  local given = { argv = argv, env = env, streams = streams }
  for _, name in ipairs({ "argv", "env", "streams" }) do
    local v = given[name]
    if v ~= nil and type(v) ~= "table" then check.fail(FN, name, "table expected, got " .. type(v)) end
  end
  for i = 1, #(argv or {}) do
    if type(argv[i]) ~= "string" then
      check.fail(FN, "argv", ("strings expected, argv[%d] is %s"):format(i, type(argv[i])))
    end
  end
end

-- dispatch, with usage errors, interrupts and internal errors turned into exit codes
local function run(ctx, argv, env)
  local ok, code = xpcall(function() return dispatch(ctx, argv) end, function(e)
    if args.is_usage_error(e) then return e end
    if require("wdt.errors").is_interrupt(e) then return { interrupted = true } end
    if type(e) == "string" and e:match("^bad argument") then return args.usage_error(e) end
    return { internal = tostring(e), trace = debug.traceback("", 2) }
  end)
  if ok then return code end
  if args.is_usage_error(code) then
    ctx.err("wdt: " .. one_line(code.message) .. " (see 'wdt --help')\n")
    return exit.USAGE
  end
  if code.interrupted then
    ctx.err("wdt: interrupted\n")
    return exit.INTERRUPTED
  end
  ctx.err("wdt: internal error: " .. one_line(code.internal) .. "\n")
  if env.WDT_DEBUG then ctx.err(code.trace .. "\n") end
  return exit.INTERNAL
end

function cli.main(argv, env, streams)
  local checked, bad = check.run(check_main_args, argv, env, streams)
  if not checked then error(bad, 2) end
  argv = argv or {}
  if env == nil then
    env = setmetatable({}, { __index = function(_, k) return os.getenv(k) end })
  end
  streams = streams or { stdout = io.stdout, stderr = io.stderr }
  local ctx = { env = env, streams = streams, emulator_path = streams.emulator_path, commands = COMMANDS }
  ctx.out = function(s)
    local ok, werr = streams.stdout:write(s)
    if not ok then ctx.write_error = ctx.write_error or werr end
  end
  ctx.err = function(s) streams.stderr:write(s) end
  ctx.stderr_tty = streams.stderr_tty
  if ctx.stderr_tty == nil and streams.stderr == io.stderr then
    local r = os.execute("test -t 2")
    ctx.stderr_tty = r == true or r == 0
  end

  local code = run(ctx, argv, env)
  -- output that did not reach stdout (a full disk, a closed pipe) is a failure of its own
  if streams.stdout.flush then
    local ok, ferr = streams.stdout:flush()
    if not ok then ctx.write_error = ctx.write_error or ferr end
  end
  if ctx.write_error then
    ctx.err("wdt: cannot write the output: " .. one_line(ctx.write_error) .. "\n")
    -- lost output wins: a refusal or failure listed on stdout was listed to no one
    if code == exit.OK or code == exit.API or code == exit.NETWORK then code = exit.IO end
  end
  return code
end

return cli
