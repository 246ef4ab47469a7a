-- A Redis URL may carry a password: it is checked when the client or the lock is made (an
-- argument error naming the option), and no message ever shows the password.
local wdt = require "wdt"
local lock = require "wdt.lock"
local redis = require "wdt.redis"
local emulator = require "spec.support.emulator"

local PW = "sekretpw"

local function raised(f)
  local ok, err = pcall(f)
  assert.is_false(ok, "no error raised")
  return tostring(err)
end

describe("Redis URLs", function()
  local function client(url)
    return wdt.client { sid = emulator.DEMO.sid, key = emulator.DEMO.key, secret = emulator.DEMO.appsecret,
                        url = "http://127.0.0.1:1/openapi", rate = { per_minute = 10, redis = url } }
  end

  for _, url in ipairs({ "rediss://:" .. PW .. "@127.0.0.1", "redis://:" .. PW .. "@", "http://u:" .. PW .. "@h",
                         ":" .. PW .. "@127.0.0.1", "redis://:" .. PW .. "@a@b/x" }) do
    it("wdt.client rejects rate.redis = " .. url:gsub(PW, "PW") .. " at once, the password masked", function()
      local msg = raised(function() client(url) end)
      assert.truthy(msg:find("bad argument 'rate.redis' to 'wdt.client'", 1, true), msg)
      assert.is_nil(msg:find(PW, 1, true), msg)
    end)

    it("lock.acquire rejects redis = " .. url:gsub(PW, "PW") .. " at once, the password masked", function()
      local msg = raised(function() lock.acquire { name = "n", redis = url } end)
      assert.truthy(msg:find("'redis'", 1, true), msg)
      assert.is_nil(msg:find(PW, 1, true), msg)
    end)
  end

  it("says that rediss:// (TLS) is not supported", function()
    local msg = raised(function() client("rediss://:" .. PW .. "@127.0.0.1") end)
    assert.truthy(msg:find("a redis:// URL expected (rediss://, Redis over TLS, is not supported), "
      .. "got 'rediss://***@127.0.0.1'", 1, true), msg)
  end)

  it("a good URL with a password: the failure to connect does not show it either", function()
    local port = emulator.free_port()
    local url = ("redis://:%s@127.0.0.1:%d/2"):format(PW, port)
    local h, err = lock.acquire { name = "n", redis = url }
    assert.is_nil(h)
    assert.equal("redis", err.kind)
    assert.is_nil(tostring(err):find(PW, 1, true), tostring(err))
    local c = client(url)
    local data, cerr = c:call("setting.Shop.queryShop", { shop_no = "s1" })
    assert.is_nil(data)
    assert.is_nil(tostring(cerr):find(PW, 1, true), tostring(cerr))
    c:close()
  end)

  it("a password holding '@' is the userinfo up to the authority's last '@' (RFC 3986), never shown", function()
    local port = emulator.free_port()
    local spec = assert(redis.parse_url(("redis://:p@ss%sW0rd@127.0.0.1:%d/3"):format(PW, port)))
    assert.same({ host = "127.0.0.1", port = port, password = "p@ss" .. PW .. "W0rd", db = 3 }, spec)
    assert.equal("p@ss/x", redis.parse_url("redis://:p%40ss%2Fx@h").password)
    local url = ("redis://:p@ss%s@127.0.0.1:%d"):format(PW, port)
    local h, err = lock.acquire { name = "n", redis = url }
    assert.is_nil(h)
    assert.is_nil(tostring(err):find(PW, 1, true), tostring(err))
    assert.truthy(tostring(err):find("cannot connect to 127.0.0.1:" .. port, 1, true), tostring(err))
    -- what fails to parse is masked whole, '@' or not
    for _, bad in ipairs({ "redis://:" .. PW, "redis://:" .. PW .. "@h:x", "redis://" .. PW .. " h" }) do
      local msg = raised(function() lock.acquire { name = "n", redis = bad } end)
      assert.is_nil(msg:find(PW, 1, true), msg)
    end
  end)

  it("a real redis-server with a password holding '@': the lock is taken, from a URL, WDT_REDIS or --config", function()
    local r = require("spec.support.redis").start()
    local ok, err = pcall(function()
      local pw = "p@ss" .. PW
      assert.equal("+OK", r:command("CONFIG", "SET", "requirepass", pw))
      local url = ("redis://:%s@127.0.0.1:%d"):format(pw, r.port)
      local h = assert(lock.acquire { name = "n", redis = url })
      h:release()
      -- the command line: the URL in a config file (ps shows no password)
      local sh = require "spec.support.sh"
      local dir = sh.tmpdir()
      sh.write_file(dir .. "/conf", "WDT_REDIS=" .. url .. "\n")
      os.execute("chmod 600 " .. sh.quote(dir .. "/conf"))
      local config = require "wdt.cli.config"
      assert.equal(url, config.redis_url({ config = dir .. "/conf" }, {}))
      assert.equal(url, config.lock_spec({ config = dir .. "/conf" }, {}).redis)
      os.execute("rm -rf " .. sh.quote(dir))
    end)
    r:stop()
    assert(ok, err)
  end)

  it("masks what stands before the last '@'", function()
    assert.equal("redis://***@h:1/0", redis.masked("redis://:p@ss@h:1/0"))
    assert.equal("redis://h:1", redis.masked("redis://h:1"))
    assert.equal("***@h", redis.masked(":p@h"))
  end)
end)
