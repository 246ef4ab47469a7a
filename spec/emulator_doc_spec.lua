-- doc/emulator.md's configuration example, rate limit included ({"per_minute": 60}), and
-- the `wdt sync stock` run the page shows against it, as written: it finishes with every
-- good synced, waiting the refused window out (issue 14: the example must run as shown).
-- Slow on purpose (one real 60-second window): the page's numbers are the point.
local emulator = require "spec.support.emulator"
local sh = require "spec.support.sh"

local ROOT = sh.repo_root()
local PAGE = ROOT .. "/doc/emulator.md"
local DOC_URL = "http://127.0.0.1:9000"

-- The text of the fenced block of `lang` that follows `after` on the page.
local function block_after(text, after, lang)
  local at = assert(text:find(after, 1, true), "doc/emulator.md: '" .. after .. "' not found")
  local body = text:match("\n```" .. lang .. "\n(.-)\n```\n", at)
  return assert(body, "doc/emulator.md: no ```" .. lang .. " block after '" .. after .. "'")
end

-- The run is a `bin/wdt` process: the Lua running busted does not matter, so the other
-- hosts of `make matrix` skip this minute.
local it_here = _VERSION == "Lua 5.4" and it or pending

describe("doc/emulator.md's configuration example", function()
  it_here("runs `wdt sync stock` as the page shows: 80 goods synced, the limit waited out", function()
    local page = sh.read_file(PAGE)
    local config = block_after(page, "## Configuration", "json")
    assert.truthy(config:find('"rate_limit": { "per_minute": 60 }', 1, true))
    local emu = emulator.start { config = config }
    -- the page's commands: the first starts the emulator (done above, on a free port)
    local commands = block_after(page, "the 80 goods take a", "sh")
    local run = assert(commands:match("\n(WDT_URL=.*)$"), "the wdt command")
    run = run:gsub(DOC_URL:gsub("%p", "%%%0"), emu.base)
    local out = sh.tmpdir()
    -- bounded: a run that never ends is this spec's failure, not the suite's hang
    local code = os.execute(("cd %s && timeout 300 env %s >%s/out 2>%s/err"):format(sh.quote(ROOT), run, out, out))
    local printed, err = sh.read_file(out .. "/out"), sh.read_file(out .. "/err")
    local limited = emu:state().tenants.mysid.rate_limited
    emu:stop()
    os.execute("rm -rf " .. sh.quote(out))
    assert.is_true(code == true or code == 0, err)
    -- what the page says it prints, up to the elapsed time
    local shown = assert(page:match("\n```\n(stock sync: .-)\n```\n"), "the output block")
    assert.equal(shown:match("^(.-)\n  elapsed"), printed:match("^(.-)\n  elapsed"))
    assert.is_true(limited > 0, "the emulator refused no call: the limit was not reached")
  end)
end)
