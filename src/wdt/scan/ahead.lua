-- Windows in flight (doc/scan.md "Calls in flight"): the scan's windows are read ahead of
-- the one being delivered, each by window.read in a coroutine of its own, whose page calls
-- share one flight of at most `concurrency` calls. A call waiting for a slot goes out in
-- window order (the earliest window's pages before a later window's page 0), so the
-- window delivered next is never held up by read-ahead. At most `concurrency` windows are
-- held (being read, read and not yet handed out, or being delivered): the memory of
-- read-ahead. Windows are handed out in order, each once read completely (or failed);
-- what is done with them (delivery, the checkpoint) is the caller's, in that order.
--
--   local r = ahead.new(s, from, stop, confirm)
--   local w = r:next_window()  -- { a, b, upto, found, ok, err } | nil at the end | nil, err
--   r:poll()                   -- between rows: reading goes on without waiting
--   r:close([abort])           -- what is still out is left to end (or aborted)
--
-- The run's end may be provisional (planned on the local clock): confirm(stop, must) is
-- called at each answer until one carried the server's Date (and with `must` before the
-- first window is handed out) and returns the confirmed end, false (no Date yet), or
-- nil, err (the scan stops, nothing delivered). An end earlier than planned drops the
-- windows past it and cuts the one across it (w.upto: the rows of [a, upto) of a window
-- read completely are that part's rows, read completely); a later one plans more windows.
local window = require "wdt.scan.window"
local batch = require "wdt.batch"
local paging = require "wdt.paging"
local flow = require "wdt.flow"

local ahead = {}

local Reader = {}
Reader.__index = Reader

function ahead.new(s, from, stop, confirm)
  local most = s.concurrency
  return setmetatable({ s = s, next_a = from, stop = stop, confirm = confirm, most = most, pace = flow.pacer(most),
                        wins = {}, queue = {}, by_id = {}, out = 0, seq = 0 }, Reader)
end

-- A call of window w into the queue: after every call of w and of the windows before it.
local function enqueue(r, h)
  local q, k = r.queue, #r.queue
  while k > 0 and q[k].w.seq > h.w.seq do k = k - 1 end
  table.insert(q, k + 1, h)
end

local function unqueue(r, h)
  for k, x in ipairs(r.queue) do
    if x == h then table.remove(r.queue, k) return end
  end
end

-- The window's wire (window.read's page calls): a handle at once, its answer awaited by
-- yielding to the reader, which resumes the window with it.
local function wire_of(r, w)
  local s = r.s
  return {
    send = function(pager, params)
      local h = { w = w, req = { method = s.method, args = { n = 1, params },
                                 pager = assert(paging.check(pager)) } }
      enqueue(r, h)
      return h
    end,
    await = function(h)
      if not h.result then
        w.waiting = h
        coroutine.yield()
        w.waiting = nil
      end
      return h.result.data, h.result.err
    end,
    drop = function(h)
      h.dropped = true
      unqueue(r, h)
    end,
  }
end

local function resume(w, ...)
  local ok, done, err = coroutine.resume(w.co, ...)
  if not ok then error(done, 0) end            -- a bug in window.read: raised as it is
  if coroutine.status(w.co) == "dead" then
    w.co, w.done, w.ok, w.err = nil, true, done, err
  end
end

