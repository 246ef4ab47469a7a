-- wdt.flow: the spine the flows run on (sync_logistics, sync_stock, push_*, upload_goods,
-- scan); doc/architecture.md ("The flow runner") shows the road of an item in each. A flow
-- brings its steps (read the next items, build one call for a batch, settle its answer)
-- and its summary fields; the run owns the rest: the options with `lock` and `on_progress`
-- (checked at the public method), the run lock and its renewal from one place (run:touch,
-- called on progress and from the executor's wait hook, so also while a call waits for
-- the rate budget), one stop marker, one nil, err with err.summary, progress, and the
-- per-item outcome record, and the window of calls in flight (run:batches, run:calls: up
-- to `concurrency` calls at once, their answers settled in order).
local core = require "wdt.core"
local check = require "wdt.check"
local errors = require "wdt.errors"
local lock = require "wdt.lock"
local policy = require "wdt.policy"

-- DEFAULT_CONCURRENCY: calls in flight when the caller does not say. 4 takes a flow from
-- one round trip per call to a quarter of that (push, scan and stock sync wait on the
-- server's time, not on wdt), while staying under the seller's own limit of calls at once
-- on the vendor's side (unpublished; the emulator's default tenant has none) and leaving
-- room for the seller's other integrations. MAX_CONCURRENCY bounds what one flow may ask.
local flow = { DEFAULT_CONCURRENCY = 4, MAX_CONCURRENCY = 64 }

-- The option specs (wdt.check) every flow lists: `lock` (below), `on_progress`, `concurrency`.
flow.LOCK, flow.ON_PROGRESS = { "boolean|table" }, { "function" }
flow.CONCURRENCY = { "number", flow.DEFAULT_CONCURRENCY, min = 1, max = flow.MAX_CONCURRENCY, integer = true }

-- The flow's options checked (wdt.check: raises a Bad for check.run at the public method)
-- and defaulted. o.lock becomes false or wdt.lock's checked options; `lock_default` is
-- what a missing `lock` means.
function flow.options(fname, opts, specs, lock_default)
  local o = check.options(fname, opts, specs)
  local spec = o.lock
  if spec == nil then spec = lock_default end
  if spec == true then spec = {} end
  o.lock = spec and lock.check_options(spec, fname, "lock") or false
  return o
end

-- One item's outcome: key (what the caller knows it by: a tid, a sync_id, a row's key), id
-- (where it was: its position in the input, a row's version; optional), outcome, message.
function flow.outcome(key, id, outcome, message)
  return { key = key, id = id, outcome = outcome, message = message }
end

local Stop = {}                  -- the metatable of the stop marker

local Run = {}
Run.__index = Run

-- flow.start(client, { name = "sync.logistics", scope = shop or checkpoint, lock = o.lock,
--                      summary = {...}, on_progress = f, concurrency = n })
--   -> run | nil, err (the lock held)
function flow.start(client, def)
  local s = def.summary
  s.started = core.monotonic()
  local run = setmetatable({ summary = s, on_progress = def.on_progress,
                             concurrency = def.concurrency or 1 }, Run)
  if def.lock then
    local held, err = lock.take_run(def.lock, def.name, client.sid, def.scope)
    if not held then return nil, err end
    run.lock = held
  end
  -- a wait for the rate budget: shown, and the lock renewed at least every third of its ttl
  run.client = client:_using { wait = function(seconds, reason)
    s.waiting, s.waiting_for = seconds, reason
    run:progress()
    s.waiting, s.waiting_for = nil, nil
    return run.lock and run.lock.ttl and run.lock.ttl / 3
  end }
  return run
end

function Run:stop(kind, message, cause)
  error(setmetatable({ kind = kind, message = message, cause = cause }, Stop), 0)
end

-- Renews the run lock when due; a lock that expired and was taken over stops the run.
function Run:touch()
  if not self.lock then return end
  local ok, err = self.lock:touch()
  if not ok and err.kind == "locked" then self:stop("locked", err.message, err) end
end

-- An error raised by on_progress stops the run cleanly (kind "callback"): the caller's
-- code is broken, the summary is not lost.
function Run:progress()
  local s = self.summary
  s.elapsed = core.monotonic() - s.started
  self:touch()
  if self.on_progress then self:callback("on_progress", self.on_progress, s) end
end

-- Calls the caller's callback `name` (on_progress, on_outcome) with `arg`; one that raises
-- stops the run the same clean way (kind "callback").
function Run:callback(name, fn, arg)
  local ok, err = pcall(fn, arg)
  if not ok then
    if errors.is_interrupt(err) then error(err, 0) end
    self:stop("callback", name .. " raised an error: " .. tostring(err))
  end
end

function Run:release()
  if self.lock then self.lock:release() end
  self.lock = nil
end

function Run:finish()
  local s = self.summary
  s.elapsed = core.monotonic() - s.started
  self:release()
  return s
end

-- nil, err for a run that stopped: `err` a wdt error (copied, kept as err.cause) or its
-- fields; `what` says what was being done. err.summary holds the summary so far; the
-- message counts what was left unreported.
function Run:fail(err, what)
  local s = self:finish()
  local e = {}
  for k, v in pairs(err) do e[k] = v end
  if errors.is(err) then e.cause = err end
  e.message = e.message or tostring(e.kind) .. " error"
  if what then e.message = what .. ": " .. e.message end
  e.summary = s
  local u = s.unreported
  local n = type(u) == "table" and #u or u or 0
  if n > 0 then e.message = ("%s; %d item(s) left unreported"):format(e.message, n) end
  return nil, errors.new(e)
end

-- A call refused for the seller's limit of calls at once (after the client's own retries)
-- is sent again this many times with fewer calls in flight, then left refused. (A refusal
-- of the per-minute budget is the `rate` option's to wait out: wdt.rate.)
flow.RESENDS = 5

-- The width of a window of calls against the seller's limit of calls at once (unpublished;
-- a refusal, status 100 超过每分钟最大并发次数限制, applies nothing):
--   pacer:resend(call, err, summary) -> true: `err` is that refusal and the call is to be
--     sent again (summary.resent counted), with one call fewer in the window. A refusal
--     made with one call in the window already is not of this flow's own making (the
--     seller's other integrations hold the slots): it counts against the call's RESENDS
--     (call.resends_left), after which it is false: the call is left refused
--   pacer:through(): a call got through; after GROW_AFTER × most of them since the last
--     refusal or growth the window grows back by one, so a flow above the limit finds it
--     and stays under it, trying one call more only now and then (growing back at every
--     call that got through, it tried every other call: the same call could be refused
--     RESENDS times in a row, and the flow stopped)
--   pacer.width: the calls the window may hold now
local Pacer = {}
Pacer.__index = Pacer
flow.GROW_AFTER = 4

