-- The exit codes of the `wdt` commands (`wdt --help` says what each means), and the code
-- of the error a run stopped on: one table for `wdt call`, `wdt sync`, `wdt push` and `wdt scan`.
local exit = {
  OK = 0, API = 1, USAGE = 2, NETWORK = 3, INTERNAL = 70, IO = 74, LOCKED = 75, INTERRUPTED = 130,
}

-- 1: the API refused, or the run's own input cannot serve (a checkpoint or push state that
-- cannot be used: store, state; a push source that raised: source; a scan window whose
-- rows kept changing: scan). 3: no valid answer (network, http, decode, ...).
local REFUSED = { api = true, store = true, state = true, source = true, scan = true }

function exit.for_error(err)
  if REFUSED[err.kind] then return exit.API end
  if err.kind == "locked" then return exit.LOCKED end
  if err.kind == "invalid" then return exit.USAGE end   -- the catalogue's checks: nothing sent
  if err.kind == "interrupted" then return exit.INTERRUPTED end
  return exit.NETWORK
end

return exit
