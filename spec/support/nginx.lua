-- What the specs that run wdt inside nginx need, and why one would be skipped.
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

return nginx
