-- The help texts of the `wdt` command (see doc/cli.md).
local help = {}

help.main = [[
Usage: wdt [OPTIONS] COMMAND [ARGS]

A client for the WangDianTong (旺店通) flagship open API.

Commands:
  call METHOD [ARGS_JSON]     call one method and print its data as JSON
  sync logistics              the logistics sync loop (read, push, report back)
  sync stock                  the stock sync loop
  scan METHOD [FILTER_JSON]   every row a query method reports as changed, as JSON lines
  push orders|refunds|goods   push the platform's orders, refunds or goods into the ERP
  emulator ...                start the local emulator of the API (see 'wdt emulator --help')

Credentials come from the environment: WDT_URL, WDT_SID, WDT_KEY, WDT_SECRET
(appsecret, "secret:salt"), or from --config FILE, whose values override them.

Options (every command):
  --config FILE       read url/sid/key/secret from FILE (JSON object, or KEY=VALUE lines)
  --url URL           the API endpoint (default: WDT_URL, else production)
  --timeout SECONDS   per-request timeout (default 30)
  --retries N         retries of a failed request (default 3)
  --rate-per-minute N pace the calls under the seller's limit of N calls per window
  --rate-window S     the rate limit's window in seconds (default 60)
  --rate-wait S       how long one request may wait for the rate budget (default 600)
  --redis URL         run locks and rate budget in Redis, for several hosts (WDT_REDIS)
  -h, --help          show help (also 'wdt COMMAND --help')
  -V, --version       show the version

Exit codes: 0 success, 1 the API refused something (an error status, or refused
            items in a status-0 answer), 2 usage error,
            3 network failure (no valid answer), 74 the output could not be written,
            75 another run holds the lock, 130 interrupted, 70 internal error.
]]

help.call = [[
Usage: wdt call METHOD [ARGS_JSON] [--page-size N] [--page-no N] [--all] [--total]
                [--max-rows N]

Calls METHOD and prints the answer's `data` as compact JSON on stdout.

ARGS_JSON is the JSON array of the method's positional arguments, e.g.
  wdt call sales.LogisticsSync.getSyncListExt '[{"shop_no":"s1","is_own_platform":true}]' --page-size 10
A JSON object is taken as the only argument. Without ARGS_JSON the method gets none.

Paged queries:
  --page-size N   ask for one page of N rows (default 100 when another paging option is given)
  --page-no N     the page to ask for, from 0 (default 0)
  --total         ask the server to count the rows (calc_total=1); when the answer's
                  data is the list itself (getSyncListExt), prints {"data":[...],"total":N}
  --all           read every page from --page-no on until a short page; prints one JSON
                  array of all rows (an answer without rows, or a page equal to the one
                  before, is an error)
  --max-rows N    the most rows --all collects before it gives up (default 100000)

Exit codes: 0 the API answered status 0, 1 it answered an error status, or status 0
            with refused items (sales.LogisticsSync.update's list, the error_list of
            pushSelf2 / RawRefund.upload2; printed as the answer, counted on stderr),
            2 usage error, 3 network failure.
]]

help.sync = [[
Usage: wdt sync logistics --shop SHOP --handler FILE.lua [OPTIONS]
       wdt sync stock --handler FILE.lua [OPTIONS]

Runs a sync loop: reads what the ERP wants reported, calls the handler for each item,
reports each outcome back. See 'wdt sync logistics --help' and 'wdt sync stock --help'.
]]

help.sync_logistics = [[
Usage: wdt sync logistics --shop SHOP --handler FILE.lua [--batch N] [--page-size N]
                          [--dry-run] [--json] [--wait S] [--lock-dir DIR] [--no-lock]

Reads the shop's pending shipments (sales.LogisticsSync.getSyncListExt), calls the
handler for each one and reports every outcome (sales.LogisticsSync.update).

FILE.lua returns the handler function: handler(row) returns
  true              synced            (reported as status 0)
  false, message    failed            (status 2, the message as error_msg)
  nil, message      try again later   (status -100; the row stays in the queue)
A handler that raises counts as failed with the error as its message.

Options:
  --shop SHOP       the shop_no (required)
  --handler FILE    the handler file (required)
  --batch N         outcomes per update call, 1..1000 (default 100)
  --page-size N     rows per read, 1..1000 (default 100)
  --dry-run         read the queue and count it; call no handler, report nothing
  --json            print the summary as JSON instead of text
  --wait SECONDS    wait this long for another run of this sync (same seller and shop)
                    to end; by default exit 75 at once
  --lock-dir DIR    folder of the run locks (default $WDT_LOCK_DIR, else
                    /tmp/wdt-locks-UID); with --redis the lock is in Redis
  --no-lock         take no run lock

A progress line is drawn on stderr when stderr is a terminal; a summary is printed on
stdout at the end. Exit codes: 0 every outcome reported and accepted, 1 the ERP refused
some items, its answer left some outcomes unclear, or it sent rows that cannot be handled
(all listed), or an API error stopped the loop, 2 usage error, 3 network failure (the
items handled but not reported are listed; they stay in the ERP's queue), 75 another
run holds the lock, 130 interrupted.
]]

help.sync_stock = [[
Usage: wdt sync stock --handler FILE.lua [--count N] [--force] [--dry-run] [--json]
                      [--wait S] [--lock-dir DIR] [--no-lock]

Reads the goods waiting for a stock sync (sales.StockSync.getSelfWaitSyncIdListOpen),
computes each one's stock (sales.StockSync.calcStock), calls the handler with it and
reports the outcome: syncSuccess (true) or syncFail (false, message). For nil, message
(try again later) nothing is sent: the good stays waiting and the next run offers it again.

Options:
  --handler FILE    the handler file (required); it returns handler(item) where item has
                    api_goods_id, syn_stock, stock_change_count and calcStock's other fields
  --count N         ids per read, 10..5000 (default 100)
  --force           calcStock with force_sync = true
  --dry-run         read the waiting ids and count them; call no handler, report nothing
  --json            print the summary as JSON instead of text
  --wait, --lock-dir, --no-lock   the run lock (per seller), as for 'wdt sync logistics'

Exit codes as for 'wdt sync logistics'.
]]

help.emulator = [[
Usage: wdt emulator [ARGS]

Runs the local emulator of the API (bin/wdt-emulator) with ARGS; see 'wdt emulator --help'
once it is found. The emulator needs nginx with the Lua module.
]]

return help
