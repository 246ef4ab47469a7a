-- HTTP/1.1 POST over nginx cosockets (ngx.socket.tcp), for requests made inside nginx
-- request handlers and timers, where a blocking libcurl call would stall the worker.
--
-- send(client, url, body, opts) answers exactly like the C transport `cl:send`:
--   http_status, body, date_header            on any HTTP answer (2xx or not)
--   nil, kind, message, sent                  kind "network", "timeout" or "too_large";
--                                             sent == false: the request never left
-- Messages never quote the URL's query string (it holds the salt and the sign).
--
-- Connections are pooled per worker with setkeepalive (pool "wdt:<scheme>:<host>:<port>…",
-- `keepalive_timeout` seconds idle, `pool_size` idle connections at most). TLS peers are
-- verified against nginx's `lua_ssl_trusted_certificate` unless the client is `insecure`.
-- Answers are requested with `Accept-Encoding: identity` (no zlib in plain LuaJIT).
local M = {}

local MAX_HEADER_BYTES = 64 * 1024       -- status line and headers of one answer
local CHUNK = 16 * 1024                  -- read size for answers delimited by close
local FOREVER_MS = 2147483647            -- "no timeout": what libcurl does with 0

-- Counters of this worker (module state lives per worker VM): how many requests went
-- through cosockets and how many of them rode a pooled connection.
M.stats = { requests = 0, connects = 0, reused = 0, kept_alive = 0 }

local function now()
  return ngx.now()
end

-- "http(s)://host[:port][/path][?query]" -> scheme, host, port, target (path?query)
local function parse_url(url)
  local scheme, authority, rest = url:match("^(https?)://([^/?#]+)(.*)$")
  if not scheme then return nil, "not an http:// or https:// URL" end
  rest = rest:gsub("#.*$", "")
  if authority:find("@", 1, true) then
    return nil, "user:password@ in the URL is not supported"
  end
  local host, port
  if authority:sub(1, 1) == "[" then                  -- [v6addr]:port
    host, port = authority:match("^%[([^%]]+)%]:?(%d*)$")
  else
    host, port = authority:match("^([^:]+):?(%d*)$")
  end
  if not host then return nil, "bad host in the URL" end
  if port == "" then
    port = scheme == "https" and 443 or 80
  else
    port = tonumber(port)
    if port < 1 or port > 65535 then return nil, "bad port in the URL" end
  end
  if rest == "" then
    rest = "/"
  elseif rest:sub(1, 1) == "?" then
    rest = "/" .. rest
  end
  return scheme, host, port, rest
end
M.parse_url = parse_url

local function ms(seconds)
  if seconds == nil or seconds <= 0 then return FOREVER_MS end
  local v = math.floor(seconds * 1000 + 0.5)
  if v < 1 then v = 1 end
  if v > FOREVER_MS then v = FOREVER_MS end
  return v
end

