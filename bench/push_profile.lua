-- Instructions a push costs wdt, for callgrind (exact, unlike timings on a shared machine):
--   valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 bench/push_profile.lua N
-- pushes N orders (examples/sample_platform.lua) to a fresh emulator in calls of 100, one
-- at a time; the instructions an order costs are the difference of two runs (e.g. N = 500
-- and 2500) over the difference of N, which takes start-up, the emulator's launch and the
-- build of the orders out (the orders are built in both runs, for max(N) orders). make
-- bench's push-instructions row runs it so.
local here = (debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]*$")) or "."
package.path = here .. "/src/?.lua;" .. here .. "/src/?/init.lua;" .. here .. "/?.lua;" .. package.path
package.cpath = here .. "/build/?.so;" .. package.cpath
local wdt = require "wdt"
local emulator = require "spec.support.emulator"

local n, built = tonumber(arg[1] or "2000"), tonumber(arg[2] or "2500")
local platform = dofile(here .. "/examples/sample_platform.lua")
local orders = {}
for i = 1, built do orders[i] = platform.order(i) end
for i = n + 1, built do orders[i] = nil end
local emu = emulator.start {}
local ok, err = pcall(function()
  local client = wdt.client { sid = "apidevnew2", key = "test2-xx", secret = "12345:abcde", url = emu.url }
  -- one call at a time, as make bench's push row (a window of calls in flight costs less
  -- per order: fewer waits)
  local s = assert(client:push_orders { shop_no = "s1", orders = orders, concurrency = 1 })
  assert(s.new == n, "not every order was created")
  client:close()
end)
emu:stop()
assert(ok, err)
