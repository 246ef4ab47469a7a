-- Nothing lost when the environment misbehaves (issue 22): input that cannot be read,
-- answers of the wrong shape, tries that never left, state files that are not what they
-- say, pipes that close early, clocks that run ahead. Each case is the run that lost or
-- showed something before, made again by a wrapper (strace's fault injection, faketime),
-- the emulator's faults, or a tiny fake server.
local cjson = require "cjson"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local sh = require "spec.support.sh"
local compat = require "spec.support.compat"

local root = sh.repo_root()
local platform = dofile(root .. "/examples/sample_platform.lua")
local SID = fixtures.SID

local function has(cmd) return compat.execute("command -v " .. cmd .. " >/dev/null 2>&1") end

describe("nothing lost", function()
  local emu, dir

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = fixtures.KEY, secret = fixtures.APPSECRET },
                  { sid = "other", key = "k2", secret = "s2:salt2" } },
      shops = { [SID] = { { shop_no = "tb1", platform_id = 1 } } },
    } }
    dir = sh.tmpdir()
  end)
  teardown(function()
    if emu then emu:stop() end
    if dir then os.execute("rm -rf " .. sh.quote(dir)) end
  end)
  before_each(function()
    emu:reset()
    emu:faults {}
    os.execute("rm -rf " .. sh.quote(dir) .. "/*")
  end)

  local function orders_file(n, first)
    local lines = {}
    for i = 1, n do lines[i] = require("wdt").json.encode(platform.order((first or 0) + i)) end
    local path = dir .. "/orders.jsonl"
    sh.write_file(path, table.concat(lines, "\n") .. "\n")
    return path
  end

  -- bin/wdt with `args` (a shell string) -> exit code, stdout, stderr. `pre`: a command put
  -- before it (strace, faketime); `env`: extra VAR=value words; `stdout`: a redirection.
  local function wdt(args, o)
    o = o or {}
    local out, err, rc = dir .. "/out", dir .. "/err", dir .. "/rc"
    os.remove(out)
    os.execute(("{ cd %s && WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s WDT_LOCK_DIR=%s %s %s bin/wdt %s 2>%s; "
      .. "echo $? >%s; } %s"):format(sh.quote(root), sh.quote(o.url or emu.url), o.sid or SID, o.key or fixtures.KEY,
      o.secret or fixtures.APPSECRET, sh.quote(dir .. "/locks"), o.env or "", o.pre or "", args, sh.quote(err),
      sh.quote(rc), o.stdout or (">" .. sh.quote(out))))
    return tonumber(sh.read_file(rc):match("%d+")), sh.read_file(out), sh.read_file(err)
  end

  describe("wdt scan into a pipe", function()
    local GOODS = "goods.ApiGoods.search"
    local cp, since

    before_each(function()
      local now = os.time()
      since = now - 10 * 86400
      emu:control("POST", "rows", { sid = SID, method = GOODS, count = 300, from = since, to = now - 3600 })
      cp = dir .. "/cp.json"
    end)

    local function scan(extra, stdout)
      return wdt(("scan %s --checkpoint %s --since %d --window 86400 %s"):format(GOODS, sh.quote(cp), since,
        extra or ""), { stdout = stdout })
    end

    it("a reader that stops early: exit 74 (no SIGPIPE death), and the next run prints every row", function()
      local code, _, err = scan("", "| { head -1 >/dev/null; sleep 1; }")
      assert.equal(74, code, err)
      assert.truthy(err:find("cannot write the output", 1, true), err)
      local code2, out, err2 = scan("")
      assert.equal(0, code2, err2)
      assert.equal(300, #sh.lines(out))
    end)

    it("a pipe's rows count once the consumer confirms (--commit); without it they come again", function()
      local got = dir .. "/got"
      local code, _, err = scan("", "| cat >" .. sh.quote(got))
      assert.equal(0, code, err)
      assert.equal(300, #sh.lines(sh.read_file(got)))
      assert.truthy(err:find("wdt scan " .. GOODS .. " --checkpoint " .. cp .. " --commit", 1, true), err)
      assert.is_nil(io.open(cp, "r"))                     -- not moved: the reader confirmed nothing
      scan("", "| cat >" .. sh.quote(got))               -- the consumer failed: all again
      assert.equal(300, #sh.lines(sh.read_file(got)))
      local ccode, _, cerr = wdt(("scan %s --checkpoint %s --commit"):format(GOODS, sh.quote(cp)))
      assert.equal(0, ccode, cerr)
      assert.truthy(cerr:find("now at", 1, true), cerr)
      local code3, out = scan("")
      assert.equal(0, code3)
      assert.equal("", out)                                -- committed: nothing twice
      -- a commit with nothing staged changes nothing; another method's stage is refused
      ccode, _, cerr = wdt(("scan %s --checkpoint %s --commit"):format(GOODS, sh.quote(cp)))
      assert.equal(0, ccode, cerr)
      assert.truthy(cerr:find("nothing to commit", 1, true), cerr)
      sh.write_file(cp .. ".uncommitted", sh.read_file(cp))
      ccode, _, cerr = wdt(("scan sales.RawTrade.searchSelfOrder --checkpoint %s --commit"):format(sh.quote(cp)))
      assert.equal(1, ccode, cerr)
    end)

    it("stdout a file: synced, and the checkpoint moves at once", function()
      local code, out, err = scan("")
      assert.equal(0, code, err)
      assert.equal(300, #sh.lines(out))
      assert.equal("", err)
      assert.truthy(io.open(cp, "r"))
      assert.is_nil(io.open(cp .. ".uncommitted", "r"))
    end)
  end)

  describe("wdt push input", function()
    it("a read error in FILE.jsonl (EIO) stops the push: exit 1, the error said, no 'end of file'", function()
      if not has("strace") then pending("strace is not installed") return end
      local path = orders_file(300)
      -- only the reads of the file are counted (-P): the third one fails
      local code, out, err = wdt("push orders --shop s1 --json " .. sh.quote(path),
        { pre = "strace -qq -o /dev/null -P " .. sh.quote(path) .. " -e trace=read -e inject=read:error=EIO:when=3" })
      assert.equal(1, code, err)
      assert.truthy(err:find("cannot read " .. path .. " after line", 1, true), err)
      assert.truthy(err:find("Input/output error", 1, true), err)
      local s = cjson.decode(out)
      assert.is_true(s.read < 300, out)
      assert.equal(s.read, s.new + s.unreported)      -- what was read and not sent: unreported
    end)

    it("a folder as FILE.jsonl, or on stdin, is an error, not an empty input", function()
      for _, input in ipairs({ sh.quote(dir), "- <" .. sh.quote(dir) }) do
        local code, out, err = wdt("push orders --shop s1 " .. input)
        assert.equal(1, code, err)
        assert.truthy(err:find("Is a directory", 1, true), err)
        assert.truthy(out:find("0 read", 1, true), out)
      end
    end)

    it("a --shop that is not UTF-8 is a usage error (exit 2)", function()
      local code, _, err = wdt("push orders --shop $(printf 's\\377') " .. sh.quote(orders_file(1)))
      assert.equal(2, code, err)
      assert.truthy(err:find("'--shop' is not valid UTF-8", 1, true), err)
    end)

    it("a line [1,2] or null is 'not a JSON object', a broken one 'not JSON'", function()
      sh.write_file(dir .. "/bad.jsonl", '[1,2]\nnull\n7\n{"tid":\n')
      local code, out = wdt("push orders --shop s1 --json " .. sh.quote(dir .. "/bad.jsonl"))
      assert.equal(1, code)
      local s = cjson.decode(out)
      assert.equal(4, s.invalid)
      local reasons = {}
      for _, x in ipairs(s.invalids) do reasons[x.line] = x.field .. ": " .. x.reason end
      assert.equal("(line): not a JSON object", reasons[1])
      assert.equal("(line): not a JSON object", reasons[2])
      assert.equal("(line): not a JSON object", reasons[3])
      assert.truthy(reasons[4]:find("^%(line%): not JSON: "), reasons[4])
    end)
  end)
end)
