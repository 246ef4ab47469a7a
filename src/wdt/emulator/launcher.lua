-- Start wdt-emulator from Lua (used by the `wdt emulator` subcommand). Lua 5.1/5.4 common
-- subset. The server itself is bin/wdt-emulator (a POSIX sh script that runs nginx); this
-- module finds that script next to the installed handlers and runs it.
--
--   local launcher = require "wdt.emulator.launcher"
--   launcher.run{ port = 8080, config = "emulator.json" }   -- foreground; returns on stop
--   launcher.command{ port =, config =, host =, watch_pid = } -- the shell command line
--   launcher.script()                                        -- path of bin/wdt-emulator
--   launcher.root()                                          -- folder holding wdt/emulator/
local M = {}

local function dirname(p) return (p:gsub("/+[^/]*$", "")) end

local function exists(p)
  local f = io.open(p, "r")
  if f then f:close(); return true end
  return false
end

-- The folder that holds wdt/emulator/server.lua (this file is wdt/emulator/launcher.lua).
function M.root()
  local src = debug.getinfo(1, "S").source
  local file = src:sub(1, 1) == "@" and src:sub(2) or nil
  if not file then return nil, "cannot tell where wdt.emulator.launcher was loaded from" end
  if file:sub(1, 1) ~= "/" then
    local p = io.popen("pwd")
    local cwd = p and p:read("*l")
    if p then p:close() end
    file = (cwd or ".") .. "/" .. file
  end
  return dirname(dirname(dirname(file)))
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Where bin/wdt-emulator is: WDT_EMULATOR_BIN, the repository checkout (src/../bin), a
-- LuaRocks tree (share/lua/5.x/../../../bin), or the PATH.
function M.script()
  local env = os.getenv("WDT_EMULATOR_BIN")
  if env and env ~= "" then return env end
  local root = M.root()
  if root then
    for _, cand in ipairs({ root .. "/../bin/wdt-emulator", root .. "/../../../bin/wdt-emulator" }) do
      if exists(cand) then return cand end
    end
  end
  local p = io.popen("command -v wdt-emulator 2>/dev/null")
  local found = p and p:read("*l")
  if p then p:close() end
  if found and found ~= "" then return found end
  return nil, "cannot find bin/wdt-emulator (set WDT_EMULATOR_BIN)"
end

-- The command line that runs the emulator in the foreground.
function M.command(opts)
  opts = opts or {}
  local script, err = M.script()
  if not script then return nil, err end
  local parts = {}
  local root = M.root()
  if root and exists(root .. "/wdt/emulator/server.lua") then
    parts[#parts + 1] = "env WDT_EMULATOR_LUA_ROOT=" .. quote(root)
  end
  parts[#parts + 1] = quote(script)
  if opts.port then parts[#parts + 1] = "--port " .. quote(opts.port) end
  if opts.config then parts[#parts + 1] = "--config " .. quote(opts.config) end
  if opts.host then parts[#parts + 1] = "--host " .. quote(opts.host) end
  if opts.watch_pid then parts[#parts + 1] = "--watch-pid " .. quote(opts.watch_pid) end
  return table.concat(parts, " ")
end

-- Run the emulator in the foreground until it stops (Ctrl-C, SIGTERM). Returns true when it
-- stopped cleanly, or nil, message.
function M.run(opts)
  local cmd, err = M.command(opts)
  if not cmd then return nil, err end
  local a, b, c = os.execute("exec " .. cmd)
  if a == true or a == 0 then return true end
  if b == "signal" and (c == 2 or c == 15) then return true end -- stopped by Ctrl-C / SIGTERM
  if type(a) == "number" then return nil, "wdt-emulator exited with status " .. a end
  return nil, ("wdt-emulator %s %s"):format(tostring(b), tostring(c))
end

return M
