-- The emulator's state: tenants, the logistics and stock queues, counters, faults.
-- Lives in one module table inside the single nginx worker (worker_processes 1), so every
-- request sees and changes the same data without locks (handlers never yield while
-- changing it). Runs in nginx's LuaJIT (Lua 5.1 syntax).
local json = require "emulator.json"

local M = {}

-- Ids are above 2^32 (clients must keep 64-bit integers exact) and below 2^53 (LuaJIT
-- numbers are doubles).
M.SYNC_ID_BASE = 5000000000
M.TRADE_ID_BASE = 6000000000
M.REC_ID_BASE = 7000000000
M.CURSOR_BASE = 239000000

M.OWN_PLATFORM = 127           -- platform_id of the self-owned platform (自有平台)

M.DEMO = {
  tenants = { { sid = "apidevnew2", key = "test2-xx", secret = "12345:abcde" } },
  logistics = { apidevnew2 = { pending = 50, shop_no = "s1" } },
  stock = { apidevnew2 = { pending = 20 } },
}

local config      -- normalized configuration
M.s = nil         -- the live state (see reset)

local function is_int(v) return type(v) == "number" and v == math.floor(v) end

-- Normalize and check a decoded configuration table; raises with a clear message.
local function normalize(c)
  if type(c) ~= "table" then error("config: the top value must be an object", 0) end
  local out = { tenants = {}, logistics = {}, stock = {}, rate_limit = nil }
  local tenants = c.tenants
  if type(tenants) ~= "table" or #tenants == 0 then
    error("config: \"tenants\" must be a non-empty list", 0)
  end
  for i, t in ipairs(tenants) do
    if type(t) ~= "table" or type(t.sid) ~= "string" or type(t.key) ~= "string"
       or type(t.secret) ~= "string" then
      error(("config: tenants[%d] needs string sid, key and secret"):format(i), 0)
    end
    local colon = t.secret:find(":", 1, true)
    if not colon then
      error(("config: tenants[%d].secret must be \"secret:salt\""):format(i), 0)
    end
    out.tenants[t.sid] = { sid = t.sid, key = t.key,
                           secret = t.secret:sub(1, colon - 1), salt = t.secret:sub(colon + 1),
                           concurrency = require("emulator.inflight").check_limit(t.concurrency, i) }
  end
  for _, kind in ipairs({ "logistics", "stock" }) do
    local q = c[kind]
    if q ~= nil then
      if type(q) ~= "table" then error("config: \"" .. kind .. "\" must be an object", 0) end
      for sid, spec in pairs(q) do
        if not out.tenants[sid] then
          error(("config: %s.%s names no tenant"):format(kind, tostring(sid)), 0)
        end
        if type(spec) ~= "table" or not is_int(spec.pending) or spec.pending < 0 then
          error(("config: %s.%s.pending must be a whole number >= 0"):format(kind, sid), 0)
        end
        if spec.shop_no ~= nil and type(spec.shop_no) ~= "string" then
          error(("config: %s.%s.shop_no must be a string"):format(kind, sid), 0)
        end
        out[kind][sid] = { pending = spec.pending, shop_no = spec.shop_no or "s1" }
        if kind == "stock" and spec.ids ~= nil then
          local e = M.stock_ids_error(spec.ids, {})
          if e then error(("config: stock.%s.ids: %s"):format(sid, e), 0) end
          out.stock[sid].ids = spec.ids
        end
      end
    end
  end
  out.shops = require("emulator.push").normalize_shops(c.shops, out)
  if c.rate_limit ~= nil and c.rate_limit ~= json.null then
    local pm = type(c.rate_limit) == "table" and c.rate_limit.per_minute
    if not is_int(pm) or pm < 0 then
      error("config: rate_limit.per_minute must be a whole number >= 0", 0)
    end
    local window = c.rate_limit.window
    if window == nil or window == json.null then window = 60 end
    if type(window) ~= "number" or window <= 0 or window ~= window or window > 86400 then
      error("config: rate_limit.window must be a number of seconds > 0", 0)
    end
    if pm > 0 then out.rate_limit = { per_minute = pm, window = window } end
  end
  -- strict: refuse bodies with whitespace outside strings (what the real server does with
  -- them is not known; its SDKs send compact JSON, its pages show multi-line examples)
  if c.strict ~= nil and c.strict ~= json.null and type(c.strict) ~= "boolean" then
    error("config: strict must be true or false", 0)
  end
  out.strict = c.strict == true
  return out
