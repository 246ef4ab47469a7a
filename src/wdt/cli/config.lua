-- Credentials of the `wdt` command: the environment, --config FILE, --url; and the client
-- built from them.
local args = require "wdt.cli.args"

local config = {}
local usage = args.usage

local config_keys = { url = "url", sid = "sid", key = "key", secret = "secret", redis = "redis",
                      WDT_URL = "url", WDT_SID = "sid", WDT_KEY = "key", WDT_SECRET = "secret",
                      WDT_REDIS = "redis" }

-- The config file must be a file that only its owner can read or write: it holds the
-- appsecret. Like ssh with a private key, a file others can read is refused, not used.
local function check_private(path)
  local st = require("wdt.core").stat(path)
  if not st then return end                     -- io.open below says why
  if st.dir then usage("config file %s is a folder, not a file", path) end
  if st.mode % 64 ~= 0 then                     -- any group or other bit (mode & 077)
    usage("config file %s is accessible by others (mode %03o): it holds the appsecret; "
          .. "run 'chmod 600 %s'", path, st.mode % 512, path)
  end
end

-- A config file: a JSON object {"url","sid","key","secret"} or KEY=VALUE lines (the
-- WDT_* names or the short ones), '#' comments, optional quotes around values.
local function read_file(path)
  check_private(path)
  local f, err = io.open(path, "rb")
  if not f then usage("cannot read the config file: %s", err) end
  local text = f:read("*a")
  f:close()
  local out = {}
  if text:match("^%s*{") then
    local ok, v = pcall(require("wdt").json.decode, text)
    if not ok or type(v) ~= "table" then usage("config file %s: not a JSON object", path) end
    for k, val in pairs(v) do
      if not config_keys[k] then usage("config file %s: unknown key '%s'", path, tostring(k)) end
      if type(val) ~= "string" then usage("config file %s: '%s' must be a string", path, k) end
      out[config_keys[k]] = val
    end
    return out
  end
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = line:gsub("\r$", "")
    if not line:match("^%s*#") and line:match("%S") then
      local k, v = line:match("^%s*export%s+([%w_]+)%s*=%s*(.-)%s*$")
      if not k then k, v = line:match("^%s*([%w_]+)%s*=%s*(.-)%s*$") end
      if not k then usage("config file %s, line %d: KEY=VALUE expected", path, n) end
      if not config_keys[k] then usage("config file %s, line %d: unknown key '%s'", path, n, k) end
      local q = v:match("^\"(.*)\"$") or v:match("^'(.*)'$")
      out[config_keys[k]] = q or v
    end
  end
  return out
end

-- url/sid/key/secret from the environment, --config FILE over it, --url over both.
function config.credentials(opts, env)
  local c = {
    url = env.WDT_URL, sid = env.WDT_SID, key = env.WDT_KEY, secret = env.WDT_SECRET,
  }
  if opts.config then
    for k, v in pairs(read_file(opts.config)) do c[k] = v end
  end
  if opts.url then c.url = opts.url end
  for k, v in pairs(c) do if v == "" then c[k] = nil end end
  local missing = {}
  for _, k in ipairs({ "sid", "key", "secret" }) do
    if not c[k] then missing[#missing + 1] = "WDT_" .. k:upper() end
  end
  if #missing > 0 then
    usage("missing credentials: set %s (or use --config FILE)", table.concat(missing, ", "))
  end
  local options = require "wdt.options"   -- the client's rules
  if not options.secret_ok(c.secret) then
    usage("the appsecret (WDT_SECRET) must have the form 'secret:salt', both non-empty")
  end
  -- no URL is not production in silence: the target is named, or given as a URL
  local targets = options.TARGETS
  if not c.url then
    usage("no URL: set WDT_URL (or --url, or url in --config) to the ERP's URL, or to "
          .. "'production' (%s) or 'emulator' (%s)", targets.production, targets.emulator)
  end
  c.target = targets[c.url] and c.url or nil
  c.url = targets[c.url] or c.url
  local problem = options.url_problem(c.url)
  if problem then usage("the URL: %s", problem) end
  return c
end

-- The Redis server shared by several hosts (locks and rate budget): --redis, WDT_REDIS, or
-- `redis` in the --config file (a password on the command line is shown by `ps`).
function config.redis_url(opts, env)
  local url = opts.redis or env.WDT_REDIS
  if (url == nil or url == "") and opts.config then url = read_file(opts.config).redis end
  if url == "" then url = nil end
  if url and not require("wdt.redis").parse_url(url) then
    usage("--redis wants a URL redis://[:password@]host[:port][/db]")
  end
  return url
end

-- The run lock of a flow's command: the flow's `lock` option (wdt.lock's options; the flow
-- names it). In Redis with --redis/WDT_REDIS, else a file in --lock-dir, $WDT_LOCK_DIR or
-- /tmp/wdt-locks-UID; --wait SECONDS waits for a held lock; --no-lock: false (none).
function config.lock_spec(opts, env)
  if opts["no-lock"] then return false end
  local spec = { wait = args.number_option(opts, "wait", 0) or 0, redis = config.redis_url(opts, env) }
  if spec.wait > 7 * 86400 then usage("option '--wait' wants at most 604800 seconds") end
  if not spec.redis then
    spec.dir = opts["lock-dir"] or require("wdt.lock").default_dir(function(k) return env[k] end)
  end
  return spec
end

-- The client of a command's run; on a terminal, where it goes is said first on stderr.
function config.new_client(opts, env, ctx)
  local c = config.credentials(opts, env)
  if ctx and ctx.stderr_tty then
    ctx.err(("wdt: %s%s, sid %s\n"):format(c.target and (c.target .. " ") or "", c.url, c.sid))
  end
  local copts = { sid = c.sid, key = c.key, secret = c.secret, url = c.url }
  copts.timeout = args.number_option(opts, "timeout", 0.001)
  copts.retries = args.int_option(opts, "retries", 0, 100, nil)
  -- a cron job may wait long for the rate budget (--rate-wait, default 600 s)
  copts.rate = { wait = args.number_option(opts, "rate-wait", 0) or 600,
                 window = args.number_option(opts, "rate-window", 0.001),
                 per_minute = args.int_option(opts, "rate-per-minute", 1, 1000000, nil),
                 redis = config.redis_url(opts, env) }
  if opts["no-check"] then copts.check = false end   -- wdt call --no-check
  return require("wdt").client(copts)
end

-- The preflight of a flow's run against a shop (wdt.shop, once per run): nil when the
-- shop can serve, else the exit code after saying why (2 for a shop that does not exist,
-- is disabled or is not self-owned: the command line names the wrong shop).
-- `exists_only`: only a shop that does not exist refuses (a scan may read a disabled or
-- other platform's shop's rows).
function config.preflight_shop(ctx, client, shop_no, command, exists_only)
  local row, err = require("wdt.shop").check(client, shop_no)
  if row then return nil end
  local exit = require "wdt.cli.exit"
  if err.kind == "shop" and exists_only and err.reason ~= "missing" then return nil end
  if err.kind == "shop" then
    ctx.err(("%s: %s; nothing was read or sent (the shops: 'wdt call setting.Shop.queryShop')\n")
      :format(command, err.message))
    return exit.USAGE
  end
  ctx.err(("%s: the shop check (setting.Shop.queryShop) failed: "):format(command)
    .. require("wdt.cli.output").error_lines(err))
  return exit.for_error(err)
end

return config