-- One attempt on one connection. Returns the send() results plus `retry_fresh` = true
-- when a pooled connection turned out dead before any byte of the answer arrived (the
-- server closed it while idle): then the caller tries once more on a new connection.
local function attempt(c, req, fresh_only)
  local sock = ngx.socket.tcp()
  local where = req.where

  -- connect (+ TLS): failures here mean the request never left
  local remaining = req.deadline and (req.deadline - now()) or nil
  if remaining and remaining <= 0 then
    return nil, "timeout", "timed out before connecting to " .. where, false
  end
  local connect_ms = ms(c.connect_timeout)
  local total_ms = remaining and ms(remaining) or FOREVER_MS
  if total_ms < connect_ms then connect_ms = total_ms end
  sock:settimeouts(connect_ms, total_ms, total_ms)

  local ok, err, reused
  for _ = 1, req.pool_size + 1 do
    ok, err = sock:connect(req.host, req.port, { pool = req.pool })
    if not ok then
      if err == "timeout" then
        return nil, "timeout", "connect to " .. where .. " timed out", false
      end
      return nil, "network", "connect to " .. where .. " failed: " .. tostring(err), false
    end
    reused = (sock:getreusedtimes() or 0) > 0
    if not (fresh_only and reused) then break end
    sock:close()          -- after a dead pooled connection: its siblings are suspect too
    sock = ngx.socket.tcp()
    sock:settimeouts(connect_ms, total_ms, total_ms)
  end
  if fresh_only and reused then
    return nil, "network", "no new connection to " .. where, false
  end
  M.stats.requests = M.stats.requests + 1
  if reused then
    M.stats.reused = M.stats.reused + 1
  else
    M.stats.connects = M.stats.connects + 1
    if req.tls then
      -- sslhandshake(reused_session, server_name (SNI), verify)
      local sni = not req.host:match("^[%d%.]+$") and not req.host:find(":", 1, true) and req.host or nil
      local hs, herr = sock:sslhandshake(false, sni, not c.insecure)
      if not hs then
        sock:close()
        if herr == "timeout" then
          return nil, "timeout", "TLS handshake with " .. where .. " timed out", false
        end
        -- a certificate that does not verify ("18: self signed certificate", "certificate
        -- host mismatch") will not verify on a second try: kind "tls", never retried
        local e = tostring(herr)
        local kind = (e:match("^%d+: ") or e:find("certificate", 1, true)) and "tls" or "network"
        return nil, kind, "TLS handshake with " .. where .. " failed: " .. e, false
      end
    end
  end

  -- from here on the request may reach the server
  local function fail(kind, msg, fresh)
    sock:close()
    return nil, kind, msg, true, fresh
  end
  local function failed_io(what, e, got_nothing)
    if e == "timeout" then
      return fail("timeout", what .. " " .. where .. " timed out")
    end
    if e == "closed" then e = "the connection was closed" end
    -- a pooled connection the server had closed while idle: nothing was processed
    return fail("network", what .. " " .. where .. " failed: " .. tostring(e), reused and got_nothing)
  end
  -- The total timeout: each wait gets at most what is left of it.
  local function budget()
    if not req.deadline then return true end
    local left = req.deadline - now()
    if left <= 0 then return false end
    local t = ms(left)
    sock:settimeouts(connect_ms, t, t)
    return true
  end

  if not budget() then return fail("timeout", "request to " .. where .. " timed out") end
  local _, serr = sock:send(req.wire)
  if serr then return failed_io("sending to", serr, true) end

  -- status line (skipping 1xx interim answers) and headers
  local status, version, headers
  local header_bytes = 0
  local function line()
    if header_bytes > MAX_HEADER_BYTES then return nil, "headers larger than 64 KiB" end
    if not budget() then return nil, "timeout" end
    local l, e = sock:receive("*l")
    if l then header_bytes = header_bytes + #l + 2 end
    return l, e
  end
  local first = true
  repeat
    local l, e = line()
    if not l then return failed_io("reading the answer from", e, first) end
    first = false
    local v, code = l:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not v then return fail("network", "not an HTTP answer from " .. where) end
    version, status = v, tonumber(code)
    headers = { }
    while true do
      local h, he = line()
      if not h then return failed_io("reading the headers from", he, false) end
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

  local te = headers["transfer-encoding"]
  local chunked = te ~= nil and te:lower():find("chunked", 1, true) ~= nil
  local clen = headers["content-length"]
  local conn = (headers["connection"] or ""):lower()
  local keep = version == "1.1" and not conn:find("close", 1, true)
            or version == "1.0" and conn:find("keep-alive", 1, true) ~= nil
  local enc = headers["content-encoding"]
  if enc and enc:lower() ~= "identity" then
    return fail("network", "the answer from " .. where .. " is " .. enc ..
      "-encoded; this transport asks for identity only")
  end

  -- body, capped by max_body
  local max = c.max_body
  local too_large = "answer larger than " .. ("%d"):format(max) .. " bytes"
  local body
  if status == 204 or status == 304 or req.head then
    body = ""
  elseif chunked then
    local parts, size = {}, 0
    while true do
      if not budget() then return fail("timeout", "reading the answer from " .. where .. " timed out") end
      local l, e = sock:receive("*l")
      if not l then return failed_io("reading the answer from", e, false) end
      local n = tonumber(l:match("^%s*(%x+)"), 16)
      if not n then return fail("network", "bad chunk size in the answer from " .. where) end
      if n == 0 then
        repeat                                           -- trailers up to the empty line
          if not budget() then return fail("timeout", "reading the answer from " .. where .. " timed out") end
          l, e = sock:receive("*l")
          if not l then return failed_io("reading the answer from", e, false) end
        until l == ""
        break
      end
      if size + n > max then return fail("too_large", too_large) end
      if not budget() then return fail("timeout", "reading the answer from " .. where .. " timed out") end
      local data, de = sock:receive(n)
      if not data then return failed_io("reading the answer from", de, false) end
      parts[#parts + 1] = data
      size = size + n
      local crlf, ce = sock:receive(2)
      if not crlf then return failed_io("reading the answer from", ce, false) end
    end
    body = table.concat(parts)
  elseif clen then
    local n = tonumber(clen)
    if not n or n < 0 or n % 1 ~= 0 then
      return fail("network", "bad Content-Length in the answer from " .. where)
    end
    if n > max then return fail("too_large", too_large) end
    if n == 0 then
      body = ""
    else
      if not budget() then return fail("timeout", "reading the answer from " .. where .. " timed out") end
      local data, e = sock:receive(n)
      if not data then return failed_io("reading the answer from", e, false) end
      body = data
    end
  else                                                   -- delimited by the server's close
    keep = false
    local parts, size = {}, 0
    while true do
      if not budget() then return fail("timeout", "reading the answer from " .. where .. " timed out") end
      local data, e, partial = sock:receive(CHUNK)
      data = data or partial
      if data and data ~= "" then
        size = size + #data
        if size > max then return fail("too_large", too_large) end
        parts[#parts + 1] = data
      end
      if e == "closed" then break end
      if e then return failed_io("reading the answer from", e, false) end
    end
    body = table.concat(parts)
  end

  if keep and req.keepalive_ms > 0 and not req.once then
    local kok = sock:setkeepalive(req.keepalive_ms, req.pool_size)
    if kok then M.stats.kept_alive = M.stats.kept_alive + 1 end
  else
    sock:close()
  end
  return status, body, headers["date"]
end

function M.send(client, url, body, opts)
  local c = client._opts or {}
  opts = opts or {}
  local scheme, host, port, target = parse_url(url)
  if not scheme then return nil, "network", host, false end
  if not require("wdt.clock").in_cosocket_context() then
    local phase = type(ngx) == "table" and ngx.get_phase and ngx.get_phase()
    return nil, "network", phase and ("no cosockets in nginx's " .. phase .. " phase (use transport 'curl' or a timer)")
      or "the ngx transport runs inside nginx only", false
  end
  local o = {
    timeout = opts.timeout or c.timeout,
    connect_timeout = opts.connect_timeout or c.connect_timeout,
    max_body = c.max_body or 64 * 1024 * 1024,
    insecure = c.insecure,
  }
  local tls = scheme == "https"
  local hostport = (host:find(":", 1, true) and ("[" .. host .. "]") or host)
  local default_port = tls and 443 or 80
  local host_header = port == default_port and hostport or (hostport .. ":" .. port)
  ngx.update_time()
  local req = {
    host = host, port = port, tls = tls,
    where = host_header,
    pool = ("wdt:%s:%s:%d%s%s"):format(scheme, host, port, tls and (c.insecure and ":insecure" or ":verify") or "",
      opts.fresh_connect and ":once" or ""),
    -- a write that must not be repeated: its own connection, never pooled, never resent
    once = opts.fresh_connect,
    deadline = (o.timeout and o.timeout > 0) and (now() + o.timeout) or nil,
    keepalive_ms = (c.keepalive_timeout or 60) > 0 and ms(c.keepalive_timeout or 60) or 0,
    pool_size = c.pool_size or 16,
    wire = {
      "POST ", target, " HTTP/1.1\r\n",
      "Host: ", host_header, "\r\n",
      "User-Agent: wdt-lua/0.1 (ngx)\r\n",
      "Content-Type: application/json\r\n",
      "Content-Length: ", tostring(#body), "\r\n",
      "Accept-Encoding: identity\r\n",
      "Connection: keep-alive\r\n",
      "\r\n",
      body,
    },
  }
  -- When a pooled connection dies before any byte of the answer (the server closed it while
  -- idle), the request goes out once more on a new connection, as libcurl does.
  local status, rbody, date, sent, retry_fresh = attempt(o, req, false)
  if status == nil and retry_fresh and not req.once then
    status, rbody, date, sent = attempt(o, req, true)
    if status == nil then sent = true end   -- the first try went out
  end
  return status, rbody, date, sent
end

return M
