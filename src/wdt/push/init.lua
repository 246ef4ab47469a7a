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
local run = require "wdt.push.run"
local resume = require "wdt.push.resume"
local lock = require "wdt.lock"

local push = {}

local items_field = { orders = "orders", refunds = "refunds", goods = "goods" }
local fname = { orders = "push_orders", refunds = "push_refunds", goods = "upload_goods" }
local known = { shop_no = true, batch = true, on_progress = true, source = true, state = true,
                max_tries = true, lock = true, source_name = true, retry_given_up = true }

-- Bad options raise at the caller of client:push_* (wdt.check's levels: 1 is check_opts,
-- then push.run, the client method, and its caller).
local LEVEL = 4

-- A list with a hole or a single item given for the list would push fewer items than the
-- caller gave, silently: both raise, naming the position.
local item_name = { orders = "an order", refunds = "a refund", goods = "a good" }
local function check_list(f, field, flow, items)
  local n, hole, last = check.list_length(items)
  if not n then
    check.fail(f, ("%s[%d]"):format(field, hole), ("%s expected, got nil (a hole before %s[%d])")
      :format(item_name[flow], field, last), LEVEL + 1)
  end
  local k = next(items)
  if n == 0 and k ~= nil then
    check.fail(f, field, ("a list expected, got a table with the key %s (one item? put it in a list)")
      :format(type(k) == "string" and ("'" .. k .. "'") or tostring(k)), LEVEL + 1)
  end
end

local function check_opts(flow, opts)
  local f = fname[flow]
  if type(opts) ~= "table" then
    check.fail(f, "options", "table expected, got " .. type(opts), LEVEL)
  end
  local field = items_field[flow]
  for k in pairs(opts) do
    if not known[k] and k ~= field then check.fail(f, k, "unknown option", LEVEL) end
  end
  if type(opts.shop_no) ~= "string" or opts.shop_no == "" then
    check.fail(f, "shop_no", "non-empty string expected, got " .. type(opts.shop_no), LEVEL)
  end
  local b = opts.batch
  if b ~= nil and (type(b) ~= "number" or b % 1 ~= 0 or b < 1 or b > 100) then
    check.fail(f, "batch", "a whole number from 1 to 100 expected (the vendor's limit is 100)", LEVEL)
  end
  if opts.on_progress ~= nil and type(opts.on_progress) ~= "function" then
    check.fail(f, "on_progress", "function expected, got " .. type(opts.on_progress), LEVEL)
  end
  local lk = opts.lock
  if lk ~= nil and type(lk) ~= "boolean" and type(lk) ~= "table" then
    check.fail(f, "lock", "boolean or table expected, got " .. type(lk), LEVEL)
  end
  local items = opts[field]
  if opts.source ~= nil then
    if items ~= nil then check.fail(f, field, "give either '" .. field .. "' or 'source', not both", LEVEL) end
    if type(opts.source) ~= "function" then
      check.fail(f, "source", "function expected, got " .. type(opts.source), LEVEL)
    end
    local st = opts.state
    if type(st) ~= "table" or type(st.load) ~= "function" or type(st.save) ~= "function" then
      check.fail(f, "state", "a store expected (wdt.store.file(path)), got " .. type(st), LEVEL)
    end
    local mt = opts.max_tries
    if mt ~= nil and (type(mt) ~= "number" or mt % 1 ~= 0 or mt < 1) then
      check.fail(f, "max_tries", "a whole number >= 1 expected", LEVEL)
    end
    if opts.source_name ~= nil and type(opts.source_name) ~= "string" then
      check.fail(f, "source_name", "string expected, got " .. type(opts.source_name), LEVEL)
    end
  else
    if type(items) ~= "table" and type(items) ~= "function" then
      check.fail(f, field, "a list or an iterator function expected, got " .. type(items), LEVEL)
    end
    if type(items) == "table" then check_list(f, field, flow, items) end
    for _, k in ipairs({ "state", "max_tries", "source_name", "retry_given_up" }) do
      if opts[k] ~= nil then check.fail(f, k, "applies only with 'source'", LEVEL) end
    end
  end
end

-- The run lock `opts.lock` asks for (see the header): a handle, false for none, or nil, err.
local function take_lock(client, flow, opts)
  local spec = opts.lock
  if spec == nil then spec = opts.source ~= nil end
  return lock.take_run(spec, "push." .. flow, client.sid, opts.shop_no)
end

-- The options the push runs with: without `lock`; on_progress renews the lock first, and a
-- lock that expired and was taken over stops the push (raised, caught as an error below).
local function with_lock(opts, held)
  local o = {}
  for k, v in pairs(opts) do if k ~= "lock" then o[k] = v end end
  if not held then return o end
  local user = opts.on_progress
  o.on_progress = function(s)
    local ok, err = held:touch()
    if not ok and err.kind == "locked" then error(err, 0) end
    if user then return user(s) end
  end
  return o
end

local function push_items(client, flow, opts)
  if opts.source then return resume.run(client, flow, opts) end
  local items = opts[items_field[flow]]
  local next_item = items
  if type(items) == "table" then
    local i = 0
    next_item = function() i = i + 1 return items[i] end
  end
  local r = run.new(client, flow, opts)
  local SOURCE = {}
  local function guarded_next()     -- an iterator that raises stops the push, reported
    local ok, item = pcall(next_item)
    if ok then return item end
    error({ [SOURCE] = item }, 0)
  end
  -- a plain list cannot raise when read: no protected call per item
  local plain = type(items) == "table" and getmetatable(items) == nil
  local ok, res, err = pcall(r.push, r, plain and next_item or guarded_next)
  if not ok then
    local raised = type(res) == "table" and res[SOURCE] or res
    if errors.is_interrupt(raised) then
      r:abandon()
      return r:stop(errors.new{ kind = "interrupted", message = "stopped by SIGINT (Ctrl-C)" })
    end
    if type(res) == "table" and res[SOURCE] ~= nil then
      r:abandon()
      return r:stop(errors.new{ kind = "source", message = "the iterator raised an error: " .. tostring(raised) })
    end
    if errors.is(res) then           -- the run lock lost
      r:abandon()
      return r:stop(res)
    end
    error(res, 0)
  end
  if not res then return r:stop(err) end
  return r:finish()
end

-- push.run(client, flow, opts): what client:push_orders / push_refunds / upload_goods call.
function push.run(client, flow, opts)
  check_opts(flow, opts)
  local held, lerr = take_lock(client, flow, opts)
  if held == nil then return nil, lerr end
  local ok, summary, err = pcall(push_items, client, flow, with_lock(opts, held))
  if held then held:release() end
  if not ok then error(summary, 0) end
  return summary, err
end

return push
