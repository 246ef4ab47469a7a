-- The C core (wdt.core) on its own: signing, prepare, the client userdata's life cycle,
-- argument checks and parse. Expected signs are computed with `openssl dgst -md5`, never
-- with our own code. Sending against a server is covered by the emulator specs.
local core = require "wdt.core"
local wdt = require "wdt"

-- MD5 of `s` by the openssl command line tool (an independent implementation).
local function openssl_md5(s)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  local p = assert(io.popen("openssl dgst -md5 -r < '" .. path .. "'"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return (assert(out:match("^(%x+)"), "no digest from openssl: " .. out))
end

-- The canonical string of protocol.md, built independently of wdt_sign.c.
local function independent_sign(secret, params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = { secret }
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. tostring(params[k]) end
  parts[#parts + 1] = secret
  return openssl_md5(table.concat(parts))
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function query_of(url)
  local q = {}
  local order = {}
  for k, v in url:match("%?(.*)$"):gmatch("([^&=]+)=([^&]*)") do
    q[k] = unescape(v)
    order[#order + 1] = k
  end
  return q, order
end

local EXAMPLE1 = {
  secret = "693f9fed686bfe13441385da98b436b6",
  params = {
    sid = "wdterp30", key = "czhc", salt = "dd488d0802b1e431e4c72cd355847853",
    method = "wms.stockout.Sales.weighingExt", v = "1.0", timestamp = "232623153",
    body = '["xc109393939393939","",1.2,0,false]',
  },
  sign = "20f557aaf9190797c581bbceeb6d5a5c",
}
local EXAMPLE2 = {
  secret = "12345",
  params = {
    sid = "apidevnew2", key = "test2-xx", salt = "abcde",
    method = "sales.LogisticsSync.update", v = "1.0", timestamp = "1",
    body = '[[{"sync_id":88950,"status":0,"error_msg":""}]]',
  },
  sign = "22bb377c2960b38cbe675019ce480023",
}

-- core.client_new takes every option: wdt.client checks and defaults them (wdt.options).
local function core_opts(opts)
  local o = { url = "http://wdt.wangdian.cn/openapi", timeout = 30, connect_timeout = 10,
              max_body = 64 * 1024 * 1024, insecure = false }
  for k, v in pairs(opts or {}) do o[k] = v end
  return o
end

local function new_client(opts)
  return core.client_new("apidevnew2", "test2-xx", "12345:abcde", core_opts(opts))
end

local LOGISTICS_ARGS = { { { sync_id = 88950, status = 0, error_msg = "" } }, n = 1 }

describe("wdt.core", function()
  describe("sign", function()
    it("reproduces the vendor's worked example", function()
      assert.are.equal(EXAMPLE1.sign, core.sign(EXAMPLE1.secret, EXAMPLE1.params))
    end)

    it("reproduces the second worked example", function()
      assert.are.equal(EXAMPLE2.sign, core.sign(EXAMPLE2.secret, EXAMPLE2.params))
    end)

    it("agrees with openssl on the worked examples (sanity of the vectors)", function()
      assert.are.equal(EXAMPLE1.sign, independent_sign(EXAMPLE1.secret, EXAMPLE1.params))
      assert.are.equal(EXAMPLE2.sign, independent_sign(EXAMPLE2.secret, EXAMPLE2.params))
    end)

    it("takes integer values as their decimal text", function()
      local p = {}
      for k, v in pairs(EXAMPLE2.params) do p[k] = v end
      p.timestamp = 1
      assert.are.equal(EXAMPLE2.sign, core.sign(EXAMPLE2.secret, p))
    end)

    it("sorts keys byte-wise, shorter prefix first", function()
      local p = { a = "1", ab = "2", B = "3", ["a_"] = "4" }
      assert.are.equal(independent_sign("s", p), core.sign("s", p))
    end)

    it("rejects bad arguments, naming them", function()
      assert.has_error(function() core.sign(nil, {}) end)
      assert.error_matches(function() core.sign("s", "x") end, "params")
      assert.error_matches(function() core.sign("s", { a = true }) end, "params%.a")
      assert.error_matches(function() core.sign("s", { [1] = "x" }) end, "keys must be strings")
    end)
  end)

  describe("client_new", function()
    it("raises on a malformed appsecret, naming the secret but not quoting it", function()
      local ok, err = pcall(core.client_new, "sid", "key", "nocolonhere", core_opts())
      assert.is_false(ok)
      assert.matches("secret", err)
      assert.is_nil(err:find("nocolonhere", 1, true))
      ok, err = pcall(wdt.client, { sid = "sid", key = "key", secret = ":salt123" })
      assert.is_false(ok)
      assert.matches("secret", err)
      assert.is_nil(err:find("salt123", 1, true))
    end)

    it("splits the appsecret at the first ':'", function()
      local c = core.client_new("s", "k", "sec:sa:lt", core_opts())
      local url, body = c:prepare("m", { n = 0 }, nil, 5)
      local q = query_of(url)
      assert.are.equal("sa:lt", q.salt)
      assert.are.equal(independent_sign("sec", {
        sid = "s", key = "k", salt = "sa:lt", method = "m", v = "1.0", timestamp = 5, body = body,
      }), q.sign)
      c:close()
    end)

    it("rejects wrong argument types, naming the argument", function()
      assert.error_matches(function() core.client_new(1, "k", "a:b", core_opts()) end, "sid")
      assert.error_matches(function() core.client_new("s", nil, "a:b", core_opts()) end, "key")
      assert.error_matches(function() core.client_new("s", "k", "a:b", 5) end, "opts")
      assert.error_matches(function() core.client_new("s", "k", "a:b", core_opts { timeout = "5" }) end, "timeout")
      assert.error_matches(function() core.client_new("s", "k", "a:b", core_opts { url = 5 }) end, "opts%.url")
      local function new_with(o) return function() core.client_new("s", "k", "a:b", core_opts(o)) end end
      assert.error_matches(new_with { url = "http://x\0/" }, "opts%.url")
      assert.error_matches(new_with { insecure = 1 }, "opts%.insecure")
      assert.error_matches(new_with { max_body = 0.5 }, "opts%.max_body")
    end)

    it("leaves ranges and the URL rule to wdt.client, naming the option", function()
      local base = { sid = "s", key = "k", secret = "a:b" }
      for name, v in pairs({ timeout = -1, url = "ftp://x", insecure = 1, max_body = 0 }) do
        local o = {}
        for k, bv in pairs(base) do o[k] = bv end
        o[name] = v
        assert.error_matches(function() wdt.client(o) end, "'" .. name .. "'")
      end
    end)

    it("never shows the secret or the salt in tostring", function()
      local c = core.client_new("apidevnew2", "test2-xx", "s3cr3t:5a1t", core_opts())
      local s = tostring(c)
      assert.are.equal("wdt.core.client<sid=apidevnew2>", s)
      assert.is_nil(s:find("s3cr3t", 1, true))
      assert.is_nil(s:find("5a1t", 1, true))
      c:close()
      assert.is_nil(tostring(c):find("s3cr3t", 1, true))
    end)
  end)

  describe("prepare", function()
    it("builds worked example 2: sorted-key body and an independently checked sign", function()
      local c = new_client({ url = "http://127.0.0.1:9/openapi" })
      local url, body = c:prepare("sales.LogisticsSync.update", LOGISTICS_ARGS, nil, 1)
      assert.are.equal('[[{"error_msg":"","status":0,"sync_id":88950}]]', body)
      assert.are.equal("http://127.0.0.1:9/openapi", url:match("^[^?]+"))
      local q, order = query_of(url)
      assert.are.same({ "sid", "key", "salt", "method", "v", "timestamp", "sign" }, order)
      assert.are.equal("apidevnew2", q.sid)
      assert.are.equal("test2-xx", q.key)
      assert.are.equal("abcde", q.salt)
      assert.are.equal("sales.LogisticsSync.update", q.method)
      assert.are.equal("1.0", q.v)
      assert.are.equal("1", q.timestamp)
      local expected = openssl_md5("12345body" .. body
        .. "keytest2-xxmethodsales.LogisticsSync.updatesaltabcdesidapidevnew2timestamp1v1.012345")
      assert.are.equal(expected, q.sign)
      c:close()
    end)

    it("adds the paging parameters and signs them", function()
      local c = new_client()
      local url, body = c:prepare("sales.LogisticsSync.getSyncListExt",
        { { shop_no = "s1", is_own_platform = true }, n = 1 },
        { page_size = 100, page_no = 2, calc_total = true }, 42)
      assert.are.equal('[{"is_own_platform":true,"shop_no":"s1"}]', body)
      local q = query_of(url)
      assert.are.equal("100", q.page_size)
      assert.are.equal("2", q.page_no)
      assert.are.equal("1", q.calc_total)
      assert.are.equal(independent_sign("12345", {
        sid = "apidevnew2", key = "test2-xx", salt = "abcde",
        method = "sales.LogisticsSync.getSyncListExt", v = "1.0", timestamp = 42,
        page_size = 100, page_no = 2, calc_total = 1, body = body,
      }), q.sign)
      local url0 = c:prepare("m", { n = 0 }, { page_size = 10, page_no = 0, calc_total = false }, 42)
      assert.are.equal("0", query_of(url0).calc_total)
      c:close()
    end)

    it("encodes args.n positional values, nil as null", function()
      local c = new_client()
      local _, body = c:prepare("m", { n = 3, nil, "a", nil }, nil, 1)
      assert.are.equal('[null,"a",null]', body)
      _, body = c:prepare("m", { n = 0 }, nil, 1)
      assert.are.equal("[]", body)
      _, body = c:prepare("m", { "xc1", "", 0, false, n = 4 }, nil, 1)
      assert.are.equal('["xc1","",0,false]', body)
      _, body = c:prepare("m", { core.null, n = 1 }, nil, 1)
      assert.are.equal("[null]", body)
      c:close()
    end)

    it("percent-encodes the query (RFC 3986 unreserved kept)", function()
      local c = core.client_new("a b&c", "k~-._", "x:s/+=?", core_opts { url = "https://h.example/api" })
      local url = c:prepare("m", { n = 0 }, nil, 1)
      assert.matches("^https://h%.example/api%?sid=a%%20b%%26c&key=k~%-%._&salt=s%%2F%%2B%%3D%%3F&", url)
      c:close()
    end)

    it("names where an argument cannot be encoded", function()
      local c = new_client()
      assert.has_error(function()
        c:prepare("m", { { 1, { x = print } }, n = 1 }, nil, 1)
      end, "args[1][2].x: cannot encode a function")
      assert.has_error(function()
        c:prepare("m", { n = 2, "ok", { a = { coroutine.create(function() end) } } }, nil, 1)
      end, "args[2].a[1]: cannot encode a thread")
      c:close()
    end)

    it("rejects wrong argument types, naming the argument", function()
      local c = new_client()
      assert.error_matches(function() c:prepare(1, { n = 0 }, nil, 1) end, "method")
      assert.error_matches(function() c:prepare("m", "x", nil, 1) end, "args")
      assert.error_matches(function() c:prepare("m", { n = -1 }, nil, 1) end, "args%.n")
      assert.error_matches(function() c:prepare("m", { n = 0 }, 5, 1) end, "pager")
      assert.error_matches(function() c:prepare("m", { n = 0 }, { page_no = 0 }, 1) end, "pager%.page_size")
      assert.error_matches(function() c:prepare("m", { n = 0 }, { page_size = 1, page_no = -1 }, 1) end,
        "pager%.page_no")
      assert.error_matches(function() c:prepare("m", { n = 0 }, nil, "1") end, "timestamp")
      assert.error_matches(function() c:prepare("m", { n = 0 }, nil, 1.5) end, "timestamp")
      assert.error_matches(function() c:send(1, "") end, "url")
      assert.error_matches(function() c:send("http://x/", {}) end, "body")
      c:close()
    end)
  end)

  describe("life cycle", function()
    it("close is idempotent and later use raises 'client is closed'", function()
      local c = new_client()
      c:close()
      c:close()
      assert.error_matches(function() c:prepare("m", { n = 0 }, nil, 1) end, "client is closed")
      assert.error_matches(function() c:send("http://127.0.0.1:9/", "[]") end, "client is closed")
      assert.are.equal("wdt.core.client<sid=apidevnew2, closed>", tostring(c))
    end)

    it("protects its metatable", function()
      local c = new_client()
      assert.are.equal("wdt.core.client", getmetatable(c))
      c:close()
    end)

    if _VERSION == "Lua 5.4" then
      it("closes as a to-be-closed variable", function()
        local f = assert(load([[
          local core, opts = ...
          local kept
          do
            local c <close> = core.client_new("s", "k", "a:b", opts)
            kept = c
          end
          return kept
        ]]))
        local c = f(core, core_opts())
        assert.error_matches(function() c:prepare("m", { n = 0 }, nil, 1) end, "client is closed")
      end)
    end

    it("survives garbage collection of many clients", function()
      for _ = 1, 200 do new_client() end
      collectgarbage()
      collectgarbage()
    end)
  end)

  describe("send", function()
    it("reports a refused connection as a network failure that was not sent", function()
      local c = new_client({ connect_timeout = 2, timeout = 5 })
      local url = c:prepare("m", { n = 0 }, nil, 1):gsub("^http://[^/]+/openapi", "http://127.0.0.1:9/openapi")
      local answer, failure = c:send(url, "[]")
      assert.is_nil(answer)
      assert.are.equal("network", failure.kind)
      assert.is_false(failure.sent)
      assert.is_string(failure.message)
      assert.is_nil(failure.message:find("sign=", 1, true))
      assert.is_nil(failure.message:find("abcde", 1, true))
      c:close()
    end)
  end)

  describe("parse", function()
    it("returns the response when status is 0", function()
      local r = core.parse(200, '{"status":0,"data":{"total_count":1}}')
      assert.are.equal(0, r.status)
      assert.are.equal(1, r.data.total_count)
    end)

    it("reports api errors with the message, the status and the response", function()
      local r, err = core.parse(200, '{"status":100,"message":"超过每分钟最大调用频率限制"}')
      assert.is_nil(r)
      assert.are.equal("api", err.kind)
      assert.are.equal("超过每分钟最大调用频率限制", err.message)
      assert.are.equal(100, err.status)
      assert.are.equal(100, err.response.status)
      local _, e2 = core.parse(200, '{"status":5}')
      assert.are.equal("status 5", e2.message)
    end)

    it("reports an API status above 2^31 exactly", function()
      local _, err = core.parse(200, '{"status":4294967297}')
      assert.are.equal("api", err.kind)
      assert.are.equal(4294967297, err.status)
      assert.are.equal("status 4294967297", err.message)
    end)

    it("counts only status 0 as success: a negative status is a decode error", function()
      for _, body in ipairs({ '{"status":-1,"data":1}', '{"status":-2147483649}', '{"data":1}',
                              '{"status":null}', '{"status":"0"}', '{"status":true}' }) do
        local r, err = core.parse(200, body)
        assert.is_nil(r, body)
        assert.are.equal("decode", err.kind, body)
      end
    end)

    it("reads a status written 0.0 as the integer 0, and 0.5 as no status", function()
      local r = assert(core.parse(200, '{"status":0.0,"data":1}'))
      assert.are.equal(0, r.status)
      if math.type then assert.are.equal("integer", math.type(r.status)) end
      local _, err = core.parse(200, '{"status":0.5}')
      assert.are.equal("decode", err.kind)
    end)

    it("reports HTTP errors", function()
      local r, err = core.parse(502, "")
      assert.is_nil(r)
      assert.are.equal("http", err.kind)
      assert.are.equal("HTTP 502", err.message)
      assert.is_nil(err.status)
      assert.is_nil(err.response)
      local _, e = core.parse(503, "<html><head><title>503 Service Unavailable</title></head><body>x</body></html>")
      assert.are.equal("HTTP 503: 503 Service Unavailable", e.message)
      _, e = core.parse(400, "bad request: sign=abc&salt=zzz")
      assert.are.equal("HTTP 400", e.message)
    end)

    it("reports answers that are not a JSON object with an integer status", function()
      for _, body in ipairs({ "not json", "[1,2]", '{"message":"x"}', '{"status":"0"}', '{"status":0.5}', "" }) do
        local r, err = core.parse(200, body)
        assert.is_nil(r)
        assert.are.equal("decode", err.kind)
        assert.is_string(err.message)
      end
    end)
  end)

  describe("codec bindings", function()
    it("encodes and decodes", function()
      assert.are.equal('{"a":[1,2],"b":null}', core.encode({ b = core.null, a = { 1, 2 } }))
      local v = core.decode('{"a":[1,2],"b":null}')
      assert.are.equal(2, v.a[2])
      assert.are.equal(core.null, v.b)
    end)

    it("raises with the codec's message", function()
      assert.error_matches(function() core.encode({ f = print }) end, "value%.f")
      assert.error_matches(function() core.decode("[1,") end, "at byte")
    end)

    it("exposes null, array_mt and unix_time", function()
      assert.are.equal("userdata", type(core.null))
      assert.are.equal("table", type(core.array_mt))
      assert.are.equal("[]", core.encode(setmetatable({}, core.array_mt)))
      local t = core.unix_time()
      assert.is_true(t > 1325347200 and t < 4102444800)
    end)
  end)
end)
