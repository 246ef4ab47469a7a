-- `wdt describe METHOD [--json]`: one catalogue entry (wdt.api) as a readable table of its
-- arguments and its answer's fields, or the entry itself as JSON.
local args = require "wdt.cli.args"
local exit = require "wdt.cli.exit"

local M = {}

local function type_text(n)
  local t = n.type
  if t == "list" then t = "list<" .. (n.of or "?") .. ">" end
  if n.length then t = t .. "(" .. n.length .. ")" end
  if n.also then t = t .. "|" .. table.concat(n.also, "|") end
  return t
end

local function values_text(n)
  local parts = {}
  for _, v in ipairs(n.values) do parts[#parts + 1] = tostring(v.value) .. "=" .. v.meaning end
  return table.concat(parts, " ")
end

-- rows of { field, type, req, text } for a tree; a list's items are shown as name[]
local function rows_of(nodes, depth, out, positional)
  for i, n in ipairs(nodes) do
    local field = ("  "):rep(depth) .. n.name
    if positional then field = "#" .. i .. " " .. field end
    if n.type == "list" and n.children then field = field .. "[]" end
    local text = n.title or ""
    if n.description and n.description ~= n.title and not n.values then
      text = text ~= "" and (text .. ": " .. n.description) or n.description
    end
    out[#out + 1] = { field, n.type == "pager" and "pager (query string)" or type_text(n),
                      n.required and "yes" or "no", text }
    if n.values then
      out[#out + 1] = { "", "", "", "values" .. (n.values_open and " (not checked)" or "") .. ": " .. values_text(n) }
    end
    if n.note then out[#out + 1] = { "", "", "", "note: " .. n.note } end
    if n.children then rows_of(n.children, depth + 1, out) end
  end
  return out
end

local function table_text(rows)
  local w1, w2 = 5, 4
  for _, r in ipairs(rows) do
    if #r[1] > w1 then w1 = #r[1] end
    if #r[2] > w2 then w2 = #r[2] end
  end
  local fmt = "  %-" .. w1 .. "s  %-" .. w2 .. "s  %-3s  %s\n"
  local out = { fmt:format("FIELD", "TYPE", "REQ", "MEANING") }
  for _, r in ipairs(rows) do out[#out + 1] = fmt:format(r[1], r[2], r[3], r[4]) end
  return table.concat(out)
end

local function duration(s)
  if s % 86400 == 0 then return (s / 86400) .. " day(s)" end
  if s % 3600 == 0 then return (s / 3600) .. " hour(s)" end
  return (s / 60) .. " minute(s)"
end

function M.text(e)
  local out = { e.name .. "  " .. e.title .. "\n", "kind: " .. e.kind ..
                (e.kind == "query" and " (reads only; retried when a try fails)\n" or " (changes the ERP)\n") }
  if e.description then out[#out + 1] = "description: " .. e.description .. "\n" end
  if e.deprecated then out[#out + 1] = "deprecated: the page points to " .. e.deprecated .. "\n" end
  if e.paging then
    out[#out + 1] = ("paging: page_size at most %d%s, page_no from 0%s\n"):format(e.paging.max_page_size,
      e.paging.max_page_size_on_page and "" or " (the server's limit; the page gives none)",
      e.paging.calc_total and ", calc_total" or "")
  end
  if e.window then
    out[#out + 1] = ("window: %s to %s, at most %s (wider: status 100, %s)\n"):format(e.window.from,
      e.window.to, duration(e.window.max_seconds), e.window.message)
  end
  for _, n in ipairs(e.notes or {}) do out[#out + 1] = "note: " .. n .. "\n" end
  out[#out + 1] = "\nArguments (the request body's JSON array, in order):\n"
  out[#out + 1] = #e.args > 0 and table_text(rows_of(e.args, 0, {}, true)) or "  (none)\n"
  out[#out + 1] = "\nAnswer:\n"
  out[#out + 1] = table_text(rows_of(e.response, 0, {}))
  if e.examples.request then
    out[#out + 1] = "\nThe page's example request ('wdt call " .. e.name .. " --example' sends it):\n  "
      .. e.examples.request:gsub("\n", "\n  ") .. "\n"
  end
  for _, n in ipairs(e.examples.notes or {}) do out[#out + 1] = "note: " .. n .. "\n" end
  if e.url then out[#out + 1] = "\nThe page: " .. e.url .. "\n" end
  return table.concat(out)
end

local function run(ctx, opts, words)
  local name = words[1]
  if not name or #words > 1 then args.usage("'wdt describe' takes one METHOD") end
  local api = require "wdt.api"
  local e = api.get(name)
  if not e then
    args.usage("'%s' is not in the catalogue (see 'wdt methods')", name)
  end
  if opts.json then
    ctx.out(require("wdt").json.encode(e) .. "\n")
  else
    ctx.out(M.text(e))
  end
  return exit.OK
end

return {
  name = "describe",
  synopsis = "describe METHOD",
  summary = "a method's arguments and answer, as its page documents them",
  usage = { "describe METHOD [--json]" },
  about = [[
Shows what the vendor's page says about METHOD (wdt's catalogue, doc/api.md): whether
it is a query or a write, paging, the widest time window, every argument of the body
in order and every field of the answer, with type, length, whether it is required,
the allowed values and their meanings, and the page's example request.]],
  flags = {
    { "--json", "the catalogue entry itself (its shape: doc/api.md)" },
  },
  footer = "Exit codes: 0 shown, 2 METHOD is not in the catalogue (see 'wdt methods').",
  run = run,
  text = M.text,
}