end

function M.load(path)
  local raw
  if path and path ~= "" then
    local f, err = io.open(path, "rb")
    if not f then error("config: cannot open " .. tostring(err), 0) end
    local text = f:read("*a")
    f:close()
    local v, derr = json.decode(text, false)
    if v == nil then error("config: " .. path .. " is not JSON (" .. derr .. ")", 0) end
    raw = v
  else
    raw = M.DEMO
  end
  config = normalize(raw)
  M.reset()
  return config
end

function M.config() return config end

-- Unix seconds -> "YYYY-MM-DD HH:MM:SS": the vendor's clock is Beijing time (UTC+8)
-- (kept per second: a query's rows repeat a few times, and os.date makes a table a call)
local stamps, stamp_count = {}, 0
function M.stamp(t)
  t = math.floor(t)
  local text = stamps[t]
  if text then return text end
  local d = os.date("!*t", t + 8 * 3600)
  text = ("%04d-%02d-%02d %02d:%02d:%02d"):format(d.year, d.month, d.day, d.hour, d.min, d.sec)
  if stamp_count >= 100000 then stamps, stamp_count = {}, 0 end
  stamps[t], stamp_count = text, stamp_count + 1
  return text
end

local stamp = M.stamp

local LOGISTICS = {
  { "SF", "顺丰速运" }, { "YTO", "圆通速递" }, { "ZTO", "中通快递" }, { "YZBK", "中国邮政" },
}

-- Append n pending shipments for a tenant.
function M.add_logistics(sid, n, shop_no)
  local s = M.s
  local q = s.tenants[sid].logistics
  local now = os.time()
  for _ = 1, n do
    s.seq_logistics = s.seq_logistics + 1
    local i = s.seq_logistics
    local co = LOGISTICS[i % #LOGISTICS + 1]
    local part = (i % 10 == 0)
    local tid = ("T%010d"):format(i)
    local row = {
      sync_id = M.SYNC_ID_BASE + i,
      tid = tid,
      logistics_no = ("%s%012d"):format(co[1], 880000000000 + i),
      logistics_code = co[1],
      logistics_name = co[2],
      is_part_sync = part and 1 or 0,
      oids = part and (tid .. "-1," .. tid .. "-2") or "",
      trade_id = M.TRADE_ID_BASE + i,
      platform_id = 127,
      created = stamp(now - 600 + (i % 600)),
      shop_no = shop_no or q.shop_no,
    }
    q.rows[#q.rows + 1] = row
    q.by_id[row.sync_id] = row
    q.size = q.size + 1
    local all = s.tenants[sid].shipments
    all[#all + 1] = row
  end
end

-- Append one pending good to the stock wait list, with the next id and cursor; returns it
-- and its sequence number.
local function append_good(s, q)
  s.seq_stock = s.seq_stock + 1
  s.cursor = s.cursor + 1
  local g = { rec_id = M.REC_ID_BASE + s.seq_stock, cursor = s.cursor, pending = true }
  q.goods[#q.goods + 1] = g
  return g, s.seq_stock
end

-- Why a list of api_goods_ids cannot be seeded (nil when it can): whole numbers from 1,
-- below the emulator's own ids, none twice nor already a good (known: rec_id -> good).
function M.stock_ids_error(ids, known)
  if not json.is_array(ids) then return "must be a list" end
  local seen = {}
  for i = 1, #ids do
    local id = ids[i]
    if not is_int(id) or id < 1 or id >= M.REC_ID_BASE then
      return ("ids[%d] must be a whole number from 1 to %.0f"):format(i, M.REC_ID_BASE - 1)
    end
    if seen[id] or known[id] then return ("%.0f is already a good"):format(id) end
    seen[id] = true
  end
end

-- Append goods waiting for a stock sync: n with new ids, then one for each id of `ids`
-- (checked by stock_ids_error), as goods a page's example or a test names.
function M.add_stock(sid, n, ids)
  local s = M.s
  local q = s.tenants[sid].stock
  ids = ids or {}
  for k = 1, n + #ids do
    local g, i = append_good(s, q)
    if k > n then g.rec_id = ids[k - n] end
    g.match_target_id = i
    g.stock_change_count = 1 + i % 5
    g.syn_stock = (i * 37) % 500
    g.goods_id = ("G%06d"):format(i)
    g.spec_id = ("G%06d-1"):format(i)
    q.by_id[g.rec_id] = g
    q.size = q.size + 1
  end
end

-- Append n "ghost" ids to the stock wait list: listed once (then gone), unknown to
-- calcStock and the reports, as goods taken out of sync right after a list was read.
-- They are not counted in the queue's size. Returns their ids (a JSON array).
function M.add_stock_ghosts(sid, n)
  local s = M.s
  local q = s.tenants[sid].stock
  local ids = json.array()
  for _ = 1, n do
    local g = append_good(s, q)
    g.ghost = true
    ids[#ids + 1] = g.rec_id
  end
  return ids
end

-- Drop acknowledged logistics rows from the ordered list (they are flagged `gone`).
function M.compact_logistics(q)
  if q.gone == 0 then return end
  local rows, j = q.rows, 0
  local kept = {}
  for i = 1, #rows do
    local r = rows[i]
    if not r.gone then j = j + 1; kept[j] = r end
  end
  q.rows, q.gone = kept, 0
end

function M.reset()
  local s = {
    tenants = {},
    seq_logistics = 0,
    seq_stock = 0,
    cursor = M.CURSOR_BASE,
    requests = 0,
    connections = 0,
    conn_seen = {},
    calls = {},
    faults = {},
    rate = {},
    rate_limited = {},     -- sid -> calls refused by the rate limit (config rate_limit)
  }
  M.s = s
  local sids = {}
  for sid in pairs(config.tenants) do sids[#sids + 1] = sid end
  table.sort(sids)
  for _, sid in ipairs(sids) do
    local lc = config.logistics[sid] or { pending = 0, shop_no = "s1" }
    s.tenants[sid] = {
      sid = sid,
      shipments = {},             -- every shipment, the queue's rows included, never removed
      since = stamp(os.time()),   -- when this tenant's shops were "authorised"
      logistics = { rows = {}, by_id = {}, size = 0, gone = 0, shop_no = lc.shop_no,
                    acked = 0, failed = 0, kept = 0, left = {}, repeated = 0 },
      stock = { goods = {}, by_id = {}, size = 0, synced = 0, failed = 0, cancelled = 0,
                stale = 0, short_info = 0 },
      raw_trades = {}, raw_refunds = {}, api_goods = {},   -- pushed records (emulator/push.lua)
    }
  end
  for _, sid in ipairs(sids) do
    local lc = config.logistics[sid]
    if lc then M.add_logistics(sid, lc.pending) end
    local sc = config.stock[sid]
    if sc then M.add_stock(sid, sc.pending, sc.ids) end
  end
end

-- The JSON-ready view served by GET /__emulator/state.
function M.view()
  local s = M.s
  local out = {
    requests = s.requests,
    connections = s.connections,
    user_agent = s.user_agent,
    calls = json.object(),
    faults = json.array(),
    tenants = json.object(),
  }
  for sid, per in pairs(s.calls) do
    local m = json.object()
    for k, v in pairs(per) do m[k] = v end
    out.calls[sid] = m
  end
  for i, f in ipairs(s.faults) do
    local c = json.object()
    for k, v in pairs(f) do c[k] = v end
    out.faults[i] = c
  end
  for sid, t in pairs(s.tenants) do
    local lq, sq = t.logistics, t.stock
    M.compact_logistics(lq)
    local ids = json.array()
    for i, r in ipairs(lq.rows) do ids[i] = r.sync_id end
    local gids = json.array()
    for _, g in ipairs(sq.goods) do
      if g.pending and not g.ghost then gids[#gids + 1] = g.rec_id end
    end
    local rate = s.rate[sid]
    out.tenants[sid] = {
      logistics = { size = lq.size, pending = ids, acked = lq.acked, failed = lq.failed,
                    kept = lq.kept, repeated = lq.repeated },
      stock = { size = sq.size, pending = gids, synced = sq.synced, failed = sq.failed,
                cancelled = sq.cancelled, stale = sq.stale, short_info = sq.short_info },
      rate_window = rate and { started = rate.start, count = rate.count } or json.null,
      rate_limited = s.rate_limited[sid] or 0,
    }
    require("emulator.push").view(t, out.tenants[sid])
    require("emulator.inflight").view(sid, out.tenants[sid])
  end
  return out
end

return M
