-- The seller's limit of calls at once: a tenant's `concurrency` (config: tenants[i].concurrency,
-- a whole number >= 1; none: no limit) is how many of its /openapi calls may be in the
-- server at the same time; one more is refused with status 100 and the vendor's message
-- (protocol.md, the rate-limit messages), applying nothing. The count runs from the
-- call's arrival to its answer (a `delay` fault's sleep included): the single worker's
-- state, no locks (handlers do not yield between the check and the count).
local state = require "emulator.state"

local M = {}

M.MESSAGE = "超过每分钟最大并发次数限制，请稍后重试"

-- The config value checked: nil or a whole number >= 1; raises like state's checks.
function M.check_limit(v, i)
  if v == nil or v == require("emulator.json").null then return nil end
  if type(v) ~= "number" or v ~= math.floor(v) or v < 1 then
    error(("config: tenants[%d].concurrency must be a whole number >= 1"):format(i), 0)
  end
  return v
end

local function counts()
  local s = state.s
  if not s.in_flight then s.in_flight = { now = {}, most = {}, refused = {} } end
  return s.in_flight
end

-- A call of `sid` arrives: true (counted, call M.leave when it is answered) or false (over
-- the tenant's limit: answer the refusal).
function M.enter(sid)
  local tenant = type(sid) == "string" and state.config().tenants[sid]
  if not tenant then return true end
  local c = counts()
  local n = (c.now[sid] or 0) + 1
  if tenant.concurrency and n > tenant.concurrency then
    c.refused[sid] = (c.refused[sid] or 0) + 1
    return false
  end
  c.now[sid] = n
  if n > (c.most[sid] or 0) then c.most[sid] = n end
  ngx.ctx.wdt_in_flight = sid
  return true
end

-- The call being answered leaves the count (once; a no-op for a call never counted).
function M.leave()
  local sid = ngx.ctx.wdt_in_flight
  if not sid then return end
  ngx.ctx.wdt_in_flight = nil
  local c = counts()
  c.now[sid] = math.max(0, (c.now[sid] or 1) - 1)
end

-- Into GET /__emulator/state's tenant view: in_flight {now, most, refused, limit}.
function M.view(sid, out)
  local c = counts()
  local tenant = state.config().tenants[sid]
  out.in_flight = { now = c.now[sid] or 0, most = c.most[sid] or 0, refused = c.refused[sid] or 0,
                    limit = tenant and tenant.concurrency or require("emulator.json").null }
end

return M