-- Plans and starts windows while fewer than `concurrency` are held (the one being
-- delivered counts: at concurrency 1 no window is read ahead).
function Reader:plan()
  local s = self.s
  while #self.wins + (self.delivering and 1 or 0) < self.most and self.next_a < self.stop do
    local a = self.next_a
    local b = math.min(a + s.width, self.stop)
    self.seq = self.seq + 1
    local w = { a = a, b = b, found = {}, seq = self.seq }
    local wire = wire_of(self, w)
    w.co = coroutine.create(function() return window.read(s, a, b, w.found, wire) end)
    self.wins[#self.wins + 1] = w
    self.next_a = b
    resume(w)                                   -- up to its first await
  end
end

-- Starts queued calls while fewer than `width` are out.
function Reader:start()
  while self.out < self.pace.width and self.queue[1] do
    local h = table.remove(self.queue, 1)
    self.f = self.f or batch.flight(self.s.client, self.most)
    self.by_id[self.f:add(h.req)] = h
    self.out = self.out + 1
  end
end

-- The end confirmed: the windows past it dropped, the one across it cut, more planned.
function Reader:restop(stop)
  self.confirmed = true
  local keep = {}
  for _, w in ipairs(self.wins) do
    if w.a < stop then
      keep[#keep + 1] = w
      if w.b > stop then w.upto = stop end
    else
      w.cancelled = true
      for k = #self.queue, 1, -1 do
        if self.queue[k].w == w then table.remove(self.queue, k) end
      end
    end
  end
  self.wins = keep
  self.next_a = math.min(self.next_a, stop)
  self.stop = stop
end

-- true once confirmed (`must`: with the local clock when no answer said the server's), false
-- when no answer said it yet, nil, err when refused
local function confirm(self, must)
  local stop, err = self.confirm(self.stop, must)
  if stop == nil then return nil, err end
  if stop == false then return false end
  self:restop(stop)
  return true
end

-- The answer res of the flight's call i in: a call refused for the seller's limit of
-- calls at once is queued again with one call fewer out, the window growing back slowly
-- (flow.pacer, as run:batches); the first answer confirms the end; the window waiting for
-- it goes on. true | nil, err (the end refused).
function Reader:take(i, res)
  local h = self.by_id[i]
  self.by_id[i], self.out = nil, self.out - 1
  if not h.dropped and not h.w.cancelled and self.pace:resend(h, res.err, self.s.stats) then
    enqueue(self, h)
    return true
  end
  if not res.err then self.pace:through() end
  if not self.confirmed then
    local ok, err = confirm(self, false)
    if ok == nil then return nil, err end
  end
  if h.dropped or h.w.cancelled then return true end
  h.result = res
  if h.w.waiting == h then resume(h.w, res) end
  return true
end

-- The next window, read completely (w.ok) or failed (w.ok nil, w.err), in order; nil at
-- the end; nil, err when the end was refused.
function Reader:next_window()
  self.delivering = nil                         -- the caller is done with the one before
  while true do
    self:plan()
    self:start()
    local w = self.wins[1]
    if w and w.done and not self.confirmed then
      local ok, err = confirm(self, true)
      if not ok then return nil, err end
      w = self.wins[1]
    end
    if not w then return nil end
    if w.done then
      table.remove(self.wins, 1)
      self.delivering = true
      return w
    end
    assert(self.out > 0, "wdt.scan.ahead: a window waits with nothing out")
    local ok, err = self:take(self.f:next())
    if not ok then return nil, err end
  end
end

-- A step without waiting, between rows delivered: the answers in taken, the windows they
-- move on, more planned and their calls started, so that reading goes on while the caller
-- works on the rows. true | nil, err (the end refused).
function Reader:poll()
  if not self.f then return true end
  self.f:poll()
  while true do
    local i, res = self.f:ready()
    if not i then break end
    local ok, err = self:take(i, res)
    if not ok then return nil, err end
  end
  self:plan()
  self:start()
  self.f:poll()
  return true
end

-- Done with: the calls still out (pages dropped, windows read ahead of a scan left by
-- `break`) are left to end on the client's pool, their answers thrown away when they come
-- (wdt.batch's leave: aborted at once when no other flight has transfers there; inside
-- nginx its light threads killed); `abort`
-- (a stop or an interrupt raised) aborts the pool's transfers, as run:batches does.
function Reader:close(abort)
  if self.f then
    if abort then self.f:close() else self.f:leave() end
  end
  self.f, self.wins, self.queue, self.by_id, self.out = nil, {}, {}, {}, 0
end

return ahead
