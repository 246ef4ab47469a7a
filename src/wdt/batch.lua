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
-- How: a flight (batch.flight, below; a flow's window of calls runs on one too). Outside
-- nginx, each request runs client:request's loop in a coroutine whose executor hands its
-- sends and back-off sleeps to the flight, which starts each send on the client's pool
-- (cl:start) as soon as a slot is free and resumes the request with its answer as soon
-- as it is in (cl:wait): no round waits for its slowest call. Inside nginx, `concurrency`
-- light threads (ngx.thread.spawn) run client:request, or one after the other without
-- (wdt.batch_ngx).
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

-- client:_request's resp, tries, sent_before | nil, err -> the result of one request
local function outcome(resp, err, pager, method, sent_before)
  if not resp then return { err = err } end
  if pager then
    local page, perr = paging.page(resp, pager, method)
    if not page then return { err = perr } end
    return { data = page, response = resp, tries = err, sent_before = sent_before }
  end
  local data = resp.data
  if data == nil then data = core.null end
  return { data = data, response = resp, tries = err, sent_before = sent_before }
end

-- ---- a flight: requests added one at a time, each handed back as soon as it is done ------
--
--   local f = batch.flight(client, concurrency)
--   local i = f:add(req)        -- req as build() returns it; i: its number in this flight
--   local i, result = f:next()  -- the next request done (any order), its result as in
--                               -- call_many; nil when none is left
--   f:poll(); f:ready()         -- a step without waiting; the next request done, or nil
--   f:close()                   -- what is still out is abandoned (its transfers aborted)
--   f:set_width(n)              -- at most n out from now on (a flow's pacer: wdt.flow)
-- At most `concurrency` transfers are out at once; a request waiting out a back-off or a
-- rate wait holds no slot. A flow's window (wdt.flow) and call_many run on it.

-- Outside nginx each request runs the loop of client:_request in a coroutine on a view of
-- the client whose executor yields its sends and sleeps to the flight, which starts the
-- sends on the client's pool (cl:start) and resumes each request with its answer as soon
-- as it is in (cl:wait). A try is prepared in the coroutine, as a job in C memory
-- (cl:prepare_job): a push call's ~100 KB body is never copied into a Lua string.
local scheduled = {
  send = function(_, url, body, o) return coroutine.yield("send", url, body, o) end,
  post = function(c, method, args, pager, timestamp, o)
    return coroutine.yield("send", c._core:prepare_job(method, args, pager, timestamp), nil, o)
  end,
  sleep = function(seconds) return coroutine.yield("sleep", seconds) end,
}

local Curl = {}
Curl.__index = Curl

-- Several flights may share a client's pool (a scan keeps its read-ahead out between rows,
-- while its caller runs a call_many or a push on the same client): the pool's transfer ->
-- the flight that started it, so that one flight's wait hands another's answers over
-- (its inbox) instead of taking them.
local owners_of = setmetatable({}, { __mode = "k" })

-- A pool's result r (cl:wait, cl:abort) as a request is resumed with it: the answer, or
-- nil and the failure.
local function as_result(r)
  if r.status then return r end
  return nil, r
end

-- Hands r to the flight that started it (owners: the pool's transfer -> flight) when that
-- is another flight than `self`: true; false when it is self's or no flight's.
local function handed(owners, r, self)
  local owner = owners[r.id]
  owners[r.id] = nil
  if owner and owner ~= self then
    owner:hand_over(r)
    return true
  end
  return false
end

local function curl_flight(client, concurrency)
  local view = client:_using(scheduled)
  local cl = client._core
  owners_of[cl] = owners_of[cl] or {}
  return setmetatable({ client = client, view = view, width = concurrency, n = 0, reqs = {},
                        cos = {}, queued = {}, active = {}, out = 0, sleepers = {}, done = {},
                        inbox = {}, owners = owners_of[cl], sleep = client:executor().sleep }, Curl)
end

-- A transfer started on the pool cl: a job of cl:prepare_job (body nil) or a URL and a
-- body, with the send options o (cl:send's): id | nil, failure.
local function start_on(cl, job, body, o)
  local item = o and { timeout = o.timeout, connect_timeout = o.connect_timeout,
                       fresh_connect = o.fresh_connect or nil }
  if body == nil then return cl:start(job, item) end
  return cl:start(job, body, item)
end

-- Whether flights have transfers out on this pool (cl): a scan's read-ahead stays out
-- between rows, and after a `break` until answered. The pool's one-call run (cl:send,
-- cl:post) refuses to run beside them: a plain call then goes through M.send_beside.
function M.busy(cl)
  local owners = owners_of[cl]
  return owners ~= nil and next(owners) ~= nil
end

-- One try started beside the flights' transfers and waited for, their answers handed to
-- their flights meanwhile (a job of cl:prepare_job and no body, or a URL and a body):
-- answer | nil, failure, as cl:send.
function M.send_beside(cl, job, body, o)
  local id, failure = start_on(cl, job, body, o)
  if not id then return nil, failure end
  local owners, mine = owners_of[cl], nil
  while not mine do
    for _, r in ipairs(cl:wait(1)) do
      if r.id == id then
        owners[r.id], mine = nil, r
      else
        handed(owners, r)
      end
    end
  end
  return as_result(mine)
end

-- Resumes request i's coroutine and files what it yields: a send to start, a sleep, or
-- its end (a result).
function Curl:step(i, ...)
  local co = self.cos[i]
  local ok, what, a, b, c = coroutine.resume(co, ...)
  if not ok then bad_request(i, what) end        -- prepare raised, or a stop passes through
  if coroutine.status(co) == "dead" then
    self.cos[i] = nil
    self.done[#self.done + 1] = { i, outcome(what, a, self.reqs[i].pager, self.reqs[i].method, b) }
    self.reqs[i] = nil
  elseif what == "send" then
    self.queued[#self.queued + 1] = { i, a, b, c }
  elseif what == "sleep" then
    self.sleepers[#self.sleepers + 1] = { i, core.monotonic() + (tonumber(a) or 0) }
  else
    error("wdt.batch: unexpected yield from a request: " .. tostring(what), 0)
  end
end

-- Fewer (or more again, up to the flight's concurrency) transfers out from now on: those
-- out stay, the queued ones wait for the slots.
function Curl:set_width(n) self.width = n end

function Curl:add(req)
  local i = self.n + 1
  self.n, self.reqs[i] = i, req
  local view = self.view
  self.cos[i] = coroutine.create(function(r) return view:_request(r.method, r.args, r.pager, r.opts) end)
  self:step(i, req)                              -- validation and the first prepare, now
  return i
end

-- Starts the queued sends while slots are free; a send that cannot start is answered with
-- its failure at once.
function Curl:pump()
  local cl = self.client._core
  while self.out < self.width and self.queued[1] do
    local q = table.remove(self.queued, 1)
    local id, failure = start_on(cl, q[2], q[3], q[4])   -- q[3] nil: a job (scheduled.post)
    if id then
      self.active[id], self.out, self.owners[id] = q[1], self.out + 1, self
    else
      self:step(q[1], nil, failure)
    end
  end
end

-- The sleepers whose wait is over, resumed.
function Curl:wake()
  if not self.sleepers[1] then return end
  local now, still, woken = core.monotonic(), {}, {}
  for _, sl in ipairs(self.sleepers) do
    if sl[2] <= now then woken[#woken + 1] = sl[1] else still[#still + 1] = sl end
  end
  self.sleepers = still
  for _, i in ipairs(woken) do self:step(i) end
end

-- The transfer `r.id` of this flight is back: its request's number, its slot free (the
-- pool may give the id to the next start at once).
function Curl:landed(r)
  local i = self.active[r.id]
  self.active[r.id], self.out = nil, self.out - 1
  return i
end

-- Another flight's wait took this flight's answer r in: put in its inbox with its
-- request's number (its id may be reused before this flight looks), or, this flight
-- left, its request ended at once.
function Curl:hand_over(r)
  local i = self:landed(r)
  if self.leaving then
    self:finish(i, as_result(r))
  else
    self.inbox[#self.inbox + 1] = { i, r }
  end
end

-- The pool's answers (cl:wait, cl:abort) to the flights that started them: another's
-- handed over, this one's filed in its inbox, all of them before any request is resumed
-- (one that raises, a stop or an interrupt, loses none of the others: what is left in the
-- inbox is ended by close), then this one's taken.
function Curl:route(results)
  for _, r in ipairs(results) do
    if not handed(self.owners, r, self) then self.inbox[#self.inbox + 1] = { self:landed(r), r } end
  end
  self:take_inbox()
end

-- The answers in the inbox taken, one at a time (one that raises leaves the rest there).
function Curl:take_inbox()
  while self.inbox[1] do
    local x = table.remove(self.inbox, 1)
    self:arrived(x[1], x[2])
  end
end

function Curl:arrived(i, r)
  self:step(i, as_result(r))
end

-- The next request done, without waiting: nil when none is (yet).
function Curl:ready()
  self:take_inbox()                              -- answers another flight's wait took in
  local d = table.remove(self.done, 1)
  if d then return d[1], d[2] end
end

-- One step without waiting: the sends that can start started, what is in taken in (for
-- f:ready), the sleepers due resumed. A caller that keeps calls out while it does other
-- work calls it now and then, so that they go on meanwhile.
function Curl:poll()
  self:pump()
  if self.out > 0 then self:route(self.client._core:wait(0)) end
  self:wake()
  self:pump()
end

function Curl:next()
  local cl = self.client._core
  while true do
    local di, dr = self:ready()
    if di then return di, dr end
    self:pump()
    local first
    for _, sl in ipairs(self.sleepers) do
      if not first or sl[2] < first then first = sl[2] end
    end
    if self.out > 0 then
      local wait = first and math.max(0, first - core.monotonic()) or 1
      self:route(cl:wait(math.min(wait, 1)))
    elseif first then
      local wait = first - core.monotonic()
      if wait > 0 then self.sleep(wait) end      -- nothing out: the flight itself waits
    elseif not self.queued[1] then
      return nil
    end
    self:wake()
  end
end

-- A flight's request that will not be carried on (its flight closed or left): resumed
-- with (...), then with a failure that sends nothing for each send it asks for, until it
-- ends or sleeps. So what its try holds (a rate budget's concurrency slot, given back after
-- the try) is given back, and nothing more goes out. An interrupt (SIGINT) raised meanwhile
-- is returned, for the caller to raise once it is done.
local LEFT = { kind = "network", sent = false, message = "not sent: the flight was closed" }
function Curl:finish(i, ...)
  local co = i and self.cos[i]
  if not co then return end
  self.cos[i], self.reqs[i] = nil, nil
  local ok, what = coroutine.resume(co, ...)
  while ok and what == "send" and coroutine.status(co) ~= "dead" do
    ok, what = coroutine.resume(co, nil, LEFT)
  end
  if not ok and require("wdt.errors").is_interrupt(what) then return what end
end

-- Ends every request of the flight not out on the pool (queued, sleeping, answered and
-- not yet taken): -> an interrupt raised meanwhile, or nil.
function Curl:finish_idle()
  local stop
  for _, x in ipairs(self.inbox) do
    stop = self:finish(x[1], as_result(x[2])) or stop
  end
  for _, q in ipairs(self.queued) do stop = self:finish(q[1], nil, LEFT) or stop end
  self.queued, self.sleepers, self.inbox, self.done = {}, {}, {}, {}
  return stop
end

-- The pool aborts every transfer out: another flight's are handed to it as failed (its
-- requests try again as their retry rules say); this one's requests are ended (finish).
function Curl:close()
  local stop = self:finish_idle()
  if self.out > 0 then
    for _, r in ipairs(self.client._core:abort()) do
      if not handed(self.owners, r, self) and self.active[r.id] then
        stop = self:finish(self:landed(r), nil, r) or stop
      end
    end
  end
  for id in pairs(self.active) do
    if self.owners[id] == self then self.owners[id] = nil end
  end
  self.out, self.active, self.cos = 0, {}, {}
  return stop
end

-- Done with, the transfers out left to end (a scan left by `break`): each of its requests
-- is ended (finish) when its answer comes back, whichever flight's wait takes it in; at
-- once when no flight in use has transfers on the pool (the pool's are aborted then). Nothing
-- more is sent for it. An interrupt raised meanwhile is raised after.
function Curl:leave()
  self.leaving = true
  local stop = self:finish_idle()
  local others = false
  for _, owner in pairs(self.owners) do
    if owner ~= self and not owner.leaving then others = true break end
  end
  if self.out > 0 and not others then stop = self:close() or stop end
  if stop then error(stop, 0) end
end

-- A flight of requests on `client` (see above).
function M.flight(client, concurrency)
  if client:transport() == "ngx" then
    return require("wdt.batch_ngx").new(client, concurrency, require("wdt.clock").ngx())
  end
  return curl_flight(client, concurrency)
end
M.build = build
M._outcome, M._bad_request = outcome, bad_request    -- for wdt.batch_ngx

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

  local results, f = {}, M.flight(client, concurrency)
  if require("wdt.batch_ngx").is(f) then
    -- a light thread prepares its request once those before it went out: each encoded here
    -- first, so that bad input raises before anything is sent (as Curl:add's prepare does)
    local cl = client._core
    for i = 1, n do
      local ok, err = pcall(cl.prepare, cl, reqs[i].method, reqs[i].args, reqs[i].pager, client:_timestamp())
      if not ok then bad_request(i, err) end
    end
  end
  local ok, err = pcall(function()
    for i = 1, n do f:add(reqs[i]) end         -- every request checked and prepared first
    while true do
      local i, r = f:next()
      if not i then break end
      results[i] = r
    end
  end)
  if not ok then
    f:close()
    error(err, 0)
  end
  local failed = 0
  for i = 1, n do
    if results[i].err then failed = failed + 1 end
  end
  return results, failed
end

return M
