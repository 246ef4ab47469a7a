-- HTTP/1.1 POST over nginx cosockets (ngx.socket.tcp), for requests made inside nginx
-- request handlers and timers, where a blocking libcurl call would stall the worker.
--
-- send(client, url, body, opts) keeps the transport contract of the C transport
-- (src/core/wdt_core_client.c, cl:send): answer {status=, body=, date=} | nil, failure
-- {kind=, message=, sent=}. opts as for cl:send (timeout, connect_timeout, fresh_connect;
-- nil: the client's). The client's options were checked by wdt.options; the URL is taken
-- as given. Messages never quote the URL's query string (it holds the salt and the sign).
--
-- Connections are pooled per worker with setkeepalive, one pool per seller (scheme, host,
-- port, sid; see doc/openresty.md), `keepalive_timeout` seconds idle, `pool_size` idle
-- connections at most. TLS peers are verified against nginx's `lua_ssl_trusted_certificate`
-- unless the client is `insecure`. Answers are requested with `Accept-Encoding: identity`
-- (no zlib in plain LuaJIT).
--
-- One try, as lua-resty-http splits it: connect (+ TLS), send, read_head (status line and
-- headers), read_body (by Content-Length, chunks, or up to the close).
local clock = require "wdt.clock"

local M = {}

local MAX_HEADER_BYTES = 64 * 1024       -- status line and headers of one answer
local CHUNK = 16 * 1024                  -- read size for answers delimited by close
local FOREVER_MS = 2147483647            -- "no timeout": what libcurl does with 0
-- libcurl's User-Agent, marked as the cosocket one; the version is CMakeLists.txt's (wdt.core)
local USER_AGENT = "User-Agent: wdt-lua/" .. require("wdt.core").version .. " (ngx)\r\n"

-- Counters of this worker (module state lives per worker VM): how many requests went
-- through cosockets and how many of them rode a pooled connection.
M.stats = { requests = 0, connects = 0, reused = 0, kept_alive = 0 }

-- "http(s)://host[:port][/path][?query]" -> scheme, host, port, target (path?query).
-- The URL passed wdt.options.url_problem when the client was made.
local function parse_url(url)
  local scheme, authority, rest = url:match("^(https?)://([^/?#]+)(.*)$")
  local host, port
  if authority:sub(1, 1) == "[" then                  -- [v6addr]:port
    host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  else
    host, port = authority:match("^([^:]+):?(%d*)$")
  end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if rest == "" or rest:sub(1, 1) == "?" then rest = "/" .. rest end
  return scheme, host, port, rest
end

local function ms(seconds)
  if seconds == nil or seconds <= 0 then return FOREVER_MS end
  local v = math.floor(seconds * 1000 + 0.5)
  if v < 1 then v = 1 end
  if v > FOREVER_MS then v = FOREVER_MS end
  return v
end

local function failure(kind, message, sent, retry_fresh)
  return nil, { kind = kind, message = message, sent = sent }, retry_fresh
end

-- One try's connection state: the socket, the request, whether the connection was reused.
local Try = {}
Try.__index = Try

-- Each wait gets at most what is left of the total timeout; false when none is left.
function Try:budget()
  local req = self.req
  if not req.deadline then return true end
  local left = req.deadline - ngx.now()
  if left <= 0 then return false end
  local t = ms(left)
  self.sock:settimeouts(self.connect_ms, t, t)
  return true
end

-- After the request may have reached the server: close, and say so (sent = true).
-- `fresh`: a pooled connection the server had closed while idle, nothing processed.
function Try:fail(kind, msg, fresh)
  self.sock:close()
  return failure(kind, msg, true, fresh)
end

function Try:failed_io(what, e, got_nothing)
  if e == "timeout" then return self:fail("timeout", what .. " " .. self.req.where .. " timed out") end
  if e == "closed" then e = "the connection was closed" end
  return self:fail("network", what .. " " .. self.req.where .. " failed: " .. tostring(e),
                   self.reused and got_nothing)
end

-- One line of the answer, within the budget.
function Try:line(what, got_nothing)
  if not self:budget() then return self:fail("timeout", what .. " " .. self.req.where .. " timed out") end
  local l, e = self.sock:receive("*l")
  if not l then return self:failed_io(what, e, got_nothing) end
  return l
end

-- n bytes of the answer, within the budget.
function Try:bytes(n)
  if not self:budget() then
    return self:fail("timeout", "reading the answer from " .. self.req.where .. " timed out")
  end
  local data, e = self.sock:receive(n)
  if not data then return self:failed_io("reading the answer from", e, false) end
  return data
end

-- Connect (+ TLS handshake on a new connection). Failures here: the request never left.
-- fresh_only: refuse pooled connections (after one turned out dead).
function Try:connect(c, fresh_only)
  local req = self.req
  local remaining = req.deadline and (req.deadline - ngx.now()) or nil
  if remaining and remaining <= 0 then
    return failure("timeout", "timed out before connecting to " .. req.where, false)
  end
  local total_ms = remaining and ms(remaining) or FOREVER_MS
  self.connect_ms = math.min(ms(c.connect_timeout), total_ms)
  local sock, reused
  for _ = 1, req.pool_size + 1 do
    sock = ngx.socket.tcp()
    sock:settimeouts(self.connect_ms, total_ms, total_ms)
    local ok, err = sock:connect(req.host, req.port, { pool = req.pool })
    if not ok then
      if err == "timeout" then return failure("timeout", "connect to " .. req.where .. " timed out", false) end
      return failure("network", "connect to " .. req.where .. " failed: " .. tostring(err), false)
    end
    reused = (sock:getreusedtimes() or 0) > 0
    if not (fresh_only and reused) then break end
    sock:close()          -- after a dead pooled connection: its siblings are suspect too
  end
  if fresh_only and reused then return failure("network", "no new connection to " .. req.where, false) end
  self.sock, self.reused = sock, reused
  M.stats.requests = M.stats.requests + 1
  if reused then
    M.stats.reused = M.stats.reused + 1
    return true
  end
  M.stats.connects = M.stats.connects + 1
  if not req.tls then return true end
  -- sslhandshake(reused_session, server_name (SNI), verify)
  local sni = not req.host:match("^[%d%.]+$") and not req.host:find(":", 1, true) and req.host or nil
  local hs, herr = sock:sslhandshake(false, sni, not c.insecure)
  if hs then return true end
  sock:close()
  if herr == "timeout" then return failure("timeout", "TLS handshake with " .. req.where .. " timed out", false) end
  -- a certificate that does not verify ("18: self signed certificate", "certificate host
  -- mismatch") will not verify on a second try: kind "tls", never retried
  local e = tostring(herr)
  local kind = (e:match("^%d+: ") or e:find("certificate", 1, true)) and "tls" or "network"
  return failure(kind, "TLS handshake with " .. req.where .. " failed: " .. e, false)
end

-- The status line (skipping 1xx interim answers) and the headers -> status, version,
-- headers (names in lower case) | nil, failure, retry_fresh
function Try:read_head()
  local where, header_bytes, first = self.req.where, 0, true
  local status, version, headers
  local function line(what)
    if header_bytes > MAX_HEADER_BYTES then return self:fail("network", "headers larger than 64 KiB from " .. where) end
    local l, f, fresh = self:line(what, first)
    if l then header_bytes = header_bytes + #l + 2 end
    return l, f, fresh
  end
  repeat
    local l, f, fresh = line("reading the answer from")
    if not l then return nil, f, fresh end
    first = false
    local v, code = l:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not v then return self:fail("network", "not an HTTP answer from " .. where) end
    version, status, headers = v, tonumber(code), {}
    while true do
      local h, hf = line("reading the headers from")
      if not h then return nil, hf end
      if h == "" then break end
      local name, value = h:match("^([^:%s]+)%s*:%s*(.-)%s*$")
      if name then
        name = name:lower()
        if headers[name] and name ~= "date" then
          headers[name] = headers[name] .. ", " .. value
        else
          headers[name] = value
        end
      end
    end
  until status >= 200 or status == 101
  return status, version, headers
end

-- A chunked body, at most `max` bytes -> body | nil, failure
function Try:read_chunked(max)
  local parts, size = {}, 0
  while true do
    local l, f = self:line("reading the answer from", false)
    if not l then return nil, f end
    local n = tonumber(l:match("^%s*(%x+)"), 16)
    if not n then return self:fail("network", "bad chunk size in the answer from " .. self.req.where) end
    if n == 0 then
      repeat                                           -- trailers up to the empty line
        l, f = self:line("reading the answer from", false)
        if not l then return nil, f end
      until l == ""
      return table.concat(parts)
    end
    if size + n > max then return self:fail("too_large", ("answer larger than %d bytes"):format(max)) end
    local data, df = self:bytes(n)
    if not data then return nil, df end
    parts[#parts + 1] = data
    size = size + n
    local crlf, cf = self:bytes(2)
    if not crlf then return nil, cf end
  end
end

-- A body delimited by the server's close, at most `max` bytes -> body | nil, failure
function Try:read_to_close(max)
  local parts, size = {}, 0
  while true do
    if not self:budget() then
      return self:fail("timeout", "reading the answer from " .. self.req.where .. " timed out")
    end
    local data, e, partial = self.sock:receive(CHUNK)
    data = data or partial
    if data and data ~= "" then
      size = size + #data
      if size > max then return self:fail("too_large", ("answer larger than %d bytes"):format(max)) end
      parts[#parts + 1] = data
    end
    if e == "closed" then return table.concat(parts) end
    if e then return self:failed_io("reading the answer from", e, false) end
  end
end

-- The body, capped by max_body -> body, keep (the connection may be reused) | nil, failure
function Try:read_body(status, headers, max)
  if status == 204 or status == 304 then return "", true end
  local te = headers["transfer-encoding"]
  if te ~= nil and te:lower():find("chunked", 1, true) then
    local body, f = self:read_chunked(max)
    if not body then return nil, f end
    return body, true
  end
  local clen = headers["content-length"]
  if not clen then
    local body, f = self:read_to_close(max)
    if not body then return nil, f end
    return body, false
  end
  local n = tonumber(clen)
  if not require("wdt.check").is_integer(n) or n < 0 then
    return self:fail("network", "bad Content-Length in the answer from " .. self.req.where)
  end
  if n > max then return self:fail("too_large", ("answer larger than %d bytes"):format(max)) end
  if n == 0 then return "", true end
  local body, f = self:bytes(n)
  if not body then return nil, f end
  return body, true
end

-- One try on one connection -> answer | nil, failure, retry_fresh (true when a pooled
-- connection turned out dead before any byte of the answer arrived: the server closed it
-- while idle, and the caller may try once more on a new connection).
local function attempt(c, req, fresh_only)
  local try = setmetatable({ req = req }, Try)
  local ok, f = try:connect(c, fresh_only)
  if not ok then return nil, f end
  -- from here on the request may reach the server
  if not try:budget() then return try:fail("timeout", "request to " .. req.where .. " timed out") end
  local _, serr = try.sock:send(req.wire)
  if serr then return try:failed_io("sending to", serr, true) end
  local status, version, headers = try:read_head()
  if not status then return nil, version, headers end
  local enc = headers["content-encoding"]
  if enc and enc:lower() ~= "identity" then
    return try:fail("network", "the answer from " .. req.where .. " is " .. enc ..
      "-encoded; this transport asks for identity only")
  end
  local body, keep = try:read_body(status, headers, c.max_body)
  if not body then return nil, keep end
  local conn = (headers["connection"] or ""):lower()
  keep = keep and (version == "1.1" and not conn:find("close", 1, true)
                   or version == "1.0" and conn:find("keep-alive", 1, true) ~= nil)
  if keep and req.keepalive_ms > 0 and not req.once then
    if try.sock:setkeepalive(req.keepalive_ms, req.pool_size) then
      M.stats.kept_alive = M.stats.kept_alive + 1
    end
  else
    try.sock:close()
  end
  return { status = status, body = body, date = headers["date"] }
end

-- The request of one send: where it goes, its pool, its deadline and its bytes.
local function make_request(client, c, url, body, opts)
  local scheme, host, port, target = parse_url(url)
  local tls = scheme == "https"
  local hostport = host:find(":", 1, true) and ("[" .. host .. "]") or host
  local host_header = port == (tls and 443 or 80) and hostport or (hostport .. ":" .. port)
  local timeout = opts.timeout or c.timeout
  ngx.update_time()
  return {
    host = host, port = port, tls = tls, where = host_header,
    -- One pool per seller: the vendor SDKs close the connection between two sellers'
    -- calls; never carry two sellers' calls on one connection (doc/openresty.md).
    pool = ("wdt:%s:%s:%d:%s%s%s"):format(scheme, host, port, client.sid,
      tls and (c.insecure and ":insecure" or ":verify") or "", opts.fresh_connect and ":once" or ""),
    -- a write that must not be repeated: its own connection, never pooled, never resent
    once = opts.fresh_connect,
    deadline = ngx.now() + timeout,
    keepalive_ms = c.keepalive_timeout > 0 and ms(c.keepalive_timeout) or 0,
    pool_size = c.pool_size,
    wire = {
      "POST ", target, " HTTP/1.1\r\n",
      "Host: ", host_header, "\r\n",
      USER_AGENT,
      "Content-Type: application/json\r\n",
      "Content-Length: ", tostring(#body), "\r\n",
      "Accept-Encoding: identity\r\n",
      "Connection: keep-alive\r\n",
      "\r\n",
      body,
    },
  }
end

function M.send(client, url, body, opts)
  if not clock.in_cosocket_context() then
    local phase = clock.phase()
    return failure("network", phase
      and ("no cosockets in nginx's " .. phase .. " phase (use transport 'curl' or a timer)")
      or "the ngx transport runs inside nginx only", false)
  end
  local c = client._opts
  opts = opts or {}
  local try_opts = { connect_timeout = opts.connect_timeout or c.connect_timeout,
                     max_body = c.max_body, insecure = c.insecure }
  local req = make_request(client, c, url, body, opts)
  -- When a pooled connection dies before any byte of the answer (the server closed it while
  -- idle), the request goes out once more on a new connection, as libcurl does.
  local answer, f, retry_fresh = attempt(try_opts, req, false)
  if not answer and retry_fresh and not req.once then
    answer, f = attempt(try_opts, req, true)
    if not answer then f.sent = true end   -- the first try went out
  end
  return answer, f
end

return M
