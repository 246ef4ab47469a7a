-- wdt.redis: the few Redis commands that wdt's run locks and rate budgets need (SET NX PX,
-- EVAL, ...), spoken in RESP over a TCP socket: luasocket in plain Lua, a cosocket inside
-- nginx (the two have the same connect/settimeout/send/receive calls, so one client serves
-- both). See doc/reliability.md for why wdt carries this rather than a packaged client.
--
--   local conn, err = redis.connect("redis://[:password@]host[:port][/db]", timeout_s)
--   conn:command("SET", "k", "v", "NX", "PX", 30000) -> reply | nil, err (err.kind "redis")
--   conn:close()
-- Replies: status and bulk strings as strings, integers as numbers, arrays as tables,
-- a nil bulk as false. A Redis error reply is nil, err with err.redis_error = true.
local errors = require "wdt.errors"

local redis = {}

-- kind "redis"; `reply` marks an error answered by Redis (the connection is still good)
local function redis_error(message, reply)
  return errors.new { kind = "redis", message = message, redis_error = reply or nil }
end

-- The URL as it may be shown: what stands before the last '@' (the password, a user)
-- masked, whatever the scheme ("rediss://:pw@h" -> "rediss://***@h"); a URL without '@'
-- that is not plainly scheme://host[:port][/db] is masked whole after its scheme (a
-- password typed without its '@' would otherwise be shown).
local PLAIN = "^[%w%.%-]+:?%d*/?%d*$"   -- host[:port][/db]
function redis.masked(url)
  local scheme = url:match("^%a[%w+.-]*://") or ""
  local at = url:match("^.*()@")
  if at then
    local tail = url:sub(at)
    return scheme .. "***" .. (tail:sub(2):match(PLAIN) and tail or "@...")
  end
  if url:sub(#scheme + 1):match(PLAIN) then return url end
  return scheme .. "***"
end

local function percent_decoded(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "redis://[:password@]host[:port][/db]" -> {host, port, password, db} | nil, message
-- (the message shows the URL masked: it may carry the password). As RFC 3986 reads it:
-- the authority ends at the first '/', '?' or '#', its userinfo at the authority's last
-- '@', so a password may hold '@' (or write it %40); %XX in the password is decoded.
function redis.parse_url(url)
  if type(url) ~= "string" then return nil, "a redis:// URL string expected" end
  local rest = url:match("^redis://(.+)$")
  if not rest then
    local tls = url:match("^rediss://") and " (rediss://, Redis over TLS, is not supported)" or ""
    return nil, ("a redis:// URL expected%s, got '%s'"):format(tls, redis.masked(url))
  end
  local authority, path = rest:match("^([^/?#]*)(.*)$")
  local userinfo, hostport = authority:match("^(.*)@(.*)$")
  if not userinfo then hostport = authority end
  local db = path:match("^/?(%d*)$")
  local host, port = hostport:match("^([%w%.%-]+):(%d+)$")
  if not host then host, port = hostport:match("^[%w%.%-]+$"), "6379" end
  if not (db and host) then return nil, "bad redis URL '" .. redis.masked(url) .. "'" end
  local password = userinfo and percent_decoded(userinfo:match("^:?(.*)$")) or ""
  return { host = host, port = tonumber(port), password = password ~= "" and password or nil,
           db = tonumber(db) }
end

-- The `redis` option of a lock or a rate budget, checked at once rather than at its first
-- use (required with backend "redis"); raises (wdt.check) under `name`, the password masked.
function redis.check_option(fname, name, o)
  local check = require "wdt.check"
  if o.backend == "redis" and not o.redis then check.fail(fname, name, "a redis:// URL is required") end
  if o.redis == nil then return end
  local ok, why = redis.parse_url(o.redis)
  if not ok then check.fail(fname, name, why) end
end

local function new_socket()
  if require("wdt.clock").in_cosocket_context() then return ngx.socket.tcp(), true end
  return require("socket").tcp(), false
end

local Conn = {}
Conn.__index = Conn

local function encode(argv)
  local out = { "*" .. #argv .. "\r\n" }
  for i = 1, #argv do
    local a = argv[i]
    a = require("wdt.check").id_text(a)
    out[#out + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(out)
end

local function read_reply(sock)
  local line, err = sock:receive("*l")
  if not line then return nil, redis_error("reading the reply: " .. tostring(err)) end
  local t, rest = line:sub(1, 1), line:sub(2)
  if t == "+" then return rest end
  if t == "-" then return nil, redis_error(rest, true) end
  if t == ":" then return tonumber(rest) end
  if t == "$" then
    local n = tonumber(rest)
    if n < 0 then return false end
    local data, rerr = sock:receive(n + 2)
    if not data then return nil, redis_error("reading the reply: " .. tostring(rerr)) end
    return data:sub(1, n)
  end
  if t == "*" then
    local n = tonumber(rest)
    if n < 0 then return false end
    local list = {}
    for i = 1, n do
      local v, e = read_reply(sock)
      if v == nil then return nil, e end
      list[i] = v
    end
    return list
  end
  return nil, redis_error("not a RESP reply: " .. line:sub(1, 40))
end

function Conn:command(...)
  local sock = self.sock
  if not sock then return nil, redis_error("the connection is closed") end
  local ok, err = sock:send(encode({ ... }))
  if not ok then
    self:close()
    return nil, redis_error("sending to " .. self.where .. ": " .. tostring(err))
  end
  local reply, rerr = read_reply(sock)
  if reply == nil and not rerr.redis_error then self:close() end
  return reply, rerr
end

-- Inside nginx the connection goes back to the cosocket pool; elsewhere it is closed.
function Conn:close()
  local sock = self.sock
  self.sock = nil
  if not sock then return end
  if self.cosocket then sock:setkeepalive(10000, 16) else sock:close() end
end

function redis.connect(url, timeout)
  local spec, perr = redis.parse_url(url)
  if not spec then return nil, redis_error(perr) end
  local sock, cosocket = new_socket()
  sock:settimeout((timeout or 2) * (cosocket and 1000 or 1))
  local where = spec.host .. ":" .. spec.port
  local ok, err
  if cosocket then   -- the pool is per server and database
    ok, err = sock:connect(spec.host, spec.port, { pool = "wdt-redis:" .. where .. "/" .. (spec.db or 0) })
  else
    ok, err = sock:connect(spec.host, spec.port)
  end
  if not ok then return nil, redis_error("cannot connect to " .. where .. ": " .. tostring(err)) end
  local conn = setmetatable({ sock = sock, cosocket = cosocket, where = where }, Conn)
  -- a pooled cosocket was set up already (reused > 0); a new one is authenticated here
  local reused = cosocket and sock:getreusedtimes() or 0
  if reused == 0 then
    if spec.password then
      local r, e = conn:command("AUTH", spec.password)
      if not r then conn:close() return nil, e end
    end
    if spec.db then
      local r, e = conn:command("SELECT", spec.db)
      if not r then conn:close() return nil, e end
    end
  end
  return conn
end

-- One command on a connection of its own (connect, command, close): what the lock and the
-- rate budget use, so that no connection is shared between coroutines or kept by a
-- process that forks.
function redis.call(url, timeout, ...)
  local conn, err = redis.connect(url, timeout)
  if not conn then return nil, err end
  local reply, cerr = conn:command(...)
  conn:close()
  return reply, cerr
end

return redis
