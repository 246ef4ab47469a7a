-- One push run: items checked (wdt.push.validate), gathered into batches, sent, and the
-- answer matched back to the items, so that every item read lands in exactly one bucket:
-- new, changed, failed (the ERP refused it, with its message), invalid (refused before
-- sending, with the field and reason) or unreported (sent, but its outcome is unknown).
--
--   local r = run.new(client, flow, opts)     -- opts: shop_no, batch, on_progress
--   r:push(next_item, on_batch) -> true | nil, err
--       next_item() -> item | nil at the end; on_batch(settled) after every batch, settled
--       a list of {key=, item=, outcome="accepted"|"failed"|"unreported"|"invalid", error=}
--   r:finish() -> summary
-- A push stops at the first failure that leaves a batch's outcome unknown (network,
-- timeout, rate limit after the client's retries): that batch is unreported, the items
-- not yet read stay unread. pushSelf2, upload2 and ApiGoods.upload create or overwrite by
-- key, so the client retries them and a later run may push them again safely.
local core = require "wdt.core"
local errors = require "wdt.errors"
local fields = require "wdt.push.fields"
local validate = require "wdt.push.validate"

local run = {}

local array_mt = core.array_mt

local is_interrupt = errors.is_interrupt

local function append(list, v) list[#list + 1] = v end

local Run = {}
Run.__index = Run

function run.new(client, flow, opts)
  local spec = fields.flows[flow]
  local summary = {
    flow = flow, method = spec.method, shop_no = opts.shop_no, read = 0, calls = 0,
    new = 0, changed = 0, failed = 0, invalid = 0, unreported = 0,
    failures = {}, invalids = {}, unreported_items = {}, anomalies = {},
    started = core.unix_time(),
  }
  return setmetatable({
    client = client:with{ idempotent = true }, flow = flow, spec = spec, opts = opts,
    batch_size = opts.batch or 100, summary = summary,
  }, Run)
end

-- The method's positional arguments for one batch of prepared items.
function Run:arguments(batch)
  local shop = self.opts.shop_no
  if self.flow == "orders" then
    local trades, lines = setmetatable({}, array_mt), setmetatable({}, array_mt)
    for i, p in ipairs(batch) do
      trades[i] = p.trade
      for _, l in ipairs(p.lines) do lines[#lines + 1] = l end
    end
    return { shop, trades, lines, n = 3 }
  end
  local records = setmetatable({}, array_mt)
  for i, p in ipairs(batch) do records[i] = p.record end
  if self.flow == "refunds" then return { shop, records, n = 2 } end
  return { { shop_no = shop, goods_list = records }, n = 1 }
end

function Run:settle(settled, p, outcome, message)
  local s = self.summary
  if outcome == "accepted" and not self.want_settled then return end   -- nobody reads it
  if outcome == "failed" then
    s.failed = s.failed + 1
    append(s.failures, { key = p.key, error = message, item = p.item })
  elseif outcome == "unreported" then
    s.unreported = s.unreported + 1
    append(s.unreported_items, { key = p.key, error = message, item = p.item })
  end
  append(settled, { key = p.key, item = p.item, outcome = outcome, error = message })
end

local function whole_count(v)
  v = tonumber(v)
  if v and v >= 0 and v % 1 == 0 then return v end
  return nil
end

-- Match an answer's data to the batch. Returns nothing; settles every item.
function Run:match(batch, data, settled)
  local s = self.summary
  if self.flow == "goods" then
    local ids = type(data) == "table" and data.rec_ids
    if type(ids) == "table" and #ids == #batch then
      for _, p in ipairs(batch) do self:settle(settled, p, "accepted") end
      s.changed = s.changed + #batch
    else
      local why = ("the answer lists %s rec_ids for %d goods"):format(type(ids) == "table" and #ids or "no", #batch)
      append(s.anomalies, why)
      for _, p in ipairs(batch) do self:settle(settled, p, "unreported", why) end
    end
    return
  end
  local by_key, refused, n_refused, strays = {}, {}, 0, 0
  local list = type(data) == "table" and data.error_list
  if type(list) ~= "table" then list = {} end
  if list[1] ~= nil then
    for _, p in ipairs(batch) do by_key[p.key] = p end
  end
  for _, e in ipairs(list) do
    local no = type(e) == "table" and e.no
    if no ~= nil and type(no) ~= "string" then no = tostring(no) end
    local msg = type(e) == "table" and e.error
    msg = msg ~= nil and tostring(msg) or "refused (no message)"
    if no and by_key[no] then
      if refused[no] then refused[no] = refused[no] .. "; " .. msg
      else refused[no], n_refused = msg, n_refused + 1 end
    else
      strays = strays + 1
      local named = no and ("'" .. no .. "'") or "no item"
      append(s.anomalies, ("error_list names %s, not in this batch: %s"):format(named, msg))
    end
  end
  local accepted = #batch - n_refused
  local nc = whole_count(type(data) == "table" and data.new_count)
  local cc = whole_count(type(data) == "table" and data.chg_count)
  local adds_up = nc ~= nil and cc ~= nil and nc + cc == accepted and strays == 0
  local why
  if not adds_up then
    why = ("the answer does not account for it (new_count %s + chg_count %s for %d accepted)")
          :format(tostring(nc), tostring(cc), accepted)
    append(s.anomalies, why)
  else
    s.new, s.changed = s.new + nc, s.changed + cc
  end
  if adds_up and n_refused == 0 and not self.want_settled then return end   -- nothing to record
  for _, p in ipairs(batch) do
    if refused[p.key] then self:settle(settled, p, "failed", refused[p.key])
    elseif adds_up then self:settle(settled, p, "accepted")
    else self:settle(settled, p, "unreported", why) end
  end
end

-- Send one batch; settles its items. Returns true, or nil, err when the run must stop.
function Run:send(batch, settled)
  local s = self.summary
  local args = self:arguments(batch)
  s.calls = s.calls + 1
  local ok, data, err = pcall(self.client.call, self.client, self.spec.method,
                              (table.unpack or unpack)(args, 1, args.n))  -- luacheck: ignore
  if not ok then
    local e = data
    for _, p in ipairs(batch) do self:settle(settled, p, "unreported", "interrupted while sending") end
    if is_interrupt(e) then
      return nil, errors.new{ kind = "interrupted", message = "stopped by SIGINT (Ctrl-C)" }
    end
    error(e, 0)
  end
  if data ~= nil then
    self:match(batch, data, settled)
    return true
  end
  local msg = err.message or tostring(err.kind)
  if err.kind == "api" and not err.retryable then
    -- refused as a whole (e.g. 店铺平台不是自有平台): every item of it failed
    msg = ("status %s: %s"):format(tostring(err.status), msg)
    for _, p in ipairs(batch) do self:settle(settled, p, "failed", msg) end
    return true
  end
  for _, p in ipairs(batch) do self:settle(settled, p, "unreported", err.kind .. ": " .. msg) end
  return nil, err
end

function Run:progress()
  local s = self.summary
  s.elapsed = core.unix_time() - s.started
  if self.opts.on_progress then self.opts.on_progress(s) end
end

function Run:push(next_item, on_batch)
  local s, batch, in_batch, settled = self.summary, {}, {}, {}
  self.want_settled = on_batch ~= nil
  self.unsent = batch
  local function flush()
    if #batch == 0 and #settled == 0 then return true end
    local ok, err = true, nil
    if #batch > 0 then ok, err = self:send(batch, settled) end
    if on_batch then on_batch(settled) end
    batch, in_batch, settled = {}, {}, {}
    self.unsent = batch
    self:progress()
    return ok, err
  end
  while true do
    local item = next_item()
    if item == nil then break end
    s.read = s.read + 1
    local p, field, reason = validate.prepare(self.flow, item)
    if not p then
      s.invalid = s.invalid + 1
      local key = validate.raw_key(self.flow, item)
      append(s.invalids, { index = s.read, key = key, field = field, reason = reason, item = item })
      append(settled, { key = key, item = item, outcome = "invalid", error = field .. ": " .. reason })
    else
      p.item = item
      -- the same key twice in one call could not be told apart in error_list: the later
      -- version goes in the next batch
      if in_batch[p.key] then
        local ok, err = flush()
        if not ok then
          local left = {}
          self:settle(left, p, "unreported", "not sent: the run stopped")
          if on_batch then on_batch(left) end
          return nil, err
        end
      end
      batch[#batch + 1], in_batch[p.key] = p, true
      if #batch >= self.batch_size then
        local ok, err = flush()
        if not ok then return nil, err end
      end
    end
  end
  return flush()
end

function Run:finish()
  local s = self.summary
  s.elapsed = core.unix_time() - s.started
  return s
end

-- After an interrupt outside a call: the items gathered for the next call, not sent, are
-- listed as unreported (a resumable run pulls them again: its cursor did not move).
function Run:abandon()
  local unsent = self.unsent or {}
  self.unsent = nil
  for _, p in ipairs(unsent) do self:settle({}, p, "unreported", "not sent: interrupted") end
end

-- nil, err for a run that stopped: err.summary holds the summary so far.
function Run:stop(err)
  local s = self:finish()
  local fields_ = {}
  for k, v in pairs(err) do fields_[k] = v end
  fields_.cause, fields_.summary = err, s
  if s.unreported > 0 then
    fields_.message = ("%s; %d item(s) left unreported"):format(err.message or tostring(err.kind), s.unreported)
  end
  return nil, errors.new(fields_)
end

return run
