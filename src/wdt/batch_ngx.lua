-- wdt.batch's flight inside nginx (batch.flight picks it where the client's transport is
-- the cosocket one): the same interface as the libcurl flight (add, next, ready, poll,
-- set_width, close, leave), each request in a light thread.
local unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)

local M = {}

-- wdt.batch's outcome (an answer -> a result) and bad_request (raise for requests[i]);
-- required when first used, wdt.batch being the module that loads this one
local function batch() return require "wdt.batch" end

-- Inside nginx (cosockets) each request runs client:_request in a light thread
-- (ngx.thread.spawn), at most `concurrency` at once; without light threads, one after the
-- other as they are asked for. An ended thread stays a "zombie" until waited for, and is
-- waited for alone, when it has ended: ngx.thread.wait of several threads leaves the others
-- marked as waited for, and one of them ending later wakes whatever its parent waits on
-- then (a sleep, the caller's own socket) and loses its result (lua-nginx-module 0.10.23).
-- A semaphore posted by each thread as it ends is what next() sleeps on.
local Ngx = {}
Ngx.__index = Ngx

function M.new(client, concurrency, nginx)
  local ok, semaphore = pcall(require, "ngx.semaphore")
  return setmetatable({ client = client, width = concurrency, nginx = nginx, n = 0, queued = {},
                        threads = {}, index = {}, ended = ok and semaphore.new() or nil }, Ngx)
end

function M.is(f) return getmetatable(f) == Ngx end

local function run_one(client, i, r)
  local resp, err, sent_before = client:_request(r.method, r.args, r.pager, r.opts)
  return i, batch()._outcome(resp, err, r.pager, r.method, sent_before)
end

-- run_one in a light thread: the semaphore posted however it ends (an error included)
local function run_posting(ended, client, i, r)
  local res = { pcall(run_one, client, i, r) }
  ended:post(1)
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2)
end

function Ngx:set_width(n) self.width = n end

function Ngx:pump()
  local spawn = self.nginx.thread and self.nginx.thread.spawn
  while spawn and #self.threads < self.width and self.queued[1] do
    local q = table.remove(self.queued, 1)
    local t = self.ended and spawn(run_posting, self.ended, self.client, q[1], q[2])
              or spawn(run_one, self.client, q[1], q[2])
    self.threads[#self.threads + 1], self.index[t] = t, q[1]
  end
end

function Ngx:add(req)
  local i = self.n + 1
  self.n = i
  self.queued[#self.queued + 1] = { i, req }
  self:pump()
  return i
end

-- The k-th thread's answer, waited for alone (it has ended, or without the semaphore, the
-- oldest), the next queued request started.
function Ngx:take(k)
  local t = table.remove(self.threads, k)
  local n = self.index[t]
  self.index[t] = nil
  local ok, i, result = self.nginx.thread.wait(t)
  if not ok then batch()._bad_request(n, i) end
  self:pump()
  return i, result
end

-- An ended thread's answer, without waiting: the reader polling between rows sends its
-- next calls at once.
function Ngx:ready()
  for k, t in ipairs(self.threads) do
    if coroutine.status(t) == "zombie" then return self:take(k) end
  end
  return nil
end

function Ngx:next()
  self:pump()
  if not self.threads[1] then
    local q = table.remove(self.queued, 1)      -- no light threads here: one at a time
    if not q then return nil end
    return run_one(self.client, q[1], q[2])
  end
  if not self.ended then return self:take(1) end
  while true do
    local i, result = self:ready()
    if i then return i, result end
    -- a post counted for a thread taken by ready() wakes this once for nothing; the
    -- timeout only guards against a post not made
    self.ended:wait(1)
  end
end

function Ngx:poll() self:pump() end

-- Its light threads killed, each in the middle of its try or its wait; a try killed
-- gives back the rate budget's concurrency slot it held (as Curl:finish's requests do).
function Ngx:close()
  local rate = require "wdt.rate"
  for _, t in ipairs(self.threads) do
    if self.nginx.thread.kill(t) then rate.give_back(t) end   -- (not when it had ended)
  end
  self.threads, self.queued = {}, {}
end

-- Done with (a scan left by `break`): its light threads killed as by close. Unlike the
-- pool's transfers (Curl:leave) they hold nothing another flight needs; left to end, they
-- held the request (or timer) open until answered, retries included.
Ngx.leave = Ngx.close

return M
