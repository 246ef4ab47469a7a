-- The options of wdt.client and of one call (request, with, call_many), checked and
-- defaulted here and nowhere else: wdt.core and the transports take what this returns
-- as given (the C side checks only what memory safety needs).
local check = require "wdt.check"

local options = {}

options.PRODUCTION_URL = "http://wdt.wangdian.cn/openapi"

-- Targets by name: `url = "production"` says where the calls go as plainly as the URL does
-- (the `wdt` command requires a URL or one of these names; the library's default is
-- production).
options.TARGETS = { production = options.PRODUCTION_URL, emulator = "http://127.0.0.1:8080/openapi" }

local MAX_SECONDS = 24 * 24 * 3600     -- libcurl takes timeouts as a long of milliseconds

-- Per-call options of request, with and call_many (wdt.check's option specs).
local call_specs = {
  timeout = { "number", min = 0.001, max = MAX_SECONDS },
  connect_timeout = { "number", min = 0.001, max = MAX_SECONDS },
  retries = { "number", min = 0, integer = true },
  backoff = { "number", min = 0 }, max_backoff = { "number", min = 0 },
  idempotent = { "boolean" },
  check = { "boolean" },           -- check arguments against the catalogue (wdt.api)
}

local client_specs = {
  sid             = { "string" },
  key             = { "string" },
  secret          = { "string" },
  url             = { "string", options.PRODUCTION_URL },
  timeout         = { "number", 30, min = 0.001, max = MAX_SECONDS },
  connect_timeout = { "number", 10, min = 0.001, max = MAX_SECONDS },
  retries         = { "number", 3, min = 0, integer = true },
  backoff         = { "number", 0.5, min = 0 },
  max_backoff     = { "number", 30, min = 0 },
  max_body        = { "number", 64 * 1024 * 1024, min = 1, integer = true },
  ca_file         = { "string" },
  insecure        = { "boolean", false },
  transport       = { "string", "auto" },
  keepalive_timeout = { "number", 60, min = 0 },   -- seconds an idle pooled cosocket is kept (nginx)
  pool_size       = { "number", 16, min = 1, integer = true },  -- cosocket pool size per worker (nginx)
  rate            = { "table" },          -- rate pacing per seller (wdt.rate)
  check           = { "boolean", true },  -- check arguments against the catalogue (wdt.api)
  on_request      = { "function" },       -- hooks for logs and metrics (wdt.client: Client:_request)
  on_response     = { "function" },
}

-- The base URL: http(s)://host[:port][/path]. Refused: a query (it would not be signed), a
-- fragment, user:password@, spaces and control characters (a CR/LF would end the request
-- line early), a port outside 1..65535. The one place this rule is written: the transports
-- take the URL as given. Returns nil when the URL is fine, else what is wrong.
function options.url_problem(url)
  if url:find("[%c%s]") then return "spaces and control characters are not allowed" end
  local authority, rest = url:match("^https?://([^/?#]+)(.*)$")
  if not authority or rest:find("[?#]") then
    return "an http:// or https:// URL without query or fragment expected"
  end
  if authority:find("@", 1, true) then return "user:password@ is not supported" end
  local port = authority:match("^%[[%x:.]+%]:?(%d*)$") or authority:match("^[^:%[%]]+:?(%d*)$")
  if not port then return "a host name, an IPv4 address or an [IPv6] address expected" end
  if port ~= "" and (tonumber(port) < 1 or tonumber(port) > 65535) then
    return "the port must be from 1 to 65535"
  end
  return nil
end

-- The appsecret is "secret:salt", both parts needed (the salt itself may hold ':').
function options.secret_ok(secret)
  return secret:find("^[^:]+:.") ~= nil
end

-- wdt.client's options, checked and defaulted; raises (wdt.check) naming the first bad one.
function options.client(fname, opts)
  local out = check.options(fname, opts, client_specs)
  for _, name in ipairs({ "sid", "key", "secret" }) do
    if out[name] == nil or out[name] == "" then check.fail(fname, name, "a non-empty string is required") end
  end
  out.url = options.TARGETS[out.url] or out.url
  if out.rate ~= nil then out.rate = require("wdt.rate").check(fname, out.rate) end
  local problem = options.url_problem(out.url)
  if problem then check.fail(fname, "url", problem) end
  if out.transport ~= "auto" and out.transport ~= "curl" and out.transport ~= "ngx" then
    check.fail(fname, "transport", "one of 'auto', 'curl', 'ngx' expected")
  end
  if not options.secret_ok(out.secret) then
    check.fail(fname, "secret", "the appsecret has the form 'secret:salt', both non-empty")
  end
  return out
end

-- The per-call options found in `t` (keys in `skip` are the caller's) into `out`; raises
-- (wdt.check) naming the first bad one. `where` says where they came from in a message
-- ("opts", "requests[3]"); nil: they are the function's own named options.
function options.call(fname, t, out, skip, where)
  for k, v in pairs(t) do
    if not (skip and skip[k]) then
      local spec = call_specs[k]
      if not spec then
        if not where then check.fail(fname, k, "unknown option") end
        check.fail(fname, where, ("unknown %s '%s'"):format(where == "opts" and "option" or "field", tostring(k)))
      end
      local name = where and (where .. "." .. k) or k
      if type(v) ~= spec[1] or v ~= v then
        check.fail(fname, name, spec[1] .. " expected, got " .. check.type_name(v))
      end
      if spec.min then check.number(fname, name, v, spec.min, spec.max, spec.integer) end
      out[k] = v
    end
  end
  return out
end

return options
