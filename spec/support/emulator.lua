-- Start and drive wdt-emulator from busted specs (Lua 5.4; luasocket and cjson, not wdt).
--
--   local emulator = require "spec.support.emulator"
--   local e = emulator.start{ config = <table or nil>, timeout = 10 }
--   e.url, e.port, e.pid
--   e:state()                  -> decoded GET /__emulator/state
--   e:reset()                  -> POST /__emulator/reset
--   e:faults{mode=, count=, method=, delay_ms=, skew_s=, item=, anonymous=, data=}
--                              (or a list; {} clears)
--   e:enqueue{sid=, logistics=N, stock=N, stock_ghost=N, shop_no=}
--                              -> {ok, sid, logistics = size, stock = size, stock_ghost = {ids}}
--   e:request{method=, args_json=, sid=, key=, secret=, salt=, timestamp=, page=, headers=,
--             v=, extra=, drop=, sign=, body=, http_method=, timeout=}
--        -> http_status, decoded_body (nil when not JSON), headers (lower-case keys), raw_body
--        or nil, transport_error
--   e:stderr()                 -> what the emulator printed on stderr so far
--   e:stop()                   -> SIGTERM, wait until the launcher and nginx are gone
-- Defaults of e:request: the demo tenant (sid apidevnew2, key test2-xx, appsecret
-- 12345:abcde), args_json "[]", v "1.0", the current timestamp; `secret` may be the whole
-- appsecret "secret:salt". The request is signed with spec/support/signer.lua.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local signer = require "spec.support.signer"

local M = { signer = signer }

M.DEMO = { sid = "apidevnew2", key = "test2-xx", appsecret = "12345:abcde" }

local sh = require "spec.support.sh"
local sh_quote, read_file, alive, repo_root = sh.quote, sh.read_file, sh.alive, sh.repo_root

M.BIN = os.getenv("WDT_EMULATOR_BIN") or (repo_root() .. "/bin/wdt-emulator")
M.alive = alive

function M.free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- one HTTP exchange; returns code, raw body, headers  or nil, err
local function exchange(url, verb, body, headers, timeout)
  local chunks = {}
  local ok, code, hdrs = http.request{
    url = url,
    method = verb,
    headers = headers,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
    create = function()
      local s = socket.tcp()
      s:settimeout(timeout or 30)
      return s
    end,
  }
  if not ok then return nil, code end
  return code, table.concat(chunks), hdrs
end
M.exchange = exchange

local function decode(raw)
  local ok, v = pcall(cjson.decode, raw)
  if ok then return v end
  return nil
end

local Emulator = {}
Emulator.__index = Emulator

