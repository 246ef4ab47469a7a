-- wdt.rate's "shm" backend: a seller's budget in an nginx lua_shared_dict, shared by the
-- workers. Counters and slots, each a key of its own, so that a take is a few constant-time
-- dict operations (never a decode and re-encode of the whole window):
--
--   KEY#<n>   calls that took a slot in bucket n = floor(time / (span / BUCKETS))
--   KEY#c<i>  concurrency slot i (1..concurrency): the holder's member, expiring after the
--             try's timeout plus a margin, so the slot of a killed worker frees itself
--
-- A take adds 1 to the current bucket and sums the buckets that may hold a call of the
-- last `span` seconds (plus the next one, for a worker whose clock read came a moment
-- later); over the limit, it takes its 1 back. Counting up to a bucket more than the window
-- never lets more than N calls through in any `span` seconds, at the cost of up to
-- 1/BUCKETS of the rate. The dict is only written by add, safe_add, incr without init and
-- delete: none of them evicts, so a full dict refuses a new key ("no memory") instead of
-- dropping other sellers' counters (dict:set and incr with init would, in silence). A full
-- dict is kind "shm_full", logged once per worker and dict, naming the size to declare.
local errors = require "wdt.errors"
local clock = require "wdt.clock"

local shm = {}

shm.BUCKETS = 20
shm.SLOT_MARGIN = 5      -- seconds a concurrency slot outlives its try's timeout
-- Bytes one budget takes in the dict at most (its live bucket keys and slots), twice that
-- for a budget key longer than LONG_KEY (a sid over 24 characters: the dict's next size
-- of node); measured in spec/openresty_rate_spec.lua, the rule of doc/openresty.md.
shm.BYTES_PER_BUDGET, shm.BYTES_PER_SLOT, shm.LONG_KEY = 4096, 256, 36

local logged = {}        -- dict name -> true once its "full" line is in this worker's log

-- The bytes to give a dict per seller whose budget has `concurrency` slots (or none) and
-- whose budget key ("wdt.rate/SID/WINDOW") is `key_len` long.
function shm.size_hint(concurrency, key_len)
  local n = shm.BYTES_PER_BUDGET + shm.BYTES_PER_SLOT * (concurrency or 0)
  return (key_len or 0) > shm.LONG_KEY and 2 * n or n
end

local function dict_of(o)
  local n = clock.ngx()
  return n and n.shared and n.shared[o.dict]
end

local function full(o, key, why)
  if why ~= "no memory" then
    return nil, errors.new { kind = "shm", message = "rate budget " .. key .. ": " .. tostring(why) }
  end
  local dict = dict_of(o)
  local kb = dict.capacity and math.floor(dict:capacity() / 1024)
  local need = math.ceil(shm.size_hint(o.concurrency, #key) / 1024)
  local msg = ("lua_shared_dict '%s'%s is full: the budget of %s cannot be kept; give it 32 KB plus "
    .. "%d KB per seller (and window) whose budget it holds, e.g. `lua_shared_dict %s %dk;`")
    :format(o.dict, kb and (" (" .. kb .. " KB)") or "", key, need, o.dict, math.max(2 * (kb or 0), 64))
  if not logged[o.dict] then
    logged[o.dict] = true
    local n = clock.ngx()
    n.log(n.ERR, "wdt: ", msg)
  end
  return nil, errors.new { kind = "shm_full", message = msg, retryable = false, dict = o.dict }
end

local function no_dict(o)
  return nil, errors.new { kind = "shm",
    message = "no lua_shared_dict '" .. o.dict .. "' (declare it in nginx.conf)" }
end

-- A new key without evicting anything: once more after dropping expired keys (the dict
-- frees only two per write otherwise). -> true | false (it exists) | nil, "no memory"
local function add(dict, k, v, ttl)
  local ok, err = dict:safe_add(k, v, ttl)
  if ok then return true end
  if err == "exists" then return false end
  if err == "no memory" then
    dict:flush_expired(200)
    ok, err = dict:safe_add(k, v, ttl)
    if ok then return true end
    if err == "exists" then return false end
  end
  return nil, err
end

-- Adds `n` to counter `k` (made with expiry `ttl` when missing). -> true | nil, err
local function bump(dict, k, n, ttl)
  for _ = 1, 3 do
    local v = dict:incr(k, n)
    if v then return true end
    local ok, err = add(dict, k, n, ttl)
    if ok then return true end
    if ok == nil then return nil, err end
  end                                -- added by another worker and expired at once: rare
  return nil, "the counter " .. k .. " keeps vanishing"
end

local function bucket_key(key, n)
  return ("%s#%.0f"):format(key, n)
end

-- The per-minute part: 0 | seconds to wait | nil, err
local function take_window(dict, key, o, now, span)
  local w = span / shm.BUCKETS
  local cur, first = math.floor(now / w), math.floor((now - span) / w)
  local ttl = span + 3 * w + 1
  local ok, err = bump(dict, bucket_key(key, cur), 1, ttl)
  if not ok then return nil, err end
  local total, oldest = 0, nil
  for n = first, cur + 1 do
    local c = dict:get(bucket_key(key, n)) or 0
    if c > 0 and not oldest then oldest = n end
    total = total + c
  end
  if total <= o.per_minute then return 0 end
  dict:incr(bucket_key(key, cur), -1)
  -- the oldest counted bucket leaves the sum at (oldest + 1) * w + span
  return (oldest + 1) * w + span - now
end

-- A free concurrency slot, tried from a random one on: its key | false (all busy) | nil, err
local function take_slot(dict, key, o, member, ttl)
  local m = o.concurrency
  local start = math.random(0, m - 1)
  for i = 0, m - 1 do
    local k = ("%s#c%d"):format(key, (start + i) % m + 1)
    local ok, err = add(dict, k, member, ttl)
    if ok then return k end
    if ok == nil then return nil, err end
  end
  return false
end

function shm.backend(rate)
  local backend = {}
  function backend.take(key, o, member, span, slot_ttl)
    local dict = dict_of(o)
    if not dict then return no_dict(o) end
    local slot
    if o.concurrency then
      local err
      slot, err = take_slot(dict, key, o, member, slot_ttl + shm.SLOT_MARGIN)
      if slot == nil then return full(o, key, err) end
      if not slot then return rate.CONCURRENCY_POLL, "concurrency" end
    end
    if o.per_minute then
      -- the real time, not ngx.now(): nginx's cached time may not move while a worker
      -- sleeps briefly, and a stale "now" would find the same slot busy again and again
      local wait, err = take_window(dict, key, o, rate.now(), span)
      if wait ~= 0 then
        if slot then dict:delete(slot) end
        if wait == nil then return full(o, key, err) end
        return wait, "per_minute"
      end
    end
    return 0, slot
  end
  function backend.give(_, o, member, slot)
    local dict = slot and dict_of(o)
    if dict and dict:get(slot) == member then dict:delete(slot) end
  end
  return backend
end

return shm
