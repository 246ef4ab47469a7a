-- The client: one request's road (prepare -> send -> parse) and the policy around it
-- (retries, clock offset, transport choice). Options are checked in wdt.options, the
-- mechanics live in wdt.core, the cosocket transport in wdt.transport.ngx.
local core = require "wdt.core"
local errors = require "wdt.errors"
local paging = require "wdt.paging"
local policy = require "wdt.policy"
local clock = require "wdt.clock"
local check = require "wdt.check"
local options = require "wdt.options"
local rate = require "wdt.rate"
local batch = require "wdt.batch"

local unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)
local is_method, method_message = check.is_method, check.method_message

local Client = {}
Client.__index = Client
Client.__name = "wdt.client"

-- A warning: nginx's error log inside nginx, stderr elsewhere.
local function warn(msg)
  local n = clock.ngx()
  if n then n.log(n.WARN, msg) else io.stderr:write(msg, "\n") end
end

local function new(opts)
  if type(opts) ~= "table" then
    check.fail("wdt.client", "options", "options table expected, got " .. type(opts), 2)
  end
  local ok, o = check.run(options.client, "wdt.client", opts)
  if not ok then error(o, 2) end
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

-- error()'s level, for the function that calls this, of the first caller outside wdt's
-- own Lua files (and C): a set-up mistake found deep inside a call is its caller's.
local function level_outside_wdt()
  local level = 3                     -- 1 here, 2 the function raising, 3 its caller
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 2 end
    -- C frames, and Lua 5.1's "(tail call)" frames, have no line to point at
    if info.source ~= "=[C]" and info.what ~= "tail" and not info.source:find("^@.-wdt/[%w_/]+%.lua$") then
      return level - 1
    end
    level = level + 1
  end
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
    local phase = clock.phase()
    error("wdt.client: transport 'ngx' is forced, but " .. (phase and ("nginx's " .. phase .. " phase")
      or "this Lua outside nginx") .. " has no cosockets", level_outside_wdt())
  end
  return choice
end

-- An executor: how a request's tries go out and how it waits, chosen once per request
-- (or carried by a view: wdt.batch's scheduler, a flow's wait hook):
--   send(client, url, body, opts) -> answer | nil, failure: the transport contract
--   post(client, method, args, pager, timestamp, opts): prepare and send in one, in C;
--        optional (send is used without it)
--   sleep(seconds): the back-off and rate waits
--   wait(seconds, reason): optional, told of each slice of a rate wait (nil: over)
-- (with flights' transfers out on the client's pool, e.g. a scan's read-ahead between its
-- rows, a try is started beside them: wdt.batch.send_beside)
local curl = {
  send = function(c, url, body, o)
    local cl = c._core
    if batch.busy(cl) then return batch.send_beside(cl, url, body, o) end
    return cl:send(url, body, o)
  end,
  post = function(c, method, args, pager, timestamp, o)
    local cl = c._core
    if batch.busy(cl) then return batch.send_beside(cl, cl:prepare_job(method, args, pager, timestamp), nil, o) end
    return cl:post(method, args, pager, timestamp, o)
  end,
  sleep = clock.sleep,
}
local cosocket = {
  send = function(c, url, body, o) return require("wdt.transport.ngx").send(c, url, body, o) end,
  sleep = clock.sleep,
}

-- The executor of this client (or view) here and now.
function Client:executor()
  if self._exec then return self._exec end
  if not clock.ngx() and self._opts.transport ~= "ngx" then return curl end   -- no choice to make
  return self:transport() == "ngx" and cosocket or curl
end

-- A view of the client (sharing its connection, credentials and clock offset) with these
-- per-call options and executor (nil: as self has them).
function Client:_view(call_opts, exec)
  local base = self._base or self
  return setmetatable({ _base = base, _call_opts = call_opts or self._call_opts, _exec = exec or self._exec }, {
    __index = base,
    __tostring = function() return tostring(base) end,
    __name = "wdt.client",
  })
end

-- A view whose executor is this client's (here and now) with `hooks` (send, post, sleep,
-- wait) in place of its own: how wdt.batch and the flows take part in sending and waiting.
function Client:_using(hooks)
  local exec = {}
  for k, v in pairs(self:executor()) do exec[k] = v end
  for k, v in pairs(hooks) do exec[k] = v end
  if hooks.send and not hooks.post then exec.post = nil end   -- a send of its own sees every try
  return self:_view(nil, exec)
