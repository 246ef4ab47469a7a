-- The emulator as the vendor documents it: bodies, row fields, filters, HTTP framing.
-- (The vendor's pages: repository cunsheng/wangdiantong-api-qjb, Firecrawl/<method>.md.)
local emulator = require "spec.support.emulator"

local LIST = "sales.LogisticsSync.getSyncListExt"
local SHOPS = "setting.Shop.queryShop"

-- the vendor's field tables, exactly
local LIST_ROW = { "sync_id", "tid", "logistics_no", "logistics_code", "logistics_name",
                   "is_part_sync", "oids", "trade_id", "platform_id", "created" }
local SHOP_ROW = { "shop_id", "shop_name", "shop_no", "platform_id", "sub_platform_id", "contact",
                   "province", "city", "district", "address", "telno", "mobile", "zip", "email",
                   "remark", "website", "group_id", "account_id", "is_disabled", "auth_state",
                   "auth_time", "re_expire_time", "modified", "expire_time", "created" }

-- row has every field of `documented` and no other
local function assert_fields(documented, row)
  local known = {}
  for _, f in ipairs(documented) do
    known[f] = true
    assert.is_not_nil(row[f], "missing documented field " .. f)
  end
  for k in pairs(row) do assert.is_true(known[k] == true, "undocumented field " .. tostring(k)) end
end

-- the same query written the ways other clients write it
local SPACED = {
  '[{"shop_no": "s1", "is_own_platform": true}]',                      -- Python's json.dumps
  '[ {"shop_no":"s1","is_own_platform":true} ]',
  '[{\n  "shop_no": "s1",\n  "is_own_platform": true\n}]',              -- the vendor page's layout
  '[{"shop_no":"s1","is_own_platform":true}]\r\n',
  '\t[{"shop_no":"s1","is_own_platform":true}]',
}

describe("wdt-emulator, as the vendor documents it", function()
  local e
  setup(function() e = emulator.start() end)
  teardown(function() if e then e:stop() end end)
  before_each(function() e:reset() end)

  describe("request bodies", function()
    it("accepts any JSON array, whitespace outside strings too", function()
      for _, body in ipairs(SPACED) do
        local code, answer = e:request{ method = LIST, args_json = body, page = { page_size = 100 } }
        assert.equal(200, code)
        assert.equal(0, answer.status, body .. " -> " .. tostring(answer.message))
        assert.equal(50, #answer.data, body)
      end
    end)

    it("still refuses what is not a JSON array", function()
      for _, body in ipairs({ '{"shop_no":"s1"}', "[1,]", "[1] x", "" }) do
        local _, answer = e:request{ method = LIST, args_json = body }
        assert.equal(1, answer.status, body)
        assert.matches("^请求体", answer.message)
      end
    end)

    it("with strict = true, refuses whitespace outside strings only", function()
      local s = emulator.start{ config = { tenants = { { sid = "a", key = "k", secret = "s:t" } },
                                           logistics = { a = { pending = 3 } }, strict = true } }
      local function status(body)
        local _, answer = s:request{ sid = "a", key = "k", secret = "s:t", method = LIST,
                                     args_json = body, page = { page_size = 10 } }
        return answer.status, answer.message
      end
      for _, body in ipairs(SPACED) do
        local st, msg = status(body)
        assert.equal(1, st, body)
        assert.matches("^请求体不是紧凑的JSON数组: at byte %d+", msg)
      end
      assert.equal(0, (status('[{"shop_no":"s1","is_own_platform":true}]')))
      assert.equal(0, (status('[{"shop_no":"s 1","is_own_platform":true}]')))  -- inside a string
      s:stop()
    end)

    it("refuses a strict option that is not a boolean", function()
      local ok, err = pcall(emulator.start, { config = {
        tenants = { { sid = "a", key = "k", secret = "s:t" } }, strict = "yes" } })
      assert.is_false(ok)
      assert.matches("strict must be true or false", tostring(err))
    end)
  end)

  describe("sales.LogisticsSync.getSyncListExt", function()
    it("answers rows with exactly the documented fields (no shop_no)", function()
      local _, answer = e:request{ method = LIST, args_json = '[{"shop_no":"s1","is_own_platform":true}]',
                                   page = { page_size = 5 } }
      assert.equal(5, #answer.data)
      for _, row in ipairs(answer.data) do assert_fields(LIST_ROW, row) end
    end)
  end)

  describe("setting.Shop.queryShop", function()
    local function shops(args_json)
      local _, answer = e:request{ method = SHOPS, args_json = args_json,
                                   page = { page_size = 10, page_no = 0, calc_total = 1 } }
      return answer
    end

    it("answers every documented row field and no other", function()
      local answer = shops("[]")
      assert.equal(0, answer.status)
      assert.equal(1, answer.data.total_count)
      local row = answer.data.details[1]
      assert_fields(SHOP_ROW, row)
      assert.equal("s1", row.shop_no)
      assert.equal(127, row.platform_id)
      assert.is_false(row.is_disabled)
      for _, f in ipairs({ "auth_time", "modified", "created" }) do
        assert.truthy(row[f]:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"), f)
      end
    end)

    it("honours platform_id, an integer or a string of digits as in the vendor's example", function()
      assert.equal(1, shops('[{"platform_id":127}]').data.total_count)
      assert.equal(1, shops('[{"platform_id":"127"}]').data.total_count)
      assert.equal(0, shops('[{"platform_id":3}]').data.total_count)
      assert.equal(1, shops('[{"platform_id":127,"shop_no":"s1"}]').data.total_count)
      assert.equal(0, shops('[{"platform_id":127,"shop_no":"s2"}]').data.total_count)
      for _, bad in ipairs({ '[{"platform_id":"x"}]', '[{"platform_id":true}]', '[{"platform_id":-1}]' }) do
        local answer = shops(bad)
        assert.equal(2, answer.status, bad)
        assert.matches("platform_id", answer.message)
      end
    end)
  end)

  describe("HTTP framing", function()
    it("sends plain answers with a Content-Length and gzip ones chunked", function()
      local args = '[{"shop_no":"s1","is_own_platform":true}]'
      local _, _, plain, raw = e:request{ method = LIST, args_json = args, page = { page_size = 50 } }
      assert.equal(tostring(#raw), plain["content-length"])
      local _, _, zipped = e:request{ method = LIST, args_json = args, page = { page_size = 50 },
                                      headers = { ["accept-encoding"] = "gzip" } }
      assert.equal("gzip", zipped["content-encoding"])
      assert.is_nil(zipped["content-length"])
      assert.equal("chunked", zipped["transfer-encoding"])
    end)
  end)
end)
