-- The client: option checks, one request's road (prepare -> send -> parse) and the
-- policy around it (retries, clock offset, transport choice). Mechanics live in wdt.core.
local core = require "wdt.core"
local errors = require "wdt.errors"
local paging = require "wdt.paging"
local policy = require "wdt.policy"
local clock = require "wdt.clock"
local check = require "wdt.check"

local unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)

-- check.method, remembering the names that passed (a pattern match per call is a good part
-- of a call's Lua time; the names come from the caller's code, so they are few: bounded).
local good_methods, n_good = {}, 0
local function check_method(fname, method)
  if good_methods[method] then return end
  check.method(fname, method)
  if n_good >= 1024 then good_methods, n_good = {}, 0 end
  good_methods[method] = true
  n_good = n_good + 1
end

local Client = {}
Client.__index = Client
Client.__name = "wdt.client"

local PRODUCTION_URL = "http://wdt.wangdian.cn/openapi"

-- name -> { type, default }
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

local MAX_SECONDS = 24 * 24 * 3600     -- libcurl takes timeouts as a long of milliseconds

-- The numeric options shared by the client and per call (`request`, `with`):
-- name -> min, max, whole
local number_ranges = {
  timeout = { 0.001, MAX_SECONDS }, connect_timeout = { 0.001, MAX_SECONDS },
  backoff = { 0 }, max_backoff = { 0 }, keepalive_timeout = { 0 },
  retries = { 0, nil, true }, max_body = { 1, nil, true }, pool_size = { 1, nil, true },
}

local function check_ranges(fname, o)
  for name, r in pairs(number_ranges) do
    if o[name] ~= nil then check.number(fname, name, o[name], r[1], r[2], r[3]) end
  end
end

-- Checks the caller's options, fills defaults; raises naming the first bad option.
local function check_options(opts, fname)
  local out = check.options(fname, opts, option_specs)
  for _, name in ipairs({ "sid", "key", "secret" }) do
    if out[name] == nil or out[name] == "" then check.fail(fname, name, "a non-empty string is required") end
  end
  check_ranges(fname, out)
  if not out.url:match("^https?://[^/?#]+[^?#]*$") then
    check.fail(fname, "url", "an http:// or https:// URL without query or fragment expected")
  end
  if out.transport ~= "auto" and out.transport ~= "curl" and out.transport ~= "ngx" then
    check.fail(fname, "transport", "one of 'auto', 'curl', 'ngx' expected")
  end
  -- the appsecret is "secret:salt", both parts needed (the salt itself may hold ':')
  if not out.secret:find("^[^:]+:.") then
    check.fail(fname, "secret", "the appsecret has the form 'secret:salt', both non-empty")
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
  local o = check_options(opts, "wdt.client")
  local handle = core.client_new(o.sid, o.key, o.secret, {
    url = o.url, timeout = o.timeout, connect_timeout = o.connect_timeout,
    max_body = o.max_body, ca_file = o.ca_file, insecure = o.insecure,
  })
  o.secret = nil                      -- from here on only C memory holds it
  if o.insecure and o.url:match("^https:") then
    warn("wdt: WARNING: TLS peer verification is OFF for " .. o.url:match("^https://([^/?#]+)"))
  end
  return setmetatable({ sid = o.sid, url = o.url, _core = handle, _opts = o, _clock_offset = 0,
                        -- the send options of a write without per-call options
                        _fresh_opts = { timeout = o.timeout, connect_timeout = o.connect_timeout,
                                        fresh_connect = true } }, Client)
end

function Client:__tostring()
  return "wdt.client<sid=" .. self.sid .. ">"
end

function Client:close()
  self._core:close()
end
Client.__close = Client.close

function Client:_timestamp()
  return clock.timestamp(self._clock_offset)
end

-- Which transport sends this request: cosockets inside an nginx request or timer,
-- libcurl everywhere else, unless the client's `transport` option forces one.
-- A forced "ngx" where nginx has no cosockets is a mistake in the caller's set-up: it
-- raises rather than fail every call in a way that looks retryable.
function Client:transport()
  local choice = self._opts.transport
  local cosockets = clock.in_cosocket_context()
  if choice == "auto" then return cosockets and "ngx" or "curl" end
  if choice == "ngx" and not cosockets then
    local phase = type(ngx) == "table" and ngx.get_phase and ngx.get_phase()
    error("wdt.client: transport 'ngx' is forced, but " .. (phase and ("nginx's " .. phase .. " phase")
      or "this Lua outside nginx") .. " has no cosockets", 3)
  end
  return choice
