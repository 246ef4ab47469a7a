-- wdt.flow: the spine the flows run on (sync_logistics, sync_stock, push_*, upload_goods,
-- scan); doc/architecture.md ("The flow runner") shows the road of an item in each. A flow
-- brings its steps (read the next items, build one call for a batch, settle its answer)
-- and its summary fields; the run owns the rest: the options with `lock` and `on_progress`
-- (checked at the public method), the run lock and its renewal from one place (run:touch,
-- called on progress and from the executor's wait hook, so also while a call waits for
-- the rate budget), one stop marker, one nil, err with err.summary, progress, and the
-- per-item outcome record. Several calls in flight belong here too: a window of N built
-- calls whose answers are settled in order, the steps unchanged.
local core = require "wdt.core"
local check = require "wdt.check"
local errors = require "wdt.errors"
local lock = require "wdt.lock"

local flow = {}

-- The option specs (wdt.check) every flow lists: `lock` (below), `on_progress`.
flow.LOCK, flow.ON_PROGRESS = { "boolean|table" }, { "function" }

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
--                      summary = {...}, on_progress = f }) -> run | nil, err (the lock held)
function flow.start(client, def)
  local s = def.summary
  s.started = core.monotonic()
  local run = setmetatable({ summary = s, on_progress = def.on_progress }, Run)
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

-- Runs a flow's calls, one for each batch its steps build (a push's batches, the logistics
-- sync's reports):
--   steps.next() -> batch | nil at the end
--   steps.call(batch) -> a request (client:request's table) | nil: nothing to send for it
--   steps.settle(batch, response | nil, tries | err, sent_before) -> true | nil, err: the
--     run stops (sent_before: an earlier try of the call may have been applied)
-- The stop marker or SIGINT raised while a call is out settles its batch with that error
-- (its items unreported), then goes on up to run:guard. The one place a flow's batch calls
-- go out: a window of N calls in flight goes here, their answers settled in order.
function Run:batches(steps)
  while true do
    local b = steps.next()
    if b == nil then return true end
    local req, resp, err, sent_before = steps.call(b), nil, nil, nil
    if req then
      local ok
      ok, resp, err, sent_before = pcall(self.client.request, self.client, req)
      if not ok then
        local stop = flow.stop_error(resp)
        if stop then steps.settle(b, nil, stop) end
        error(resp, 0)
      end
    end
    local ok, serr = steps.settle(b, resp, err, sent_before)
    if not ok then return nil, serr end
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
