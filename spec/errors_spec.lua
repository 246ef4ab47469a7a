-- Every error kind the code produces is listed, with its meaning, in wdt.errors (KINDS) and
-- in doc/reliability.md: the sources are read for the places a kind is written.
local errors = require "wdt.errors"
local sh = require "spec.support.sh"

-- The kinds written in the sources: `kind = "x"` in Lua, and the helpers that take a kind
-- first (`fail("x"`, `failure("x"`, `:stop("x"`), the C core's parse_fail and kind_name.
local function kinds_in_sources()
  local found = {}
  local p = io.popen("find src/wdt src/core -name '*.lua' -o -name '*.c' | grep -v '^src/wdt/cli/' | sort")
  for path in p:lines() do
    local text = sh.read_file(path)
    local function add(k) found[k] = found[k] or path end
    for k in text:gmatch("kind%s*=%s*\"([%w_]+)\"") do add(k) end
    for k in text:gmatch("[^%.%w_]fail%(\"([%w_]+)\"") do add(k) end
    for k in text:gmatch("[^%.%w_]failure%(\"([%w_]+)\"") do add(k) end
    for k in text:gmatch(":stop%(\"([%w_]+)\"") do add(k) end
    for k in text:gmatch("parse_fail%(L, \"([%w_]+)\"") do add(k) end
    for k in text:gmatch("lua_pushliteral%(L, \"([%w_]+)\"%);%s*lua_setfield%(L, %-2, \"kind\"%)") do add(k) end
    for k in text:gmatch("case WDT_HTTP_[%u_]+:%s*return \"([%w_]+)\"") do add(k) end
    for k in text:gmatch("default:%s*return \"([%w_]+)\"") do add(k) end
  end
  p:close()
  return found
end

describe("error kinds", function()
  local found = kinds_in_sources()

  it("finds the kinds the code writes (the search itself works)", function()
    for _, k in ipairs({ "api", "http", "network", "timeout", "tls", "too_large", "decode", "locked",
                         "store", "redis", "shm", "source", "state", "callback", "interrupted",
                         "rate_limited", "scan" }) do
      assert.truthy(found[k], k)
    end
  end)

  it("lists every kind the code produces in wdt.errors.KINDS, with its meaning", function()
    for k, path in pairs(found) do
      assert.is_string(errors.KINDS[k], ("kind '%s' (%s) is not in wdt.errors.KINDS"):format(k, path))
    end
  end)

  it("lists every kind in doc/reliability.md", function()
    local doc = sh.read_file("doc/reliability.md")
    for k in pairs(errors.KINDS) do
      assert.truthy(doc:find("| `" .. k .. "` |", 1, true), ("kind '%s' is not in doc/reliability.md"):format(k))
    end
  end)
end)
