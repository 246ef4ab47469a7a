-- wdt.lock: run locks, so that two runs of one flow (a sync, a push, a scan for one seller
-- and shop) never overlap. One interface over three places a lock can live:
--
--   local h, err = lock.acquire{ name = "wdt.sync.logistics/SID/SHOP",
--                                wait = 0,           -- seconds to wait for a held lock
--                                backend = "file",   -- "file" | "shm" | "redis"
--                                dir = ..., dict = "wdt_locks", redis = "redis://127.0.0.1:6379",
--                                ttl = 60 }          -- shm/redis: expiry without renewal
--   -> handle | nil, err   (err.kind "locked": err.holder names the holder; others: "store",
--                           "redis", "shm" when the lock could not be looked at)
--   h:touch()   -> true | nil, err   renews a shm/redis lock when a third of its ttl passed;
--                                    err.kind "locked" when it expired and was taken over
--   h:release()                      idempotent
--
-- file:  flock(2) on DIR/NAME.lock (wdt.store.lock); the kernel frees a dead holder's lock
--        at once. DIR: `dir`, else $WDT_LOCK_DIR, else /tmp/wdt-locks-UID (whatever
--        $XDG_RUNTIME_DIR says: cron has none); made 0700 and refused when another user could enter it.
-- shm:   an nginx lua_shared_dict (`dict`, default "wdt_locks"), so the lock spans workers;
--        it expires after `ttl` unless renewed (a timer renews it every ttl/3 while the
--        holder lives), so the lock of a worker that died is taken over after ttl.
-- redis: SET NX PX on a Redis server several hosts share, renewed the same way (by touch,
--        and by a timer inside nginx); released only by its holder (compare and delete).
-- See doc/reliability.md ("Run locks").
local core = require "wdt.core"
local errors = require "wdt.errors"
local clock = require "wdt.clock"
local check = require "wdt.check"

local lock = {}

lock.DEFAULT_TTL = 60
lock.DEFAULT_DICT = "wdt_locks"
lock.POLL = 0.2            -- seconds between two looks at a held lock while waiting

local FN = "wdt.lock.acquire"
local option_specs = {
  name = { "string" }, wait = { "number", 0, min = 0, max = 7 * 86400 }, backend = { "string" },
  dir = { "string" }, dict = { "string", lock.DEFAULT_DICT }, redis = { "string" },
  ttl = { "number", lock.DEFAULT_TTL, min = 0.1, max = 86400 },
}

local function locked_error(name, holder, waited)
  local msg = ("'%s' is held by %s"):format(name, holder or "another run")
  if waited and waited > 0 then msg = msg .. (" (waited %gs)"):format(waited) end
  return errors.new { kind = "locked", message = msg, holder = holder, name = name }
end

local function hostname()
  local f = io.open("/proc/sys/kernel/hostname", "r")
  local h = f and f:read("*l")
  if f then f:close() end
  return h or "?"
end

-- What a shm or Redis lock holds: who holds it (for messages) and a random part, so that
-- only the holder renews or deletes it.
local function new_token()
  return ("process %s on %s #%d%06d"):format(clock.pid() or "?", hostname(),
    math.floor(core.unix_time() * 1000) % 1000000, math.random(0, 999999))
end

local function holder_of(token)
  return type(token) == "string" and token:match("^(.-) #%d+$") or token
end

---------------------------------------------------------------------------- file

-- The folder of file locks (see the header), made private.
function lock.default_dir(env)
  env = env or os.getenv
  local d = env("WDT_LOCK_DIR")
  if d and d ~= "" then return d end
  -- not $XDG_RUNTIME_DIR: a login shell has it and cron has not, and two runs of one flow
  -- must find one lock whatever started them
  return "/tmp/wdt-locks-" .. core.euid()
end

-- Two 32-bit string hashes (exact in doubles on every Lua), as 16 hex digits.
local function hash_hex(s)
  local a, b = 2166136261, 5381
  for i = 1, #s do
    local c = s:byte(i)
    a = (a * 31 + c) % 4294967296
    b = (b * 33 + c) % 4294967291
  end
  return ("%08x%08x"):format(a, b)
end

-- A lock name as a file name: bytes other than letters, digits, '.', '_' and '-' become
-- %XX, so different names never share a file. A name too long for one file name (a scan's
-- checkpoint path) keeps its start and ends in a hash of the whole.
local MAX_FILE_NAME = 200
function lock.file_name(name)
  local f = name:gsub("[^%w%._%-]", function(c) return ("%%%02X"):format(c:byte()) end)
  if #f > MAX_FILE_NAME then f = f:sub(1, MAX_FILE_NAME - 17) .. "~" .. hash_hex(name) end
  return f .. ".lock"
