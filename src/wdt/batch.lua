-- client:call_many(requests, opts): many calls at once, each under the same retry rules
-- as client:call, the results in request order.
--
--   local results, failed = client:call_many({
--     { "sales.LogisticsSync.getSyncListExt", { shop_no = "s1", is_own_platform = true },
--       pager = { page_size = 100, page_no = 0 } },
--     { "sales.LogisticsSync.update", { { sync_id = 5000000001, status = 0, error_msg = "" } } },
--   }, { concurrency = 16 })
--   for i, r in ipairs(results) do
--     if r.err then print(i, r.err) else use(r.data) end
--   end
--
-- A request is a list: the method, then its positional arguments (`n`, as table.pack sets
-- it, counts the method and the arguments when some are nil). Named fields: `pager` (the
-- result is then a page, as from client:page_call) and the per-call options of
-- client:request (timeout, connect_timeout, retries, backoff, max_backoff, idempotent).
-- `opts`: `concurrency` (1..256, default 8: transfers in flight) and the same per-call
-- options as defaults for every request.
--
-- Returns `results, failed`: results[i] is `{ data = …, response = …, tries = … }` (data as client:call
-- returns it, `wdt.null` when the answer has none; a page for a paged request) or
-- `{ err = <wdt error> }`; `failed` counts the errors. Every slot is a table, so ipairs
-- sees them all. Bad input (not a list, an unknown option, a bad method name or pager,
-- arguments that cannot be encoded) raises before anything is sent.
--
-- How: outside nginx, each request runs client:request's loop in a coroutine whose
-- executor hands its sends and back-off sleeps to a scheduler; every round sends the
-- waiting tries in one libcurl multi batch (cl:send_many, the client's connection pool),
-- then resumes each request with its answer. Inside nginx, `concurrency` light threads
-- (ngx.thread.spawn) run client:request, or one after the other without light threads.
local core = require "wdt.core"
local check = require "wdt.check"
local options = require "wdt.options"
local paging = require "wdt.paging"

local unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)

local M = { DEFAULT_CONCURRENCY = 8, MAX_CONCURRENCY = 256 }
local FN = "call_many"

-- Bad input raises through wdt.check (in helpers and coroutines, at no fixed depth);
-- client:call_many raises it at its caller's line.
local function bad(name, msg) check.fail(FN, name, msg) end

-- A request that raised while prepared (arguments that cannot be encoded) is bad input:
-- "path/file.lua:12: message" -> "requests[i]: message" (i, when known)
-- A flow's stop marker or an interrupt (SIGINT) raised in a request passes through as it is.
local function bad_request(i, msg)
  if require("wdt.flow").stop_error(msg) then error(msg, 0) end
  if type(msg) == "string" then msg = msg:gsub("^[^:\n]+:%d+: ", "") end
  check.raise((i and ("requests[%d]: "):format(i) or "") .. tostring(msg))
end

local opts_fields = { concurrency = true }

-- requests[i] -> the method, args (with n), the checked pager (or nil) and the per-call
-- options (or nil) that client:_request takes. `pagers` remembers the pagers already
-- checked in this batch (callers often pass one pager table for many requests).
local function build(i, r, defaults, pagers)
  local where = ("requests[%d]"):format(i)
  if type(r) ~= "table" then bad(where, "{method, args...} expected, got " .. type(r)) end
  local method = r[1]
  if not check.is_method(method) then
    bad(where .. "[1]", "a method name expected, got "
      .. (type(method) == "string" and ("%q"):format(method) or type(method)))
  end
  local count, pager, named
  for k, v in pairs(r) do
    if type(k) == "number" then                        -- positional: checked below
      if not check.is_integer(k) or k < 1 then bad(where, "bad key " .. tostring(k)) end
    elseif k == "n" then
      if not check.is_integer(v) or v < 1 then
        bad(where .. ".n", "an integer >= 1 expected (the method counts)")
      end
      count = v
    elseif k == "pager" then
      pager = pagers[v]
      if not pager then
        local why
        pager, why = paging.check(v)
        if not pager then bad(where .. ".pager", why) end
        pagers[v] = pager
      end
    else
      named = named or {}
      named[k] = v
    end
  end
  local opts = next(defaults) and defaults or nil
  if named then
    opts = {}
    for name, dv in pairs(defaults) do opts[name] = dv end
    options.call(FN, named, opts, nil, where)
  end
  count = count or #r
  local args
  if count <= 64 then
    args = { n = count - 1, unpack(r, 2, count) }      -- sized at once
  else
    args = { n = count - 1 }
    for k = 2, count do args[k - 1] = r[k] end
  end
  return { method = method, args = args, pager = pager, opts = opts }
end

-- client:_request's resp, tries | nil, err -> the result of one request
local function outcome(resp, err, pager, method)
  if not resp then return { err = err } end
  if pager then
    local page, perr = paging.page(resp, pager, method)
    if not page then return { err = perr } end
    return { data = page, response = resp, tries = err }
  end
  local data = resp.data
  if data == nil then data = core.null end
  return { data = data, response = resp, tries = err }
end

-- ---- outside nginx: coroutines over cl:send_many ------------------------------------------

-- Inside the coroutines the requests run on a view of the client whose executor yields
-- its sends and back-off sleeps to the scheduler (a back-off wait holds no other request).
local scheduled = {
  send = function(_, url, body, o) return coroutine.yield("send", url, body, o) end,
  sleep = function(seconds) return coroutine.yield("sleep", seconds) end,
}

