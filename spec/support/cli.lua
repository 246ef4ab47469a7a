-- Running the `wdt` command in-process (wdt.cli.main) for specs: its exit code, stdout and
-- stderr as strings.
local cli = require "wdt.cli"

local M = {}

-- A stream that keeps what is written: :write(...), and text() for all of it.
function M.sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs({ ... }) do buf[#buf + 1] = s end return self end,
           text = function() return table.concat(buf) end }
end

-- M.run(argv, env, tty) -> code, stdout, stderr (stderr a terminal when tty is true)
function M.run(argv, env, tty)
  local out, err = M.sink(), M.sink()
  local code = cli.main(argv, env, { stdout = out, stderr = err, stderr_tty = tty or false })
  return code, out.text(), err.text()
end

return M
