-- examples/stock_handler.lua: a handler for `wdt sync stock` (the demo's stand-in for your
-- platform). It gets calcStock's answer (goods_id, spec_id, syn_stock, ...) plus
-- api_goods_id, and returns true (set on the platform), false, "why" (refused) or
-- nil, "why" (try later: the good stays waiting). This one takes every quantity except
-- those of goods whose spec_id ends in "7", which the platform does not list.
return function(good)
  if tostring(good.spec_id):match("7$") then
    return false, ("%s is not listed on the platform"):format(good.spec_id)
  end
  return true
end
