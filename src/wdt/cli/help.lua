-- The help of the `wdt` command, built from the command table (wdt.cli): `wdt --help` lists
-- each command's synopsis and summary; `wdt COMMAND --help` renders the command's own
-- fields: usage lines, about, its flags (as declared: wdt.cli.args), footer. Also the
-- `wdt help [COMMAND [SUB]]` command.
local args = require "wdt.cli.args"
local exit = require "wdt.cli.exit"

local help = {}

-- flag list -> the "Options:" lines, descriptions in one column, continued lines under it
local function flag_lines(flags)
  local width = 0
  for _, f in ipairs(flags) do width = math.max(width, #f[1]) end
  local out = {}
  for _, f in ipairs(flags) do
    local first = true
    for line in (f[2] .. "\n"):gmatch("([^\n]*)\n") do
      out[#out + 1] = ("  %-" .. width .. "s  %s"):format(first and f[1] or "", line)
      first = false
    end
  end
  return table.concat(out, "\n")
end

-- A command's (or sub-command's) help page.
function help.render(def)
  local lines = {}
  for i, u in ipairs(def.usage) do lines[i] = (i == 1 and "Usage: wdt " or "       wdt ") .. u end
  local parts = { table.concat(lines, "\n") }
  if def.about then parts[#parts + 1] = def.about end
  if def.flags and #def.flags > 0 then parts[#parts + 1] = "Options:\n" .. flag_lines(def.flags) end
  if def.footer then parts[#parts + 1] = def.footer end
  return table.concat(parts, "\n\n") .. "\n"
end

local MAIN_ABOUT = "A client for the WangDianTong (旺店通) flagship open API."

local CREDENTIALS = [[
Credentials come from the environment: WDT_URL, WDT_SID, WDT_KEY, WDT_SECRET
(appsecret, "secret:salt"), or from --config FILE, whose values override them.
The URL is required: a URL, or 'production' (http://wdt.wangdian.cn/openapi) or
'emulator' (http://127.0.0.1:8080/openapi); on a terminal it is printed first.]]

local EXIT_CODES = [[
Exit codes: 0 success, 1 the API refused something (an error status, or refused
            items in a status-0 answer), 2 usage error,
            3 network failure (no valid answer), 74 the output could not be written,
            75 another run holds the lock, 130 interrupted, 70 internal error.]]

-- `wdt --help`: one line per command of the table (a command without a synopsis of its
-- own: one per sub-command).
function help.main(commands)
  local rows = {}
  for _, def in ipairs(commands) do
    if def.synopsis then
      rows[#rows + 1] = { def.synopsis, def.summary }
    else
      for _, sub in ipairs(def.subcommands) do rows[#rows + 1] = { sub.synopsis, sub.summary } end
    end
  end
  return table.concat({
    "Usage: wdt [OPTIONS] COMMAND [ARGS]",
    MAIN_ABOUT,
    "Commands:\n" .. flag_lines(rows),
    CREDENTIALS,
    "Options (every command):\n" .. flag_lines(args.GLOBAL_FLAGS),
    EXIT_CODES,
  }, "\n\n") .. "\n"
end

-- The definition named `name` in a list of them (commands, sub-commands), or nil.
function help.named(list, name)
  for _, def in ipairs(list) do
    if def.name == name then return def end
  end
end

-- words ("sync", "logistics") -> the definition they name in the table, or nil
local function find(commands, words)
  local def = help.named(commands, words[1])
  if def and words[2] and def.subcommands then return help.named(def.subcommands, words[2]), 2 end
  return def, 1
end

help.command = {
  name = "help",
  synopsis = "help [COMMAND]",
  summary = "this help, or a command's (as 'wdt COMMAND --help')",
  usage = { "help [COMMAND [SUBCOMMAND]]" },
  about = "Prints the help of wdt, or of one command: 'wdt help sync logistics'.",
  flags = {},
  run = function(ctx, _, words)
    if #words == 0 then ctx.out(help.main(ctx.commands)) return exit.OK end
    local def, used = find(ctx.commands, words)
    if not def or #words > used or not def.usage then
      args.usage("no help on '%s'", table.concat(words, " "))
    end
    ctx.out(help.render(def))
    return exit.OK
  end,
}

return help
