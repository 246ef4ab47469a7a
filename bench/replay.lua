-- wrk script for `make bench`: replays one request prepared by wdt (client:prepare), with
-- the headers libcurl sends for wdt, so that wrk and wdt put the same bytes on the wire.
-- The file named by $WDT_BENCH_REQUEST holds the path?query on its first line, the body
-- after it. The emulator checks the timestamp (120 s) and the sign, not replays, and the
-- method is a query: every replay is answered status 0 and changes nothing.
-- luacheck: globals wrk
local f = assert(io.open(os.getenv("WDT_BENCH_REQUEST") or "request.txt", "rb"))
local path = f:read("*l")
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = path
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "*/*"
wrk.headers["Accept-Encoding"] = os.getenv("WDT_BENCH_ACCEPT_ENCODING") or "deflate, gzip, br, zstd"
wrk.headers["User-Agent"] = "wdt-lua/0.1"

