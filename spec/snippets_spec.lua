-- The Lua snippets of README.md and doc/*.md run as written, against the emulator.
--
-- Convention (for whoever adds a snippet):
--   * every ```lua fenced block of README.md and doc/*.md is a snippet and runs;
--   * the snippets of one file run in order as ONE chunk, so a later block may use the
--     locals of an earlier one (README's "One call" uses the `client` made above it);
--     errors name the markdown file and its line;
--   * each file gets a fresh emulator with the demo tenant (50 shipments waiting for shop
--     s1); the text's `http://127.0.0.1:8080` is replaced by that emulator's address, the
--     only change made to what is written;
--   * names the text leaves to the reader are stand-ins here (stand_ins below): `client`, a
--     client of that emulator's demo tenant, for pages that start from one; the platform
--     (`my_platform_ship`, `my_platform.ship`), which takes every shipment;
--   * `<!-- snippet: skip REASON -->` on the line just before the fence skips that block
--     (say why: e.g. it runs inside nginx, which spec/openresty_spec.lua covers);
--   * what a snippet prints is kept: EXPECTED_OUTPUT below names, per file, patterns it must
--     print, so that the text's claims about the output are checked too.
local emulator = require "spec.support.emulator"
local sh = require "spec.support.sh"
local compat = require "spec.support.compat"

local ROOT = sh.repo_root()
local DOC_URL = "http://127.0.0.1:8080"

local EXPECTED_OUTPUT = {
  ["README.md"] = { "^50\t0\t0\t0\t0\n", "\nrefused: " },
  ["doc/sync.md"] = { "^50\t0\t0\n$" },
  ["doc/push.md"] = { "^1\t0\t0\t0\t0\n$" },
  ["doc/reliability.md"] = { "^0\t50\n0\n0\t49\n$" },
  ["doc/performance.md"] = { "^1\tok\n2\tok\n3\t.*\n[01]\n$" },
  ["doc/emulator.md"] = { "\n200\t0[.0]*\t130[.0]*\t1\tapplication/json" },  -- cjson: floats
  ["doc/api.md"] = { "^179\n仓库查询\tquery\t1000\nparams.type\tint\t1\t普通\n", "\nnil\n",
                     "\nnil\tinvalid\tparams.end_time\n", "查询时间不能大于30天%) %(结束时间: 采购单修改时间%); nothing was sent\n",
                     "\nnil\t100\ntrue\n$" },
}

-- Stand-ins for what the text says is yours.
local function stand_ins(url)
  local wdt = require "wdt"
  return {
    client = wdt.client { url = url .. "/openapi", sid = emulator.DEMO.sid, key = emulator.DEMO.key,
                          secret = emulator.DEMO.appsecret },
    my_platform_ship = function(row) return row.sync_id ~= nil end,
    my_platform = { ship = function(tid) return tid ~= nil end },
  }
end

-- file -> list of {first = line, last = line} of the runnable blocks, and the file's lines
local function snippets_of(path)
  local lines = {}
  for line in (sh.read_file(path) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local blocks, open, skip = {}, nil, false
  for i, line in ipairs(lines) do
    if open then
      if line:match("^```%s*$") then
        if not skip then blocks[#blocks + 1] = { first = open, last = i - 1 } end
        open, skip = nil, false
      end
    elseif line:match("^```lua%s*$") then
      open = i + 1
      skip = i > 1 and lines[i - 1]:match("^<!%-%- snippet: skip") ~= nil
    end
  end
  assert(not open, path .. ": a ```lua block is not closed")
  return blocks, lines
end

-- One chunk whose line numbers are the markdown file's: every other line is left empty.
local function chunk_of(blocks, lines, url)
  local out = {}
  for i = 1, #lines do out[i] = "" end
  for _, b in ipairs(blocks) do
    for i = b.first, b.last do
      local line = lines[i]
      local at = line:find(DOC_URL, 1, true)
      if at then line = line:sub(1, at - 1) .. url .. line:sub(at + #DOC_URL) end
      out[i] = line
    end
  end
  return table.concat(out, "\n")
end

local function run(name, source, url)
  local printed = {}
  local env = setmetatable(stand_ins(url), { __index = _G })
  env.print = function(...)
    local parts = { n = select("#", ...), ... }
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    printed[#printed + 1] = table.concat(parts, "\t", 1, parts.n) .. "\n"
  end
  local fn = assert(compat.load(source, "@" .. name, env))
  local ok, err = pcall(fn)
  return ok, err, table.concat(printed)
end

local function documents()
  local list = { "README.md" }
  local p = io.popen("cd " .. sh.quote(ROOT) .. " && ls doc/*.md")
  for f in p:lines() do list[#list + 1] = f end
  p:close()
  return list
end

describe("documentation snippets", function()
  it("finds the README's snippets, and the convention's parts work", function()
    local blocks = snippets_of(ROOT .. "/README.md")
    assert.is_true(#blocks >= 2)
    local dir = sh.tmpdir()
    sh.write_file(dir .. "/t.md", table.concat({
      "text", "```lua", "x = 1", "```", "<!-- snippet: skip needs nginx -->", "```lua",
      "error('skipped')", "```", "```lua", "error('line nine')", "```" }, "\n"))
    local b, lines = snippets_of(dir .. "/t.md")
    assert.same({ { first = 3, last = 3 }, { first = 10, last = 10 } }, b)
    local ok, err = run("t.md", chunk_of(b, lines, "x"), "http://127.0.0.1:9")
    assert.is_false(ok)
    assert.matches("^t%.md:10: line nine", err)
    os.remove(dir .. "/t.md")
    os.remove(dir)
  end)

  -- The first sync snippet of `doc` (the block calling `call`), run as the reader who copies
  -- it as shown: the function it calls is undefined, a bug in the glue, not a refusal by the
  -- platform. Every shipment stays in the queue, the error is raised (lua prints it and
  -- exits 1) and names the undefined function.
  local function first_sync_snippet_literally(doc, call, undefined)
    local blocks, lines = snippets_of(ROOT .. "/" .. doc)
    local block
    for _, b in ipairs(blocks) do
      for i = b.first, b.last do if not block and lines[i]:find(call, 1, true) then block = b end end
    end
    assert.truthy(block, doc .. " has no snippet calling " .. call)
    local emu = emulator.start()
    local url = emu.url:match("^(http://[^/]+)")
    local printed = {}
    local env = setmetatable({ print = function(...) printed[#printed + 1] = table.concat({ ... }, "\t") end },
                             { __index = _G })   -- no stand-ins: the platform's function is undefined
    local fn = assert(compat.load(chunk_of({ block }, lines, url), "@" .. doc, env))
    local ok, err = pcall(fn)
    local st = emu:state().tenants[emulator.DEMO.sid].logistics
    emu:stop()
    assert.is_false(ok, "the snippet ended without an error")
    assert.matches("50 handler error", tostring(err))
    assert.matches(undefined, tostring(err))
    assert.same({ 0, 0, 50 }, { st.acked, st.failed, #st.pending })
    return printed
  end

  it("runs README's first sync snippet literally, without a my_platform_ship: it fails,"
    .. " nothing fails in the ERP", function()
    local printed = first_sync_snippet_literally("README.md", "my_platform_ship(row)", "my_platform_ship")
    assert.same("0\t0\t0\t0\t0", printed[1])        -- synced, failed, deferred, refused, unconfirmed
  end)

  it("runs doc/sync.md's first snippet literally, without a my_platform: it fails, nothing fails in the ERP", function()
    local printed = first_sync_snippet_literally("doc/sync.md", "my_platform.ship(", "my_platform")
    assert.same("0\t0\t0", printed[1])
  end)

  for _, doc in ipairs(documents()) do
    local blocks, lines = snippets_of(ROOT .. "/" .. doc)
    if #blocks > 0 then
      it("runs the Lua of " .. doc .. " as written", function()
        local emu = emulator.start()
        local url = emu.url:match("^(http://[^/]+)")
        local ok, err, printed = run(doc, chunk_of(blocks, lines, url), url)
        emu:stop()
        assert(ok, tostring(err) .. "\nprinted:\n" .. printed)
        for _, pattern in ipairs(EXPECTED_OUTPUT[doc] or {}) do
          assert.matches(pattern, printed, nil, false, doc .. " printed:\n" .. printed)
        end
      end)
    end
  end
end)
