-- `wdt methods [PATTERN] [--json]`: the catalogue's methods (wdt.api), one per line:
-- name, kind, title. PATTERN is a plain piece of the name or the title, any case.
local args = require "wdt.cli.args"
local help = require "wdt.cli.help"
local exit = require "wdt.cli.exit"

args.command_options.methods = { json = true }
-- `wdt call METHOD --example` sends the page's example request; --no-check skips the
-- catalogue's checks (the pages can be wrong)
args.option_takes_value.example = false
args.option_takes_value["no-check"] = false
args.command_options.call.example = true
args.command_options.call["no-check"] = true

help.methods = [[
Usage: wdt methods [PATTERN] [--json]

Lists every method of the API the vendor's pages document (wdt's catalogue, doc/api.md):
its name, whether it is a query or a write, and its Chinese title. PATTERN keeps the
methods whose name or title contains it (plain text, any case), e.g. 'wdt methods stock'.

  --json   one JSON array of {name, title, kind, category, paged, window}

See 'wdt describe METHOD' for a method's arguments and answer.
]]

local M = {}

function M.command(ctx, opts, words)
  args.check_allowed(opts, "methods")
  if opts.help then ctx.out(help.methods) return exit.OK end
  if #words > 2 then args.usage("'wdt methods' takes at most one PATTERN") end
  local api = require "wdt.api"
  local pattern = words[2] and words[2]:lower()
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

-- The page's example request of METHOD as ARGS_JSON text, and a pager when it is paged.
function M.example(method)
  local e = require("wdt.api").get(method)
  if not e or not e.examples.request then
    args.usage("the catalogue has no example request for '%s'", method)
  end
  local pager = e.paging and { page_size = 100, page_no = 0, calc_total = false } or nil
  return e.examples.request_in_window or e.examples.request, pager
end

return M
