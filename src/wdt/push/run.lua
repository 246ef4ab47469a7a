-- One push run: items checked (wdt.push.validate), gathered into batches, sent, and the
-- answer matched back to the items, so that every item read lands in exactly one bucket:
-- new, changed, failed (the ERP refused it, with its message), invalid (refused before
-- sending, with the field and reason) or unreported (sent, but its outcome is unknown).
--
--   local r = run.new(flow, opts)     -- opts: shop_no, batch
--   r.client, r.progress = the client to send with, progress()   (wdt.push sets them)
--   r:push(next_item, on_batch) -> true | nil, err
--       next_item() -> item | nil at the end; on_batch(settled) after every batch, settled
--       a list of wdt.flow outcome records {key=, outcome="accepted"|"failed"|"unreported"|
--       "invalid", message=} with the item as `item`
-- A push stops at the first failure that leaves a batch's outcome unknown (network,
-- timeout, rate limit after the client's retries): that batch is unreported, the items
-- not yet read stay unread. pushSelf2, upload2 and ApiGoods.upload create or overwrite by
-- key, so the client retries them and a later run may push them again safely.
local core = require "wdt.core"
local flow = require "wdt.flow"
local fields = require "wdt.push.fields"
local validate = require "wdt.push.validate"

local run = {}

local is_integer = require("wdt.check").is_integer
local array_mt = core.array_mt
local unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)

-- true | nil, the codec's message (where in the value, what)
local function encodable(v)
  local ok, err = pcall(core.encode, v)
  if ok then return true end
  return nil, (tostring(err):gsub("^value", "discounts"))
end

local function append(list, v) list[#list + 1] = v end

local Run = {}
Run.__index = Run

function run.new(flow_name, opts)
  local spec = fields.flows[flow_name]
  local summary = {
    flow = flow_name, method = spec.method, shop_no = opts.shop_no, read = 0, calls = 0,
    new = 0, changed = 0, failed = 0, invalid = 0, unreported = 0,
    failures = {}, invalids = {}, unreported_items = {}, anomalies = {},
  }
  local add_fast, add, take = validate.batch(flow_name)
  return setmetatable({
    flow = flow_name, spec = spec, opts = opts,
    batch_size = opts.batch or 100, summary = summary,
    add_fast = add_fast, add = add, take = take,
    builders = { { add_fast, add, take } },
  }, Run)
end

-- The lists' builder of the k-th batch of a round becomes the one written to: a taken
-- batch's lists read their builder's text until it is written again, so each batch in
-- flight has its own (wdt.core.push_batch).
function Run:use_builder(k)
  local bs = self.builders
  if not bs[k] then bs[k] = { validate.batch(self.flow) } end
  self.add_fast, self.add, self.take = bs[k][1], bs[k][2], bs[k][3]
  return self.add_fast
end

-- The method's positional arguments for the batch written so far (the builder is emptied;
-- b: the batch, whose orders' discounts go as pushSelf2's discountList).
function Run:arguments(b)
  local shop = self.opts.shop_no
  local list1, list2 = self.take()
  if self.flow == "orders" then
    local discounts = b and b.discounts
    if discounts and discounts[1] ~= nil then
      return { shop, list1, list2, setmetatable(discounts, array_mt), n = 4 }
    end
    return { shop, list1, list2, n = 3 }
  end
  if self.flow == "refunds" then return { shop, list1, n = 2 } end
  return { { shop_no = shop, goods_list = list1 }, n = 1 }
end

function Run:settle(settled, key, item, outcome, message)
  local s = self.summary
  if outcome == "accepted" and not self.want_settled then return end   -- nobody reads it
  if outcome == "failed" then
    s.failed = s.failed + 1
    append(s.failures, { key = key, error = message, item = item })
  elseif outcome == "unreported" then
    s.unreported = s.unreported + 1
    append(s.unreported_items, { key = key, error = message, item = item })
  end
  local e = flow.outcome(key, nil, outcome, message)
  e.item = item
  append(settled, e)
end

-- Every item of the batch (keys, items) settled alike.
function Run:settle_all(b, settled, outcome, message)
  for i = 1, #b.keys do self:settle(settled, b.keys[i], b.items[i], outcome, message) end
end

local function whole_count(v)
  v = tonumber(v)
  if is_integer(v) and v >= 0 then return v end
  return nil
