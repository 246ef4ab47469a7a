-- One push run: items checked (wdt.push.validate), gathered into batches, sent, and the
-- answer matched back to the items, so that every item read lands in exactly one bucket:
-- new, changed, failed (the ERP refused it, with its message), invalid (refused before
-- sending, with the field and reason) or unreported (sent, but its outcome is unknown).
--
--   local r = run.new(flow, opts)     -- opts: shop_no, batch
--   r.frun, r.progress = the flow run (wdt.flow) and its progress()   (wdt.push sets them)
--   r:push(next_item, on_batch) -> true | nil, err
--       next_item() -> item | nil at the end; on_batch(settled) after every batch, settled
--       a list of wdt.flow outcome records {key=, outcome="accepted"|"failed"|"unreported"|
--       "invalid", message=} with the item as `item`
-- A push stops at the first failure that leaves a batch's outcome unknown (network,
-- timeout, rate limit after the client's retries): that batch is unreported, the items
-- not yet read stay unread. pushSelf2, upload2 and ApiGoods.upload create or overwrite by
-- key, so the client retries them and a later run may push them again safely.
local core = require "wdt.core"
local errors = require "wdt.errors"
local flow = require "wdt.flow"
local fields = require "wdt.push.fields"
local validate = require "wdt.push.validate"
local paging = require "wdt.paging"

local run = {}

local is_integer = require("wdt.check").is_integer
local array_mt = core.array_mt

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
    outcomes = {},   -- wdt.flow.outcome records of the items not pushed (failed, invalid, unreported, given up)
  }
  local add_fast, add, take = validate.batch(flow_name)
  return setmetatable({
    flow = flow_name, spec = spec, opts = opts,
    batch_size = opts.batch or 100, summary = summary,
    add_fast = add_fast, add = add, take = take,
    builders = { { add_fast, add, take } },
  }, Run)
end

-- The lists' builder of the k-th batch of a window becomes the one written to: a taken
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

-- One item's outcome: counted, listed, given to the on_outcome option (every item).
function Run:record(key, id, outcome, message)
  if outcome ~= "accepted" then append(self.summary.outcomes, flow.outcome(key, id, outcome, message)) end
  local cb = self.opts.on_outcome
  if cb then self.frun:callback("on_outcome", cb, flow.outcome(key, id, outcome, message)) end
end

-- unsent: the item never reached the ERP (a resumable push does not count it as a try)
function Run:settle(settled, key, item, outcome, message, unsent)
  local s = self.summary
  if outcome == "accepted" and not self.want_settled then   -- nobody reads it but on_outcome
    if self.opts.on_outcome then self:record(key, nil, outcome, message) end
    return
  end
  if outcome == "failed" then
    s.failed = s.failed + 1
    append(s.failures, { key = key, error = message, item = item })
  elseif outcome == "unreported" then
    s.unreported = s.unreported + 1
    append(s.unreported_items, { key = key, error = message, item = item })
  end
  self:record(key, nil, outcome, message)
  local e = flow.outcome(key, nil, outcome, message)
  e.item, e.unsent = item, unsent
  append(settled, e)
end

-- Every item of the batch (keys, items) settled alike.
function Run:settle_all(b, settled, outcome, message, unsent)
  for i = 1, #b.keys do self:settle(settled, b.keys[i], b.items[i], outcome, message, unsent) end
end

local function whole_count(v)
  v = tonumber(v)
  if is_integer(v) and v >= 0 then return v end
  return nil
end

-- What is wrong with the shape of an answer's data (nil: nothing). Checked as strictly as
-- the sync answers: an `error_list` that is no list, a count that is no whole number, a
-- goods answer whose own status is not 0 or whose rec_ids are not n ids would otherwise
-- read as "all taken".
local function is_id(v)
  return (type(v) == "number" and v > 0 and v % 1 == 0) or (type(v) == "string" and v:match("^%d+$") ~= nil)
