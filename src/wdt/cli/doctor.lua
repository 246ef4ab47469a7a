-- `wdt doctor`: is this set-up able to run? One line per check (ok / FAIL / skip), exit 0
-- only when every check passed. The URL, the credentials and the clock are read from raw
-- tries (no retry, no clock correction): what the server answers to exactly what was sent.
local args = require "wdt.cli.args"
local config = require "wdt.cli.config"
local output = require "wdt.cli.output"
local exit = require "wdt.cli.exit"

local one_line = output.one_line

local PROBE = "setting.Shop.queryShop"       -- a read every appkey with shop rights may make
local MAX_CLOCK_OFFSET = 60                  -- seconds; the server refuses beyond 120

-- One signed try of the probe at `timestamp` (the API's: seconds since 2012) ->
-- answer {status, body, date}, response | nil, err (as the client's own tries).
local function try(client, timestamp)
  local url, body = client._core:prepare(PROBE, { n = 1, {} }, { page_size = 1, page_no = 0 }, timestamp)
  local answer, failure = client:executor().send(client, url, body, { timeout = client._opts.timeout,
                                                   connect_timeout = client._opts.connect_timeout })
  local resp, err = client:_outcome(PROBE, answer, failure)
  return answer, resp, err
end

local function is_api(err, text) return err and err.kind == "api" and tostring(err.message):find(text, 1, true) end

-- The URL, the clock and the credentials, from one try (and one more to tell which
-- credential a refusal is about). Adds lines through `say(ok, name, text)`.
local function check_server(client, c, say)
  local clock = require "wdt.clock"
  local answer, _, err = try(client, clock.timestamp(0))
  if not answer then
    say(false, "url", ("%s: %s"):format(c.url, one_line(err.message)))
    return nil
  end
  if err and err.kind ~= "api" then
    local hint = require("wdt.errors").hint(err)
    say(false, "url", ("%s: %s%s"):format(c.url, one_line(tostring(err)), hint and ("; " .. hint) or ""))
    return nil
  end
  say(true, "url", ("%s answers (HTTP %d)"):format(c.url, answer.status))
  local server = clock.parse_http_date(answer.date)
  local offset = server and server - require("wdt.core").unix_time()
  if not offset then
    say(false, "clock", "the answer has no Date header: the offset cannot be told")
  else
    local seconds = math.floor(offset + 0.5)
    say(math.abs(offset) <= MAX_CLOCK_OFFSET, "clock", ("the server's clock is %+d s from this host's "
      .. "(at most %d s; the server refuses calls beyond 120 s)"):format(seconds, MAX_CLOCK_OFFSET))
  end
  if err and err.status == 7 and offset then     -- refused for the clock: again on the server's
    answer, _, err = try(client, clock.timestamp(offset))
    if not answer then say(false, "credentials", one_line(tostring(err))) return false end
  end
  if not err then
    say(true, "credentials", ("sid %s, appkey and appsecret accepted"):format(c.sid))
    return true
  end
  if is_api(err, "sid is not") then
    say(false, "credentials", ("the sid (WDT_SID) '%s' is unknown at this URL: %s")
      :format(c.sid, one_line(err.message)))
  elseif is_api(err, "验证失败") then
    -- a try far off the server's clock: a server that checks the appkey and salt before the
    -- timestamp and the signature after it answers 'timestamp' when only the secret is wrong
    local _, _, skewed = try(client, clock.timestamp(offset or 0) - 86400)
    if skewed and skewed.status == 7 then
      say(false, "credentials", "the secret (WDT_SECRET's part before ':') is wrong: the server "
        .. "accepted the appkey and the salt, then refused the signature (验证失败)")
    else
      say(false, "credentials", "the appkey (WDT_KEY) or the salt (WDT_SECRET's part after ':') is "
        .. "wrong: the server refused them before looking at the time or the signature (验证失败)")
    end
  else
    local hint = require("wdt.errors").hint(err)
    say(false, "credentials", one_line(tostring(err)) .. (hint and ("; " .. hint) or ""))
  end
  return false
end

local function check_shops(client, shops, say)
  for shop_no in shops:gmatch("[^,]+") do
    local row, err = require("wdt.shop").check(client, shop_no)
    if row then
      say(true, "shop " .. shop_no, ("exists, enabled, self-owned platform (%s)"):format(one_line(row.shop_name or "")))
    else
      say(false, "shop " .. shop_no, one_line(err.message or tostring(err)))
    end
  end
end

-- The run locks: a lock taken and released where the flows take theirs.
local function check_locks(opts, env, c, say)
  local spec = config.lock_spec(opts, env)
  local where = spec.redis and ("Redis " .. require("wdt.redis").masked(spec.redis)) or spec.dir
  local lock = require "wdt.lock"
  spec.name = lock.run_name("doctor", c.sid)
  local h, err = lock.acquire(spec)
  if h then h:release() end
  say(h ~= nil, "locks", h and ("a run lock taken and released in " .. where)
                           or (where .. ": " .. one_line(err.message or tostring(err))))
end

local function check_redis(url, say)
  local redis = require "wdt.redis"
  local reply, err = redis.call(url, 5, "PING")
  say(reply == "PONG", "redis", reply == "PONG" and (redis.masked(url) .. " answers PING")
                                  or (redis.masked(url) .. ": " .. one_line(err and err.message or tostring(reply))))
end

local function run(ctx, opts, words)
  if words[1] then args.usage("'wdt doctor' takes no arguments ('%s')", words[1]) end
  local c = config.credentials(opts, ctx.env)
  local failed = 0
  local function say(ok, name, text)   -- ok: true, false, or nil for a check not made
    if ok == false then failed = failed + 1 end
    ctx.out(("%-4s  %-12s %s\n"):format(ok and "ok" or ok == false and "FAIL" or "skip", name, text))
  end
  local client = config.new_client(opts, ctx.env)
  local shops = opts.shop or ctx.env.WDT_SHOP
  local reached = check_server(client, c, say)
  if reached == nil then
    say(nil, "clock", "not checked: the URL gives no answer")
    say(nil, "credentials", "not checked: the URL gives no answer")
  end
  if shops and shops ~= "" then
    if reached then check_shops(client, shops, say) else say(nil, "shops", "not checked: no call is accepted") end
  end
  client:close()
  check_locks(opts, ctx.env, c, say)
  local redis_url = config.redis_url(opts, ctx.env)
  if redis_url then check_redis(redis_url, say) end
  if failed > 0 then
    ctx.err(("wdt doctor: %d check(s) failed\n"):format(failed))
    return exit.API
  end
  return exit.OK
end

return {
  name = "doctor",
  synopsis = "doctor",
  summary = "check the URL, credentials, clock, shops, lock folder and Redis",
  usage = { "doctor [--shop SHOP[,SHOP...]] [OPTIONS]" },
  about = [[
Checks that this set-up can run, one line per check: the URL answers; the credentials are
accepted (if not, which one is probably wrong, as far as the server's answers tell); the
server's clock is within 60 s of this host's; each shop of --shop (or WDT_SHOP) exists,
is enabled and is a self-owned platform's (自有平台); a run lock can be taken in the lock
folder (or in Redis); Redis answers, when --redis or WDT_REDIS is set.]],
  flags = {
    { "--shop SHOPS", "the shops to check, comma-separated (default WDT_SHOP)" },
    { "--lock-dir DIR", "the folder of the run locks to check (default as for the flows)" },
  },
  footer = "Exit codes: 0 every check passed, 1 some check failed (the FAIL lines), 2 usage error.",
  run = run,
}