function flow.pacer(most)
  return setmetatable({ most = most, width = most, calm = 0 }, Pacer)
end

function Pacer:resend(call, err, summary)
  if not (err and policy.is_concurrency_limit(err)) then return false end
  local left = call.resends_left or flow.RESENDS
  if left <= 0 then return false end
  if self.width <= 1 then call.resends_left = left - 1 end
  self.width, self.calm = math.max(1, self.width - 1), 0
  summary.resent = (summary.resent or 0) + 1
  return true
end

function Pacer:through()
  if self.width >= self.most then return end
  self.calm = self.calm + 1
  if self.calm >= flow.GROW_AFTER * self.most then self.width, self.calm = self.width + 1, 0 end
end

-- The run's pacer: what one window of calls found of the seller's limit holds for the
-- next (a stock sync's calls page after page, the logistics sync's passes).
function Run:pacer()
  self._pacer = self._pacer or flow.pacer(self.concurrency or 1)
  return self._pacer
end

-- run:calls(requests[, client]) -> results: client:call_many's requests and results (in
-- request order), up to run.concurrency calls in flight, through the run's client (or a
-- view of it: its wait hook, its rate budget; inside nginx, cosocket light threads), each
-- next call started as soon as one is answered. A call refused for the seller's limit of
-- calls at once (status 100, 超过每分钟最大并发次数限制: nothing was applied) is sent again
-- with one call fewer in flight, paced as run:batches (flow.pacer), so a flow asking more
-- than the seller allows is paced down and loses nothing. The stop marker or an interrupt
-- raised while waiting passes through, the calls out abandoned.
function Run:calls(requests, client)
  local batch = require "wdt.batch"
  local most = self.concurrency or 1
  local pace, f = self:pacer(), batch.flight(client or self.client, most)
  local results, queue, of_call, calls, out = {}, {}, {}, {}, 0
  for i = 1, #requests do queue[i], calls[i] = i, {} end
  f:set_width(pace.width)
  local function body()
    while true do
      while out < pace.width and queue[1] do
        local i = table.remove(queue, 1)
        of_call[f:add(batch.build(i, requests[i], {}, {}))] = i
        out = out + 1
      end
      if out == 0 then return end
      local id, r = f:next()
      local i = of_call[id]
      of_call[id], out = nil, out - 1
      if pace:resend(calls[i], r.err, self.summary) then
        f:set_width(pace.width)
        table.insert(queue, 1, i)               -- before the calls not sent yet
        self:touch()
      else
        if not r.err then pace:through() f:set_width(pace.width) end
        results[i] = r
      end
    end
  end
  local ok, err = pcall(body)
  if not ok then
    f:close()
    error(err, 0)
  end
  return results
end

