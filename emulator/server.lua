-- wdt-emulator: the request handlers, run by nginx's Lua module (LuaJIT, Lua 5.1 syntax).
--
--   location = /openapi       -> M.openapi()   the open API, checked like the real server
--   location /__emulator/     -> M.control()   state, reset, faults, enqueue, ship, stock (for tests)
--
-- It shares no code with wdt's client or C core: signing uses ngx.md5, JSON uses the
-- emulator's own strict codec (emulator.json). See doc/emulator.md.
local json = require "emulator.json"
local state = require "emulator.state"
local methods = require "emulator.methods"
local catalogue = require "emulator.catalogue"
local inflight = require "emulator.inflight"
require "emulator.batch_calc"      -- registers sales.StockSync.batchCalcStock

local ngx = ngx
local M = {}

local EPOCH_2012 = 1325347200
local MAX_SKEW = 120
local RATE_MSG = "超过每分钟最大调用频率限制，请稍后重试"
local FAULT_MODES = { http_500 = true, reset = true, delay = true, non_json = true,
                      truncated = true, rate_limit = true, skew = true, no_data = true, echo = true,
                      refuse = true, drift = true, data = true }

-- nginx's init_by_lua: read the configuration (or take the demo one) and build the state.
function M.init(config_path)
  state.load(config_path)
end

-- nginx's init_worker_by_lua: once the worker runs its event loop, drop a file that tells
-- the launcher the server answers. A watchdog stops nginx when the launcher disappears
-- without stopping it (killed with SIGKILL), or when watch_pid (--watch-pid) exits, so that
-- nothing is left behind.
local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return false end
  local line = f:read("*l") or ""
  f:close()
  return not line:find("^%d+ %b() Z")   -- a zombie has exited
end

function M.init_worker(ready_path, launcher_pid, prefix, watch_pid)
  if ready_path and ready_path ~= "" then
    ngx.timer.at(0, function()
      local f = io.open(ready_path, "w")
      if f then f:write(tostring(ngx.worker.pid()), "\n"); f:close() end
    end)
  end
  local probe = io.open("/proc/self/stat", "r")
  if not probe then return end -- no /proc: no watchdog
  probe:close()
  local stopping = false
  ngx.timer.every(1, function(premature)
    if premature or stopping then return end
    local launcher_gone = launcher_pid and launcher_pid > 0 and not alive(launcher_pid)
    local watched_gone = watch_pid and watch_pid > 0 and not alive(watch_pid)
    if not (launcher_gone or watched_gone) then return end
    stopping = true
    local ok, process = pcall(require, "ngx.process")
    local master = ok and process.get_master_pid and process.get_master_pid()
    if not master then return end
    io.stderr:write("wdt-emulator: ", launcher_gone and "the launcher" or "the watched process",
                    " is gone; stopping\n")
    local cmd = "kill -TERM " .. master
    if launcher_gone and prefix and prefix ~= "" then
      -- nobody else will remove the prefix
      cmd = cmd .. "; (sleep 2; rm -rf '" .. prefix:gsub("'", "'\\''") .. "') >/dev/null 2>&1 &"
    end
    os.execute(cmd)
  end)
end

local function send(http_status, body, content_type, date_offset)
  inflight.leave()
  ngx.status = http_status
  ngx.header["Content-Type"] = content_type or "application/json; charset=utf-8"
  ngx.header["Content-Length"] = #body
  if date_offset then ngx.header["Date"] = ngx.http_time(math.floor(ngx.now() + date_offset)) end
  ngx.print(body)
  return ngx.exit(http_status)
end

