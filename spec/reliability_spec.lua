-- Reliability and security promises of the client (doc/reliability.md): clock skew,
-- timeouts, the answer size cap, bad answers, TLS verification, bad input, secrets.
local wdt = require "wdt"
local core = require "wdt.core"
local policy = require "wdt.policy"
local socket = require "socket"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local compat = require "spec.support.compat"

-- distinctive credentials, so that a leak cannot hide behind a common string
local SID, KEY = "relsid", "relkey"
local SECRET, SALT = "S3cretPartQx7Zk", "SaltPartWv9Jm"
local APPSECRET = SECRET .. ":" .. SALT
local LIST, UPDATE = "sales.LogisticsSync.getSyncListExt", "sales.LogisticsSync.update"
local FILTER = { shop_no = "s1", is_own_platform = true }

local function leaks(s)
  s = tostring(s)
  return s:find(SECRET, 1, true) or s:find(SALT, 1, true) or s:find("sign=", 1, true)
      or s:find("salt=", 1, true)
end

-- every string reachable from v (keys too), with its path
local function strings_of(v, out, path, seen)
  out, path, seen = out or {}, path or "v", seen or {}
  if type(v) == "string" then
    out[#out + 1] = { path, v }
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      strings_of(k, out, path .. ".<key>", seen)
      strings_of(x, out, path .. "." .. tostring(k), seen)
    end
    local mt = getmetatable(v)
    if type(mt) == "table" then strings_of(mt, out, path .. ".<mt>", seen) end
  end
  return out
end

local function assert_no_secret(v, what)
  assert.is_nil(leaks(v), what .. " shows a secret: " .. tostring(v))
  for _, ps in ipairs(strings_of(v)) do
    assert.is_nil(leaks(ps[2]), what .. " holds a secret at " .. ps[1] .. ": " .. ps[2])
  end
end

describe("reliability", function()
  local emu

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 60, shop_no = "s1" } },
    } }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  local function new_client(extra)
    return fixtures.client(emu, { sid = SID, key = KEY, secret = APPSECRET }, extra)
  end

  before_each(function() emu:reset() end)

  ------------------------------------------------------------------------------ clock skew
  describe("clock skew", function()
    it("learns the server's clock from status 7, re-signs once and keeps the offset", function()
      local client = new_client()
      emu:faults { mode = "skew", skew_s = 3600, count = 4 }
      -- first call: status 7, then the re-signed try succeeds
      assert(client:page_call(LIST, { page_size = 1 }, FILTER))
      assert.equal(2, emu:state().requests)
      -- later calls go out with the offset: one request each
      assert(client:page_call(LIST, { page_size = 1 }, FILTER))
      assert(client:with { retries = 0 }:page_call(LIST, { page_size = 1 }, FILTER))
      assert.equal(4, emu:state().requests)
      local off = client._clock_offset
      assert.is_true(off > 3590 and off < 3610, "offset " .. tostring(off))
      -- the server's clock is right again: status 7 once more, learned back
      assert(client:page_call(LIST, { page_size = 1 }, FILTER))
      assert.equal(6, emu:state().requests)
      assert.is_true(math.abs(client._clock_offset) < 10)
      client:close()
    end)

    it("re-signs only once per call", function()
      local client = new_client { retries = 3 }
      -- the server's clock jumps again after the client learned it
      emu:faults { { mode = "skew", skew_s = 3600, count = 1 }, { mode = "skew", skew_s = -3600, count = 5 } }
      local page, err = client:page_call(LIST, { page_size = 1 }, FILTER)
      assert.is_nil(page)
      assert.equal("api", err.kind)
      assert.equal(7, err.status)
      assert.equal(2, err.tries)
      assert.equal(2, emu:state().requests)
      client:close()
    end)

    it("the offset learned through a `with` view belongs to the client", function()
      local client = new_client()
      emu:faults { mode = "skew", skew_s = -600, count = 3 }
      assert(client:with { timeout = 3 }:page_call(LIST, { page_size = 1 }, FILTER))
      assert(client:page_call(LIST, { page_size = 1 }, FILTER))
      assert.equal(3, emu:state().requests)
      client:close()
    end)
  end)

  ------------------------------------------------------------------------------ timeouts
  describe("timeouts", function()
    it("total timeout per client is kind timeout", function()
      local client = new_client { timeout = 0.3, retries = 0 }
      emu:faults { mode = "delay", delay_ms = 1500 }
      local t = core.unix_time()
      local _, err = client:page_call(LIST, { page_size = 1 }, FILTER)
      assert.equal("timeout", err.kind)
      assert.is_true(err.sent)
      assert.is_true(core.unix_time() - t < 1.2)
      client:close()
    end)

    it("total timeout per call overrides the client's", function()
      local client = new_client { timeout = 30, retries = 0 }
      emu:faults { mode = "delay", delay_ms = 1500 }
      local t = core.unix_time()
      local resp, err = client:request { method = LIST, pager = { page_size = 1 }, args = { FILTER },
                                         timeout = 0.3 }
      assert.is_nil(resp)
      assert.equal("timeout", err.kind)
      assert.is_true(core.unix_time() - t < 1.2)
      socket.sleep(1.3)
      -- and a longer per-call timeout outlasts a delay the client's own would not
      local short = new_client { timeout = 0.3, retries = 0 }
      emu:faults { mode = "delay", delay_ms = 600 }
      assert(short:with { timeout = 5 }:page_call(LIST, { page_size = 1 }, FILTER))
      short:close()
      client:close()
    end)

    describe("connect timeout", function()
      local srv, fill, url
      setup(function()
        -- a listener whose accept queue is full: SYNs go unanswered
        srv = socket.tcp()
        assert(srv:bind("127.0.0.1", 0))
        assert(srv:listen(0))
        local _, port = srv:getsockname()
        fill = {}
        for i = 1, 4 do
          local s = socket.tcp()
          s:settimeout(0)
          s:connect("127.0.0.1", port)
          fill[i] = s
        end
        url = ("http://127.0.0.1:%d/openapi"):format(port)
      end)
      teardown(function()
        for _, s in ipairs(fill) do s:close() end
        srv:close()
      end)

      it("per client: kind timeout, not sent, retried even for a write", function()
        local client = new_client { url = url, connect_timeout = 0.2, retries = 1 }
        local t = core.unix_time()
        local _, err = client:with { idempotent = false }:call(UPDATE, { { sync_id = 1, status = 0, error_msg = "" } })
        assert.equal("timeout", err.kind)
        assert.is_false(err.sent)
        assert.equal(2, err.tries)
        assert.is_true(core.unix_time() - t < 1.5)
        client:close()
      end)

      it("per call", function()
        local client = new_client { url = url, connect_timeout = 30, retries = 0 }
        local t = core.unix_time()
        local _, err = client:request { method = LIST, args = { FILTER }, connect_timeout = 0.2 }
        assert.equal("timeout", err.kind)
        assert.is_true(core.unix_time() - t < 1.5)
        client:close()
      end)
    end)
  end)

  ------------------------------------------------------------------------------ answers
  describe("answers", function()
    it("accepts gzip and caps the answer size after decompression", function()
      -- the emulator gzips: 50 rows are ~12 KB as JSON, ~1.3 KB on the wire
      local code, _, headers, raw = emu:request { method = LIST, sid = SID, key = KEY, secret = APPSECRET,
        args_json = '[{"shop_no":"s1","is_own_platform":true}]', page = { page_size = 50 },
        headers = { ["accept-encoding"] = "gzip" } }
      assert.equal(200, code)
      assert.equal("gzip", headers["content-encoding"])
      assert.is_true(#raw < 4000, "compressed size " .. #raw)
      local client = new_client { max_body = 4000 }
      local page, err = client:page_call(LIST, { page_size = 50 }, FILTER)
      assert.is_nil(page)
      assert.equal("too_large", err.kind)
      assert.equal(1, err.tries, "an answer too large is not retried")
      assert.truthy(tostring(err):find("4000", 1, true))
      client:close()
      local big = new_client { max_body = 64 * 1024 }
      page = assert(big:page_call(LIST, { page_size = 50 }, FILTER))
      assert.equal(50, #page.rows)
      big:close()
    end)

    it("the default cap is 64 MiB", function()
      local client = new_client()
      assert.equal(64 * 1024 * 1024, client._opts.max_body)
      client:close()
    end)

    it("bad answers are errors of kind decode or http, never a crash", function()
      local client = new_client()
      local cases = {
        { 200, "", "decode" }, { 200, "   ", "decode" }, { 200, "<html>oops</html>", "decode" },
        { 200, '{"status":0,"data":[1,2', "decode" }, { 200, "[1,2,3]", "decode" },
        { 200, '{"message":"no status"}', "decode" }, { 200, '{"status":"0"}', "decode" },
        { 200, "\0\1\2\255\254", "decode" }, { 200, '{"status":0}\0garbage', "decode" },
        { 200, string.rep("[", 5000), "decode" }, { 200, '"\\ud800"', "decode" },
        { 502, "<html><title>Bad Gateway</title></html>", "http" }, { 500, "", "http" },
        { 200, '{"status":1,"message":"验证失败"}', "api" },
      }
      for _, c in ipairs(cases) do
        local data, err = client:parse(c[1], c[2])
        assert.is_nil(data, ("%q"):format(c[2]))
        assert.equal(c[3], err.kind, ("%q"):format(c[2]))
        assert.equal("string", type(tostring(err)))
      end
      client:close()
    end)

    it("retries a truncated answer of a query and then succeeds", function()
      local client = new_client()
      emu:faults { mode = "truncated", count = 2 }
      local page = assert(client:page_call(LIST, { page_size = 5 }, FILTER))
      assert.equal(5, #page.rows)
      assert.equal(3, emu:state().requests)
      client:close()
    end)
  end)

  ------------------------------------------------------------------------------ TLS
  describe("https", function()
    local dir, pid, port
    setup(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(compat.execute("mkdir -p " .. dir))
      assert(compat.execute(("openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/k.pem -out %s/c.pem"
        .. " -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
        .. " >/dev/null 2>&1"):format(dir, dir)))
      port = emulator.free_port()
      local p = io.popen(("openssl s_server -accept 127.0.0.1:%d -cert %s/c.pem -key %s/k.pem -rev -quiet"
        .. " </dev/null >/dev/null 2>&1 & echo $!"):format(port, dir, dir))
      pid = tonumber(p:read("*l"))
      p:close()
      local deadline = socket.gettime() + 5
      repeat
        local s = socket.tcp()
        s:settimeout(0.2)
        local ok = s:connect("127.0.0.1", port)
        s:close()
        if ok then break end
        socket.sleep(0.05)
      until socket.gettime() > deadline
    end)
    teardown(function()
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
      os.execute("rm -rf " .. dir)
    end)

    local function call_with(extra)
      local o = { sid = SID, key = KEY, secret = APPSECRET, retries = 0, timeout = 20, connect_timeout = 20,
                  url = ("https://localhost:%d/openapi"):format(port) }
      for k, v in pairs(extra) do o[k] = v end
      local client = wdt.client(o)
      local _, err = client:call(LIST, FILTER)
      client:close()
      return err
    end

    it("verifies the peer by default", function()
      local err = call_with {}
      assert.equal("tls", err.kind, tostring(err))
      assert.is_false(err.sent)
      assert.truthy(tostring(err):lower():find("certificate", 1, true), tostring(err))
    end)

    it("does not retry a failed verification: another try meets the same certificate", function()
      local function new_tls_client(extra)
        local o = { sid = SID, key = KEY, secret = APPSECRET, retries = 3, timeout = 20,
                    connect_timeout = 20, url = ("https://localhost:%d/openapi"):format(port) }
        for k, v in pairs(extra or {}) do o[k] = v end
        return wdt.client(o)
      end
      local client = new_tls_client()
      local _, err = client:call(LIST, FILTER)
      client:close()
      assert.equal("tls", err.kind, tostring(err))
      assert.is_false(err.sent)
      assert.is_false(err.retryable)
      assert.equal(1, err.tries)                 -- so no back-off either: it waits between tries
      -- the same in a batch, and for a CA file that cannot be read
      client = new_tls_client { ca_file = dir .. "/missing.pem" }
      local results, failed = client:call_many({ { LIST, FILTER }, { "sales.StockSync.syncFail", 1, {} } })
      client:close()
      assert.equal(2, failed)
      for i = 1, 2 do
        assert.equal("tls", results[i].err.kind, tostring(results[i].err))
        assert.equal(1, results[i].err.tries)
        assert.is_false(results[i].err.sent)
      end
    end)

    it("accepts a server whose CA is given in ca_file", function()
      local err = call_with { ca_file = dir .. "/c.pem" }
      -- the handshake passed (the test server, `s_server -rev`, then answers no HTTP)
      assert.is_true(err.sent, tostring(err))
      assert.is_nil(tostring(err):lower():find("certificate", 1, true), tostring(err))
    end)

    it("insecure = true turns verification off, and says so on stderr", function()
      local script = ([[
        package.path = "./src/?.lua;./src/?/init.lua;" .. package.path
        package.cpath = "./build/?.so;" .. package.cpath
        local c = require("wdt").client{ sid = "s", key = "k", secret = %q, insecure = true,
          retries = 0, timeout = 20, connect_timeout = 20, url = "https://localhost:%d/openapi" }
        local _, err = c:call("a.b")
        io.stdout:write(err.kind, " ", tostring(err.sent), "\n")
      ]]):format(APPSECRET, port)
      local path = dir .. "/insecure.lua"
      local sf = assert(io.open(path, "wb"))
      sf:write(script)
      sf:close()
      local f = io.popen("lua5.4 " .. path .. " 2>&1")
      local out = f:read("*a")
      f:close()
      assert.truthy(out:find("WARNING: TLS peer verification is OFF for localhost", 1, true), out)
      assert.truthy(out:find("true", 1, true), out)            -- sent: past the handshake
      assert.is_nil(leaks(out), out)
    end)
  end)

  ------------------------------------------------------------------------------ bad input
  describe("bad input raises at once, naming the argument", function()
    local function raises(pattern, f, ...)
      local ok, msg = pcall(f, ...)
      assert.is_false(ok, "did not raise (" .. pattern .. ")")
      msg = tostring(msg)
      assert.truthy(msg:find(pattern, 1, true), "'" .. pattern .. "' not in: " .. msg)
      assert.is_nil(leaks(msg), msg)
      return msg
    end
    local base = { sid = SID, key = KEY, secret = APPSECRET, url = "http://127.0.0.1:1/openapi" }
    local function with(k, v)
      local o = {}
      for a, b in pairs(base) do o[a] = b end
      o[k] = v
      return o
    end

    it("client options", function()
      raises("options table expected", wdt.client, "x")
      raises("'sid'", wdt.client, with("sid", ""))
      raises("'sid'", wdt.client, with("sid", 42))
      raises("'key'", wdt.client, with("key", nil))
      raises("'secret'", wdt.client, with("secret", "nocolon"))
      raises("'secret'", wdt.client, with("secret", 12345))
      raises("'timeout'", wdt.client, with("timeout", "5"))
      raises("'timeout'", wdt.client, with("timeout", -1))
      raises("'retries'", wdt.client, with("retries", 1.5))
      raises("'retries'", wdt.client, with("retries", -1))
      raises("'max_body'", wdt.client, with("max_body", 0))
      raises("'insecure'", wdt.client, with("insecure", "yes"))
      raises("'ca_file'", wdt.client, with("ca_file", true))
      raises("'url'", wdt.client, with("url", "ftp://x"))
      raises("'bogus'", wdt.client, with("bogus", 1))
      -- the appsecret is never quoted
      local msg = raises("'secret'", wdt.client, with("secret", "Zq9SecretNoColon"))
      assert.is_nil(msg:find("Zq9SecretNoColon", 1, true))
    end)

    it("method names", function()
      local client = wdt.client(base)
      for _, m in ipairs({ "", "a b", "a/b", "a?b=c", "x;y", "a\0b", "方法", ".a" }) do
        raises("'method'", client.call, client, m)
        raises("'method'", client.page_call, client, m, { page_size = 1 })
        raises("'method'", client.request, client, { method = m })
      end
      raises("'method'", client.call, client, 42)
      raises("'method'", client.call, client, nil)
      client:close()
    end)

    it("arguments that cannot be encoded", function()
      local client = wdt.client(base)
      local cyc = {}
      cyc.self = cyc
      raises("args[1]", client.call, client, "a.b", function() end)
      raises("args[2].x", client.call, client, "a.b", 1, { x = 0 / 0 })
      raises("args[1]", client.call, client, "a.b", { [1] = 1, [3] = 3 })
      raises("args[1]", client.call, client, "a.b", { 1, x = 2 })
      raises("args[1]", client.call, client, "a.b", "\255\254")
      raises("args[1]", client.call, client, "a.b", cyc)
      raises("args[1]", client.call, client, "a.b", math.huge)
      raises("args[1]", client.call, client, "a.b", coroutine.create(function() end))
      client:close()
    end)

    it("per-call options and pagers", function()
      local client = wdt.client(base)
      raises("'retries'", client.request, client, { method = "a.b", retries = -1 })
      raises("'retries'", client.request, client, { method = "a.b", retries = "3" })
      raises("'timeout'", client.request, client, { method = "a.b", timeout = 0 })
      raises("'connect_timeout'", client.request, client, { method = "a.b", connect_timeout = "1" })
      raises("'idempotent'", client.request, client, { method = "a.b", idempotent = 1 })
      raises("'bogus'", client.request, client, { method = "a.b", bogus = true })
      raises("'args'", client.request, client, { method = "a.b", args = "x" })
      raises("page_size", client.request, client, { method = "a.b", pager = { page_size = 0 } })
      raises("'timeout'", client.with, client, { timeout = "1" })
      raises("'backoff'", client.with, client, { backoff = -1 })
      raises("options table expected", client.with, client, nil)
      raises("page_size", client.page_call, client, "a.b", { page_size = 1.5 })
      client:close()
    end)
  end)

  ------------------------------------------------------------------------------ secrets
  describe("secrets", function()
    it("are not readable back from the client, a view, or tostring", function()
      local client = new_client()
      assert_no_secret(client, "the client")
      assert_no_secret(client:with { retries = 0 }, "a view")
      assert.is_nil(leaks(tostring(client)))
      assert.is_nil(leaks(tostring(client._core)))
      assert.equal(tostring(client), tostring(client:with { retries = 1 }))
      -- the core userdata's metatable is locked
      assert.equal("wdt.core.client", getmetatable(client._core))
      client:close()
    end)

    it("are scrubbed from an API error message that echoes the request", function()
      local client = new_client()
      emu:faults { mode = "echo", count = 1 }
      local _, err = client:with { retries = 0 }:call(LIST, FILTER)
      emu:faults {}
      assert.equal("api", err.kind)
      assert.truthy(err.message:find("bad request: /openapi?", 1, true), err.message)
      for _, text in ipairs({ err.message, tostring(err), err.response.message }) do
        assert.is_nil(text:find(SALT, 1, true), text)
        assert.is_nil(text:find(SECRET, 1, true), text)
        assert.is_nil(text:find(KEY, 1, true), text)
        assert.is_nil(text:find(("%x"):rep(32)), text)                     -- the sign
        assert.truthy(text:find("sign=***", 1, true), text)
        assert.truthy(text:find("sid=" .. SID, 1, true), text)            -- the rest stays
      end
      client:close()
    end)

    it("appear in no error of any kind", function()
      local client = new_client { timeout = 0.4, max_body = 200 }
      local errs = {}
      local function collect(...)
        local v, e = ...
        if v == nil then errs[#errs + 1] = e end
      end
      for _, mode in ipairs({ "http_500", "reset", "delay", "non_json", "truncated", "rate_limit" }) do
        emu:faults { mode = mode, count = 10, delay_ms = 1000 }
        collect(client:with { retries = 0 }:call(UPDATE, { { sync_id = 1, status = 0, error_msg = "" } }))
      end
      emu:faults {}
      socket.sleep(0.7)
      collect(client:page_call(LIST, { page_size = 50 }, FILTER))                  -- too_large
      local wrong = wdt.client { sid = SID, key = KEY, secret = SECRET .. ":wrongsalt", url = emu.url }
      collect(wrong:call(LIST, FILTER))                                            -- api 1
      wrong:close()
      local nobody = wdt.client { sid = SID, key = KEY, secret = APPSECRET, retries = 0,
        url = ("http://127.0.0.1:%d/openapi"):format(emulator.free_port()) }
      collect(nobody:call(LIST, FILTER))                                           -- refused
      nobody:close()
      local kinds = {}
      for _, e in ipairs(errs) do
        kinds[e.kind] = true
        assert_no_secret(e, "error " .. tostring(e))
      end
      for _, k in ipairs({ "http", "network", "timeout", "decode", "too_large", "api" }) do
        assert.is_true(kinds[k], "no error of kind " .. k)
      end
      client:close()
    end)

    it("appear in none of the emulator's output or files", function()
      local client = new_client()
      assert(client:page_call(LIST, { page_size = 5 }, FILTER))
      emu:faults { mode = "http_500" }
      client:with { retries = 0 }:call(LIST, FILTER)
      client:close()
      local texts = { emu:stdout(), emu:stderr() }
      local p = io.popen("ps -o args= --ppid " .. emu.pid)
      local prefix = (p:read("*a") or ""):match("%-p (%S+)")
      p:close()
      assert.truthy(prefix, "the emulator's nginx prefix")
      local files = io.popen("find " .. prefix .. " -type f 2>/dev/null")
      local n = 0
      for path in files:lines() do
        local f = io.open(path, "rb")
        if f then
          texts[#texts + 1] = f:read("*a")
          f:close()
          n = n + 1
        end
      end
      files:close()
      assert.is_true(n > 0)
      for _, t in ipairs(texts) do
        assert.is_nil(t:find(SALT, 1, true), "salt in the emulator's output")
        assert.is_nil(t:find("sign=", 1, true), "a signed query string in the emulator's output")
      end
    end)
  end)

  ------------------------------------------------------------------------------ GC
  describe("collection", function()
    it("clients collected with and without close, used or not, never crash", function()
      for i = 1, 30 do
        local c = new_client()
        if i % 3 ~= 0 then assert(c:page_call(LIST, { page_size = 1 }, FILTER)) end
        if i % 2 == 0 then c:close() end
        if i % 5 == 0 then c:close() end                  -- close twice
      end
      collectgarbage()
      collectgarbage()
      local c = new_client()
      c:close()
      assert.has_error(function() c:call(LIST, FILTER) end)   -- a closed client raises
      local closed = tostring(c._core)
      assert.truthy(closed:find("closed", 1, true))
    end)
  end)

  ------------------------------------------------------------------------------ policy table
  describe("policy", function()
    it("classifies methods as documented", function()
      assert.is_true(policy.is_idempotent("sales.LogisticsSync.getSyncListExt"))
      assert.is_true(policy.is_idempotent("sales.LogisticsSync.update"))
      assert.is_true(policy.is_idempotent("setting.Shop.queryShop"))
      assert.is_true(policy.is_idempotent("sales.StockSync.getSelfWaitSyncIdListOpen"))
      assert.is_true(policy.is_idempotent("sales.StockSync.calcStock"))
      assert.is_false(policy.is_idempotent("sales.StockSync.syncSuccess"))
      assert.is_false(policy.is_idempotent("sales.StockSync.syncFail"))
      assert.is_false(policy.is_idempotent("sales.StockSync.cancelSync"))
      assert.is_false(policy.is_idempotent("system.ScriptExtension.call"))
      assert.is_false(policy.is_idempotent("wms.stockout.Sales.weighingExt"))
    end)

    it("sees edits of its tables at once", function()
      local m, w = "x.Y.getThing", "x.Y.pushThing"
      assert.is_true(policy.is_idempotent(m))
      assert.is_false(policy.is_idempotent(w))
      policy.idempotent_methods[m], policy.idempotent_methods[w] = false, true
      assert.is_false(policy.is_idempotent(m))
      assert.is_true(policy.is_idempotent(w))
      policy.idempotent_methods[m], policy.idempotent_methods[w] = nil, nil
      assert.is_true(policy.is_idempotent(m))
      local saved = policy.read_prefixes
      table.insert(saved, "push")                              -- edited in place
      assert.is_true(policy.is_idempotent(w))
      table.remove(saved)
      assert.is_false(policy.is_idempotent(w))
      policy.read_prefixes = { "list" }                       -- replaced
      assert.is_false(policy.is_idempotent(m))
      policy.read_prefixes = saved
      assert.is_true(policy.is_idempotent(m))
    end)

    it("retries what was refused or never sent always, the rest only when idempotent", function()
      local rl = { kind = "api", status = 100, message = "错误：超过每分钟最大并发次数限制!" }
      assert.is_true((policy.retryable(rl, false)))
      assert.is_false((policy.retryable({ kind = "api", status = 100, message = "其它" }, true)))
      assert.is_true((policy.retryable({ kind = "http", http_status = 429 }, false)))
      assert.is_true((policy.retryable({ kind = "network", sent = false }, false)))
      assert.is_true((policy.retryable({ kind = "timeout", sent = false }, false)))
      assert.is_false((policy.retryable({ kind = "network", sent = true }, false)))
      assert.is_true((policy.retryable({ kind = "network", sent = true }, true)))
      assert.is_true((policy.retryable({ kind = "http", http_status = 503 }, true)))
      assert.is_false((policy.retryable({ kind = "http", http_status = 503 }, false)))
      assert.is_false((policy.retryable({ kind = "http", http_status = 404 }, true)))
      assert.is_false((policy.retryable({ kind = "too_large", sent = true }, true)))
      assert.is_false((policy.retryable({ kind = "tls", sent = false }, true)))   -- the same certificate again
      assert.is_false((policy.retryable({ kind = "api", status = 1, message = "验证失败" }, true)))
    end)

    it("backs off exponentially with jitter, capped", function()
      for try = 1, 10 do
        local d = policy.delay(try, 0.5, 30)
        local full = math.min(0.5 * 2 ^ (try - 1), 30)
        assert.is_true(d >= full / 2 and d <= full, ("try %d: %s"):format(try, d))
      end
    end)
  end)
end)