end

local FileLock = {}
FileLock.__index = FileLock
function FileLock:touch() return true end
function FileLock:release() self.flock:release() end

local function try_file(o)
  local dir = o.dir or lock.default_dir()
  local ok, derr = core.private_dir(dir)
  if not ok then return nil, errors.new { kind = "store", message = "lock folder: " .. derr } end
  local path = dir .. "/" .. lock.file_name(o.name)
  local fl, err = require("wdt.store").lock(path)
  if fl then return setmetatable({ flock = fl, path = path, name = o.name }, FileLock) end
  if err.kind == "locked" then
    return false, err.holder and ("process " .. err.holder .. " (lock file " .. path .. ")") or path
  end
  return nil, err
end

---------------------------------------------------------------------------- shm / redis

-- The shm and Redis locks share this: a token, an expiry, renewal when due.
local Expiring = {}
Expiring.__index = Expiring

function Expiring:touch(force)
  if self.lost then
    return nil, errors.new { kind = "locked", name = self.name,
      message = ("the run lock '%s' could not be kept (%s); stopping"):format(self.name, self.lost) }
  end
  if self.released then return true end
  local now = core.monotonic()
  if not force and now - self.renewed < self.ttl / 3 then return true end
  local ok, err = self.ops.renew(self)
  if ok == nil then return nil, err end
  if not ok then
    self.released = true
    -- gone (not another's): a Redis restarted without persistence, or flushed, forgot it;
    -- another run may have taken it since, so this one stops all the same
    local how = err == "gone" and "is gone from Redis (restarted without persistence, or flushed?)"
      or "expired and was taken over"
    return nil, errors.new { kind = "locked", name = self.name,
      message = ("the run lock '%s' %s; stopping"):format(self.name, how) }
  end
  self.renewed = now
  return true
end

function Expiring:release()
  if self.released then return end
  self.released = true
  self.ops.release(self)
end

-- Inside nginx one timer per worker renews every shm/Redis lock the worker holds, so that a
-- dead worker's locks expire and a live one's do not. One for all: a timer per lock stayed
-- pending for ttl/3 after its release, and a few thousand short locks filled
-- lua_max_pending_timers (a renewal that could then not be scheduled let the lock expire
-- under its living holder). The timer runs while the worker holds a lock, waking at least
-- every RENEW_SLEEP seconds; a handle nobody refers to any more (dropped unreleased) is
-- not renewed (weak keys).
lock.RENEW_SLEEP = 1
local held = setmetatable({}, { __mode = "k" })   -- handle -> true
local renewer_running = false

local function renew_due(now)
  local wake, list = now + lock.RENEW_SLEEP, {}
  for h in pairs(held) do list[#list + 1] = h end   -- a Redis renewal yields: held may change
  for _, h in ipairs(list) do
    if h.released then
      held[h] = nil
    else
      local due = h.renewed + h.ttl / 3
      if due <= now then
        local ok, err = h:touch(true)
        if ok == nil and not h.released then   -- Redis out of reach: again at the next wake
          ngx.log(ngx.WARN, "wdt: renewing the run lock '", h.name, "': ", tostring(err))
        end
        due = h.renewed + h.ttl / 3
      end
      if not h.released and due < wake then wake = due end
    end
  end
  return wake
end

local function renewer(premature)
  if not premature then
    while true do
      local now = core.monotonic()
      local wake = renew_due(now)
      if next(held) == nil then break end
      ngx.sleep(math.max(wake - now, 0.01))
    end
  end
  renewer_running = false
  for h in pairs(held) do h:_lose("nginx is stopping this worker") end
end

-- Keeps `h` renewed inside nginx. -> true | nil, why (no timer to renew it: the lock is lost)
local function keep_renewed(h)
  local n = clock.ngx()
  if not (n and n.timer and n.timer.at) then return true end
  held[h] = true
  if renewer_running then return true end
  local okc, ok, err = pcall(n.timer.at, 0, renewer)
  if not (okc and ok) then
    held[h] = nil
    return nil, okc and err or ok
  end
  renewer_running = true
  return true
end

-- A lock that can no longer be renewed: it expires after its ttl, and its holder's next
-- touch stops it.
function Expiring:_lose(why)
  if not self.released then self.lost = why end
end

local shm_ops = {}
function shm_ops.try(o)
  local n = clock.ngx()
  local dict = n and n.shared and n.shared[o.dict]
  if not dict then
    return nil, errors.new { kind = "shm",
      message = "no lua_shared_dict '" .. o.dict .. "' (declare it in nginx.conf)" }
  end
  local token = new_token()
  -- safe_add, safe_set: a full dict refuses rather than evict another run's lock
  local ok, err = dict:safe_add(o.name, token, o.ttl)
  if ok then return { dict = dict, token = token } end
  if err ~= "exists" then return nil, errors.new { kind = "shm", message = "lock: " .. tostring(err) } end
  return false, holder_of(dict:get(o.name))
end
function shm_ops.renew(h)
  if h.dict:get(h.name) ~= h.token then return false end
  local ok, err = h.dict:safe_set(h.name, h.token, h.ttl)
  if not ok then return nil, errors.new { kind = "shm", message = "renewing the lock: " .. tostring(err) } end
  return true
end
function shm_ops.release(h)
  if h.dict:get(h.name) == h.token then h.dict:delete(h.name) end
end

local RENEW = "local v = redis.call('get', KEYS[1]) if v == ARGV[1] then "
  .. "return redis.call('pexpire', KEYS[1], ARGV[2]) elseif not v then return -1 end return 0"
local DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

local redis_ops = {}
function redis_ops.try(o)
  local redis = require "wdt.redis"
  local token = new_token()
  local r, err = redis.call(o.redis, 2, "SET", o.name, token, "NX", "PX", math.floor(o.ttl * 1000))
  if r == nil then return nil, err end
  if r == "OK" then return { token = token, redis = o.redis } end
  local holder = redis.call(o.redis, 2, "GET", o.name)
  return false, holder_of(holder) or "another run"
end
function redis_ops.renew(h)
  local r, err = require("wdt.redis").call(h.redis, 2, "EVAL", RENEW, 1, h.name, h.token, math.floor(h.ttl * 1000))
  if r == nil then return nil, err end
  if r == -1 then return false, "gone" end
  return r == 1
end
function redis_ops.release(h)
  require("wdt.redis").call(h.redis, 2, "EVAL", DELETE, 1, h.name, h.token)
end

local function try_expiring(ops)
  return function(o)
    local h, holder = ops.try(o)
    if not h then return h, holder end
    h.name, h.ttl, h.ops, h.renewed = o.name, o.ttl, ops, core.monotonic()
    setmetatable(h, Expiring)
    local ok, why = keep_renewed(h)
    if not ok then
      ops.release(h)
      return nil, errors.new { kind = "locked", name = o.name, message =
        ("'%s' was free but cannot be kept: no timer to renew it (%s)"):format(o.name, tostring(why)) }
    end
    return h
  end
end

local tries = { file = try_file, shm = try_expiring(shm_ops), redis = try_expiring(redis_ops) }

---------------------------------------------------------------------------- acquire

-- The backend when none is named: Redis when a URL is given, the shared dict inside nginx,
-- a file elsewhere.
function lock.default_backend(o)
  if o.redis then return "redis" end
  if clock.in_cosocket_context() then return "shm" end
  return "file"
end

-- acquire's options, checked and defaulted; raises (wdt.check) naming the bad one. `fname`
-- and `what` name them in a message when they are a flow's `lock` option (then the name is
-- the flow's to set).
function lock.check_options(opts, fname, what)
  local o = check.options(fname or FN, opts, option_specs, what)
  local function bad(name, msg) check.fail(fname or FN, what and (what .. "." .. name) or name, msg) end
  if not what and (o.name == nil or o.name == "") then bad("name", "a non-empty string is required") end
  o.backend = o.backend or lock.default_backend(o)
  if not tries[o.backend] then bad("backend", "'file', 'shm' or 'redis' expected") end
  require("wdt.redis").check_option(fname or FN, what and (what .. ".redis") or "redis", o)
  return o
end

-- Takes the lock with options already checked: a handle | nil, err.
local function acquire(o)
  local try = tries[o.backend]
  local started = core.monotonic()
  while true do
    local h, holder = try(o)
    if h then return h end
    if h == nil then return nil, holder end          -- not a held lock: an error
    local waited = core.monotonic() - started
    if waited >= o.wait then return nil, locked_error(o.name, holder, o.wait > 0 and waited) end
    clock.sleep(math.min(lock.POLL * (0.5 + math.random()), o.wait - waited))
  end
end

function lock.acquire(opts)
  local ok, o = check.run(lock.check_options, opts)
  if not ok then error(o, 2) end
  return acquire(o)
end

-- The name of a flow's run lock: "wdt.<flow>/<sid>[/<shop>]".
function lock.run_name(flow, sid, shop)
  local name = "wdt." .. flow .. "/" .. sid
  if shop then name = name .. "/" .. shop end
  return name
end

-- A flow's run lock: `o` acquire's options as lock.check_options returned them for the
-- flow's `lock` option (a table of the run's own: the name is set here). handle | nil, err.
function lock.take_run(o, flow, sid, shop)
  o.name = lock.run_name(flow, sid, shop)
  return acquire(o)
end

return lock
