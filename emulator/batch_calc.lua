-- sales.StockSync.batchCalcStock  [[{api_goods_id, force_sync}, ...]]: calcStock for many
-- goods in one call (the vendor's page: "库存同步计算查询(支持批量查询)"). Each element is
-- answered as calcStock answers that good alone: the computed ones in data.success_date
-- (the page's spelling), the refused ones in data.error_date as {rec_id, err_msg}.
-- Registered in the stateful handlers' table (emulator/methods.lua) on load.
local json = require "emulator.json"
local methods = require "emulator.methods"

local M = {}

M.MAX = 200     -- elements per call (the page names no limit; the emulator refuses more)

local function calc_each(t, args, pager, sid, fault)
  local list = args[1]
  if #args ~= 1 or not json.is_array(list) then
    return { status = 2, message = "参数错误: 需要 [[{api_goods_id, force_sync}, ...]]" }
  end
  if #list > M.MAX then return { status = 2, message = ("params最多%d条"):format(M.MAX) } end
  local calc = methods.table["sales.StockSync.calcStock"]
  local ok_list, err_list = json.array(), json.array()
  for i, p in ipairs(list) do
    if not json.is_object(p) then
      return { status = 2, message = ("params[%d]必须是对象"):format(i) }
    end
    local r = calc(t, { p.api_goods_id, p.force_sync }, pager, sid, fault)
    if r.status == 0 then
      -- this page's answer has true/false where calcStock's has 1/0
      local d = r.data
      d.is_auto_listing, d.is_auto_delisting = d.is_auto_listing == 1, d.is_auto_delisting == 1
      ok_list[#ok_list + 1] = d
    else
      err_list[#err_list + 1] = { rec_id = p.api_goods_id, err_msg = r.message }
    end
  end
  return { status = 0, data = { success_date = ok_list, error_date = err_list } }
end

methods.table["sales.StockSync.batchCalcStock"] = calc_each
M.handler = calc_each

return M
