-- Small process and file helpers the specs share (Lua 5.4, no wdt).
local M = {}

function M.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The whole file, or "" when it cannot be read.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

function M.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  f:close()
end

-- What a child lua5.4 (`-e CODE` or a script) runs first to load this checkout's wdt: src/
-- and build/ ahead on the package paths, absolute, so the child may run from any folder.
function M.lua_paths()
  local root = M.repo_root()
  return ("package.path = %q .. package.path; package.cpath = %q .. package.cpath\n")
    :format(root .. "/src/?.lua;" .. root .. "/src/?/init.lua;", root .. "/build/?.so;")
end

-- The non-empty lines of text (output of a process, JSON lines), in order.
function M.lines(text)
  local out = {}
  for l in text:gmatch("[^\n]+") do out[#out + 1] = l end
  return out
end

-- A live process (zombies count as gone).
function M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then
    return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
  end
  local line = f:read("*l") or ""
  f:close()
  return not line:find("^%d+ %b() Z")
end

-- Waits until process `pid` is gone, looking every `step` seconds for at most `seconds`.
function M.wait_gone(pid, seconds, step)
  local socket = require "socket"
  for _ = 1, math.floor(seconds / step + 0.5) do
    if not M.alive(pid) then return end
    socket.sleep(step)
  end
end

-- A fresh folder that nginx workers (user nobody) may read too.
function M.tmpdir()
  local p = io.popen("d=$(mktemp -d) && chmod 755 \"$d\" && echo \"$d\"")
  local dir = p:read("*l")
  p:close()
  return dir
end

-- The repository's top folder, absolute.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
function M.repo_root()
  local p = io.popen("cd " .. M.quote(here .. "/../..") .. " && pwd")
  local abs = p:read("*l")
  p:close()
  return abs
end

return M
