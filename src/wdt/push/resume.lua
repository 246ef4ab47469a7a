-- Resumable pushing: pull items from the caller's source page by page, push them, and
-- keep a durable state (a wdt.store document) so that an interrupted or failed run loses
-- nothing and the next one pushes again at most what was in flight.
--
--   source(cursor) -> items, next_cursor     (no items, or an empty list: nothing new;
--                                             a page with a hole is a `source` error)
--
-- The state document:
--   { version = 1, sid =, flow =, shop_no =, source =, cursor = <the source's cursor>,
--     chunk = { cursor =, done = { [key] = fingerprint } } | nil,   -- the page in progress
--     pending = { [key] = { item =, tries =, outcome =, error = } }, -- failed / unreported
--     given_up = { { key =, tries =, error =, item = }, ... } }
-- * The cursor moves on only once every item of the page was accepted, refused, found
--   invalid or recorded in `pending`; the state is saved after every batch.
-- * A page pulled again after a crash skips the items already settled (same key and the
--   same content); a changed item is pushed again (create-or-update, by key).
-- * Items in `pending` are pushed first on every run; after `max_tries` attempts that
--   failed they move to `given_up` (kept in the state, and listed in the summary of every
--   run until `retry_given_up` puts them back in `pending`). A try that never reached the
--   ERP (refused connection) is not counted.
-- * The state names its seller, flow, shop and source (`source_name`); another's is refused,
--   and so is a state of the wrong shape (nothing pushed).
local check = require "wdt.check"
local core = require "wdt.core"
local errors = require "wdt.errors"
local validate = require "wdt.push.validate"

local resume = {}

local MAX_GIVEN_UP = 1000   -- the state keeps the latest ones

local function fingerprint(item)
  local ok, text = pcall(core.encode, item)
  if not ok then return "?" end
  return core.sign("wdt-push", { item = text })
end

local function same(a, b)
  local ok1, ea = pcall(core.encode, { v = a })
  local ok2, eb = pcall(core.encode, { v = b })
  return ok1 and ok2 and ea == eb
end

local function fail(kind, message)
  return errors.new { kind = kind, message = message }
end

-- What is wrong with a state document's shape (nil: nothing): a state edited by hand or
-- damaged must be refused before a run pushes anything, not crash it halfway.
local function is_map(t, value_ok)
  if type(t) ~= "table" or getmetatable(t) == core.array_mt then return false end
  for k, v in pairs(t) do
    if type(k) ~= "string" or not value_ok(v) then return false end
  end
  return true
end
local function is_entry(v)
  return type(v) == "table" and type(v.item) == "table"
    and type(v.tries) == "number" and v.tries >= 0 and v.tries % 1 == 0
end
local function is_fingerprint(v) return type(v) == "string" end
local function shape_problem(doc)
  if not is_map(doc.pending, is_entry) then
    return "'pending' is not a map of key -> {item, tries}"
  end
  local c = doc.chunk
  if c ~= nil and not (type(c) == "table" and is_map(c.done, is_fingerprint)) then
    return "'chunk' is not {cursor, done}"
  end
  local g = doc.given_up
  if type(g) ~= "table" then return "'given_up' is not a list" end
  for i = 1, #g do
    if type(g[i]) ~= "table" or type(g[i].item) ~= "table" then return "'given_up' is not a list of items" end
  end
  if next(g) ~= nil and #g == 0 then return "'given_up' is not a list" end
  return nil
end

