-- The push half of an own-platform integration: orders, refunds and goods into the ERP.
--
--   client:push_orders{shop_no=, orders=, batch=100, on_progress=}
--   client:push_refunds{shop_no=, refunds=, ...}
--   client:upload_goods{shop_no=, goods=, ...}
--     orders / refunds / goods: a list, or an iterator function returning one item a call
--     (nil at the end). An order is the trade's fields as the vendor names them, its lines
--     (the sub-order fields) as a list under `orders`.
--   The same with source=function(cursor) return items, next_cursor end and
--   state=wdt.store.file(path) (and max_tries=5) instead of the list: resumable
--   (wdt.push.resume). source_name: what the source is (a path), recorded in the state,
--   which then refuses another source; retry_given_up = true: the items given up go back
--   to pending, tries counted from 0.
--     -> summary | nil, err (err.summary holds the summary so far)
--   concurrency: calls in flight at once (default 4, wdt.flow): batches go out that many
--   at a time; an item's key is never in two calls in flight, its later version never
--   ahead of its earlier one (doc/push.md, "Calls in flight").
--   lock: the run lock (wdt.lock), per seller + shop + flow ("wdt.push.orders/SID/SHOP"),
--   held for the whole push and renewed as it goes (as client:sync_logistics's): false none,
--   true the defaults, a table wdt.lock.acquire's options. On by default with `source`
--   (a resumable push: two runs would push the same items and race its state); a list or
--   iterator push takes none unless asked (inline pushes, one order per checkout callback,
--   run side by side by design, and pushSelf2 is create-or-update). Held: nil, err
--   (kind "locked"), nothing pushed.
--
-- summary: flow, method, shop_no, read, calls, new, changed, failed, invalid, unreported
-- (counts: new + changed + failed + invalid + unreported = read), failures {key, error},
-- invalids {index, key, field, reason}, unreported_items {key, error}, anomalies (answers
-- that did not add up), elapsed; resumable runs add retried, skipped, pages, pending,
-- given_up {key, tries, error}, cursor. See doc/push.md.
local check = require "wdt.check"
local errors = require "wdt.errors"
local flow = require "wdt.flow"
local run = require "wdt.push.run"
local resume = require "wdt.push.resume"

local push = {}

local fname = { orders = "push_orders", refunds = "push_refunds", goods = "upload_goods" }
local item_name = { orders = "an order", refunds = "a refund", goods = "a good" }

local option_specs = {}   -- the items come under the flow's name: orders, refunds, goods
for flow_name in pairs(fname) do
  option_specs[flow_name] = {
    shop_no = { "string" }, source = { "function" }, state = { "table" },
    max_tries = { "number", min = 1, integer = true },
    source_name = { "string" }, retry_given_up = { "boolean" },
    batch = { "number", min = 1, max = 100, integer = true },   -- the vendor's limit is 100
    on_outcome = { "function" },   -- every item's outcome record (wdt.flow.outcome)
    [flow_name] = { "table|function" }, lock = flow.LOCK, on_progress = flow.ON_PROGRESS,
    concurrency = flow.CONCURRENCY,
  }
end

-- A list with a hole or a single item given for the list would push fewer items than the
-- caller gave, silently: both raise, naming the position.
local function check_list(f, field, flow_name, items)
  local n, hole, last = check.list_length(items)
  if not n then
    check.fail(f, ("%s[%d]"):format(field, hole), ("%s expected, got nil (a hole before %s[%d])")
      :format(item_name[flow_name], field, last))
  end
  local k = next(items)
  if n == 0 and k ~= nil then
    check.fail(f, field, ("a list expected, got a table with the key %s (one item? put it in a list)")
      :format(type(k) == "string" and ("'" .. k .. "'") or tostring(k)))
  end
end

-- client:push_*'s options, checked (wdt.check) and defaulted. The run lock is on by
-- default with `source` (see the header).
function push.options(opts, flow_name)
  local f, field = fname[flow_name], flow_name
  local o = flow.options(f, opts, option_specs[flow_name], type(opts) == "table" and opts.source ~= nil)
  if o.shop_no == nil or o.shop_no == "" then
    check.fail(f, "shop_no", "non-empty string expected, got " .. type(o.shop_no))
  end
  local items = o[field]
  if o.source ~= nil then
    if items ~= nil then check.fail(f, field, "give either '" .. field .. "' or 'source', not both") end
    local st = o.state
    if type(st) ~= "table" or type(st.load) ~= "function" or type(st.save) ~= "function" then
      check.fail(f, "state", "a store expected (wdt.store.file(path)), got " .. type(st))
    end
  else
    if items == nil then check.fail(f, field, "a list or an iterator function expected, got nil") end
    if type(items) == "table" then check_list(f, field, flow_name, items) end
    for _, k in ipairs({ "state", "max_tries", "source_name", "retry_given_up" }) do
      if o[k] ~= nil then check.fail(f, k, "applies only with 'source'") end
    end
  end
  return o
end

-- The items of a list or iterator push, one a call. An iterator (or a list behind a
-- metatable) that raises stops the push (kind "source"), reported.
local function reader(frun, items)
  local next_item = items
  if type(items) == "table" then
    local i = 0
    next_item = function() i = i + 1 return items[i] end
    if getmetatable(items) == nil then return next_item end   -- a plain list cannot raise
  end
  return function()
    local ok, item = pcall(next_item)
    if ok then return item end
    if errors.is_interrupt(item) then error(item, 0) end
    frun:stop("source", "the iterator raised an error: " .. tostring(item))
  end
end

-- push.run(client, opts, flow): opts as push.options returned them.
function push.run(client, opts, flow_name)
  local r = run.new(flow_name, opts)
  local frun, lerr = flow.start(client, { name = "push." .. flow_name, scope = opts.shop_no, lock = opts.lock,
                                          summary = r.summary, on_progress = opts.on_progress,
                                          concurrency = opts.concurrency })
  if not frun then return nil, lerr end
  r.frun = frun
  r.progress = function() frun:progress() end
  r.stop = function(err) frun:stop(err.kind, err.message, err) end
  return frun:guard(function()
    local ok, err
    if opts.source then
      ok, err = resume.run(r, opts)
    else
      ok, err = r:push(reader(frun, opts[flow_name]))
    end
    if not ok then return frun:fail(err) end
    return frun:finish()
  end, function()
    r:abandon()
    if opts.source then resume.note(r) end
  end)
end

return push
