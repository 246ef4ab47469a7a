-- `wdt emulator ...`: hand the arguments, untouched, to bin/wdt-emulator (a passthrough
-- command: the dispatcher parses nothing after its word).
local args = require "wdt.cli.args"
local exit = require "wdt.cli.exit"

local function run(ctx, argv)
  local launcher = ctx.emulator_path
  if not launcher then
    ctx.err("wdt: the emulator is not available here (no bin/wdt-emulator)\n")
    return exit.USAGE
  end
  local quoted = { args.shell_quote(launcher) }
  -- The launcher runs as a child of this process, which cannot exec it: tell it to stop
  -- when this process goes, so that a `kill` of `wdt emulator` leaves nothing behind.
  local pid = require("wdt.clock").pid()
  local watched = false
  for _, a in ipairs(argv) do
    if a == "--watch-pid" or a:match("^%-%-watch%-pid=") then watched = true end
  end
  if pid and not watched then quoted[#quoted + 1] = "--watch-pid " .. pid end
  for _, a in ipairs(argv) do quoted[#quoted + 1] = args.shell_quote(a) end
  local r1, how, r3 = os.execute(table.concat(quoted, " "))
  if type(r1) == "number" then return math.floor(r1 / 256) end   -- Lua 5.1
  if how == "signal" then return 128 + r3 end
  return r3 or (r1 and 0 or 1)
end

return {
  name = "emulator",
  synopsis = "emulator ...",
  summary = "start the local emulator of the API (see 'wdt emulator --help')",
  usage = { "emulator [ARGS]" },
  about = [[
Runs the local emulator of the API (bin/wdt-emulator) with ARGS; see 'wdt emulator --help'
once it is found. The emulator needs nginx with the Lua module.]],
  passthrough = true,
  run = run,
}