-- The state of this seller, flow, shop and source; a new one is created at once, and only
-- if no other run created it meanwhile (two shops started at once on one new file: the
-- second finds the first's and is refused, rather than overwrite its pending items).
local function load_state(store, flow, who)
  local doc, err = store:load()
  if err then return nil, err end
  if doc == nil then
    doc = { version = 1, sid = who.sid, flow = flow, shop_no = who.shop_no, source = who.source,
            pending = {}, given_up = setmetatable({}, core.array_mt) }
    if not store.create then return doc end
    local made, cerr = store:create(doc)
    if made then return doc end
    if made == nil then return nil, cerr end
    doc, err = store:load()             -- another run made it first: whose is it?
    if err then return nil, err end
  end
  if type(doc) ~= "table" or doc.version ~= 1 then
    return nil, fail("state", "the state is not a wdt push state (version 1)")
  end
  if doc.flow ~= flow or doc.shop_no ~= who.shop_no then
    return nil, fail("state", ("the state belongs to %s for shop %s, not %s for shop %s")
      :format(tostring(doc.flow), tostring(doc.shop_no), flow, who.shop_no))
  end
  -- a state written before it named its seller (and source) is taken as this one's
  if doc.sid ~= nil and doc.sid ~= who.sid then
    return nil, fail("state", ("the state belongs to seller %s, not %s"):format(tostring(doc.sid), who.sid))
  end
  if doc.source ~= nil and who.source ~= nil and doc.source ~= who.source then
    return nil, fail("state", ("the state belongs to the source %s, not %s"):format(tostring(doc.source), who.source))
  end
  doc.sid, doc.source = who.sid, doc.source or who.source
  doc.pending = doc.pending or {}
  doc.given_up = doc.given_up or setmetatable({}, core.array_mt)
  local problem = shape_problem(doc)
  if problem then return nil, fail("state", "the state is damaged: " .. problem .. " (nothing pushed)") end
  return doc
end

-- Record one settled item in the state document.
local function record(doc, entry, max_tries)
  local key = entry.key
  if entry.outcome == "accepted" or entry.outcome == "invalid" or key == nil then
    if key ~= nil then doc.pending[key] = nil end
    return
  end
  local prev = doc.pending[key]
  -- a try that never reached the ERP (connection refused on every try) is not counted
  local tries = (prev and prev.tries or 0) + (entry.unsent and 0 or 1)
  if tries >= max_tries then
    doc.pending[key] = nil
    local g = { key = key, tries = tries, error = entry.message, item = entry.item }
    local list = doc.given_up
    list[#list + 1] = g
    while #list > MAX_GIVEN_UP do table.remove(list, 1) end
  else
    doc.pending[key] = { item = entry.item, tries = tries, outcome = entry.outcome, error = entry.message }
  end
end

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local function save(r, store, doc)
  local ok, err = store:save(doc)
  if not ok then r.stop(err) end   -- the run stops (wdt.flow's stop marker), the state as last saved
  r.saved_pending = count(doc.pending)
end

-- Push what the state kept from earlier runs.
local function retry_pending(r, doc, store, max_tries)
  local keys = {}
  for k in pairs(doc.pending) do keys[#keys + 1] = k end
  table.sort(keys)
  if #keys == 0 then return true end
  r.summary.retried = #keys
  local i = 0
  return r:push(function()
    while true do
      i = i + 1
      local k = keys[i]
      if k == nil then return nil end
      local entry = doc.pending[k]
      if entry then return entry.item end
    end
  end, function(settled)
    for _, e in ipairs(settled) do record(doc, e, max_tries) end
    save(r, store, doc)
  end)
end

-- Push one page of the source.
local function push_page(r, doc, store, max_tries, items, next_cursor)
  if not (doc.chunk and same(doc.chunk.cursor, doc.cursor)) then
    doc.chunk = { cursor = doc.cursor, done = {} }
  end
  local done = doc.chunk.done
  local i = 0
  local ok, err = r:push(function()
    while true do
      i = i + 1
      local item = items[i]
      if item == nil then return nil end
      local key = validate.raw_key(r.flow, item)
      if not (key and done[key] and done[key] == fingerprint(item)) then return item end
      r.summary.skipped = r.summary.skipped + 1
    end
  end, function(settled)
    for _, e in ipairs(settled) do
      record(doc, e, max_tries)
      if e.key ~= nil then done[e.key] = fingerprint(e.item) end
    end
    save(r, store, doc)
  end)
  if not ok then return nil, err end
  doc.cursor, doc.chunk = next_cursor, nil
  save(r, store, doc)
  return true
end


-- The number of items of a page the source returned, or nil and a `source` error for what
-- is not a list: a page with a hole would lose the items after it once the cursor moved on,
-- and a single item given for the page would be taken for the end. Nothing of such a page
-- is pushed and the cursor stays where it is.
local function page_length(items)
  if type(items) ~= "table" then
    return nil, fail("source", "the source returned " .. type(items) .. " (a list of items expected)")
  end
  local n, hole, last = check.list_length(items)
  if not n then
    return nil, fail("source", ("the source returned a page with a hole: item %d is nil, item %d is not"
      .. " (nothing of the page pushed, the cursor kept)"):format(hole, last))
  end
  if n == 0 and next(items) ~= nil then
    return nil, fail("source", "the source returned a table that is not a list (no item 1, key "
      .. tostring(next(items)) .. ")")
  end
  return n
end

-- Given-up items back into pending with no tries counted (opts.retry_given_up).
local function revive_given_up(r, doc, store)
  if #doc.given_up == 0 then return end
  for _, g in ipairs(doc.given_up) do
    if g.key ~= nil and doc.pending[g.key] == nil then
      doc.pending[g.key] = { item = g.item, tries = 0, outcome = "given_up", error = g.error }
    end
  end
  doc.given_up = setmetatable({}, core.array_mt)
  save(r, store, doc)
end

-- What the summary says of the state (however the run ended): the items pending as the
-- state file holds them (the last save that succeeded: a full disk keeps the older list),
-- the cursor, and every given-up item it keeps, on every run until acted on.
function resume.note(r)
  local doc = r.doc
  if not doc then return end
  r.summary.pending, r.summary.cursor = r.saved_pending, doc.cursor
  local out, outcomes = {}, r.summary.outcomes
  for i, g in ipairs(doc.given_up) do
    out[i] = { key = g.key, tries = g.tries, error = g.error }
    outcomes[#outcomes + 1] = { key = g.key, outcome = "given_up",
                                message = ("%s (after %s tries)"):format(tostring(g.error), tostring(g.tries)) }
  end
  r.summary.given_up = out
end

-- resume.run(r, opts): the push of r (wdt.push.run) from opts.source, opts.state (a
-- wdt.store), opts.max_tries -> true | nil, err. Run inside wdt.flow's guard (r.stop
-- raises its stop marker).
function resume.run(r, opts)
  local store, max_tries = opts.state, opts.max_tries or 5
  r.summary.retried, r.summary.skipped, r.summary.given_up, r.summary.pages = 0, 0, {}, 0
  local doc, lerr = load_state(store, r.flow, { sid = r.frun.client.sid, shop_no = opts.shop_no,
                                                source = opts.source_name })
  if not doc then return nil, lerr end
  r.doc, r.saved_pending = doc, count(doc.pending)
  if opts.retry_given_up then revive_given_up(r, doc, store) end
  local pushed, perr = retry_pending(r, doc, store, max_tries)
  if pushed then
    while true do
      local sok, items, next_cursor = pcall(opts.source, doc.cursor)
      if not sok then
        if errors.is_interrupt(items) then error(items, 0) end
        pushed, perr = nil, fail("source", "the source raised an error: " .. tostring(items))
        break
      end
      if items == nil then break end
      local n
      n, perr = page_length(items)
      if not n then pushed = nil break end
      if n == 0 then break end
      if same(next_cursor, doc.cursor) then
        pushed, perr = nil, fail("source", "the source returned items but the same cursor: it would never end")
        break
      end
      r.summary.pages = r.summary.pages + 1
      pushed, perr = push_page(r, doc, store, max_tries, items, next_cursor)
      if not pushed then break end
    end
  end
  resume.note(r)
  if not pushed then return nil, perr end
  return true
end

return resume
