-- `make bench`, memory row: resident size (VmRSS) of a process after 1,000 calls and after
-- N calls (default 100,000), sequential client:page_call against the emulator at URL.
--   lua5.4 bench/memory.lua URL [N]  ->  rss_1000_kib=… rss_last_kib=… seconds=…
-- A full garbage collection runs before each reading: what is measured is memory that wdt
-- keeps (C buffers, libcurl, leaks), not garbage the collector has not reached yet.
local here = (debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]*$")) or "."
package.path = here .. "/src/?.lua;" .. here .. "/src/?/init.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath

local wdt = require "wdt"
local core = require "wdt.core"

local url, total = arg[1], tonumber(arg[2]) or 100000
assert(url, "usage: memory.lua URL [N]")

local function rss_kib()
  collectgarbage("collect")
  collectgarbage("collect")
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local client = wdt.client { sid = "apidevnew2", key = "test2-xx", secret = "12345:abcde", url = url }
local pager, filter = { page_size = 1 }, { shop_no = "s1", is_own_platform = true }
local t0 = core.unix_time()
local done = 0
local function calls(n)
  for _ = 1, n do
    assert(client:page_call("sales.LogisticsSync.getSyncListExt", pager, filter))
  end
  done = done + n
end
calls(1000)
local first = rss_kib()
calls(total - done)
local last = rss_kib()
print(("rss_1000_kib=%d rss_last_kib=%d seconds=%.1f"):format(first, last, core.unix_time() - t0))
client:close()