end

function Client:_transport()
  if self:transport() == "ngx" then return require "wdt.transport.ngx" end
  return nil
end

-- One try on the wire: status, body, date | nil, kind, message, sent. wdt.batch overrides
-- it (and _sleep) on its per-batch proxy to hand the tries to its scheduler.
function Client:_send(url, body, o)
  -- outside nginx (no `ngx`), unless "ngx" is forced (and raises below), it is libcurl
  if type(ngx) ~= "table" and self._opts.transport ~= "ngx" then
    return self._core:send(url, body, o)
  end
  local transport = self:_transport()
  if transport then return transport.send(self, url, body, o) end
  return self._core:send(url, body, o)
end

-- The back-off wait between two tries of `request` (doc/reliability.md): blocks the thread
-- outside nginx, ngx.sleep inside. wdt.batch overrides it on its per-batch proxy so that a
-- request waiting out its back-off yields to the others.
function Client:_sleep(seconds)
  return clock.sleep(seconds)
end

local function api_error(method, kind, message, status, response, http_status, sent)
  return errors.new {
    kind = kind, message = message, method = method, status = status,
    response = response, http_status = http_status, sent = sent,
  }
end

-- Per-call options of `request` and `with` (doc/reliability.md): name -> { type }.
local call_option_specs = {
  timeout = { "number" }, connect_timeout = { "number" }, retries = { "number" },
  backoff = { "number" }, max_backoff = { "number" }, idempotent = { "boolean" },
}

-- Checks the per-call options found in `t` (keys in `skip` are left to the caller) into `out`.
local function check_call_options(fname, t, out, skip)
  local mine = {}
  for k, v in pairs(t) do
    if not (skip and skip[k]) then mine[k] = v end
  end
  check_ranges(fname, check.options(fname, mine, call_option_specs))
  for k, v in pairs(mine) do out[k] = v end
  return out
end

local request_fields = { method = true, args = true, pager = true }

-- A per-call option: the call's, else the `with` view's, else the client's.
local function pick(c, view, o, name)
  local v
  if c then v = c[name] end
  if v == nil and view then v = view[name] end
  if v == nil then v = o[name] end
  return v
end

