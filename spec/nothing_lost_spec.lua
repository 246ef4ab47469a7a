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

local function wdt_client_of(emu, sid)
  local t = { other = { key = "k2", secret = "s2:salt2" } }
  return fixtures.client(emu, { sid = sid, key = t[sid].key, secret = t[sid].secret, retries = 0 })
end

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
    os.execute(("{ cd %s && " .. (o.shell or "")
      .. " WDT_URL=%s WDT_SID=%s WDT_KEY=%s WDT_SECRET=%s WDT_LOCK_DIR=%s %s %s bin/wdt %s 2>%s; "
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
      -- the commit command is said only when a window went whole into the pipe
      assert.equal(io.open(cp .. ".uncommitted", "r") ~= nil, err:find("--commit", 1, true) ~= nil, err)
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

  describe("wdt scan against clocks and odd answers", function()
    local GOODS = "goods.ApiGoods.search"
    local cp

    before_each(function() cp = dir .. "/cp.json" end)

    local function checkpoint(next_start)
      sh.write_file(cp, cjson.encode { sid = SID, method = GOODS, filter = "{}", next = next_start, seen = {} })
    end

    it("a local clock an hour ahead: the window ends at the server's now - lag, not the local one", function()
      if not has("faketime") then pending("faketime is not installed (apt-get install faketime)") return end
      local now = os.time()
      local code, out, err = wdt(("scan %s --checkpoint %s --since %d --count"):format(GOODS, sh.quote(cp),
        now - 86400),
        { pre = "faketime -f +3600s" })
      assert.equal(0, code, err)
      assert.equal("0\n", out)
      local next_start = cjson.decode(sh.read_file(cp)).next
      assert.is_true(next_start <= os.time() - 120 + 2, ("the checkpoint is %d s ahead of the server's now - lag")
        :format(next_start - (os.time() - 120)))
      -- a row modified after the run, before where the old code put the checkpoint: delivered
      emu:control("POST", "rows", { sid = SID, method = GOODS, rows = { { modified = os.time() - 30 } } })
      code, out = wdt(("scan %s --checkpoint %s --count --lag 0"):format(GOODS, sh.quote(cp)))
      assert.equal(0, code)
      assert.equal("1\n", out)
    end)

    -- windows of an hour, 8 in flight: the windows are planned on the local clock and read
    -- ahead before any answer says the server's time
    local TRADES = "sales.TradeQuery.querySelfOrderWithDetail"
    local function trades(extra, o)
      return wdt(("scan %s --checkpoint %s --concurrency 8 %s"):format(TRADES, sh.quote(cp), extra), o)
    end

    it("a local clock an hour ahead, windows read ahead: those past the server's now - lag are dropped", function()
      if not has("faketime") then pending("faketime is not installed (apt-get install faketime)") return end
      local now = os.time()
      emu:control("POST", "rows", { sid = SID, method = TRADES, count = 30, from = now - 3 * 3600, to = now - 300 })
      emu:control("POST", "rows", { sid = SID, method = TRADES, rows = { { modified = now - 60, tid = "recent" } } })
      local code, out, err = trades(("--since %d --count"):format(now - 3 * 3600), { pre = "faketime -f +3600s" })
      assert.equal(0, code, err)
      assert.equal("30\n", out)                    -- not the row inside the server's lag
      local next_start = cjson.decode(sh.read_file(cp)).next
      assert.is_true(next_start <= os.time() - 120 + 2 and next_start >= now - 120 - 2, next_start - now)
      code, out = trades("--count --lag 0")
      assert.equal(0, code)
      assert.equal("1\n", out)
    end)

    it("a local clock an hour behind: the run still ends at the server's now - lag", function()
      if not has("faketime") then pending("faketime is not installed (apt-get install faketime)") return end
      local now = os.time()
      emu:control("POST", "rows", { sid = SID, method = TRADES, count = 30, from = now - 3 * 3600, to = now - 300 })
      local code, out, err = trades(("--since %d --count"):format(now - 3 * 3600), { pre = "faketime -f -3600s" })
      assert.equal(0, code, err)
      assert.equal("30\n", out)
      local next_start = cjson.decode(sh.read_file(cp)).next
      assert.is_true(next_start >= now - 120 - 2 and next_start <= os.time() - 120 + 2, next_start - now)
    end)

    it("a checkpoint in the future, read ahead by a clock further ahead: refused before any row", function()
      if not has("faketime") then pending("faketime is not installed (apt-get install faketime)") return end
      local now = os.time()
      local at = now + 2 * 86400
      emu:control("POST", "rows", { sid = SID, method = TRADES, count = 20, from = at, to = at + 3 * 3600 })
      sh.write_file(cp, cjson.encode { sid = SID, method = TRADES, filter = "{}", next = at, seen = {} })
      local code, out, err = trades("", { pre = "faketime -f +3d" })
      assert.equal(1, code, err)
      assert.truthy(err:find("after the server's now", 1, true), err)
      assert.equal("", out)
      assert.equal(at, cjson.decode(sh.read_file(cp)).next)
    end)

    it("a checkpoint in the future (a year, 1e300) is refused, nothing read past it", function()
      checkpoint(os.time() + 365 * 86400)
      local code, _, err = wdt(("scan %s --checkpoint %s --count"):format(GOODS, sh.quote(cp)))
      assert.equal(1, code, err)
      assert.truthy(err:find("after the server's now", 1, true), err)
      sh.write_file(cp, ('{"sid":"%s","method":"%s","filter":"{}","next":1e300,"seen":[]}'):format(SID, GOODS))
      code, _, err = wdt(("scan %s --checkpoint %s --count"):format(GOODS, sh.quote(cp)))
      assert.equal(1, code, err)
      assert.truthy(err:find("not one of a scan", 1, true), err)
    end)

    -- the first call of a run is the window's page 0 (its answer's Date is the server's clock)
    for _, case in ipairs({ { total = 1e11, what = "10^11" }, { total = -1, what = "negative" } }) do
      it("a total_count of " .. case.what .. " is a decode error (no endless pages, nothing passed over)", function()
        local list = case.total > 0 and '[{"rec_id":1}]' or "[]"   -- cjson 2.1 writes {} for an empty table
        local code0 = emulator.exchange(emu.base .. "/__emulator/faults", "POST", ('{"mode":"data","method":"%s",'
          .. '"count":2,"data":{"total_count":%.0f,"goods_list":%s}}'):format(GOODS, case.total, list))
        assert.equal(200, code0)
        local now = os.time()
        local code, _, err = wdt(("scan %s --checkpoint %s --since %d --count"):format(GOODS, sh.quote(cp),
          now - 86400),
          { pre = "timeout 20" })
        assert.equal(3, code, err)
        assert.truthy(err:find("total_count", 1, true), err)
        assert.is_nil(io.open(cp, "r"))
      end)
    end

    it("a total_count under the cap whose pages repeat the rows of page 0 is a decode error at once", function()
      -- 2*10^9 rows claimed, two a page: 10^9 pages planned; every page answers the same two
      local code0 = emulator.exchange(emu.base .. "/__emulator/faults", "POST", ('{"mode":"data","method":"%s",'
        .. '"count":100000,"data":{"total_count":2000000000,"goods_list":[{"rec_id":1},{"rec_id":2}]}}'):format(GOODS))
      assert.equal(200, code0)
      local code, _, err = wdt(("scan %s --checkpoint %s --since %d --page-size 2 --count"):format(GOODS,
        sh.quote(cp), os.time() - 86400), { pre = "timeout 20" })
      assert.equal(3, code, err)
      assert.truthy(err:find("total_count 2000000000", 1, true), err)
      -- 3 one page at a time; the default concurrency (4) asks for the next 4 pages at once
      assert.is_true(emu:state().calls[SID][GOODS] <= 3 + 3, "pages read: " .. emu:state().calls[SID][GOODS])
      assert.is_nil(io.open(cp, "r"))
    end)

    it("rows whose modified is no time are printed once a run, and reported", function()
      local rows = { { rec_id = 11, modified = cjson.null }, { rec_id = 12, modified = "garbage" },
                     { rec_id = 13, modified = -1 }, { rec_id = 14, modified = "2026-11-28T10:00:00" } }
      emu:faults { mode = "data", method = GOODS, count = 100, data = { total_count = 4, goods_list = rows } }
      local now = os.time()
      -- three windows, each answered with the same four rows
      local code, out, err = wdt(("scan %s --from %d --to %d --window 3600"):format(GOODS, now - 3 * 3600 - 500,
        now - 500))
      assert.equal(0, code, err)
      assert.equal(4, #sh.lines(out))
      assert.truthy(err:find("4 row(s) without a usable 'modified' (11, 12, 13, 14)", 1, true), err)
    end)
  end)

  describe("push answers and states", function()
    local store = require "wdt.store"
    local pages_of = fixtures.pages_of
    local client
    before_each(function() client = fixtures.client(emu, { retries = 0 }) end)
    after_each(function() client:close() end)
    local function raw_trades() return emu:state().tenants[SID].raw_trades or 0 end

    for _, list in ipairs({ "oops", 7, { no = "P00000001", error = "x" } }) do
      it("error_list " .. cjson.encode(list) .. " is a decode error: the batch unreported, never new", function()
        emu:faults { mode = "data", method = "sales.RawTrade.pushSelf2", count = 1,
                     data = { new_count = 10, chg_count = 0, error_list = list } }
        local s, err = client:push_orders { shop_no = "s1", orders = platform.orders(1, 10) }
        assert.is_nil(s)
        assert.equal("decode", err.kind)
        assert.same({ 0, 0, 10 }, { err.summary.new, err.summary.changed, err.summary.unreported })
      end)
    end

    for _, data in ipairs({ { status = 1, rec_ids = { 1, 2, 3 } }, { status = 0, rec_ids = { cjson.null, {}, "x" } },
                            { status = 0, rec_ids = "123" } }) do
      it("goods answered " .. cjson.encode(data) .. ": a decode error, none changed", function()
        emu:faults { mode = "data", method = "goods.ApiGoods.upload", count = 1, data = data }
        local goods = { platform.goods(1), platform.goods(2), platform.goods(3) }
        local s, err = client:upload_goods { shop_no = "s1", goods = goods }
        assert.is_nil(s)
        assert.equal("decode", err.kind)
        assert.same({ 0, 3 }, { err.summary.changed, err.summary.unreported })
        assert.is_nil(err.message:find("userdata", 1, true), err.message)   -- null said as null
      end)
    end

    it("tries that never reached the ERP are not counted; nothing is given up for a refused connection", function()
      local state = store.file(dir .. "/state.json")
      local src = pages_of(platform.orders(1, 10), 100)
      emu:faults { mode = "http_500", count = 1 }                -- sent: one try counted
      local _, err = client:push_orders { shop_no = "s1", source = src, state = state, max_tries = 3 }
      assert.equal(10, err.summary.pending)
      local dead_url = ("http://127.0.0.1:%d/openapi"):format(emulator.free_port())
      local dead = fixtures.client(emu, { retries = 1, url = dead_url })
      for _ = 1, 4 do                                             -- nothing sent
        _, err = dead:push_orders { shop_no = "s1", source = src, state = state, max_tries = 3 }
        assert.equal("network", err.kind)
        assert.same({ 10, 0 }, { err.summary.pending, #err.summary.given_up })
      end
      dead:close()
      for _, e in pairs(state:load().pending) do assert.equal(1, e.tries) end
      local s = assert(client:push_orders { shop_no = "s1", source = src, state = state, max_tries = 3 })
      assert.same({ 10, 0, 0 }, { s.retried, s.pending, #s.given_up })
      assert.equal(10, raw_trades())
    end)

    it("given-up items are listed on every run until retried; the CLI names the command", function()
      local state = store.file(dir .. "/state.json")
      local src = pages_of(platform.orders(1, 10), 100)
      emu:faults { mode = "http_500", count = 1 }
      local _, err = client:push_orders { shop_no = "s1", source = src, state = state, max_tries = 1 }
      assert.equal(10, #err.summary.given_up)
      local s = assert(client:push_orders { shop_no = "s1", source = src, state = state, max_tries = 1 })
      assert.same({ 0, 10 }, { s.read, #s.given_up })            -- still there, said again
      -- the command says so, and how to push them again
      sh.write_file(dir .. "/src.lua", "return function() return nil end\n")
      local code, text = wdt(("push orders --shop s1 --source %s --state %s"):format(sh.quote(dir .. "/src.lua"),
        sh.quote(state.path)))
      assert.equal(1, code, text)
      assert.truthy(text:find("given up (kept in the state, listed on every run) (10):", 1, true), text)
      assert.truthy(text:find(("wdt push orders --shop 's1' --source '%s' --state '%s' --retry-given-up")
        :format(dir .. "/src.lua", state.path), 1, true), text)
      s = assert(client:push_orders { shop_no = "s1", source = src, state = state, retry_given_up = true })
      assert.same({ 10, 10, 0, 0 }, { s.retried, s.new, #s.given_up, s.pending })
      assert.equal(10, raw_trades())
    end)

    it("a state is its seller's and source's: another seller's or source's is refused, nothing pushed", function()
      local state = store.file(dir .. "/state.json")
      emu:faults { mode = "http_500", count = 1 }
      client:push_orders { shop_no = "s1", source = pages_of(platform.orders(1, 2), 100), state = state,
                           source_name = "/a.lua" }
      local other = wdt_client_of(emu, "other")
      local s, err = other:push_orders { shop_no = "s1", source = pages_of(platform.orders(11, 30), 100),
                                         state = state }
      other:close()
      assert.is_nil(s)
      assert.equal("state", err.kind)
      assert.truthy(err.message:find("belongs to seller " .. SID, 1, true), err.message)
      assert.equal(0, err.summary.read)
      s, err = client:push_orders { shop_no = "s1", source = pages_of(platform.orders(1, 2), 100), state = state,
                                    source_name = "/b.lua" }
      assert.is_nil(s)
      assert.truthy(err.message:find("belongs to the source /a.lua", 1, true), err.message)
      assert.equal(0, raw_trades())
      local kept = 0
      for _ in pairs(state:load().pending) do kept = kept + 1 end
      assert.equal(2, kept)
    end)

    it("two shops' first runs on one new state file: the second finds the first's and is refused", function()
      local real = store.file(dir .. "/state.json")
      -- between this run's look (no file) and its first save, another shop's run creates it
      local raced = { path = real.path, save = function(_, d) return real:save(d) end,
                      create = function(_, d) return real:create(d) end,
                      load = function()
                        local d, e = real:load()
                        if d == nil and not e then
                          real:save({ version = 1, sid = SID, flow = "orders", shop_no = "s2", pending = {} })
                        end
                        return d, e
                      end }
      local s, err = client:push_orders { shop_no = "s1", source = pages_of(platform.orders(1, 5), 100), state = raced }
      assert.is_nil(s)
      assert.equal("state", err.kind)
      assert.truthy(err.message:find("for shop s2", 1, true), err.message)
      assert.equal("s2", real:load().shop_no)                      -- the other's state, kept
      assert.equal(0, raw_trades())
    end)

    for name, doc in pairs({
      ["pending a list"] = { version = 1, flow = "orders", shop_no = "s1", pending = { 1, 2 } },
      ["pending a string"] = { version = 1, flow = "orders", shop_no = "s1", pending = "x" },
      ["pending {X1: 5}"] = { version = 1, flow = "orders", shop_no = "s1", pending = { X1 = 5 } },
      ["chunk 5"] = { version = 1, flow = "orders", shop_no = "s1", pending = {}, chunk = 5 },
      ["given_up an object"] = { version = 1, flow = "orders", shop_no = "s1", pending = {}, given_up = { a = 1 } },
    }) do
      it("a damaged state (" .. name .. ") is refused before anything is pushed", function()
        local state = store.file(dir .. "/state.json")
        sh.write_file(state.path, cjson.encode(doc))
        local s, err = client:push_orders { shop_no = "s1", source = pages_of(platform.orders(1, 10), 100),
                                            state = state }
        assert.is_nil(s)
        assert.equal("state", err.kind)
        assert.truthy(err.message:find("damaged", 1, true), err.message)
        assert.equal(0, raw_trades())
      end)
    end

    it("a state or checkpoint that is no regular file, or too large, is refused without reading it", function()
      local v, err = store.file(dir):load()
      assert.is_nil(v)
      assert.truthy(tostring(err):find("not a regular file", 1, true), tostring(err))
      -- a FIFO: opening it to read would wait for a writer, for ever (the run lock held)
      local fifo = dir .. "/fifo.json"
      assert.is_true(compat.execute("mkfifo " .. sh.quote(fifo)))
      local fcode, _, ferr = wdt("scan goods.ApiGoods.search --checkpoint " .. sh.quote(fifo) .. " --since 0",
        { pre = "timeout 10" })
      assert.equal(1, fcode, ferr)
      assert.truthy(ferr:find("not a regular file", 1, true), ferr)
      local big = dir .. "/big.json"
      sh.write_file(big, "[" .. ("1,"):rep(100) .. "1]")
      local max = store.MAX_BYTES
      store.MAX_BYTES = 100
      v, err = store.file(big):load()
      store.MAX_BYTES = max
      assert.is_nil(v)
      assert.truthy(tostring(err):find("larger than 100 bytes", 1, true), tostring(err))
      -- devices through the commands, in a shell whose memory is capped (1 GB): reading
      -- /dev/zero to its end would otherwise take the machine's
      sh.write_file(dir .. "/src.lua", "return function() return nil end\n")
      local capped = { shell = "ulimit -v 1000000 &&" }
      for _, dev in ipairs({ "/dev/zero", "/dev/full" }) do
        local code, _, serr = wdt("scan goods.ApiGoods.search --checkpoint " .. dev .. " --since 0", capped)
        assert.equal(1, code, serr)
        assert.truthy(serr:find("not a regular file", 1, true), serr)
        code, _, serr = wdt("push orders --shop s1 --source " .. sh.quote(dir .. "/src.lua") .. " --state " .. dev,
          capped)
        assert.equal(1, code, serr)
        assert.truthy(serr:find("not a regular file", 1, true), serr)
      end
    end)

    it("after a store error, 'pending' is what the state file holds", function()
      local real = store.file(dir .. "/state.json")
      local src = pages_of(platform.orders(1, 10), 10)
      emu:faults { mode = "http_500", count = 1 }
      client:push_orders { shop_no = "s1", source = src, state = real }   -- 10 pending, saved
      -- the next run pushes them, but the disk is full: the file still holds all 10
      local failing = { path = real.path, load = function() return real:load() end,
                        save = function()
                          return nil, require("wdt.errors").new { kind = "store", message = "disk full" }
                        end }
      local _, err = client:push_orders { shop_no = "s1", source = src, state = failing }
      assert.equal("store", err.kind)
      local held = 0
      for _ in pairs(real:load().pending) do held = held + 1 end
      assert.equal(held, err.summary.pending)
      assert.equal(10, held)
    end)

    it("a call retried after a try that was applied: its 'changed' items are said to be maybe new", function()
      emu:faults { mode = "truncated", method = "sales.RawTrade.pushSelf2", count = 1 }
      local retrying = fixtures.client(emu, { retries = 2 })
      local s = assert(retrying:push_orders { shop_no = "s1", orders = platform.orders(1, 10) })
      retrying:close()
      assert.same({ 0, 10, 10 }, { s.new, s.changed, s.changed_maybe_new })
      emu:reset()
      emu:faults { mode = "truncated", method = "sales.RawTrade.pushSelf2", count = 1 }
      local code, text = wdt("push orders --shop s1 " .. sh.quote(orders_file(10)))
      assert.equal(0, code, text)
      assert.truthy(text:find("changed     10 (10 of them may be new", 1, true), text)
    end)
  end)

  it("a Redis restarted without persistence forgets a run lock: the holder learns it at its next renewal", function()
    local lock = require "wdt.lock"
    local r = require("spec.support.redis").start()
    local ok, err = pcall(function()
      local a = assert(lock.acquire { name = "wdt.push.orders/s/s1", redis = r.url, ttl = 30 })
      -- restarted in place, nothing saved (--save '' --appendonly no): every key gone
      local port, rdir = r.port, r.dir
      os.execute("kill " .. r.pid)
      sh.wait_gone(r.pid, 5, 0.025)
      assert(compat.execute(("redis-server --port %d --bind 127.0.0.1 --dir %s --save '' --appendonly no "
        .. "--daemonize yes --pidfile %s/redis.pid --logfile %s/redis.log"):format(port, sh.quote(rdir),
        sh.quote(rdir), sh.quote(rdir))))
      for _ = 1, 200 do
        if io.open(rdir .. "/redis.pid") and r:command("PING") == "+PONG" then break end
        require("socket").sleep(0.025)
      end
      r.pid = tonumber(sh.read_file(rdir .. "/redis.pid"):match("%d+"))
      local held, lerr = a:touch(true)                 -- the next renewal
      assert.is_nil(held)
      assert.equal("locked", lerr.kind)
      assert.truthy(lerr.message:find("is gone from Redis (restarted without persistence", 1, true), lerr.message)
      local b = assert(lock.acquire { name = "wdt.push.orders/s/s1", redis = r.url })   -- the next run
      b:release()
    end)
    r:stop()
    assert(ok, err)
  end)

  it("the wall clock stepped back an hour while a push waits for its local rate budget: no longer wait", function()
    local ls = io.popen("ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1")
    local lib = ls:read("*l")
    ls:close()
    if not lib or lib == "" then pending("libfaketime is not installed (apt-get install faketime)") return end
    local step = dir .. "/faketime"
    sh.write_file(step, "+0\n")
    -- three calls, one a 2 s window; an hour back 1.2 s in, during the first wait
    local code, out, err = wdt(("push orders --shop s1 --batch 1 --json --no-lock --rate-per-minute 1 "
      .. "--rate-window 2 %s"):format(sh.quote(orders_file(3))), {
      shell = ("(sleep 1.2; echo -3600 >%s) &"):format(sh.quote(step)),
      env = ("LD_PRELOAD=%s FAKETIME_TIMESTAMP_FILE=%s FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1")
        :format(sh.quote(lib), sh.quote(step)),
      pre = "timeout 30" })
    assert.equal(0, code, err)
    assert.equal(3, cjson.decode(out).new)
    assert.equal("-3600\n", sh.read_file(step))        -- the step happened during the run
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
