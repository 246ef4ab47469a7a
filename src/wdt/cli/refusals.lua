-- Answers that say "status 0" yet refuse items. `wdt call` prints them like any answer and
-- exits 1 (the API refused something), with a line on stderr.
--   sales.LogisticsSync.update                data = ["message of a refused item", ...]
--   sales.RawTrade.pushSelf2, aftersales.refund.RawRefund.upload2
--                                             data = {error_list = [{no, error}, ...], ...}
local refusals = {}

local LIST_IS_DATA = { ["sales.LogisticsSync.update"] = true }
local LIST_IN_ERROR_LIST = { ["sales.RawTrade.pushSelf2"] = true, ["aftersales.refund.RawRefund.upload2"] = true }

-- method, data -> number of refused items (0 when none, or the method is not one of these)
function refusals.count(method, data)
  if type(data) ~= "table" then return 0 end
  if LIST_IS_DATA[method] then return #data end
  if LIST_IN_ERROR_LIST[method] and type(data.error_list) == "table" then
    return #data.error_list
  end
  return 0
end

return refusals