-- One launch on `port`: the emulator, or nil and the launcher's stderr when it exited
-- before answering.
local function launch(opts, port)
  local tmp = os.tmpname()
  local e = setmetatable({ port = port, url = ("http://127.0.0.1:%d/openapi"):format(port),
                           base = ("http://127.0.0.1:%d"):format(port),
                           out_path = tmp .. ".out", err_path = tmp .. ".err",
                           tmp = tmp }, Emulator)
  local args = { sh_quote(M.BIN), "--port", tostring(port) }
  if opts.config then
    e.config_path = tmp .. ".json"
    local f = assert(io.open(e.config_path, "wb"))
    f:write(type(opts.config) == "string" and opts.config or cjson.encode(opts.config))
    f:close()
    args[#args + 1] = "--config"
    args[#args + 1] = sh_quote(e.config_path)
  end
  -- the emulator also stops by itself when this Lua process goes away
  local pp = io.popen("echo $PPID")
  local me = pp:read("*l")
  pp:close()
  if me and me:match("^%d+$") then
    args[#args + 1] = "--watch-pid"
    args[#args + 1] = me
  end
  local cmd = table.concat(args, " ") .. " </dev/null >" .. sh_quote(e.out_path)
              .. " 2>" .. sh_quote(e.err_path) .. " & echo $!"
  local p = assert(io.popen(cmd))
  e.pid = tonumber(p:read("*l"))
  p:close()
  assert(e.pid, "could not start " .. M.BIN)

  local deadline = socket.gettime() + (opts.timeout or 10)
  while true do
    -- its own "listening on" first: another server may answer on the port
    if read_file(e.out_path):find("listening on", 1, true)
       and exchange(e.base .. "/__emulator/state", "GET", nil, nil, 2) == 200 then
      return e
    end
    if not alive(e.pid) then
      local err = read_file(e.err_path)
      e:_cleanup()
      return nil, err
    end
    if socket.gettime() > deadline then
      local err = read_file(e.err_path)
      e:stop()
      error("wdt-emulator did not answer within " .. (opts.timeout or 10) .. " s; its stderr:\n"
            .. err, 3)
    end
    socket.sleep(0.05)
  end
end

function M.start(opts)
  opts = opts or {}
  -- a free port is free when looked at: another spec running at the same time may take it
  -- before this nginx binds it; then another port (unless the caller chose this one)
  for _ = 1, opts.port and 1 or 5 do
    local e, err = launch(opts, opts.port or M.free_port())
    if e then return e end
    if opts.port or not err:find("Address already in use", 1, true) then
      error("wdt-emulator exited before answering; its stderr:\n" .. err, 2)
    end
  end
  error("wdt-emulator: five free ports in a row were taken before it could bind them", 2)
end

function Emulator:stderr() return read_file(self.err_path) end
function Emulator:stdout() return read_file(self.out_path) end

function Emulator:_cleanup()
  os.remove(self.out_path)
  os.remove(self.err_path)
  os.remove(self.tmp)
  if self.config_path then os.remove(self.config_path) end
end

-- Stop the emulator: SIGTERM to the launcher, which stops nginx (master and worker) and
-- removes its prefix; waits until the launcher is gone (SIGKILL after 10 s).
function Emulator:stop()
  if self.stopped then return true end
  self.stopped = true
  os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
  local deadline = socket.gettime() + 10
  while alive(self.pid) do
    if socket.gettime() > deadline then
      os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
      break
    end
    socket.sleep(0.02)
  end
  self:_cleanup()
  return true
end

function Emulator:control(verb, path, obj)
  local body = obj ~= nil and cjson.encode(obj) or nil
  local headers = body and { ["content-type"] = "application/json",
                             ["content-length"] = tostring(#body) } or nil
  local code, raw = exchange(self.base .. "/__emulator/" .. path, verb, body, headers, 10)
  if not code then error("emulator control " .. path .. ": " .. tostring(raw), 2) end
  local v = decode(raw)
  if code ~= 200 then
    error(("emulator control %s: HTTP %s %s"):format(path, tostring(code), raw), 2)
  end
  return v
end

function Emulator:state() return self:control("GET", "state") end
function Emulator:reset() return self:control("POST", "reset", {}) end
function Emulator:faults(f) return self:control("POST", "faults", f or {}) end
function Emulator:enqueue(q) return self:control("POST", "enqueue", q or {}) end

-- Sign and send one open API call.
function Emulator:request(o)
  o = o or {}
  local body = o.body or o.args_json or "[]"
  local appsecret, secret, salt = nil, o.secret, o.salt
  if secret and secret:find(":", 1, true) then appsecret, secret = secret, nil end
  if not secret and not appsecret then appsecret = M.DEMO.appsecret end
  if appsecret then
    local colon = appsecret:find(":", 1, true)
    secret = secret or appsecret:sub(1, colon - 1)
    salt = salt or appsecret:sub(colon + 1)
  end
  local query = signer.signed_query{
    sid = o.sid or M.DEMO.sid, key = o.key or M.DEMO.key, secret = secret, salt = salt,
    method = o.method, body = body, timestamp = o.timestamp, page = o.page, v = o.v,
    extra = o.extra, drop = o.drop, sign = o.sign,
  }
  local headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#body) }
  for k, v in pairs(o.headers or {}) do
    headers[k:lower()] = v or nil
  end
  local code, raw, hdrs = exchange(self.url .. "?" .. query, o.http_method or "POST", body,
                                   headers, o.timeout)
  if not code then return nil, raw end
  return code, decode(raw), hdrs, raw
end

return M