local function answer(obj, date_offset, truncate)
  local body = json.encode(obj)
  if truncate then body = body:sub(1, math.floor(#body / 2)) end
  return send(200, body, nil, date_offset)
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if not file then return "" end
  local f = io.open(file, "rb")
  if not f then return "" end
  body = f:read("*a")
  f:close()
  return body
end

-- The next fault to apply, consumed (count decremented), or nil.
local function take_fault(method)
  local faults = state.s.faults
  local f = faults[1]
  if not f then return nil end
  if f.method and f.method ~= method then return nil end   -- waits for a call of its method
  f.count = f.count - 1
  if f.count <= 0 then table.remove(faults, 1) end
  return f
end

local function count_call(sid, method)
  local s = state.s
  s.requests = s.requests + 1
  s.user_agent = ngx.var.http_user_agent
  local conn = ngx.var.connection
  if conn and not s.conn_seen[conn] then
    s.conn_seen[conn] = true
    s.connections = s.connections + 1
  end
  sid, method = sid or "", method or ""
  local per = s.calls[sid]
  if not per then per = {}; s.calls[sid] = per end
  per[method] = (per[method] or 0) + 1
end

local REQUIRED = { "sid", "key", "salt", "method", "v", "timestamp", "sign" }

-- Check one /openapi call; returns the response object. `fault` is the fault taken for
-- this call (a method handler may act on it: "refuse").
local function handle(params, body, skew, fault)
  for _, name in ipairs(REQUIRED) do
    local v = params[name]
    if v == nil or v == true or v == "" then
      return { status = 1, message = "缺少公共参数" .. name }
    end
  end
  for name, v in pairs(params) do
    if type(v) ~= "string" then
      return { status = 1, message = "参数" .. tostring(name) .. "重复或格式错误" }
    end
  end
  local tenant = state.config().tenants[params.sid]
  if not tenant then return { status = 1, message = "sid is not exists" } end
  if params.v ~= "1.0" then return { status = 8, message = "版本号错误，v必须是1.0" } end
  if params.key ~= tenant.key or params.salt ~= tenant.salt then
    return { status = 1, message = "验证失败" }
  end
  local ts = params.timestamp
  if not ts:find("^%-?%d+$") or #ts > 15 then
    return { status = 1, message = "timestamp格式错误" }
  end
  ts = tonumber(ts)
  if ts > 10000000000 then
    return { status = 1, message = "timestamp应为秒级时间戳(当前时间减去2012-01-01 00:00:00)" }
  end
  local server_ts = ngx.now() + (skew or 0) - EPOCH_2012
  if math.abs(ts - server_ts) > MAX_SKEW then
    return { status = 7, message = "timestamp与服务器时间相差超过2分钟，请校准时间" }
  end
  -- the signature: every parameter but sign, plus body, sorted by key byte-wise
  local keys = {}
  for k in pairs(params) do
    if k ~= "sign" then keys[#keys + 1] = k end
  end
  keys[#keys + 1] = "body"
  table.sort(keys)
  local parts = { tenant.secret }
  for _, k in ipairs(keys) do
    parts[#parts + 1] = k
    parts[#parts + 1] = (k == "body") and body or params[k]
  end
  parts[#parts + 1] = tenant.secret
  if ngx.md5(table.concat(parts)) ~= params.sign then
    return { status = 1, message = "验证失败" }
  end
  -- the per-minute rate limit, per tenant, over authenticated calls; rl.window (60 s unless
  -- configured shorter, so that specs stay fast) is the length of the counting window
  local rl = state.config().rate_limit
  if rl then
    local now = ngx.now()
    local w = state.s.rate[params.sid]
    if not w or now - w.start >= rl.window then
      w = { start = now, count = 0 }
      state.s.rate[params.sid] = w
    end
    w.count = w.count + 1
    if w.count > rl.per_minute then
      state.s.rate_limited[params.sid] = (state.s.rate_limited[params.sid] or 0) + 1
      return { status = 100, message = RATE_MSG }
    end
  end
  local ctype = ngx.var.http_content_type
  if not ctype or not ctype:lower():find("^%s*application/json%s*;?") then
    return { status = 1, message = "Content-Type必须是application/json" }
  end
  local strict = state.config().strict
  local args, err = json.decode(body, strict)
  if args == nil then
    return { status = 1, message = (strict and "请求体不是紧凑的JSON数组: " or "请求体不是JSON数组: ") .. err }
  end
  if not json.is_array(args) then
    return { status = 1, message = "请求体必须是JSON数组(按位置传递的参数)" }
  end
  -- the stateful handlers first; every other method of the catalogue from emulator/catalogue.lua
  local stateful = methods.table[params.method]
  local handler = stateful or catalogue.handler(params.method)
  if not handler then
    return { status = 1, message = "接口" .. params.method .. "不存在" }
  end
  -- 1000 rows a page, or what the method's page allows (2000 for a few)
  local pager, perr = methods.pager(params, not stateful and catalogue.max_page_size(params.method) or nil)
  if not pager then return { status = 2, message = perr } end
  if stateful then   -- its filters' lengths and values as its page lists them
    local bad = catalogue.check_values(params.method, args)
    if bad then return bad end
  end
  return handler(state.s.tenants[params.sid], args, pager, params.sid, fault)
end

function M.openapi()
  local params = ngx.req.get_uri_args(100)
  local sid, method = params.sid, params.method
  count_call(type(sid) == "string" and sid or nil, type(method) == "string" and method or nil)
  -- the seller's limit of calls at once (emulator/inflight.lua)
  if not inflight.enter(sid) then return answer({ status = 100, message = inflight.MESSAGE }) end

  local fault = take_fault(method)
  local skew, truncate, no_data, data
  if fault then
    local mode = fault.mode
    if mode == "http_500" then
      return send(500, "<html><head><title>500 Internal Server Error</title></head><body>"
                  .. "<h1>500 Internal Server Error</h1></body></html>\n", "text/html")
    elseif mode == "reset" then
      inflight.leave()
      return ngx.exit(444) -- nginx closes the connection without an answer
    elseif mode == "non_json" then
      return send(200, "<html><body>502 Bad Gateway: upstream error</body></html>\n", "text/html")
    elseif mode == "rate_limit" then
      return answer({ status = 100, message = RATE_MSG })
    elseif mode == "echo" then    -- a careless server: its error quotes the whole request
      return answer({ status = 1, message = "bad request: " .. ngx.var.request_uri .. " "
                      .. (read_body() or "") })
    elseif mode == "delay" then
      ngx.sleep((fault.delay_ms or 1000) / 1000)
    elseif mode == "skew" then
      skew = fault.skew_s or 3600
    elseif mode == "truncated" then
      truncate = true
    elseif mode == "no_data" then
      no_data = true
    elseif mode == "data" then
      data = fault
    end
  end

  if ngx.req.get_method() ~= "POST" then
    return answer({ status = 1, message = "只接受POST请求" }, skew, truncate)
  end
  local body = read_body()
  local ok, res = pcall(handle, params, body, skew, fault)
  if not ok then
    -- written by hand: nginx's own log lines carry the request line, whose query string
    -- holds the salt and the sign (nginx logs at "crit" only, see bin/wdt-emulator)
    io.stderr:write("wdt-emulator: handler error in ", tostring(params.method), ": ",
                    tostring(res), "\n")
    res = { status = 99, message = "服务器内部错误" }
  end
  if no_data and res.status == 0 then res.data = nil end   -- carried out, answered without data
  if data and res.status == 0 then                          -- carried out, answered this data
    res.data = data.data
    if data.total ~= nil then res.total = data.total end
  end
  return answer(res, skew, truncate)
end

---------------------------------------------------------------------------------------------
-- control endpoints

local function control_reply(http_status, obj)
  return send(http_status, json.encode(obj))
end

local function control_body()
  local body = read_body()
  if body == "" then return json.object() end
  local v, err = json.decode(body, false)
  if v == nil then return nil, "body is not JSON: " .. err end
  return v
end

local function whole(v) return type(v) == "number" and v == math.floor(v) end

local function parse_fault(f)
  if not json.is_object(f) then return nil, "a fault is an object {\"mode\":..., \"count\":N}" end
  if not FAULT_MODES[f.mode] then return nil, "unknown fault mode: " .. tostring(f.mode) end
  local out = { mode = f.mode, count = f.count == nil and 1 or f.count }
  if not whole(out.count) or out.count < 0 then return nil, "count must be a whole number >= 0" end
  if f.method ~= nil then
    if type(f.method) ~= "string" then return nil, "method must be a method name" end
    out.method = f.method
  end
  if f.mode == "delay" then
    out.delay_ms = f.delay_ms == nil and 1000 or f.delay_ms
    if type(out.delay_ms) ~= "number" or out.delay_ms < 0 then return nil, "delay_ms must be >= 0" end
  elseif f.mode == "skew" then
    out.skew_s = f.skew_s == nil and 3600 or f.skew_s
    if type(out.skew_s) ~= "number" then return nil, "skew_s must be a number" end
  elseif f.mode == "drift" then
    out.rows = f.rows == nil and 1 or f.rows
    if not whole(out.rows) or out.rows < 1 then return nil, "rows must be a whole number >= 1" end
    out.to = f.to == nil and "end" or f.to
    if out.to ~= "end" and out.to ~= "now" then return nil, "to must be \"end\" or \"now\"" end
  elseif f.mode == "data" then
    if f.data == nil then return nil, "data: the JSON value to answer is required" end
    out.data, out.total = f.data, f.total
  elseif f.mode == "refuse" then
    out.item = f.item == nil and 1 or f.item
    if not whole(out.item) or out.item < 1 then return nil, "item must be a whole number >= 1" end
    out.anonymous = f.anonymous == true
    if f.anonymous ~= nil and type(f.anonymous) ~= "boolean" then
      return nil, "anonymous must be true or false"
    end
  end
  return out
end

-- The tenant a control call names (`sid`), or the only one when it names none: the
-- tenant and its sid, or nil and a message.
function M.tenant_of(sid)
  local tenants = state.s.tenants
  if sid == nil then
    for k in pairs(tenants) do
      if sid then return nil, "sid is required" end
      sid = k
    end
  end
  local t = tenants[sid]
  if not t then return nil, "unknown sid: " .. tostring(sid) end
  return t, sid
end

-- A control call on one tenant, {sid?, ...}, handled by require(module)[fn](tenant, body):
-- POST /__emulator/rows (emulator/query.lua), /__emulator/ship and /stock (emulator/push.lua).
local function tenant_control(module, fn)
  local v, err = control_body()
  if v ~= nil and not json.is_object(v) then v, err = nil, "expected an object" end
  local t
  if v then t, err = M.tenant_of(v.sid) end
  local res
  if t then res, err = require(module)[fn](t, v) end
  if not res then return control_reply(400, { ok = false, error = err }) end
  return control_reply(200, res)
end

function M.control()
  local uri, verb = ngx.var.uri, ngx.req.get_method()
  local s = state.s
  if uri == "/__emulator/state" and verb == "GET" then
    return control_reply(200, state.view())
  elseif uri == "/__emulator/reset" and verb == "POST" then
    state.reset()
    return control_reply(200, { ok = true })
  elseif uri == "/__emulator/faults" and verb == "POST" then
    local v, err = control_body()
    if v == nil then return control_reply(400, { ok = false, error = err }) end
    local list = json.is_array(v) and v or { v }
    local faults = {}
    for _, f in ipairs(list) do
      if not (json.is_object(f) and (f.mode == "none" or f.mode == nil and next(f) == nil)) then
        local parsed, perr = parse_fault(f)
        if not parsed then return control_reply(400, { ok = false, error = perr }) end
        if parsed.count > 0 then faults[#faults + 1] = parsed end
      end
    end
    s.faults = faults
    return control_reply(200, { ok = true, faults = state.view().faults })
  elseif uri == "/__emulator/enqueue" and verb == "POST" then
    local v, err = control_body()
    if v == nil then return control_reply(400, { ok = false, error = err }) end
    if not json.is_object(v) then return control_reply(400, { ok = false, error = "expected an object" }) end
    local t, sid = M.tenant_of(v.sid)
    if not t then return control_reply(400, { ok = false, error = sid }) end
    local nl, ns, ng = v.logistics or 0, v.stock or 0, v.stock_ghost or 0
    if not whole(nl) or nl < 0 or not whole(ns) or ns < 0 or not whole(ng) or ng < 0 then
      return control_reply(400, { ok = false,
        error = "logistics, stock and stock_ghost must be whole numbers >= 0" })
    end
    if v.shop_no ~= nil and type(v.shop_no) ~= "string" then
      return control_reply(400, { ok = false, error = "shop_no must be a string" })
    end
    local ids_err = v.stock_ids ~= nil and state.stock_ids_error(v.stock_ids, t.stock.by_id)
    if ids_err then return control_reply(400, { ok = false, error = "stock_ids: " .. ids_err }) end
    state.add_logistics(sid, nl, v.shop_no)
    state.add_stock(sid, ns, v.stock_ids)
    local ghosts = state.add_stock_ghosts(sid, ng)
    return control_reply(200, { ok = true, sid = sid, logistics = t.logistics.size,
                                stock = t.stock.size, stock_ghost = ghosts })
  elseif uri == "/__emulator/rows" and verb == "POST" then
    return tenant_control("emulator.query", "control_rows")
  elseif (uri == "/__emulator/ship" or uri == "/__emulator/stock") and verb == "POST" then
    return tenant_control("emulator.push", uri:match("[^/]+$"))
  end
  return control_reply(404, { ok = false, error = "no such control endpoint: " .. verb .. " " .. uri })
end

return M
