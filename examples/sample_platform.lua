-- A sample platform's data, for the demo, the specs and the benchmark: orders (with their
-- lines under `orders`), refunds and goods in the shape wdt.push takes. Deterministic: the
-- same arguments give the same items.
--
--   local platform = dofile("examples/sample_platform.lua")
--   platform.order(i, {lines = n, refunded = bool, time = "YYYY-MM-DD HH:MM:SS"})
--   platform.orders(from, to, opts)      -- orders from..to, as a list
--   platform.refund(order, line_no)      -- a full refund of one of the order's lines
--   platform.goods(i)                    -- goods number i (the lines sell goods 1..GOODS)
--   platform.catalog()                   -- every good the orders sell
-- As a script it writes the demo's files:
--   lua5.4 examples/sample_platform.lua DIR N
--     DIR/orders.jsonl (N orders: every 400th invalid, every 250th refunded on purpose),
--     DIR/refunds.jsonl (one refund per refunded order), DIR/goods.jsonl (the catalog)
local platform = { GOODS = 40 }

-- An hour before this file was loaded, in Beijing time: taken once, so that order(i) is the
-- same order however often it is built in one run (a resumed push must see the same items,
-- not new versions of them whenever a second passed between two builds).
local HOUR_AGO = os.date("!%Y-%m-%d %H:%M:%S", os.time() + 8 * 3600 - 3600)

function platform.tid(i) return ("P%08d"):format(i) end

function platform.order(i, opts)
  opts = opts or {}
  local tid = platform.tid(i)
  local nlines = opts.lines or (i % 7 == 0 and 3 or (i % 3 == 0 and 2 or 1))
  local o = {
    tid = tid, process_status = 10, trade_status = 30, refund_status = 0, pay_status = 2,
    pay_method = 7, trade_time = opts.time or HOUR_AGO, pay_time = opts.time or HOUR_AGO,
    buyer_nick = "buyer" .. i % 97, buyer_message = "", receiver_name = "收件人" .. i % 13,
    receiver_area = "北京 北京市 朝阳区", receiver_address = "春天街道" .. i .. "号",
    receiver_mobile = ("138%08d"):format(i), post_amount = 0, discount = 0,
    delivery_term = 1, is_auto_wms = false, remark = "", orders = {},
  }
  local total = 0
  for l = 1, nlines do
    local g = (i + l) % platform.GOODS + 1
    local num, price = l, 10 + g
    o.orders[l] = {
      oid = tid .. "-" .. l, status = 30, refund_status = 0,
      goods_id = ("GID%03d"):format(g), spec_id = ("SID%03d"):format(g),
      goods_no = ("GNO%03d"):format(g), spec_no = ("SNO%03d"):format(g),
      goods_name = "goods " .. g, spec_name = "", num = num, price = price, discount = 0,
      share_discount = 0, total_amount = num * price, adjust_amount = 0, refund_amount = 0,
      remark = "", json = "",
    }
    total = total + num * price
  end
  o.receivable = total
  if opts.refunded then
    -- refunded in full on the platform before shipping: the trade says so
    o.refund_status, o.trade_status = 3, 80
    for _, l in ipairs(o.orders) do l.refund_status, l.status, l.refund_amount = 5, 80, l.total_amount end
  end
  return o
end

function platform.orders(from, to, opts)
  local list = {}
  for i = from, to do list[#list + 1] = platform.order(i, opts) end
  return list
end

function platform.refund(order, line_no)
  local l = order.orders[line_no or 1]
  return {
    refund_no = "R" .. l.oid, num = l.num, tid = order.tid, oid = l.oid, type = 1, status = 5,
    refund_version = "1", refund_amount = l.total_amount, actual_refund_amount = l.total_amount,
    title = l.goods_name, buyer_nick = order.buyer_nick, is_aftersale = 0, reason = "buyer cancelled",
    goods_id = l.goods_id, spec_id = l.spec_id, refund_time = order.trade_time,
  }
end

function platform.goods(g)
  return {
    goods_id = ("GID%03d"):format(g), spec_id = ("SID%03d"):format(g),
    goods_no = ("GNO%03d"):format(g), spec_no = ("SNO%03d"):format(g),
    goods_name = "goods " .. g, spec_name = "", status = 1, price = 10 + g, stock_num = 100,
  }
end

function platform.catalog()
  local out = {}
  for g = 1, platform.GOODS do out[g] = platform.goods(g) end
  return out
end

-- What the demo breaks on purpose (the push must list them as invalid, never send them).
function platform.break_order(o, i)
  local kind = (i / 400) % 3
  if kind == 0 then o.receiver_mobile = nil                           -- a required field missing
  elseif kind == 1 then o.orders[1].num = "three"                     -- a number that is not one
  else o.order_count = #o.orders + 1 end                              -- a count that does not add up
  return o
end

if arg and arg[0] and arg[0]:match("sample_platform%.lua$") and arg[1] then
  local root = arg[0]:gsub("examples/sample_platform%.lua$", "")
  package.path = root .. "src/?.lua;" .. root .. "src/?/init.lua;" .. package.path
  package.cpath = root .. "build/?.so;" .. package.cpath
  local json = require("wdt").json
  local dir, n = arg[1], tonumber(arg[2] or "2000")
  local fo = assert(io.open(dir .. "/orders.jsonl", "wb"))
  local fr = assert(io.open(dir .. "/refunds.jsonl", "wb"))
  for i = 1, n do
    local refunded = i % 250 == 0
    local o = platform.order(i, { refunded = refunded })
    if refunded then fr:write(json.encode(platform.refund(o, 1)), "\n") end
    if i % 400 == 0 then o = platform.break_order(o, i) end
    fo:write(json.encode(o), "\n")
  end
  fo:close()
  fr:close()
  local fg = assert(io.open(dir .. "/goods.jsonl", "wb"))
  for _, g in ipairs(platform.catalog()) do fg:write(json.encode(g), "\n") end
  fg:close()
end

return platform
