-- The sync loops: read what the ERP wants reported, hand each item to the caller's
-- handler, report every outcome back. Nothing read is ever dropped: each item gets exactly
-- one report, or is listed in the summary (unreported, invalid or unconfirmed).
--
--   client:sync_logistics{shop_no=, handler=, batch=, page_size=, on_progress=, dry_run=,
--                         tid=, logistics_no=, is_part_sync=}
--   client:sync_stock{handler=, count=, force_sync=, on_progress=, dry_run=}
--     -> summary | nil, err (err.summary holds the summary so far)
--
-- handler(item) returns true (synced), false, message (failed) or nil, message (try
-- later); a handler that raises (or answers anything else) leaves its item unreported, in
-- the ERP's queue, listed with the error (kind "handler"). `handler` may also be a module:
-- {handle=, batch=, finish=}. summary.outcomes: the records of every item not synced.
-- See doc/sync.md. The pieces: wdt.sync.common (outcome, summary, what a stopped run had
-- in hand), wdt.sync.logistics, wdt.sync.stock; the run is wdt.flow's.
local common = require "wdt.sync.common"
local logistics = require "wdt.sync.logistics"

local sync = {}

sync.MAX_MESSAGE = common.MAX_MESSAGE      -- (read-only: change common.MAX_MESSAGE)

sync.outcome = common.outcome
sync.check_item = logistics.check_item

return sync
