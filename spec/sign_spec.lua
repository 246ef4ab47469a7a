-- wdt.sign against the worked examples of protocol.md (each checked with an independent MD5).
local wdt = require "wdt"

describe("wdt.sign", function()
  it("matches the vendor's documented example", function()
    assert.equal("20f557aaf9190797c581bbceeb6d5a5c", wdt.sign("693f9fed686bfe13441385da98b436b6", {
      sid = "wdterp30", key = "czhc", salt = "dd488d0802b1e431e4c72cd355847853",
      method = "wms.stockout.Sales.weighingExt", v = "1.0", timestamp = 232623153,
      body = '["xc109393939393939","",1.2,0,false]',
    }))
  end)

  it("matches the logistics update example", function()
    assert.equal("22bb377c2960b38cbe675019ce480023", wdt.sign("12345", {
      sid = "apidevnew2", key = "test2-xx", salt = "abcde", method = "sales.LogisticsSync.update",
      v = "1.0", timestamp = "1", body = '[[{"sync_id":88950,"status":0,"error_msg":""}]]',
    }))
  end)

  it("changes with any byte of the body", function()
    local params = { sid = "a", key = "b", salt = "c", method = "m", v = "1.0", timestamp = 1, body = "[1]" }
    local one = wdt.sign("s", params)
    params.body = "[2]"
    assert.are_not.equal(one, wdt.sign("s", params))
  end)

  it("raises on wrong argument types, naming them", function()
    assert.has_error(function() wdt.sign(nil, {}) end,
      "bad argument 'secret' to 'wdt.sign' (string expected, got nil)")
    assert.has_error(function() wdt.sign("s", "x") end,
      "bad argument 'params' to 'wdt.sign' (table expected, got string)")
  end)
end)
