-- What the specs that run wdt inside nginx need, and why one would be skipped.
--
--   nginx.missing()          -> nil | the reason to skip, for pending()
--   local srv = nginx.start(conf)   conf: an nginx.conf whose ROOT and PORT are replaced
--                                   by the checkout and a free port; waits for GET /ping
--   srv.port, srv.prefix, srv.master, srv:get(path, timeout) -> body, srv:log(),
--   srv:concurrent(paths) -> bodies (curl, all at once), srv:stop()
local socket = require "socket"
local sh = require "spec.support.sh"

local nginx = {}

nginx.BIN = os.getenv("WDT_NGINX") or "/usr/sbin/nginx"
nginx.CORE_LUAJIT = sh.repo_root() .. "/build-luajit/wdt/core.so"

-- nil when the LuaJIT build and nginx are there; else the reason to skip, for pending().
function nginx.missing()
  if not io.open(nginx.CORE_LUAJIT, "rb") then
    return "build-luajit/wdt/core.so is missing (run `make build-luajit`)"
  end
  if not io.open(nginx.BIN, "rb") then
    return nginx.BIN .. " is missing (apt-get install nginx-light libnginx-mod-http-lua)"
  end
  return nil
end

local Server = {}
Server.__index = Server

function Server:get(path, timeout)
  local emulator = require "spec.support.emulator"
  local code, body = emulator.exchange(("http://127.0.0.1:%d%s"):format(self.port, path), "GET", nil, nil,
    timeout or 30)
  assert(code, body)
  return body
end

function Server:log() return sh.read_file(self.prefix .. "/logs/error.log") or "" end

-- GETs `paths` at once with curl; returns their bodies in order.
function Server:concurrent(paths)
  local parts = {}
  for i, path in ipairs(paths) do
    parts[#parts + 1] = ("curl -s -m 60 -o %s %s &"):format(sh.quote(self.prefix .. "/ans" .. i),
      sh.quote(("http://127.0.0.1:%d%s"):format(self.port, path)))
  end
  os.execute(table.concat(parts, " ") .. " wait")
  local out = {}
  for i = 1, #paths do out[i] = sh.read_file(self.prefix .. "/ans" .. i) or "" end
  return out
end

function Server:stop()
  if self.master then
    os.execute("kill -TERM " .. self.master .. " 2>/dev/null")
    sh.wait_gone(self.master, 10, 0.05)
    self.master = nil
  end
  if self.prefix then os.execute("rm -rf " .. sh.quote(self.prefix)) end
end

function nginx.start(conf)
  local emulator = require "spec.support.emulator"
  local compat = require "spec.support.compat"
  local self = setmetatable({ prefix = sh.tmpdir(), port = emulator.free_port() }, Server)
  os.execute("mkdir -p " .. sh.quote(self.prefix .. "/logs") .. " " .. sh.quote(self.prefix .. "/temp"))
  conf = conf:gsub("ROOT", sh.repo_root()):gsub("PORT", tostring(self.port))
  sh.write_file(self.prefix .. "/nginx.conf", conf)
  -- as root, nginx would run its workers as `nobody`; keep them as the caller
  local user = require("wdt.core").euid() == 0 and "-g 'user root;' " or ""
  assert(compat.execute(nginx.BIN .. " -p " .. sh.quote(self.prefix .. "/") .. " -c nginx.conf " .. user
    .. "</dev/null >" .. sh.quote(self.prefix .. "/logs/start.out") .. " 2>&1"),
    sh.read_file(self.prefix .. "/logs/start.out"))
  local deadline = socket.gettime() + 20
  while true do
    self.master = tonumber((sh.read_file(self.prefix .. "/logs/nginx.pid") or ""):match("%d+"))
    if self.master and emulator.exchange(("http://127.0.0.1:%d/ping"):format(self.port), "GET", nil, nil, 2) then
      return self
    end
    if socket.gettime() > deadline then   -- a failure now, not every request's timeout later
      local log = self:log()
      self:stop()
      error("nginx did not answer GET /ping within 20 s; its error.log:\n" .. log, 2)
    end
    socket.sleep(0.05)
  end
end

return nginx