end
local function shape_problem(flow_name, data, n)
  if type(data) ~= "table" or paging.is_list(data) then return "the answer's data is no object" end
  if flow_name == "goods" then
    if data.status ~= nil and data.status ~= 0 then return "the answer's data says status " .. tostring(data.status) end
    local ids = data.rec_ids
    if not paging.is_list(ids) and not (type(ids) == "table" and next(ids) == nil) then
      return "the answer's rec_ids is no list"
    end
    if #ids ~= n then return ("the answer lists %d rec_ids for %d goods"):format(#ids, n) end
    for i = 1, n do
      if not is_id(ids[i]) then
        local v = ids[i]
        return ("rec_ids[%d] is no id: %s"):format(i, v == core.null and "null" or type(v) == "table" and "a table"
          or tostring(v))
      end
    end
    return nil
  end
  local list = data.error_list
  if list ~= nil and list ~= core.null and not paging.is_list(list)
     and not (type(list) == "table" and next(list) == nil) then
    return "error_list is no list: " .. (type(list) == "table" and "an object" or tostring(list))
  end
  for i, e in ipairs(type(list) == "table" and list or {}) do
    if type(e) ~= "table" or paging.is_list(e) then return ("error_list[%d] is no object"):format(i) end
  end
  return nil
end

-- A wrong answer: every item of the batch unreported, the run stopped with a decode error.
function Run:wrong_answer(b, settled, why)
  local s = self.summary
  append(s.anomalies, why)
  self:settle_all(b, settled, "unreported", "decode: " .. why)
  return nil, errors.new { kind = "decode", method = self.spec.method, retryable = false, message = why }
end

-- Match an answer's data to the batch. Returns true, or nil, err for an answer of the
-- wrong shape; settles every item.
function Run:match(b, data, settled)
  local s, keys, n = self.summary, b.keys, #b.keys
  local problem = shape_problem(self.flow, data, n)
  if problem then return self:wrong_answer(b, settled, problem) end
  if self.flow == "goods" then
    self:settle_all(b, settled, "accepted")
    s.changed = s.changed + n
    return true
  end
  local in_batch, refused, n_refused, strays = b.in_batch, {}, 0, 0
  local list = data.error_list
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
    if b.sent_before and cc > 0 then s.changed_maybe_new = (s.changed_maybe_new or 0) + cc end
  end
  if adds_up and n_refused == 0 and not self.want_settled and not self.opts.on_outcome then
    return true                                           -- nothing to record
  end
  local items = b.items
  for i = 1, n do
    local key = keys[i]
    if refused[key] then self:settle(settled, key, items[i], "failed", refused[key])
    elseif adds_up then self:settle(settled, key, items[i], "accepted")
    else self:settle(settled, key, items[i], "unreported", why) end
  end
  return true
end

-- An item the C pass left to the Lua side: checked by validate.prepare, which words the
-- reason of an invalid one, and written by the codec. -> key | false (its key is in the
-- batch already: send the batch first) | nil (listed as invalid).
function Run:add_checked(item, b, settled, in_window)
  local s, flow_name = self.summary, self.flow
  local p, field, reason = validate.prepare(flow_name, item)
  if p then
    if in_window[p.key] then return false end
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
  self:record(key, s.read, "invalid", field .. ": " .. reason)
  local e = flow.outcome(key, s.read, "invalid", field .. ": " .. reason)
  e.item = item
  append(settled, e)
  return nil
end

local function new_batch() return { keys = {}, items = {}, in_batch = {}, settled = {} } end

