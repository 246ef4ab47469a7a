-- luacheck settings. The library is written in the Lua 5.1/5.4 common subset.
std = "lua54"
max_line_length = 120
codes = true
self = false   -- methods that do not use self keep the colon form of their siblings

files["emulator"] = { std = "luajit", globals = { "ngx" } }
files["src/wdt/transport"] = { std = "luajit", read_globals = { "ngx" } }
files["src/wdt"] = { read_globals = { "ngx", "unpack" } }
files["examples/openresty"] = { std = "luajit", globals = { "ngx" } }
files["spec"] = { std = "+busted" }
-- generated data (tools/gen-catalogue.lua): long lines of the pages' text
files["src/wdt/api/methods"] = { max_line_length = false }
files["src/wdt/api/index.lua"] = { max_line_length = false }
files["src/wdt/api/guide.lua"] = { max_line_length = false }
files["src/wdt/api/addresses.lua"] = { max_line_length = false }