local function run_curl(client, reqs, concurrency)
  local n = #reqs
  local results, view = {}, client:_using(scheduled)
  local sleep = client:executor().sleep        -- the scheduler's own waits
  local function runner(req)
    return view:_request(req.method, req.args, req.pager, req.opts)
  end
  local cos = {}
  local s_idx, s_item, ns = {}, {}, 0       -- the tries waiting to be sent
  local timeout, connect_timeout = client._opts.timeout, client._opts.connect_timeout
  local sleepers = {}                       -- requests in back-off: {i, wake}

  local function step(i, co, ok, what, a, b, c)
    if not ok then bad_request(i, what) end      -- prepare raised
    if what == "send" and coroutine.status(co) == "suspended" then
      local item = { a, b }
      if c then           -- the client's own timeouts are the C side's defaults already
        if c.timeout ~= timeout then item.timeout = c.timeout end
        if c.connect_timeout ~= connect_timeout then item.connect_timeout = c.connect_timeout end
        if c.fresh_connect then item.fresh_connect = true end
      end
      ns = ns + 1
      s_idx[ns], s_item[ns] = i, item
    elseif coroutine.status(co) == "dead" then
      results[i] = outcome(what, a, reqs[i].pager, reqs[i].method)
      cos[i] = nil
    elseif what == "sleep" then
      sleepers[#sleepers + 1] = { i, core.monotonic() + (tonumber(a) or 0) }
    else
      error("wdt.batch: unexpected yield from a request: " .. tostring(what), 0)
    end
  end

  -- Start every request: validation and the first prepare happen here, before any send.
  for i = 1, n do
    local co = coroutine.create(runner)
    cos[i] = co
    step(i, co, coroutine.resume(co, reqs[i]))
  end

  while ns > 0 or #sleepers > 0 do
    if ns > 0 then
      local idx, items, count = s_idx, s_item, ns
      s_idx, s_item, ns = {}, {}, 0
      local answers = client._core:send_many(items, concurrency)
      for k = 1, count do
        local i, r = idx[k], answers[k]
        if r.status then                    -- an answer, else a failure: cl:send's contract
          step(i, cos[i], coroutine.resume(cos[i], r))
        else
          step(i, cos[i], coroutine.resume(cos[i], nil, r))
        end
      end
    else
      local first = sleepers[1][2]
      for k = 2, #sleepers do
        if sleepers[k][2] < first then first = sleepers[k][2] end
      end
      local wait = first - core.monotonic()
      if wait > 0 then sleep(wait) end      -- nothing to send: the scheduler waits
    end
    if #sleepers > 0 then     -- wake those whose back-off is over: on to their next send
      local now, still, woken = core.monotonic(), {}, {}
      for k = 1, #sleepers do
        local sl = sleepers[k]
        if sl[2] <= now then woken[#woken + 1] = sl[1] else still[#still + 1] = sl end
      end
      sleepers = still
      for k = 1, #woken do
        local i = woken[k]
        step(i, cos[i], coroutine.resume(cos[i]))
      end
    end
  end
  return results
end

-- ---- inside nginx: light threads over the cosocket transport -------------------------------

local function run_ngx(client, reqs, concurrency)
  local n, results, next_i = #reqs, {}, 1
  local function work()
    while next_i <= n do
      local i = next_i
      next_i = next_i + 1
      local r = reqs[i]
      local resp, err = client:_request(r.method, r.args, r.pager, r.opts)
      results[i] = outcome(resp, err, r.pager, r.method)
    end
  end
  local nginx = require("wdt.clock").ngx()
  local spawn = nginx and nginx.thread and nginx.thread.spawn
  if not spawn or concurrency == 1 or n <= 1 then
    work()
    return results
  end
  local threads = {}
  for t = 1, math.min(concurrency, n) do threads[t] = spawn(work) end
  for t = 1, #threads do
    local ok, err = nginx.thread.wait(threads[t])
    if not ok then bad_request(nil, err) end
  end
  return results
end

-- The length of the list; a hole (a nil before the last request) is bad input: the
-- requests after it would be dropped silently.
local function count_requests(requests)
  local n, hole, last = check.list_length(requests)
  if not n then
    bad(("requests[%d]"):format(hole), ("a request expected, got nil (a hole before requests[%d])"):format(last))
  end
  return n
end

-- client:call_many runs this through wdt.check: bad input raises at its caller's line.
function M.call_many(client, requests, opts)
  if type(requests) ~= "table" then
    bad("requests", "a list of requests expected, got " .. type(requests))
  end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then bad("opts", "a table expected, got " .. type(opts)) end
  local concurrency = opts.concurrency
  if concurrency == nil then concurrency = M.DEFAULT_CONCURRENCY end
  if not check.is_integer(concurrency) or concurrency < 1 or concurrency > M.MAX_CONCURRENCY then
    bad("opts.concurrency", ("an integer from 1 to %d expected"):format(M.MAX_CONCURRENCY))
  end
  local defaults = options.call(FN, opts, {}, opts_fields, "opts")

  local n = count_requests(requests)
  local reqs, pagers = {}, {}
  for i = 1, n do reqs[i] = build(i, requests[i], defaults, pagers) end

  local results
  if client:transport() == "ngx" then
    results = run_ngx(client, reqs, concurrency)
  else
    results = run_curl(client, reqs, concurrency)
  end
  local failed = 0
  for i = 1, n do
    if results[i].err then failed = failed + 1 end
  end
  return results, failed
end

return M