end

-- Match an answer's data to the batch. Returns nothing; settles every item.
function Run:match(b, data, settled)
  local s, keys, n = self.summary, b.keys, #b.keys
  if self.flow == "goods" then
    local ids = type(data) == "table" and data.rec_ids
    if type(ids) == "table" and #ids == n then
      self:settle_all(b, settled, "accepted")
      s.changed = s.changed + n
    else
      local why = ("the answer lists %s rec_ids for %d goods"):format(type(ids) == "table" and #ids or "no", n)
      append(s.anomalies, why)
      self:settle_all(b, settled, "unreported", why)
    end
    return
  end
  local in_batch, refused, n_refused, strays = b.in_batch, {}, 0, 0
  local list = type(data) == "table" and data.error_list
  if type(list) ~= "table" then list = {} end
  for _, e in ipairs(list) do
    local no = type(e) == "table" and e.no
    if no ~= nil and type(no) ~= "string" then no = tostring(no) end
    local msg = type(e) == "table" and e.error
    msg = msg ~= nil and tostring(msg) or "refused (no message)"
    if no and in_batch[no] then
      if refused[no] then refused[no] = refused[no] .. "; " .. msg
      else refused[no], n_refused = msg, n_refused + 1 end
    else
      strays = strays + 1
      local named = no and ("'" .. no .. "'") or "no item"
      append(s.anomalies, ("error_list names %s, not in this batch: %s"):format(named, msg))
    end
  end
  local accepted = n - n_refused
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
  local items = b.items
  for i = 1, n do
    local key = keys[i]
    if refused[key] then self:settle(settled, key, items[i], "failed", refused[key])
    elseif adds_up then self:settle(settled, key, items[i], "accepted")
    else self:settle(settled, key, items[i], "unreported", why) end
  end
end

-- One batch's answer (data) or error settles its items. Returns true, or nil, err when the
-- run must stop.
function Run:answer(b, data, err, settled)
  if data ~= nil then
    self:match(b, data, settled)
    return true
  end
  local msg = err.message or tostring(err.kind)
  if err.kind == "api" and not err.retryable then
    -- refused as a whole (e.g. 店铺平台不是自有平台): every item of it failed
    self:settle_all(b, settled, "failed", ("status %s: %s"):format(tostring(err.status), msg))
    return true
  end
  self:settle_all(b, settled, "unreported", err.kind .. ": " .. msg)
  return nil, err
end

-- Send the round's batches (each with its call's arguments in b.args) at once, at most
-- `concurrency` in flight (wdt.flow's run:calls); settles their items, each batch's into
-- its b.settled. Returns true, or nil and the first error that stops the run (the other
-- batches of the round settled all the same).
function Run:send_round(round)
  local s, method = self.summary, self.spec.method
  s.calls = s.calls + #round
  local ok, results
  if #round == 1 then
    local a = round[1].args
    local data, err
    ok, data, err = pcall(self.client.call, self.client, method, unpack(a, 1, a.n))
    results = { { data = data, err = err } }
  else
    local requests = {}
    for i, b in ipairs(round) do
      local a = b.args
      requests[i] = { method, n = a.n + 1, unpack(a, 1, a.n) }
    end
    ok, results = pcall(self.calls, requests, self.client)
  end
  if not ok then
    -- stopped while sending (SIGINT, the run lock lost while waiting for the rate budget):
    -- the round is unreported, and the run stops after recording it
    local stop = flow.stop_error(results)
    if not stop then error(results, 0) end
    for _, b in ipairs(round) do self:settle_all(b, b.settled, "unreported", "interrupted while sending") end
    return nil, stop
  end
  local first_err
  for i, b in ipairs(round) do
    local r = results[i]
    local data = r.data
    if data == nil and not r.err then data = core.null end
    local done, err = self:answer(b, data, r.err, b.settled)
    if not done and not first_err then first_err = err end
  end
  if first_err then return nil, first_err end
  return true
end


-- An item the C pass left to the Lua side: checked by validate.prepare, which words the
-- reason of an invalid one, and written by the codec. -> key | false (its key is in the
-- batch already: send the batch first) | nil (listed as invalid).
function Run:add_checked(item, b, settled, in_round)
  local s, flow_name = self.summary, self.flow
  local p, field, reason = validate.prepare(flow_name, item)
  if p then
    if in_round[p.key] then return false end
    local d, ok, why = p.discounts, true, nil
    if d and d[1] ~= nil then ok, why = encodable(d) end
    if ok then ok, why = self.add(p.trade or p.record, p.lines) end
    if ok then
      if d then
        b.discounts = b.discounts or {}
        for i = 1, #d do b.discounts[#b.discounts + 1] = d[i] end
      end
      return p.key
    end
    field, reason = "(item)", "cannot be sent as JSON: " .. why
  end
  s.invalid = s.invalid + 1
  local key = p and p.key or validate.raw_key(flow_name, item)
  append(s.invalids, { index = s.read, key = key, field = field, reason = reason, item = item })
  local e = flow.outcome(key, s.read, "invalid", field .. ": " .. reason)
  e.item = item
  append(settled, e)
  return nil
end

local function new_batch() return { keys = {}, items = {}, in_batch = {}, settled = {} } end

-- The items go out in batches of `batch`, up to `concurrency` batches at once (a round).
-- An item whose key is in a batch of the round not yet sent (the same tid twice in the
-- input) sends the round first and goes in the next one: its later version is never in
-- flight beside, or ahead of, its earlier one, and each error_list names one item.
-- on_batch gets each batch's outcomes in input order once the whole round settled.
function Run:push(next_item, on_batch)
  local s = self.summary
  local size, width = self.batch_size, self.concurrency or 1
  local add_fast = self:use_builder(1)
  local round, in_round = {}, {}             -- batches built, not sent; the keys in them
  local b, n = new_batch(), 0
  self.want_settled = on_batch ~= nil
  self.unsent = { b }
  local function close_batch()
    if n == 0 then return end
    b.args = self:arguments(b)
    round[#round + 1] = b
    b, n = new_batch(), 0
    self.unsent[#self.unsent + 1] = b
    add_fast = self:use_builder(#round + 1)
  end
  local function flush()
    close_batch()
    local ok, err = true, nil
    local sending = round
    if sending[1] then ok, err = self:send_round(sending) end
    if b.settled[1] then sending[#sending + 1] = b end        -- invalid items read after them
    round, in_round = {}, {}
    b, n = new_batch(), 0            -- settled now: an interrupt from here on is not theirs
    self.unsent = { b }
    add_fast = self:use_builder(1)
    for _, done in ipairs(sending) do
      if on_batch and done.settled[1] then on_batch(done.settled) end
    end
    self.progress()
    return ok, err
  end
  local read = s.read
  while true do
    local item = next_item()
    if item == nil then break end
    read = read + 1
    s.read = read
    self.reading = item                     -- read, in no bucket yet (see abandon)
    local key = add_fast(item, in_round)
    if key == nil then key = self:add_checked(item, b, b.settled, in_round) end
    if key == false then
      -- the same key twice in one round: the later version goes in the next round, once
      -- the earlier one settled
      local ok, err = flush()
      if not ok then
        local left = {}
        self:settle(left, validate.raw_key(self.flow, item), item, "unreported", "not sent: the run stopped")
        self.reading = nil
        if on_batch then on_batch(left) end
        return nil, err
      end
      key = add_fast(item, in_round)
      if key == nil then key = self:add_checked(item, b, b.settled, in_round) end
    end
    if key then
      n = n + 1
      b.keys[n], b.items[n], b.in_batch[key], in_round[key] = key, item, true, true
    end
    self.reading = nil
    if key and n >= size then
      close_batch()
      if #round >= width then
        local ok, err = flush()
        if not ok then return nil, err end
      end
    end
  end
  return flush()
end

-- After an interrupt outside a call: the items gathered for the next call, not sent, are
-- listed as unreported (a resumable run pulls them again: its cursor did not move).
function Run:abandon()
  local unsent, item = self.unsent, self.reading
  self.unsent, self.reading = nil, nil
  for _, b in ipairs(unsent or {}) do self:settle_all(b, {}, "unreported", "not sent: interrupted") end
  -- stopped between reading an item and putting it in a bucket (the counts tell: it may
  -- have landed just before): unreported too
  local s = self.summary
  if item ~= nil and s.new + s.changed + s.failed + s.invalid + s.unreported < s.read then
    self:settle({}, validate.raw_key(self.flow, item), item, "unreported", "not sent: interrupted")
  end
end

return run
