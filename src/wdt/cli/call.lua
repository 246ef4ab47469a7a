-- `wdt call METHOD [ARGS_JSON]`: one call (or one page, or every page with --all), its
-- data printed as JSON.
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"


-- `wdt call --all`: every page, in one list of at most max_rows rows. An answer without a
-- list of rows (client:pages), a page equal to the one before (a server ignoring page_no) or more rows
-- than the cap stop with an error rather than print a wrong list or grow without end.
local MAX_ROWS = 100000

local function read_all(client, method, pager, max_rows, ...)
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

-- The page's example request of METHOD (wdt.api) as ARGS_JSON text, and a pager when the
-- method is paged.
local function example(method)
  local e = require("wdt.api").get(method)
  if not e or not e.examples.request then
    args.usage("the catalogue has no example request for '%s'", method)
  end
  local pager = e.paging and { page_size = 100, page_no = 0, calc_total = false } or nil
  return e.examples.request_in_window or e.examples.request, pager
end

local function run(ctx, opts, words)
  local method, args_json = args.method_words(words, "call", "ARGS_JSON")
  local list, n = {}, 0
  local pager
  if opts.example then
    if args_json then args.usage("'wdt call --example' sends the page's example: no ARGS_JSON") end
    args_json, pager = example(method)
  end
  if args_json then list, n = args.decode_args(args_json) end
  if opts["page-size"] or opts["page-no"] or opts.all or opts.total then
    pager = { page_size = args.int_option(opts, "page-size", 1, 100000, 100),
              page_no = args.int_option(opts, "page-no", 0, 1e9, 0),
              calc_total = opts.total and true or false }
  end
  local client = config.new_client(opts, ctx.env, ctx)
  local wdt = require "wdt"
  local unpack = table.unpack or unpack  -- luacheck: ignore
  local data, err
  if opts.all then
    data, err = read_all(client, method, pager, args.int_option(opts, "max-rows", 1, 1e9, MAX_ROWS),
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
  if data == nil then return output.fail(ctx, "wdt call", err) end
  ctx.out(wdt.json.encode(data) .. "\n")
  local refused = not pager and require("wdt.cli.refusals").count(method, data) or 0
  if refused > 0 then
    ctx.err(("wdt: %s answered status 0 but refused %d item(s) (listed above)\n"):format(method, refused))
    return exit.API
  end
  return exit.OK
end

return {
  name = "call",
  synopsis = "call METHOD [ARGS_JSON]",
  summary = "call one method and print its data as JSON",
  usage = { "call METHOD [ARGS_JSON] [OPTIONS]" },
  about = [[
Calls METHOD and prints the answer's `data` as compact JSON on stdout.

ARGS_JSON is the JSON array of the method's positional arguments, e.g.
  wdt call sales.LogisticsSync.getSyncListExt '[{"shop_no":"s1","is_own_platform":true}]' --page-size 10
A JSON object is taken as the only argument. Without ARGS_JSON the method gets none.
The arguments are checked against the method's page before anything is sent (doc/api.md);
a violation names the field and exits 2.]],
  flags = {
    { "--page-size N", "ask for one page of N rows (default 100 when another paging\noption is given)" },
    { "--page-no N", "the page to ask for, from 0 (default 0)" },
    { "--total", "ask the server to count the rows (calc_total=1); when the answer's\n"
                 .. "data is the list itself (getSyncListExt), prints {\"data\":[...],\"total\":N}" },
    { "--all", "read every page from --page-no on until a short page; prints one JSON\n"
               .. "array of all rows (an answer without rows, or a page equal to the one\n"
               .. "before, is an error)" },
    { "--max-rows N", "the most rows --all collects before it gives up (default 100000)" },
    { "--example", "send the example request of METHOD's page (see 'wdt describe METHOD')" },
    { "--no-check", "send without checking the arguments against the catalogue\n"
                    .. "(the pages can be wrong: doc/api.md)" },
  },
  footer = [[
Exit codes: 0 the API answered status 0, 1 it answered an error status, or status 0
            with refused items (sales.LogisticsSync.update's list, the error_list of
            pushSelf2 / RawRefund.upload2; printed as the answer, counted on stderr),
            2 usage error, 3 network failure.]],
  run = run,
}
