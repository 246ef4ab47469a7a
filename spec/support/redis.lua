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

-- One redis-server on `port` in `dir`: its pid once its own log says it listens, or nil
-- when it exited (a port another server took first: a PONG on the port may be that one's).
local function launch(port, dir)
  local log = dir .. "/redis.log"
  local cmd = ("%s --port %d --bind 127.0.0.1 --dir %s --save '' --appendonly no --daemonize yes"
    .. " --pidfile %s --logfile %s"):format(sh.quote(M.BIN), port, sh.quote(dir),
    sh.quote(dir .. "/redis.pid"), sh.quote(log))
  assert(compat.execute(cmd), "cannot start redis-server (apt-get install redis-server)")
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local text = sh.read_file(log)
    local pid = tonumber(sh.read_file(dir .. "/redis.pid"):match("%d+") or "")
    if text:find("Ready to accept connections", 1, true) and pid then return pid end
    if text:find("Could not create server TCP listening socket", 1, true) then
      if pid then sh.wait_gone(pid, 5, 0.025) end
      return nil
    end
    socket.sleep(0.025)
  end
  error("redis-server did not start within 10 s: " .. sh.read_file(log))
end

function M.start()
  -- a free port is free when looked at: a spec running at the same time may take it first
  for _ = 1, 5 do
    local port, dir = emulator.free_port(), sh.tmpdir()
    local pid = launch(port, dir)
    if pid then
      return setmetatable({ port = port, dir = dir, url = "redis://127.0.0.1:" .. port, pid = pid }, Redis)
    end
    os.execute("rm -rf " .. sh.quote(dir))
  end
  error("redis-server: five free ports in a row were taken before it could bind them")
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
