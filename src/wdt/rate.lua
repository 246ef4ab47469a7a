-- wdt.rate: pacing under the vendor's rate limits. A client with the option
--
--   rate = { per_minute = N,     -- at most N tries in any `window` seconds (optional)
--            concurrency = M,    -- at most M tries in flight at once (optional)
--            window = 60,        -- the limit's window in seconds (the vendor's: a minute)
--            wait = nil,         -- seconds one request may spend waiting for the budget
--                                -- and out rate-limit answers; default 300, 10 in nginx
--            backend = nil,      -- "local" | "shm" | "redis" (default: redis when a URL is
--                                -- given, shm in nginx when the dict exists, else local)
--            dict = "wdt_rate", redis = "redis://host:port" }
--
-- shares one budget with every client of the same seller (sid) and window: in the process (local),
-- across nginx workers (a lua_shared_dict), across hosts (Redis). Before each try it waits
-- for a slot; a rate-limit answer is waited out (the window plus up to 10% jitter) instead
-- of being retried at once, and does not count as a retry. When the next wait would go past
-- `wait`, the request fails with kind "rate_limited" (retryable: nothing was sent; err.limit
-- names the full limit, err.retry_after the seconds until a slot frees). The shm backend is
-- wdt.rate_shm (a full dict: kind "shm_full"). See doc/reliability.md ("Rate pacing").
--
-- client.lua calls, around each try:   pace = rate.start(client, executor, timeout)   (nil without `rate`)
--   pace:before() -> true | nil, err    pace:after()    pace:limited(err) -> true | nil, err
local core = require "wdt.core"
local errors = require "wdt.errors"
local check = require "wdt.check"
local clock = require "wdt.clock"

local rate = {}

local DEFAULT_WAIT, DEFAULT_WAIT_NGX = 300, 10
-- A slot is held for the window plus this share of it: calls reach the server a little
-- later than they took their slot, and not all equally late, so a budget used to the
-- last call at the window's edge could still be one over on the server's count.
rate.MARGIN = 0.05
local MIN_SLEEP = 0.01    -- seconds: the shortest wait for a slot (no busy loop at an edge)
local SLICE = 5           -- seconds: a long wait is slept in slices, telling on_wait each time
local IN_FLIGHT_TTL = 600 -- local backend: seconds after which a slot that was never given back is free
rate.CONCURRENCY_POLL = 0.05  -- seconds between two looks for a free concurrency slot
rate.now = core.unix_time

local specs = {
  per_minute = { "number", min = 1, max = 1000000, integer = true },
  concurrency = { "number", min = 1, max = 1000000, integer = true },
  window = { "number", 60, min = 0.001, max = 86400 },
  wait = { "number", min = 0, max = 7 * 86400 }, backend = { "string" },
  dict = { "string", "wdt_rate" }, redis = { "string" },
}

-- The client's `rate` option, checked; raises (wdt.check) naming the bad field.
function rate.check(fname, spec)
  local o = check.options(fname, spec, specs, "rate")
  if o.backend ~= nil and o.backend ~= "local" and o.backend ~= "shm" and o.backend ~= "redis" then
    check.fail(fname, "rate.backend", "'local', 'shm' or 'redis' expected")
  end
  require("wdt.redis").check_option(fname, "rate.redis", o)
  return o
end

---------------------------------------------------------------------------- backends
-- take(key, o, member, span, slot_ttl) -> 0, ticket (a slot was taken; give gets the ticket)
--   | seconds to wait before asking again, "per_minute" or "concurrency" (the limit that is
--   full) | nil, err
-- give(key, o, member, ticket)  gives a concurrency slot back

local function new_member()
  return ("%d-%d-%d"):format(math.floor(core.unix_time() * 1e6), math.random(0, 1e9), math.random(0, 1e9))
end

-- The sliding window and the in-flight set of one budget, on plain Lua tables.
local function take_in(state, o, now, member, span)
  local log, fly = state.log, state.fly
  while log[1] and log[1] <= now - span do table.remove(log, 1) end
  for m, expiry in pairs(fly) do if expiry <= now then fly[m] = nil end end
  if o.concurrency then
    local n = 0
    for _ in pairs(fly) do n = n + 1 end
    if n >= o.concurrency then return rate.CONCURRENCY_POLL, "concurrency" end
  end
  if o.per_minute and #log >= o.per_minute then return log[1] + span - now, "per_minute" end
  log[#log + 1] = now
  if o.concurrency then fly[member] = now + IN_FLIGHT_TTL end
  return 0, member
end

local budgets = {}        -- local backend: sid -> {log, fly}

local local_backend = {}
function local_backend.take(key, o, member, span)
  local st = budgets[key]
  if not st then st = { log = {}, fly = {} } budgets[key] = st end
  return take_in(st, o, core.monotonic(), member, span)
end
function local_backend.give(key, _, member)
  local st = budgets[key]
  if st then st.fly[member] = nil end
end

local shm_backend = require("wdt.rate_shm").backend(rate)

-- Redis: one script takes a slot atomically, on the server's clock (TIME), so hosts whose
-- clocks differ share one window.
local TAKE = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, limit, conc, member = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if conc > 0 and redis.call('ZCARD', KEYS[2]) >= conc then return -50 end
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(first[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], window)
if conc > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), member)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return 0
]]

