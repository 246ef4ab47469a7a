-- `wdt methods [PATTERN] [--json]`: the catalogue's methods (wdt.api), one per line:
-- name, kind, title. PATTERN is a plain piece of the name or the title, any case.
local exit = require "wdt.cli.exit"

local function run(ctx, opts, words)
  if #words > 1 then require("wdt.cli.args").usage("'wdt methods' takes at most one PATTERN") end
  local api = require "wdt.api"
  local pattern = words[1] and words[1]:lower()
  local rows = {}
  for _, name in ipairs(api.names()) do
    local s = api.summary(name)
    if not pattern or name:lower():find(pattern, 1, true) or s.title:lower():find(pattern, 1, true) then
      rows[#rows + 1] = { name = name, title = s.title, kind = s.kind, category = s.category,
                          paged = s.paged or false, window = s.window or false }
    end
  end
  if opts.json then
    local wdt = require "wdt"
    ctx.out(wdt.json.encode(wdt.array(rows)) .. "\n")
    return exit.OK
  end
  local width = 0
  for _, r in ipairs(rows) do if #r.name > width then width = #r.name end end
  for _, r in ipairs(rows) do
    ctx.out(("%-" .. width .. "s  %-5s  %s\n"):format(r.name, r.kind, r.title))
  end
  return exit.OK
end

return {
  name = "methods",
  synopsis = "methods [PATTERN]",
  summary = "the API's methods (wdt's catalogue): name, query or write, title",
  usage = { "methods [PATTERN] [--json]" },
  about = [[
Lists every method of the API the vendor's pages document (wdt's catalogue, doc/api.md):
its name, whether it is a query or a write, and its Chinese title. PATTERN keeps the
methods whose name or title contains it (plain text, any case), e.g. 'wdt methods stock'.]],
  flags = {
    { "--json", "one JSON array of {name, title, kind, category, paged, window}" },
  },
  footer = "See 'wdt describe METHOD' for a method's arguments and answer.",
  run = run,
}
