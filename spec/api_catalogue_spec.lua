-- The catalogue (src/wdt/api/, generated from the vendor's pages): consistent, complete, lazy.
local api = require "wdt.api"
local wdt = require "wdt"

local TYPES = { string = true, int = true, decimal = true, bool = true, object = true, list = true,
                pager = true }

local function method_files()
  local p = io.popen("ls src/wdt/api/methods")
  local n = 0
  for _ in p:read("*a"):gmatch("%.lua") do n = n + 1 end
  p:close()
  return n
end

describe("the catalogue", function()
  it("has every method page: one entry per data file, names sorted", function()
    local names = api.names()
    assert.is_true(#names >= 175)
    assert.are.equal(method_files(), #names)
    for i = 2, #names do assert.is_true(names[i - 1] < names[i]) end
    assert.is_nil(api.get("no.such.Method"))
  end)

  it("gives every method a title, a category, a kind and trees of typed nodes", function()
    for _, name in ipairs(api.names()) do
      local e = api.get(name)
      assert.are.equal(name, e.name)
      assert.is_true(e.kind == "query" or e.kind == "write", name)
      assert.is_true(type(e.title) == "string" and e.title ~= "", name .. " has no title")
      assert.are.equal(name:match("^[^.]+"), e.category)
      local s = api.summary(name)
      assert.are.same({ e.title, e.kind }, { s.title, s.kind })
      for _, tree in ipairs({ e.args, e.response }) do
        api.walk(tree, function(n, path)
          assert.is_true(TYPES[n.type] ~= nil, name .. " " .. path .. ": " .. tostring(n.type))
          if n.type == "list" then assert.is_truthy(n.of, name .. " " .. path) end
          if n.values then
            for _, v in ipairs(n.values) do assert.is_string(v.meaning, name .. " " .. path) end
          end
        end)
      end
    end
  end)

  it("parses every example the pages give", function()
    local requests = 0
    for _, name in ipairs(api.names()) do
      local ex = api.get(name).examples
      for _, which in ipairs({ "request", "response", "error" }) do
        if ex[which] then
          local v, err = wdt.json.safe.decode(ex[which])
          assert.is_truthy(v, name .. " " .. which .. ": " .. tostring(err))
          if which == "request" then
            requests = requests + 1
            assert.is_true(getmetatable(v) ~= nil or #v > 0 or next(v) == nil, name)
          end
        end
      end
    end
    assert.is_true(requests >= 175)
  end)

  it("names a window's fields among the arguments and gives its limit", function()
    local windows = 0
    for _, name in ipairs(api.names()) do
      local w = api.get(name).window
      if w then
        windows = windows + 1
        assert.is_true(w.max_seconds >= 3600, name)
        assert.is_truthy(w.message:find("过宽"), name)
        local holder = api.get(name).args[w.arg]
        local found = 0
        api.walk(holder.children or { holder }, function(n)
          if n.name == w.from or n.name == w.to then found = found + 1 end
        end)
        assert.is_true(found >= 2, name)
      end
    end
    assert.is_true(windows > 50)
  end)

  it("names the fields that stand in for a conditionally required one among its siblings", function()
    local conditional = 0
    for _, name in ipairs(api.names()) do
      for _, a in ipairs(api.get(name).args) do
        local siblings = {}
        for _, c in ipairs(a.children or {}) do siblings[c.name] = true end
        for _, c in ipairs(a.children or {}) do
          if c.unless then
            conditional = conditional + 1
            assert.is_true(c.required, name .. " " .. c.name)
            for _, k in ipairs(c.unless) do assert.is_true(siblings[k], name .. " " .. c.name .. " " .. k) end
          end
        end
      end
    end
    assert.is_true(conditional >= 40)
    local times = api.get("sales.TradeQuery.querySelfOrderWithDetail").args[1].children
    assert.are.same({ "trade_no", "logistics_no", "src_tid" }, times[1].unless)
  end)

  it("knows setting.Warehouse.queryWarehouse as its page shows it", function()
    local e = api.get("setting.Warehouse.queryWarehouse")
    assert.are.equal("仓库查询", e.title)
    assert.are.equal("query", e.kind)
    local paths = {}
    api.walk(e.args, function(_, p) paths[p] = true end)
    api.walk(e.response, function(n, p) paths[p] = n end)
    assert.is_true(paths["params.warehouse_no"] and paths["params.hide_delete"])
    assert.are.equal("int", paths["data.details[].warehouse_id"].type)
    assert.is_truthy(paths["data.details[].purchase_address"])
  end)

  it("calls a method paged only when it has a Pager or its answer counts a total", function()
    -- their pages copy page_size into the public table, but they answer goods asked for by id
    for _, name in ipairs { "sales.StockSync.calcStock", "sales.StockSync.batchCalcStock",
                            "sales.StockSync.getSelfWaitSyncIdListOpen" } do
      assert.is_nil(api.get(name).paging, name)
      assert.is_nil(api.summary(name).paged, name)
    end
    -- no Pager argument, but total_count in its answer: paged by the public parameters
    assert.are.equal(true, api.summary("sales.TradeQuery.getTradeMergedLog").paged)
    assert.are.equal(true, api.summary("sales.TradeQuery.querySelfOrderWithDetail").paged)
  end)

  it("reads the meanings of numeric codes", function()
    local e = api.get("sales.RawTrade.pushSelf2")
    local pay
    api.walk(e.args, function(n, p) if p == "rawTradeList[].pay_method" then pay = n end end)
    local meanings = {}
    for _, v in ipairs(pay.values) do meanings[v.value] = v.meaning end
    assert.are.equal("支付宝", meanings[7])
  end)

  it("keeps the guide pages' facts", function()
    local g = api.guide()
    assert.is_true(#g.errors.codes > 50)
    assert.is_true(#g.platforms.list > 100)
    local a = api.addresses()
    assert.is_true(#a.provinces >= 34 and #a.districts > 3000)
  end)

  it("is not loaded by require 'wdt'", function()
    local out = io.popen([[lua5.4 -e 'package.path="./src/?.lua;./src/?/init.lua;"..package.path
      package.cpath="./build/?.so;"..package.cpath
      require "wdt"
      local n = 0 for k in pairs(package.loaded) do if k:find("^wdt%.api") then n = n + 1 end end
      io.write(n)']]):read("*a")
    assert.are.equal("0", out)
  end)

  it("is what the push checks: wdt.push.fields is a view of it, with the push's additions", function()
    local fields = require "wdt.push.fields"
    local lists = { trade = { "sales.RawTrade.pushSelf2", "rawTradeList" },
                    line = { "sales.RawTrade.pushSelf2", "rawTradeOrderList" },
                    discount = { "sales.RawTrade.pushSelf2", "discountList" },
                    refund = { "aftersales.refund.RawRefund.upload2", "order_list" },
                    goods = { "goods.ApiGoods.upload", "param.goods_list" } }
    local additions = {}
    for list, where in pairs(lists) do
      local names, by = {}, {}
      api.walk(api.get(where[1]).args, function(n, p)
        local parent = p:match("^(.*)%.[^.]+$")
        if parent == where[2] or parent == where[2] .. "[]" then
          names[#names + 1] = n.name
          by[n.name] = n
        end
      end)
      local got = {}
      for _, f in ipairs(fields[list]) do
        got[#got + 1] = f[1]
        local n = by[f[1]]
        if f[2] ~= n.type then additions[#additions + 1] = list .. "." .. f[1] .. ": " .. f[2] end
        if (f.req or false) ~= (n.required or n.required_on_page or false) then
          additions[#additions + 1] = list .. "." .. f[1] .. ": required"
        end
        if f.max ~= (f[2] == "string" and (n.length or n.length_on_page) or nil) then
          additions[#additions + 1] = list .. "." .. f[1] .. ": max"
        end
        if (f.values ~= nil) ~= (n.values ~= nil and not n.values_open) then
          additions[#additions + 1] = list .. "." .. f[1] .. ": values"
        end
      end
      assert.are.same(names, got, list)
    end
    table.sort(additions)
    assert.are.same({ "goods.goods_id: required", "goods.spec_id: required", "refund.current_phase_timeout: time",
                      "refund.refund_time: time", "trade.end_time: time", "trade.pay_time: time",
                      "trade.remark_flag: values", "trade.trade_time: time" }, additions)
    local pay = {}
    for _, f in ipairs(fields.trade) do if f[1] == "pay_method" then pay = f.values end end
    assert.is_true(pay[7] and not pay[9])
  end)
end)