-- Pushes the items next_item() returns, on the flow runner (r.frun:batches, up to
-- `concurrency` batches in the window): a batch is read into its slot's builder until it
-- holds batch_size items, an item whose key a batch of the window holds already (that one
-- waits until the window is empty, and starts the next batch: its later version is never
-- in flight beside or ahead of the earlier one, and error_list names one item), or the
-- end; one call sends it, and its answer settles its items. on_batch(settled) after every
-- batch, in input order. -> true | nil, err (the run must stop)
function Run:push(next_item, on_batch)
  local s, size, add_fast = self.summary, self.batch_size, nil
  self.want_settled = on_batch ~= nil
  local carry, ended              -- carry: the item read that must wait for the window
  local in_window = {}            -- the keys in the window's batches
  self.unsent = {}
  local steps = {}
  function steps.next(slot, idle)
    if idle then in_window = {} end
    local unsent = self.unsent              -- the batches settled leave the list
    while unsent[1] and unsent[1].done do table.remove(unsent, 1) end
    add_fast = self:use_builder(slot)
    local b = new_batch()
    unsent[#unsent + 1] = b
    local keys, items, in_batch, settled = b.keys, b.items, b.in_batch, b.settled   -- b's, for the loop
    local n, item = 0, carry
    carry = nil
    while n < size do
      if item == nil then
        if ended then break end
        item = next_item()
        if item == nil then ended = true break end
        s.read = s.read + 1
        self.reading = item                 -- read, in no bucket yet (see abandon)
      end
      local key = add_fast(item, in_window)
      if key == nil then key = self:add_checked(item, b, settled, in_window) end
      if key == false then carry = item break end   -- its key is in the window: waits for it
      if key then
        n = n + 1
        keys[n], items[n], in_batch[key], in_window[key] = key, item, true, true
      end
      item, self.reading = nil, nil
    end
    if n == 0 and #settled == 0 then return nil end
    return b, carry ~= nil
  end
  function steps.call(b)
    if #b.keys == 0 then return nil end
    s.calls = s.calls + 1
    return { method = self.spec.method, args = self:arguments(b), idempotent = true }
  end
  function steps.settle(b, resp, err, sent_before)
    local ok = true
    if resp then
      local data = resp.data
      if data == nil then data = core.null end
      b.sent_before = sent_before   -- what this answer calls changed an earlier try may have made
      ok, err = self:match(b, data, b.settled)
    elseif #b.keys > 0 then
      local msg = err.message or tostring(err.kind)
      if err.kind == "api" and not err.retryable then
        -- refused as a whole (e.g. 店铺平台不是自有平台): every item of it failed
        self:settle_all(b, b.settled, "failed", ("status %s: %s"):format(tostring(err.status), msg))
      else
        -- refused connection, DNS, connect timeout on every try: nothing reached the ERP
        self:settle_all(b, b.settled, "unreported", err.kind .. ": " .. msg,
                        err.sent == false and not err.sent_before)
        ok = nil
      end
    end
    for _, key in ipairs(b.keys) do in_window[key] = nil end
    b.done = true                           -- settled: an interrupt from here on is not its
    if on_batch then on_batch(b.settled) end
    self.progress()
    if ok then return true end
    return nil, err
  end
  local ok, err = self.frun:batches(steps)
  if not ok and carry ~= nil then           -- the item read for the next batch, never sent
    local left = {}
    self:settle(left, validate.raw_key(self.flow, carry), carry, "unreported", "not sent: the run stopped")
    self.reading = nil
    if on_batch then on_batch(left) end
  end
  return ok, err
end

-- After an interrupt outside a call: the items gathered for the next call, not sent, are
-- listed as unreported (a resumable run pulls them again: its cursor did not move).
function Run:abandon()
  local unsent, item = self.unsent, self.reading
  self.unsent, self.reading = nil, nil
  for _, b in ipairs(unsent or {}) do
    if not b.done then self:settle_all(b, {}, "unreported", "not sent: interrupted") end
  end
  -- stopped between reading an item and putting it in a bucket (the counts tell: it may
  -- have landed just before): unreported too
  local s = self.summary
  if item ~= nil and s.new + s.changed + s.failed + s.invalid + s.unreported < s.read then
    self:settle({}, validate.raw_key(self.flow, item), item, "unreported", "not sent: interrupted")
  end
end

return run
