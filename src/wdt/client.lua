-- The client: option checks, one request's road (prepare -> send -> parse) and the
-- policy around it (retries, clock offset, transport choice). Mechanics live in wdt.core.
local core = require "wdt.core"
local errors = require "wdt.errors"
local paging = require "wdt.paging"
local policy = require "wdt.policy"
local clock = require "wdt.clock"

local unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)

local Client = {}
Client.__index = Client
Client.__name = "wdt.client"

local PRODUCTION_URL = "http://wdt.wangdian.cn/openapi"

-- name -> { type, default, check (optional), what (for messages) }
local option_specs = {
  sid             = { "string" },
  key             = { "string" },
  secret          = { "string" },
  url             = { "string", PRODUCTION_URL },
  timeout         = { "number", 30 },
  connect_timeout = { "number", 10 },
  retries         = { "number", 3 },
  backoff         = { "number", 0.5 },
  max_backoff     = { "number", 30 },
  max_body        = { "number", 64 * 1024 * 1024 },
  ca_file         = { "string" },
  insecure        = { "boolean", false },
  transport       = { "string", "auto" },
  keepalive_timeout = { "number", 60 },   -- seconds an idle pooled cosocket is kept (nginx)
  pool_size       = { "number", 16 },     -- cosocket pool size per worker (nginx)
}

local function argerror(fname, name, msg)
  error(("bad argument '%s' to '%s' (%s)"):format(name, fname, msg), 3)
end

local function check_number(fname, name, v, min, whole)
  if whole and v % 1 ~= 0 then argerror(fname, name, "integer expected") end
  if v ~= v or v < min or v == math.huge then
    argerror(fname, name, ("must be a number >= %s"):format(min))
  end
end

-- Checks the caller's options, fills defaults; raises naming the first bad option.
local function check_options(opts, fname, required)
  local out = {}
  for name, v in pairs(opts) do
    local spec = option_specs[name]
    if type(name) ~= "string" or not spec then
      argerror(fname, tostring(name), "unknown option")
    end
    if type(v) ~= spec[1] then
      argerror(fname, name, spec[1] .. " expected, got " .. type(v))
    end
    out[name] = v
  end
  for _, name in ipairs(required or {}) do
    if out[name] == nil or out[name] == "" then argerror(fname, name, "a non-empty string is required") end
  end
  for name, spec in pairs(option_specs) do
    if out[name] == nil then out[name] = spec[2] end
  end
  for _, name in ipairs({ "timeout", "connect_timeout", "backoff", "max_backoff", "keepalive_timeout" }) do
    check_number(fname, name, out[name], 0)
  end
  check_number(fname, "retries", out.retries, 0, true)
  check_number(fname, "max_body", out.max_body, 1, true)
  check_number(fname, "pool_size", out.pool_size, 1, true)
  if not out.url:match("^https?://[^/?#]+") then
    argerror(fname, "url", "an http:// or https:// URL expected")
  end
  if out.transport ~= "auto" and out.transport ~= "curl" and out.transport ~= "ngx" then
    argerror(fname, "transport", "one of 'auto', 'curl', 'ngx' expected")
  end
  return out
end

local function warn(msg)
  if type(ngx) == "table" and ngx.log then
    ngx.log(ngx.WARN, msg)
  else
    io.stderr:write(msg, "\n")
  end
end