end

-- An error message a server wrote may quote the request: the client's secret, salt and
-- key are blanked (by the C side, which holds them), then the values of credential-like
-- parameters and anything shaped like a sign (errors.scrub).
function Client:_scrub(message)
  if type(message) ~= "string" then return message end
  return errors.scrub(self._core:redact(message))
end

-- A try's answer (or the transport's failure) -> the response | nil, err (wdt.errors).
function Client:_outcome(method, answer, failure)
  if not answer then
    return nil, errors.new { kind = failure.kind, message = failure.message, method = method,
                             sent = failure.sent }
  end
  local resp, bad = core.parse(answer.status, answer.body)
  if resp then return resp end
  if bad.response and type(bad.response.message) == "string" then
    bad.response.message = self:_scrub(bad.response.message)
  end
  return nil, errors.new { kind = bad.kind, message = self:_scrub(bad.message), method = method,
                           status = bad.status, response = bad.response,
                           http_status = answer.status, sent = true }
end

local request_fields = { method = true, args = true, pager = true }

-- The method, args (a list, or with `n`) and pager (or nil) of request and prepare, as
-- _request takes them; raises (wdt.check) naming the bad one.
local function checked_call(fname, method, args, pager)
  if not is_method(method) then check.raise(method_message(fname, method)) end
  if type(args) ~= "table" then check.fail(fname, "args", "table expected, got " .. type(args)) end
  if args.n == nil then args = { n = #args, unpack(args) } end
  local why
  if pager ~= nil then
    pager, why = paging.check(pager)
    if not pager then check.fail(fname, "pager", why) end
  end
  return args, pager
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
    check.fail("request", "request", "table expected, got " .. type(req), 2)
  end
  local args = req.args
  if args == nil then args = { n = 0 } end
  local ok, pager
  ok, args, pager = check.run(checked_call, "request", req.method, args, req.pager)
  if not ok then error(args, 2) end
  local c                                   -- per-call options, only when there are any
  for k in pairs(req) do
    if not request_fields[k] then
      ok, c = check.run(options.call, "request", req, {}, request_fields)
      if not ok then error(c, 2) end
      break
    end
  end
  return self:_request(req.method, args, pager, c)
end

-- A per-call option: the call's, else the `with` view's, else the client's.
local function pick(c, view, o, name)
  local v
  if c then v = c[name] end
  if v == nil and view then v = view[name] end
  if v == nil then v = o[name] end
  return v
end

-- The retry settings and send options of one call -> retries, backoff, max_backoff,
-- idempotent, send_opts (nil: the client's own timeouts, which the C side holds already).
function Client:_settings(method, c)
  local o, view = self._opts, self._call_opts
  if c == nil and view == nil then          -- the common case: the client's own options
    local idempotent = policy.is_idempotent(method)
    return o.retries, o.backoff, o.max_backoff, idempotent, not idempotent and self._fresh_opts or nil
  end
  local idempotent = pick(c, view, o, "idempotent")
  if idempotent == nil then idempotent = policy.is_idempotent(method) end
  -- A write that must not be repeated goes out on a new connection: on a kept-alive one
  -- that turns out dead, libcurl (and the ngx transport) would silently send it again.
  local send_opts = { timeout = pick(c, view, o, "timeout"),
                      connect_timeout = pick(c, view, o, "connect_timeout"),
                      fresh_connect = not idempotent }
  return pick(c, view, o, "retries"), pick(c, view, o, "backoff"), pick(c, view, o, "max_backoff"),
         idempotent, send_opts
end

-- The hooks on_request(info) and on_response(info), for logs and metrics: once per request,
-- around all its tries. info: method, request_id (this process's, to pair the two), sid;
-- on_response adds ok, elapsed (seconds, all tries and waits), tries, status (the API's),
-- http_status, kind (the error's), message (the error's). Never the URL, the body or a
-- credential. A hook that raises is logged and does not change the call.
local request_seq = 0
local ID_PREFIX = ("%06x"):format(math.random(0, 0xffffff))

local function run_hook(fn, name, info)
  local ok, err = pcall(fn, info)
  if not ok then
    if errors.is_interrupt(err) then error(err, 0) end
    warn("wdt: the client's " .. name .. " raised an error: " .. tostring(err))
  end
end

function Client:_request(method, args, pager, c)
  local o = self._opts
  if not (o.on_request or o.on_response) then return self:_tries(method, args, pager, c) end
  request_seq = request_seq + 1
  local info = { method = method, sid = self.sid, request_id = ID_PREFIX .. "-" .. request_seq }
  if o.on_request then run_hook(o.on_request, "on_request", info) end
  local started = core.monotonic()
  local resp, b, sent_before = self:_tries(method, args, pager, c)   -- all three passed on
  if o.on_response then
    local done = { method = method, sid = self.sid, request_id = info.request_id, ok = resp ~= nil,
                   elapsed = core.monotonic() - started }
    if resp then
      done.tries, done.status, done.http_status = b, resp.status, 200
    else
      done.tries, done.status, done.http_status, done.kind = b.tries, b.status, b.http_status, b.kind
      done.message = b.message
    end
    run_hook(o.on_response, "on_response", done)
  end
  return resp, b, sent_before
end

-- The loop of `request` for input already checked: a method name, args with `n`, a pager
-- as paging.check returns it (or nil), per-call options as options.call returns them (or
-- nil). call, page_call, pages and wdt.batch come here without checking twice.
function Client:_tries(method, args, pager, c)
  -- the catalogue's checks (wdt.api.check): a violation sends nothing
  if pick(c, self._call_opts, self._opts, "check") ~= false then
    local ok, cerr = require("wdt.api.check").request(method, args, pager)
    if not ok then return nil, cerr end
  end
  local retries, backoff, max_backoff, idempotent, send_opts = self:_settings(method, c)
  local base = self._base or self          -- a `with` view keeps the clock on its client
  local tries, limit, resigned = 0, retries + 1, false
  -- an earlier try of this call may have been carried out (sent, and not a refusal): the
  -- third result on success, err.sent_before on failure (a push counts its tries by it)
  local sent_before = false
  local exec = self:executor()
  -- wdt.rate: the seller's budget, when set (a concurrency slot lives as long as a try)
  local pace = self._opts.rate and rate.start(self, exec, send_opts and send_opts.timeout)
  while true do
    tries = tries + 1
    if pace then
      local ok, perr = pace:before()
      if not ok then perr.method, perr.tries = method, tries - 1 return nil, perr end
    end
    local answer, failure
    if exec.post then           -- the one place a try is sent
      answer, failure = exec.post(self, method, args, pager, self:_timestamp(), send_opts)
    else
      local url, body = self._core:prepare(method, args, pager, self:_timestamp())
      answer, failure = exec.send(self, url, body, send_opts)
    end
    if pace then pace:after() end
    if answer and answer.date then base._server_date = answer.date end   -- the server's clock (scan)
    local resp, err = self:_outcome(method, answer, failure)
    if resp then return resp, tries, sent_before end
    err.tries, err.sent_before = tries, sent_before or nil
    sent_before = sent_before or (err.sent ~= false and err.kind ~= "api" and not policy.is_rate_limit(err))
    -- status 7 with a Date header: the clock was off and the call refused, not applied;
    -- learn the server's clock and re-sign at once (once per request, not a retry)
    local resign = err.status == 7 and not resigned and clock.learn(base, answer.date)
    if resign then
      resigned, limit, err.retryable = true, limit + 1, true
    else
      err.retryable = policy.retryable(err, idempotent)
    end
    local waited = false
    if pace and retries > 0 and policy.is_rate_limit(err) then   -- retries = 0: one try
      local ok, perr = pace:limited(err)      -- waits the window out; not counted as a retry
      if not ok then return nil, perr end
      limit, waited = limit + 1, true
    end
    if not err.retryable or tries >= limit then return nil, err end
    if not resign and not waited then
      exec.sleep(policy.delay(tries - (resigned and 1 or 0), backoff, max_backoff))
    end
  end
end

-- client:with(opts) -> a view of the client whose calls use these per-call options
-- (timeout, connect_timeout, retries, backoff, max_backoff, idempotent) by default:
--   client:with{ retries = 0 }:call("sales.StockSync.syncSuccess", id, info)
--   client:with{ idempotent = false }:call("sales.LogisticsSync.update", items)
-- The view shares the client's connection, credentials and clock offset.
function Client:with(opts)
  if type(opts) ~= "table" then
    check.fail("with", "options", "options table expected, got " .. type(opts), 2)
  end
  local merged = {}
  for k, v in pairs(self._call_opts or {}) do merged[k] = v end
  local ok, bad = check.run(options.call, "with", opts, merged)
  if not ok then error(bad, 2) end
  return self:_view(merged)
end

local function data_of(resp)
  local data = resp.data
  if data == nil then data = core.null end
  return data, resp
end

-- client:call(method, ...) -> data, response | nil, err
function Client:call(method, ...)
  if not is_method(method) then error(method_message("call", method), 2) end
  local resp, err = self:_request(method, { n = select("#", ...), ... })
  if not resp then return nil, err end
  return data_of(resp)
end

-- client:call_ex(method, ...): the vendor SDKs' callEx, through system.ScriptExtension.call.
function Client:call_ex(method, ...)
  if not is_method(method) then error(method_message("call_ex", method), 2) end
  return self:call("system.ScriptExtension.call", method, ...)
end

-- client:page_call(method, pager, ...) -> page | nil, err
function Client:page_call(method, pager, ...)
  if not is_method(method) then error(method_message("page_call", method), 2) end
  local p, why = paging.check(pager)
  if not p then check.fail("page_call", "pager", why, 2) end
  local resp, err = self:_request(method, { n = select("#", ...), ... }, p)
  if not resp then return nil, err end
  return paging.page(resp, p, method)
end

-- for page, err in client:pages(method, pager, ...) do if not page then … err … end end
-- From pager.page_no on until a short page. A failure comes as `false, err` (a generic
-- `for` would end silently at `nil, err`), and the loop ends after it.
function Client:pages(method, pager, ...)
  if not is_method(method) then error(method_message("pages", method), 2) end
  local p, why = paging.check(pager)
  if not p then check.fail("pages", "pager", why, 2) end
  local args = { n = select("#", ...), ... }
  local done = false
  return function()
    if done then return nil end
    local resp, err = self:_request(method, args, p)
    if not resp then done = true return false, err end
    local page, perr = paging.page(resp, p, method)
    if not page then done = true return false, perr end
    if #page.rows < p.page_size then done = true end
    p = { page_size = p.page_size, page_no = p.page_no + 1, calc_total = p.calc_total }
    return page
  end
end

-- The bytes `call` would send, for other transports: {url, body, headers}.
function Client:prepare(method, args, pager)
  local ok
  ok, args, pager = check.run(checked_call, "prepare", method, args, pager)
  if not ok then error(args, 2) end
  local url, body = self._core:prepare(method, args, pager, self:_timestamp())
  return { url = url, body = body, headers = { ["Content-Type"] = "application/json" } }
end

-- An answer received elsewhere -> data, response | nil, err
function Client:parse(http_status, body)
  if type(http_status) ~= "number" then
    check.fail("parse", "http_status", "number expected, got " .. check.type_name(http_status), 2)
  end
  if type(body) ~= "string" then check.fail("parse", "body", "string expected, got " .. type(body), 2) end
  local resp, err = self:_outcome(nil, { status = http_status, body = body })
  if not resp then return nil, err end
  return data_of(resp)
end

-- The flows (wdt.flow; doc/sync.md, doc/push.md, doc/scan.md): each public method checks
-- its options here, so that a bad one names the caller's line, then runs the flow:
-- module.options(opts, arg) -> checked options, module.run(client, checked, arg).
local function flow_method(name, arg)
  return function(self, opts)
    local m = require(name)
    local ok, o = check.run(m.options, opts, arg)
    if not ok then error(o, 2) end
    return m.run(self, o, arg)
  end
end

Client.sync_logistics = flow_method("wdt.sync.logistics")   -- -> summary | nil, err
Client.sync_stock = flow_method("wdt.sync.stock")
Client.push_orders = flow_method("wdt.push", "orders")      -- -> summary | nil, err
Client.push_refunds = flow_method("wdt.push", "refunds")
Client.upload_goods = flow_method("wdt.push", "goods")
-- for row, err in client:scan{ method =, from =, to =, checkpoint = } do … end
Client.scan = flow_method("wdt.scan")

-- client:call_many(requests, {concurrency = 8}) -> results, failed (see wdt.batch)
function Client:call_many(requests, opts)
  local ok, results, failed = check.run(require("wdt.batch").call_many, self, requests, opts)
  if not ok then error(results, 2) end
  return results, failed
end

return { new = new, Client = Client }
