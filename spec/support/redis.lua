-- A real redis-server for specs (Lua 5.4, luasocket; not wdt): on loopback, on a free port,
-- in a temporary folder of its own, nothing saved to disk; stopped by r:stop().
--
--   local redis = require "spec.support.redis"
--   local r = redis.start()      -- r.url ("redis://127.0.0.1:PORT"), r.port, r.pid, r.dir
--   r:command("GET", "k")        -- one command over a fresh connection (the raw reply line)
--   r:stop()
local socket = require "socket"
local sh = require "spec.support.sh"
local emulator = require "spec.support.emulator"
local compat = require "spec.support.compat"

local M = {}
M.BIN = os.getenv("WDT_REDIS_SERVER") or "redis-server"

local Redis = {}
Redis.__index = Redis

local function connect(port)
  local c = socket.tcp()
  c:settimeout(2)
  if not c:connect("127.0.0.1", port) then c:close() return nil end
  return c
end

function Redis:command(...)
  local c = assert(connect(self.port), "redis-server is not answering")
  local parts = { "*" .. select("#", ...) .. "\r\n" }
  for _, a in ipairs({ ... }) do
    a = tostring(a)
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  c:send(table.concat(parts))
  local line = c:receive("*l")
  if line and line:match("^%$%d+") then line = c:receive("*l") end
  c:close()
  return line
end

function M.start()
  local port = emulator.free_port()
  local dir = sh.tmpdir()
  local cmd = ("%s --port %d --bind 127.0.0.1 --dir %s --save '' --appendonly no --daemonize yes"
    .. " --pidfile %s --logfile %s"):format(sh.quote(M.BIN), port, sh.quote(dir),
    sh.quote(dir .. "/redis.pid"), sh.quote(dir .. "/redis.log"))
  assert(compat.execute(cmd), "cannot start redis-server (apt-get install redis-server)")
  local r = setmetatable({ port = port, dir = dir, url = "redis://127.0.0.1:" .. port }, Redis)
  for _ = 1, 200 do
    local c = connect(port)
    if c then
      c:send("PING\r\n")
      local pong = c:receive("*l")
      c:close()
      if pong == "+PONG" then break end
    end
    socket.sleep(0.025)
  end
  r.pid = tonumber(sh.read_file(dir .. "/redis.pid"):match("%d+"))
  assert(r.pid, "redis-server did not start: " .. sh.read_file(dir .. "/redis.log"))
  return r
end

function Redis:stop()
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    sh.wait_gone(self.pid, 5, 0.025)
    self.pid = nil
  end
  os.execute("rm -rf " .. sh.quote(self.dir))
end

return M
