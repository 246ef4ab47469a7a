-- Every error kind the code produces is listed, with its meaning, in wdt.errors (KINDS) and
-- in doc/reliability.md: the sources are read for the places a kind is written.
local errors = require "wdt.errors"
local sh = require "spec.support.sh"

-- The kinds written in the sources: `kind = "x"` in Lua, and the helpers that take a kind
-- first (`fail("x"`, `failure("x"`, `:stop("x"`), the C core's parse_fail and kind_name.
local PATTERNS = {
  "kind%s*=%s*\"([%w_]+)\"", "[^%.%w_]fail%(\"([%w_]+)\"", "[^%.%w_]failure%(\"([%w_]+)\"",
  ":stop%(\"([%w_]+)\"", "parse_fail%(L, \"([%w_]+)\"",
  "lua_pushliteral%(L, \"([%w_]+)\"%);%s*lua_setfield%(L, %-2, \"kind\"%)",
  "case WDT_HTTP_[%u_]+:%s*return \"([%w_]+)\"", "default:%s*return \"([%w_]+)\"",
}

local function kinds_in_sources()
  local found = {}
  local p = io.popen("find src/wdt src/core -name '*.lua' -o -name '*.c' | sort")
  for path in p:lines() do
    -- not the CLI's (its own kinds), nor src/wdt/api (the catalogue's data: method kinds)
    if not (path:find("^src/wdt/cli/") or path:find("^src/wdt/api/")) then
      local text = sh.read_file(path)
      for _, pattern in ipairs(PATTERNS) do
        for k in text:gmatch(pattern) do found[k] = found[k] or path end
      end
    end
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