local redis_backend = {}
-- A slot expires after its try's timeout twice over plus a margin: outside nginx a try of
-- client:call_many may wait for the round before it (a libcurl multi batch) to be sent.
function redis_backend.take(key, o, member, span, slot_ttl)
  local ttl = 2 * slot_ttl + require("wdt.rate_shm").SLOT_MARGIN
  local ms, err = require("wdt.redis").call(o.redis, 2, "EVAL", TAKE, 2, key, key .. "#inflight",
    math.floor(span * 1000), o.per_minute or 0, o.concurrency or 0, member, math.floor(ttl * 1000))
  if ms == nil then return nil, err end
  if ms < 0 then return -ms / 1000, "concurrency" end
  if ms > 0 then return ms / 1000, "per_minute" end
  return 0, member
end
function redis_backend.give(key, o, member)
  require("wdt.redis").call(o.redis, 2, "ZREM", key .. "#inflight", member)
end

local backends = { ["local"] = local_backend, shm = shm_backend, redis = redis_backend }

local function pick_backend(o)
  if o.backend then return o.backend end
  if o.redis then return "redis" end
  local n = clock.ngx()
  if n and n.shared and n.shared[o.dict] then return "shm" end
  return "local"
end

---------------------------------------------------------------------------- one request

local Pace = {}
Pace.__index = Pace

-- The pace whose concurrency slot each coroutine holds (a try in flight): a light thread
-- killed in its try (wdt.batch's flight closed inside nginx) never reaches pace:after, and
-- its slot would stay taken until its ttl; its flight gives it back (rate.give_back).
local holders = setmetatable({}, { __mode = "k" })

-- The pacing of one request of `client` (whose `rate` option was checked), or nil. It
-- waits with the request's executor (wdt.client): its sleep, and its wait hook.
-- `timeout`: the request's total timeout per try (the client's when nil), the life of a
-- concurrency slot in a shared budget.
function rate.start(client, exec, timeout)
  local o = client._opts.rate
  if not o then return nil end
  local budget = o.wait or (clock.in_cosocket_context() and DEFAULT_WAIT_NGX or DEFAULT_WAIT)
  return setmetatable({ client = client, exec = exec, o = o, span = o.window * (1 + rate.MARGIN),
                        backend = backends[pick_backend(o)], budget = budget,
                        slot_ttl = timeout or client._opts.timeout or 30,
                        key = ("wdt.rate/%s/%g"):format(client.sid, o.window),
                        deadline = core.monotonic() + budget }, Pace)
end

-- kind "rate_limited": nothing was sent, and trying again after `retry_after` seconds may
-- go through (`limit`: "per_minute", "concurrency" or "server", the limit that was hit).
local function out_of_budget(self, why, limit, retry_after)
  return nil, errors.new { kind = "rate_limited", retryable = true, limit = limit,
    retry_after = retry_after, message =
    ("%s; the rate budget allows %gs of waiting per request (rate.wait)"):format(why, self.budget) }
end

local function spent(self, limit)
  if limit == "concurrency" then
    return ("all %d concurrent calls of the budget are in flight (rate.concurrency)"):format(self.o.concurrency)
  end
  return ("the budget of %d calls per %gs is spent (rate.per_minute)"):format(self.o.per_minute, self.o.window)
end

-- Sleeps `seconds` in slices, telling the executor's wait hook (a flow's: its progress
-- line and its run lock's renewal) how long is left; the hook may answer the longest
-- slice it allows (a lock's renewal interval).
function Pace:sleep(seconds, reason)
  local hook = self.exec.wait
  while seconds > 0 do
    local most = hook and hook(seconds, reason)
    local slice = math.min(seconds, SLICE, most or SLICE)
    self.exec.sleep(slice)
    seconds = seconds - slice
  end
  if hook then hook(nil) end
end

-- Waits for a slot of the budget.
function Pace:before()
  if not (self.o.per_minute or self.o.concurrency) then return true end
  while true do
    self.member = new_member()
    local wait, got = self.backend.take(self.key, self.o, self.member, self.span, self.slot_ttl)
    if wait == nil then return nil, got end
    if wait <= 0 then
      self.holding, self.ticket = self.o.concurrency ~= nil, got
      local co = coroutine.running()
      if self.holding and co then holders[co] = self end
      return true
    end
    if core.monotonic() + wait > self.deadline then
      -- a concurrency slot frees when a call ends: a second is a fair guess
      return out_of_budget(self, spent(self, got), got, got == "concurrency" and 1 or wait)
    end
    self:sleep(math.max(wait, MIN_SLEEP), "pacing")
  end
end

-- The slot of `pace`, held by the coroutine `co`, given back.
local function give(pace, co)
  pace.holding = false
  if co and holders[co] == pace then holders[co] = nil end
  pace.backend.give(pace.key, pace.o, pace.member, pace.ticket)
end

function Pace:after()
  if self.holding then give(self, coroutine.running()) end
end

-- The concurrency slot the coroutine `co` holds (killed in its try), given back.
function rate.give_back(co)
  local pace = holders[co]
  if pace then give(pace, co) end
end

-- A rate-limit answer: wait the window out (plus up to 10% jitter, so that clients refused
-- together do not come back together), or fail with kind "rate_limited".
function Pace:limited(err)
  local wait = self.o.window * (1 + 0.1 * math.random())
  if core.monotonic() + wait > self.deadline then
    local _, e = out_of_budget(self, "rate limited: " .. tostring(err.message), "server", wait)
    e.method, e.status, e.cause, e.tries = err.method, err.status, err, err.tries
    return nil, e
  end
  self:sleep(wait, "rate limited")
  return true
end

return rate