-- One request with the retry policy around it (see wdt.policy and doc/reliability.md).
--   client:request{ method =, args = {n =, ...}, pager =,
--                   timeout =, connect_timeout =, retries =, backoff =, max_backoff =,
--                   idempotent = }  -> response (the whole decoded answer), tries | nil, err
-- Per-call options override those of the client (and of a `with` view). Every try is
-- signed anew with a fresh timestamp; a status 7 answer with a `Date` header teaches the
-- client the server's clock and is re-signed at once (once per request, not counted as a
-- retry); the offset is kept for later calls. err.tries is the number of tries made.
function Client:request(req)
  if type(req) ~= "table" then
    error("bad argument #1 to 'request' (table expected, got " .. type(req) .. ")", 2)
  end
  check_method("request", req.method)
  local args = req.args
  if args == nil then args = { n = 0 } end
  if type(args) ~= "table" then
    error("bad argument 'args' to 'request' (table expected, got " .. type(args) .. ")", 2)
  end
  if args.n == nil then args = { n = #args, unpack(args) } end
  local pager = req.pager
  if pager ~= nil then pager = paging.check(pager, "'pager' to 'request'") end
  local c                                   -- per-call options, only when there are any
  for k in pairs(req) do
    if not request_fields[k] then
      c = check_call_options("request", req, {}, request_fields)
      break
    end
  end
  return self:_request(req.method, args, pager, c)
end

-- The loop of `request` for input already checked: a method name, args with `n`, a pager
-- as paging.check returns it (or nil), per-call options as check_call_options returns them
-- (or nil). call, page_call, pages and wdt.batch come here without checking twice.
function Client:_request(method, args, pager, c)
  local o, view = self._opts, self._call_opts
  local retries, backoff, max_backoff, idempotent, send_opts
  if c == nil and view == nil then          -- the common case: the client's own options
    retries, backoff, max_backoff = o.retries, o.backoff, o.max_backoff
    idempotent = policy.is_idempotent(method)
    -- nil: the send uses the client's own timeouts, which the C side holds already
    if not idempotent then send_opts = self._fresh_opts end
  else
    retries, backoff = pick(c, view, o, "retries"), pick(c, view, o, "backoff")
    max_backoff = pick(c, view, o, "max_backoff")
    idempotent = pick(c, view, o, "idempotent")
    if idempotent == nil then idempotent = policy.is_idempotent(method) end
    -- A write that must not be repeated goes out on a new connection: on a kept-alive one
    -- that turns out dead, libcurl (and the ngx transport) would silently send it again.
    send_opts = { timeout = pick(c, view, o, "timeout"),
                  connect_timeout = pick(c, view, o, "connect_timeout"),
                  fresh_connect = not idempotent }
  end
  local base = self._base or self          -- a `with` view keeps the clock on its client

  local tries, limit, resigned = 0, retries + 1, false
  while true do
    tries = tries + 1
    local url, body = self._core:prepare(method, args, pager, self:_timestamp())
    local status, rbody, date, sent = self:_send(url, body, send_opts)
    local err
    local now = false
    if status then
      local resp, kind, message, api_status, response = core.parse(status, rbody)
      if resp then return resp, tries end
      err = api_error(method, kind, message, api_status, response, status, true)
      if api_status == 7 and not resigned and clock.learn(base, date) then
        resigned, now = true, true        -- refused, not applied: re-sign once, right away
        limit = limit + 1
      end
    else
      err = api_error(method, rbody, date, nil, nil, nil, sent)
    end
    err.tries = tries
    if now then
      err.retryable = true
    else
      err.retryable = policy.retryable(err, idempotent)
    end
    if not err.retryable or tries >= limit then return nil, err end
    if not now then self:_sleep(policy.delay(tries - (resigned and 1 or 0), backoff, max_backoff)) end
  end
end

-- client:with(opts) -> a view of the client whose calls use these per-call options
-- (timeout, connect_timeout, retries, backoff, max_backoff, idempotent) by default:
--   client:with{ retries = 0 }:call("sales.StockSync.syncSuccess", id, info)
--   client:with{ idempotent = false }:call("sales.LogisticsSync.update", items)
-- The view shares the client's connection, credentials and clock offset.
function Client:with(opts)
  if type(opts) ~= "table" then
    error("bad argument #1 to 'with' (options table expected, got " .. type(opts) .. ")", 2)
  end
  local merged = {}
  for k, v in pairs(self._call_opts or {}) do merged[k] = v end
  check_call_options("with", opts, merged)
  local base = self._base or self
  return setmetatable({ _base = base, _call_opts = merged }, {
    __index = base,
    __tostring = function() return tostring(base) end,
    __name = "wdt.client",
  })
end

local function data_of(resp)
  local data = resp.data
  if data == nil then data = core.null end
  return data, resp
end

-- client:call(method, ...) -> data, response | nil, err
function Client:call(method, ...)
  check_method("call", method)
  local resp, err = self:_request(method, { n = select("#", ...), ... })
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
  local resp, err = self:_request(method, { n = select("#", ...), ... }, p)
  if not resp then return nil, err end
  return paging.page(resp, p)
end

-- for page, err in client:pages(method, pager, ...) do if not page then … err … end end
-- From pager.page_no on until a short page. A failure comes as `false, err` (a generic
-- `for` would end silently at `nil, err`), and the loop ends after it.
function Client:pages(method, pager, ...)
  check_method("pages", method)
  local p = paging.check(pager, "'pager' to 'pages'")
  local args = { n = select("#", ...), ... }
  local done = false
  return function()
    if done then return nil end
    local resp, err = self:_request(method, args, p)
    if not resp then done = true return false, err end
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

-- for row, err in client:scan{ method =, from =, to =, checkpoint = } do … end (doc/scan.md)
function Client:scan(opts) return require("wdt.scan").scan(self, opts) end

-- The push half (see wdt.push and doc/push.md).
function Client:push_orders(opts) return require("wdt.push").run(self, "orders", opts) end
function Client:push_refunds(opts) return require("wdt.push").run(self, "refunds", opts) end
function Client:upload_goods(opts) return require("wdt.push").run(self, "goods", opts) end

-- client:call_many(requests, {concurrency = 8}) -> results, failed (see wdt.batch)
function Client:call_many(requests, opts)
  return require("wdt.batch").call_many(self, requests, opts)
end

return { new = new, Client = Client }