local function new(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'wdt.client' (options table expected, got " .. type(opts) .. ")", 2)
  end
  local o = check_options(opts, "wdt.client", { "sid", "key", "secret" })
  if not o.secret:find(":", 1, true) then
    argerror("wdt.client", "secret", "the appsecret has the form 'secret:salt'")
  end
  local handle = core.client_new(o.sid, o.key, o.secret, {
    url = o.url, timeout = o.timeout, connect_timeout = o.connect_timeout,
    max_body = o.max_body, ca_file = o.ca_file, insecure = o.insecure,
  })
  o.secret = nil                      -- from here on only C memory holds it
  if o.insecure and o.url:match("^https:") then
    warn("wdt: WARNING: TLS peer verification is OFF for " .. o.url:match("^https://([^/?#]+)"))
  end
  return setmetatable({ sid = o.sid, url = o.url, _core = handle, _opts = o, _clock_offset = 0 }, Client)
end

function Client:__tostring()
  return "wdt.client<sid=" .. self.sid .. ">"
end

function Client:close()
  self._core:close()
end
Client.__close = Client.close

local function check_method(fname, method)
  if type(method) ~= "string" or not method:match("^[%w_][%w%._]*$") then
    error(("bad argument 'method' to '%s' (a method name of letters, digits, '.' and '_' expected, got %s)")
      :format(fname, type(method) == "string" and ("%q"):format(method) or type(method)), 3)
  end
end

function Client:_timestamp()
  return clock.timestamp(self._clock_offset)
end

-- Which transport sends this request: cosockets inside an nginx request or timer,
-- libcurl everywhere else, unless the client's `transport` option forces one.
function Client:_transport()
  local choice = self._opts.transport
  if choice == "auto" then
    choice = clock.in_cosocket_context() and "ngx" or "curl"
  end
  if choice == "ngx" then return require "wdt.transport.ngx" end
  return nil
end

function Client:_send(url, body, o)
  local transport = self:_transport()
  if transport then return transport.send(self, url, body, o) end
  return self._core:send(url, body, o)
end

local function api_error(method, kind, message, status, response, http_status, sent)
  return errors.new {
    kind = kind, message = message, method = method, status = status,
    response = response, http_status = http_status, sent = sent,
  }
end

-- One request with the retry policy around it. `req`: method, args (with n), pager,
-- and per-call timeout, connect_timeout, retries, idempotent. Returns the whole answer.
function Client:request(req)
  if type(req) ~= "table" then error("bad argument #1 to 'request' (table expected)", 2) end
  check_method("request", req.method)
  local method, args = req.method, req.args or { n = 0 }
  if type(args) ~= "table" then error("bad argument 'args' to 'request' (table expected)", 2) end
  if args.n == nil then args = { n = #args, unpack(args) } end
  local o = self._opts
  local send_opts = {
    timeout = req.timeout or o.timeout,
    connect_timeout = req.connect_timeout or o.connect_timeout,
  }
  local retries = req.retries or o.retries
  local idempotent = req.idempotent
  if idempotent == nil then idempotent = policy.is_idempotent(method) end
  local tries, skew_fixed = 0, false
  while true do
    tries = tries + 1
    local url, body = self._core:prepare(method, args, req.pager, self:_timestamp())
    local status, rbody, date, sent = self:_send(url, body, send_opts)
    local err
    if status then
      local resp, kind, message, api_status, response = core.parse(status, rbody)
      if resp then return resp end
      err = api_error(method, kind, message, api_status, response, status, true)
      if api_status == 7 and not skew_fixed and clock.learn(self, date) then
        skew_fixed = true                 -- re-sign once with the server's clock
        retries = retries + 1
      end
    else
      err = api_error(method, rbody, date, nil, nil, nil, sent)
    end
    err.retryable = policy.retryable(err, idempotent) or (skew_fixed and err.status == 7)
    err.tries = tries
    if not err.retryable or tries > retries then return nil, err end
    if not (skew_fixed and err.status == 7 and tries == 1) then
      clock.sleep(policy.delay(tries, o.backoff, o.max_backoff))
    end
  end
end

local function data_of(resp)
  local data = resp.data
  if data == nil then data = core.null end
  return data, resp
end

-- client:call(method, ...) -> data, response | nil, err
function Client:call(method, ...)
  check_method("call", method)
  local resp, err = self:request { method = method, args = { n = select("#", ...), ... } }
  if not resp then return nil, err end
  return data_of(resp)
end

-- client:call_ex(method, ...): the vendor SDKs' callEx, through system.ScriptExtension.call.
function Client:call_ex(method, ...)
  check_method("call_ex", method)
  return self:call("system.ScriptExtension.call", method, ...)
end

-- client:page_call(method, pager, ...) -> page | nil, err
function Client:page_call(method, pager, ...)
  check_method("page_call", method)
  local p = paging.check(pager, "'pager' to 'page_call'")
  local resp, err = self:request { method = method, pager = p, args = { n = select("#", ...), ... } }
  if not resp then return nil, err end
  return paging.page(resp, p)
end

-- for page, err in client:pages(method, pager, ...): from pager.page_no on until a short page.
function Client:pages(method, pager, ...)
  check_method("pages", method)
  local p = paging.check(pager, "'pager' to 'pages'")
  local args = { n = select("#", ...), ... }
  local done = false
  return function()
    if done then return nil end
    local resp, err = self:request { method = method, pager = p, args = args }
    if not resp then done = true return nil, err end
    local page = paging.page(resp, p)
    if #page.rows < p.page_size then done = true end
    p = { page_size = p.page_size, page_no = p.page_no + 1, calc_total = p.calc_total }
    return page
  end
end

-- The bytes `call` would send, for other transports: {url, body, headers}.
function Client:prepare(method, args, pager)
  check_method("prepare", method)
  if type(args) ~= "table" then error("bad argument 'args' to 'prepare' (table expected)", 2) end
  if args.n == nil then args = { n = #args, unpack(args) } end
  if pager ~= nil then pager = paging.check(pager, "'pager' to 'prepare'") end
  local url, body = self._core:prepare(method, args, pager, self:_timestamp())
  return { url = url, body = body, headers = { ["Content-Type"] = "application/json" } }
end

-- An answer received elsewhere -> data, response | nil, err
function Client:parse(http_status, body)
  if type(http_status) ~= "number" then error("bad argument 'http_status' to 'parse' (number expected)", 2) end
  if type(body) ~= "string" then error("bad argument 'body' to 'parse' (string expected)", 2) end
  local resp, kind, message, api_status, response = core.parse(http_status, body)
  if not resp then return nil, api_error(nil, kind, message, api_status, response, http_status, true) end
  return data_of(resp)
end

-- The sync loops (see wdt.sync and doc/sync.md).
function Client:sync_logistics(opts)
  return require("wdt.sync").logistics(self, opts)
end

function Client:sync_stock(opts)
  return require("wdt.sync").stock(self, opts)
end

return { new = new, Client = Client }