-- client:request's table -> a flight's request (wdt.batch's build, unchecked input)
local function many_request(req, i)
  local args = req.args or { n = 0 }
  local r = { req.method, n = (args.n or #args) + 1 }
  for k = 1, r.n - 1 do r[k + 1] = args[k] end
  for k, v in pairs(req) do
    if k ~= "method" and k ~= "args" then r[k] = v end
  end
  return require("wdt.batch").build(i, r, {}, {})
end

-- Runs a flow's calls, one for each batch its steps build (a push's batches, the logistics
-- sync's reports), up to run.concurrency batches built and not yet settled (a window that
-- slides: a batch is built and its call started as soon as the oldest one settled):
--   steps.next(slot, idle) -> batch, ends | nil at the end. slot: 1..concurrency, free
--        (no batch of the window holds it: a push writes each batch's lists in the
--        builder of its slot); idle: no batch is in the window. `ends`: build nothing more
--        until the window is empty (what comes next must wait for these answers: a key
--        a batch in flight holds)
--   steps.call(batch) -> a request (client:request's table) | nil: nothing to send for it
--   steps.settle(batch, response | nil, tries | err, sent_before) -> true | nil, err: the
--     run stops (sent_before: an earlier try of the call may have been applied)
-- Batches are settled in the order built, each once its answer is in and all before it
-- settled; answers arriving out of order wait. A call refused for the seller's limit of
-- calls at once (status 100, 超过每分钟最大并发次数限制: nothing applied) after the
-- client's own retries is sent again with one call fewer in the window, and the window
-- grows back slowly (flow.pacer; a call is left refused after RESENDS refusals with one
-- call in the window). A settle that
-- stops the run stops the building; the calls out are answered and settled first. The
-- stop marker or SIGINT raised meanwhile abandons the calls out and settles every batch of
-- the window with that error (its items unreported), then goes on up to run:guard.
function Run:batches(steps)
  local most = self.concurrency or 1
  local pace, f = self:pacer(), require("wdt.batch").flight(self.client, most)
  f:set_width(pace.width)
  local window, by_call, free = {}, {}, {}
  for k = most, 1, -1 do free[#free + 1] = k end
  local ended, draining, first_err = false, false, nil
  local function send(w) by_call[f:add(many_request(w.req, #window))] = w end
  local function body()
    while true do
      while window[1] and window[1].done do    -- settle from the oldest
        local w = table.remove(window, 1)
        free[#free + 1] = w.slot
        local ok, serr = steps.settle(w.b, w.resp, w.second, w.sent_before)
        if not ok then first_err = first_err or serr end
      end
      if not window[1] then draining = false end
      while not ended and not draining and not first_err and #window < pace.width do
        local slot = table.remove(free)
        local b, ends = steps.next(slot, window[1] == nil)
        if b == nil then
          ended = true
          free[#free + 1] = slot
          break
        end
        local w = { b = b, slot = slot, req = steps.call(b) }
        window[#window + 1] = w
        if w.req then send(w) else w.done = true end
        if ends then draining = true end
      end
      if not window[1] then
        if first_err then return nil, first_err end
        return true                             -- ended: nothing built, nothing out
      elseif not window[1].done then
        local i, r = f:next()
        local w = by_call[i]
        by_call[i] = nil
        if pace:resend(w, r.err, self.summary) then
          f:set_width(pace.width)       -- the calls resent wait for it too, not only new ones
          send(w)
        else
          if not r.err then pace:through() f:set_width(pace.width) end
          w.done, w.resp, w.second, w.sent_before = true, r.response, r.err or r.tries, r.sent_before
        end
      end
    end
  end
  local ok, a, b = pcall(body)
  if ok then return a, b end
  f:close()
  local stop = flow.stop_error(a)
  if stop then
    for _, w in ipairs(window) do steps.settle(w.b, nil, stop) end
  end
  error(a, 0)
end

-- The error a raised stop marker or interrupt (SIGINT) stands for (fields for run:fail),
-- or nil for any other raised value: for a step that catches errors itself.
function flow.stop_error(e)
  if getmetatable(e) == Stop then
    if errors.is(e.cause) then return e.cause end
    return { kind = e.kind, message = e.message }
  end
  if errors.is_interrupt(e) then return { kind = "interrupted", message = "stopped by SIGINT (Ctrl-C)" } end
  return nil
end

-- Runs body(); the stop marker or an interrupt anywhere in it ends the run cleanly:
-- settle(run) puts what the flow had in hand in its buckets, then nil, err. The run lock
-- is released however it ends; other errors pass through.
function Run:guard(body, settle)
  local ok, a, b = pcall(body)
  local err = not ok and flow.stop_error(a)
  if not err then
    self:release()
    if ok then return a, b end
    error(a, 0)
  end
  if settle then settle(self) end
  return self:fail(err)
end

return flow
