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
  if self.on_progress then
    local ok, perr = pcall(self.on_progress, s)
    if not ok then
      if errors.is_interrupt(perr) then error(perr, 0) end
      self:stop("callback", "on_progress raised an error: " .. tostring(perr))
    end
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

-- A call refused by the seller's limits after the client's own waits (wdt.rate) is sent
-- again this many times in a row with nothing else getting through, then left refused.
flow.RESENDS = 5

-- run:calls(requests[, client]) -> results: client:call_many's requests and results (in
-- request order), up to run.concurrency calls in flight, through the run's client (or a
-- view of it: its wait hook, its rate budget; inside nginx, cosocket light threads). A
-- call the seller's limits refused (status 100 with the per-minute or concurrency message,
-- HTTP 429: nothing was applied) is sent again with the window narrowed to the calls that
-- got through, so a flow asking more than the seller allows is paced down and loses
-- nothing. The stop marker or an interrupt raised while waiting passes through.
function Run:calls(requests, client)
  client = client or self.client
  local results, todo, width, idle = {}, {}, self.concurrency, 0
  for i = 1, #requests do todo[i] = i end
  while todo[1] do
    local batch = {}
    for k, i in ipairs(todo) do batch[k] = requests[i] end
    local got = client:call_many(batch, { concurrency = width })
    local again, through = {}, 0
    for k, i in ipairs(todo) do
      local r = got[k]
      local refused = r.err and policy.is_rate_limit(r.err)
      if refused and idle < flow.RESENDS then
        again[#again + 1] = i
      else
        results[i] = r
        if not refused then through = through + 1 end
      end
    end
    if again[1] then
      self.summary.resent = (self.summary.resent or 0) + #again
      if through > 0 then
        idle, width = 0, math.max(1, math.min(width, through))
      else
        idle, width = idle + 1, 1
        client:executor().sleep(policy.delay(idle, 0.5, 8))
      end
      self:touch()
    end
    todo = again
  end
  return results
end

-- client:request's table -> client:call_many's request
local function many_request(req)
  local args = req.args or { n = 0 }
  local r = { req.method, n = (args.n or #args) + 1 }
  for i = 1, r.n - 1 do r[i + 1] = args[i] end
  for k, v in pairs(req) do
    if k ~= "method" and k ~= "args" then r[k] = v end
  end
  return r
end

-- Runs a flow's calls, one for each batch its steps build (a push's batches, the logistics
-- sync's reports), up to run.concurrency of them in flight (a window):
--   steps.next(k) -> batch, ends | nil at the end. k: the batch's place in the window (1
--        starts a new window, whose earlier batches all settled); `ends`: send the window
--        after this batch (what comes next must wait for its answers: a key it holds)
--   steps.call(batch) -> a request (client:request's table) | nil: nothing to send for it
--   steps.settle(batch, response | nil, tries | err) -> true | nil, err: the run stops
-- The window's calls go out together (run:calls), and every batch of it is settled, in the
-- order built, once all its answers are in; a batch whose settle stops the run stops it
-- after the others of its window settled. The stop marker or SIGINT raised while the calls
-- are out settles each batch of the window with that error (its items unreported), then
-- goes on up to run:guard.
function Run:batches(steps)
  local width = self.concurrency or 1
  while true do
    local window, requests, of, ended = {}, {}, {}, false
    for k = 1, width do
      local b, ends = steps.next(k)
      if b == nil then ended = true break end
      local req = steps.call(b)
      window[k] = b
      if req then requests[#requests + 1], of[#requests + 1] = req, k end
      if ends then break end
    end
    if not window[1] then return true end
    local answers, ok, res = {}, true, nil
    if #requests == 1 then
      local resp, err
      ok, resp, err = pcall(self.client.request, self.client, requests[1])
      if ok then answers[of[1]] = { resp, err } else res = resp end
    elseif requests[2] then
      local list = {}
      for i, req in ipairs(requests) do list[i] = many_request(req) end
      ok, res = pcall(self.calls, self, list)
      if ok then
        for i, r in ipairs(res) do
          answers[of[i]] = r.err and { nil, r.err } or { r.response, r.tries }
        end
      end
    end
    if not ok then
      local stop = flow.stop_error(res)
      if stop then
        for _, b in ipairs(window) do steps.settle(b, nil, stop) end
      end
      error(res, 0)
    end
    local first_err
    for k, b in ipairs(window) do
      local a = answers[k] or {}
      local done, serr = steps.settle(b, a[1], a[2])
      if not done then first_err = first_err or serr end
    end
    if first_err then return nil, first_err end
    if ended then return true end
  end
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
  if ok then
    self:release()
    return a, b
  end
  local err = flow.stop_error(a)
  if not err then
    self:release()
    error(a, 0)
  end
  if settle then settle(self) end
  return self:fail(err)
end

return flow
