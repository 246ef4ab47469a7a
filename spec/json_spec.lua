-- The exact JSON codec (src/core/wdt_json_*.c) through the public Lua API.
-- Written in the Lua 5.1/5.4 common subset: runs on Lua 5.4 and on LuaJIT.
local wdt = require "wdt"

local json, null = wdt.json, wdt.null
local IS54 = math.type ~= nil            -- integer subtype available (Lua 5.3+)

local function enc(v) return json.encode(v) end
local function dec(s) return json.decode(s) end

-- the error message of a failing encode/decode, through the non-raising twins
local function enc_err(v)
  local r, err = json.safe.encode(v)
  assert(r == nil, "expected an encode error, got " .. tostring(r))
  assert(type(err) == "string", "expected an error message")
  return err
end
local function dec_err(s)
  local r, err = json.safe.decode(s)
  assert(r == nil, "expected a decode error for " .. string.format("%q", s))
  assert(type(err) == "string", "expected an error message")
  return err
end
-- plain substring match, with a readable failure
local function has(haystack, needle)
  assert(string.find(haystack, needle, 1, true),
         string.format("expected %q to contain %q", haystack, needle))
end

local function nested_arrays(levels)     -- levels tables, one inside the other
  local t = {}
  for _ = 2, levels do t = { t } end
  return t
end

describe("wdt.json", function()

  describe("encoding scalars", function()
    it("writes booleans, null and nil", function()
      assert.equal("true", enc(true))
      assert.equal("false", enc(false))
      assert.equal("null", enc(null))
      assert.equal("null", enc(nil))
      assert.equal("[1,null,3]", enc({ 1, null, 3 }))
    end)

    it("writes the protocol's example bodies byte for byte", function()
      assert.equal('["xc109393939393939","",1.2,0,false]',
                   enc({ "xc109393939393939", "", 1.2, 0, false }))
      assert.equal('[[{"error_msg":"","status":0,"sync_id":88950}]]',
                   enc({ { { sync_id = 88950, status = 0, error_msg = "" } } }))
      assert.equal('[{"is_own_platform":true,"shop_no":"s1"}]',
                   enc({ { shop_no = "s1", is_own_platform = true } }))
    end)
  end)

  describe("integers", function()
    it("writes small integers without a fraction", function()
      assert.equal("0", enc(0))
      assert.equal("-100", enc(-100))
      assert.equal("88950", enc(88950))
      assert.equal("123456789012345", enc(123456789012345))
    end)

    if IS54 then
      it("keeps 64-bit integers exact both ways (Lua 5.4)", function()
        local cases = {
          { "123456789012345", 123456789012345 },
          { "9007199254740993", 9007199254740993 },
          { "-9223372036854775808", math.mininteger },
          { "9223372036854775807", math.maxinteger },
          { "-1", -1 },
          { "0", 0 },
        }
        for _, c in ipairs(cases) do
          assert.equal(c[1], enc(c[2]))
          local v = dec(c[1])
          assert.equal("integer", math.type(v))
          assert.equal(c[2], v)
          assert.equal(c[1], enc(dec(c[1])))
        end
        -- inside structures too
        local t = dec('{"sync_id":9007199254740993,"ids":[9223372036854775807,-9223372036854775808]}')
        assert.equal(9007199254740993, t.sync_id)
        assert.equal(math.maxinteger, t.ids[1])
        assert.equal(math.mininteger, t.ids[2])
        assert.equal('{"ids":[9223372036854775807,-9223372036854775808],"sync_id":9007199254740993}', enc(t))
      end)

      it("decodes numbers with '.', 'e' or beyond int64 as floats (Lua 5.4)", function()
        assert.equal("float", math.type(dec("1.0")))
        assert.equal("float", math.type(dec("1e2")))
        assert.equal(100.0, dec("1E+2"))
        assert.equal("float", math.type(dec("-0.0")))
        assert.equal("float", math.type(dec("9223372036854775808")))
        assert.equal(2^63, dec("9223372036854775808"))
        assert.equal("float", math.type(dec("-9223372036854775809")))
        assert.equal(-2^63, dec("-9223372036854775809"))
        assert.equal("float", math.type(dec("123456789012345678901234567890")))
        assert.equal(1.2345678901234568e+29, dec("123456789012345678901234567890"))
        assert.equal("integer", math.type(dec("-0")))
      end)

      it("writes integral floats as floats so the subtype survives (Lua 5.4)", function()
        assert.equal("1.0", enc(1.0))
        assert.equal("-3.0", enc(-3.0))
        assert.equal("9007199254740992.0", enc(2.0^53))
        assert.equal("1e+15", enc(1e15))
        assert.equal("float", math.type(dec(enc(1.0))))
        assert.equal("float", math.type(dec(enc(2.0^53))))
      end)
    else
      it("writes integral doubles below 2^53 as integers and decodes doubles (LuaJIT)", function()
        assert.equal("1", enc(1.0))
        assert.equal("9007199254740991", enc(2^53 - 1))
        assert.equal("-9007199254740991", enc(-(2^53 - 1)))
        assert.equal("9007199254740992.0", enc(2^53))
        assert.equal(123456789012345, dec("123456789012345"))
        assert.equal(2^53 - 1, dec("9007199254740991"))
        assert.equal(2^63, dec("9223372036854775807"))   -- nearest double
        assert.equal(-2^63, dec("-9223372036854775808"))
        assert.equal(100, dec("1e2"))
      end)
    end
  end)

  describe("floats", function()
    it("writes the shortest form that reads back exactly, always as a float", function()
      assert.equal("1.5", enc(1.5))
      assert.equal("0.1", enc(0.1))
      assert.equal("1.2", enc(1.2))
      assert.equal("-0.0", enc(-0.0))
      assert.equal("1e+300", enc(1e300))
      assert.equal("0.30000000000000004", enc(0.1 + 0.2))
      assert.equal("0.3333333333333333", enc(1 / 3))
      assert.equal("1.7976931348623157e+308", enc(1.7976931348623157e308))
      assert.equal("4.94065645841247e-324", enc(5e-324))    -- %.15g already reads back
      assert.equal("2.2250738585072014e-308", enc(2.2250738585072014e-308))
      assert.equal("1.25e-07", enc(1.25e-7))
    end)

    it("round-trips floats exactly", function()
      local values = { 0.1, 0.2, 0.3, 1 / 3, 2 / 3, math.pi, -math.pi, 1e-300, 1e300, 5e-324,
                       1.7976931348623157e308, 2.2250738585072014e-308, 123.456, -0.5,
                       4.35, 0.07, 1e21, 1e22, 1e23, 9007199254740993.5 }
      math.randomseed(42)
      for _ = 1, 2000 do
        local x = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
        values[#values + 1] = x
      end
      for _, x in ipairs(values) do
        local s = enc(x)
        local y = dec(s)
        assert(y == x, string.format("%.17g -> %s -> %.17g", x, s, y))
        if IS54 or x ~= math.floor(x) or math.abs(x) >= 2^53 then
          assert(s:find("[%.e]"), "does not look like a float: " .. s)
        end
        if IS54 then assert.equal("float", math.type(y)) end
      end
      -- -0.0 keeps its sign
      assert.equal(-math.huge, 1 / dec(enc(-0.0)))
    end)

    it("decodes floats exactly like the C library does (correct rounding)", function()
      local texts = { "0.1", "1.5", "-2.5e-3", "3.14159265358979323846", "1e-7", "123.456e5",
                      "0.30000000000000004441", "2.2250738585072011e-308", "4.9e-324",
                      "1.7976931348623157e308", "9007199254740993.0", "1e22", "1e23",
                      "0.000001", "123456789.123456789", "7e-10", "1E10", "1e+0", "0e0", "0.0e-5" }
      for _, t in ipairs(texts) do
        assert.equal(tonumber(t), dec(t))
      end
      assert.equal(0, dec("1e-400"))           -- underflow to zero is fine
    end)

    it("refuses NaN and infinities, naming where", function()
      has(enc_err({ a = { 0 / 0 } }), "value.a[1]: cannot encode NaN")
      has(enc_err({ x = math.huge }), "value.x: cannot encode inf")
      has(enc_err(-math.huge), "value: cannot encode -inf")
      has(dec_err("1e400"), "at byte 1: number out of range")
      has(dec_err("[-1e999]"), "at byte 2: number out of range")
    end)

    it("does not depend on the C locale's decimal point", function()
      local names = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", "ru_RU.UTF-8", "de_DE" }
      local old = os.setlocale(nil, "numeric")
      local found
      for _, n in ipairs(names) do
        -- (LuaJIT formats numbers itself: only the C library sees the locale)
        if os.setlocale(n, "numeric") then found = n break end
      end
      if not found then
        os.setlocale(old, "numeric")
        -- `make specs` generates one and points LOCPATH at it: there, missing is a failure
        assert(os.getenv("LOCPATH") == nil, "LOCPATH is set but holds no decimal-comma locale")
        pending("no locale with a decimal comma installed (generate one with localedef + LOCPATH)")
        return
      end
      local ok, err = pcall(function()
        assert.equal("[1.5,0.1,1e+300,0.3333333333333333,-2.5e-07]", enc({ 1.5, 0.1, 1e300, 1 / 3, -2.5e-7 }))
        assert.equal(1.5, dec("1.5"))
        assert.equal(0.1, dec("0.1000000000000000000000001"))   -- the strtod path
        assert.equal(1e-300, dec("1e-300"))
      end)
      os.setlocale(old, "numeric")
      assert(ok, err)
    end)
  end)

  describe("strings", function()
    it("escapes quotes, backslashes and control characters, not '/' nor UTF-8", function()
      assert.equal('"a\\"b\\\\c/d"', enc('a"b\\c/d'))
      assert.equal('"\\n\\r\\t\\b\\f"', enc("\n\r\t\b\f"))
      assert.equal('"\\u0000\\u0001\\u001f x"', enc("\0\1\31 x"))
      assert.equal('"\127"', enc("\127"))
      assert.equal('"\228\184\173\230\150\135 \240\159\152\128"', enc("\228\184\173\230\150\135 \240\159\152\128"))
      -- every byte below 0x20 round-trips
      local all = {}
      for i = 0, 127 do all[#all + 1] = string.char(i) end
      all = table.concat(all)
      assert.equal(all, dec(enc(all)))
      -- long strings (the 8-byte scanner) with specials at every offset
      for i = 1, 40 do
        local s = string.rep("x", i) .. "\"\n\228\184\173" .. string.rep("y", 41 - i)
        assert.equal(s, dec(enc(s)))
      end
    end)

    it("refuses invalid UTF-8, naming where", function()
      has(enc_err({ name = "ab\255" }), "value.name: invalid UTF-8 in string at byte 3")
      has(enc_err({ "\192\175" }), "value[1]: invalid UTF-8")           -- overlong '/'
      has(enc_err({ "\237\160\128" }), "value[1]: invalid UTF-8")       -- encoded surrogate
      has(enc_err({ "\228\184" }), "value[1]: invalid UTF-8")           -- truncated
      has(enc_err({ "\244\144\128\128" }), "value[1]: invalid UTF-8")   -- above U+10FFFF
      has(enc_err({ "\128" }), "value[1]: invalid UTF-8")               -- lone continuation
      has(enc_err({ ["k\255"] = 1 }), "invalid UTF-8 in key")
    end)

    it("decodes escapes, surrogate pairs and raw UTF-8", function()
      assert.equal('a"b\\c/d\b\f\n\r\t', dec('"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"'))
      assert.equal("\0", dec('"\\u0000"'))
      assert.equal("\195\169", dec('"\\u00e9"'))
      assert.equal("\228\184\173", dec('"\\u4E2D"'))
      assert.equal("\240\159\152\128", dec('"\\ud83d\\ude00"'))
      assert.equal("\244\143\191\191", dec('"\\udbff\\udfff"'))
      assert.equal("\228\184\173\230\150\135", dec('"\228\184\173\230\150\135"'))
      assert.equal("x\240\159\152\128y", dec('"x\\uD83D\\uDE00y"'))
    end)
  end)

  describe("tables", function()
    it("writes object keys sorted byte-wise, the same bytes for the same table", function()
      local t = { b = 1, a = 2, A = 3, aa = 4, ["a b"] = 5, ["\195\169"] = 6, _ = 7, [""] = 8 }
      assert.equal('{"":8,"A":3,"_":7,"a":2,"a b":5,"aa":4,"b":1,"\195\169":6}', enc(t))
      -- insertion order does not matter
      local u1, u2 = {}, {}
      for i = 1, 200 do u1["k" .. i] = i end
      for i = 200, 1, -1 do u2["k" .. i] = i end
      assert.equal(enc(u1), enc(u2))
      -- large objects (qsort, values fetched again by key past the kept ones)
      local big, keys = {}, {}
      for i = 1, 3000 do local k = string.format("k%05d", (i * 7919) % 3001) big[k] = i keys[#keys + 1] = k end
      table.sort(keys)
      local parts = {}
      for i, k in ipairs(keys) do parts[i] = '"' .. k .. '":' .. big[k] end
      assert.equal("{" .. table.concat(parts, ",") .. "}", enc(big))
    end)

    it("tells arrays from objects", function()
      assert.equal("{}", enc({}))
      assert.equal("[]", enc(wdt.array({})))
      assert.equal("[1,2]", enc(wdt.array({ 1, 2 })))
      assert.equal('["a","b","c"]', enc({ "a", "b", "c" }))
      local t = {}
      t[3] = 3 t[2] = 2 t[1] = 1                 -- keys in the hash part, any order
      assert.equal("[1,2,3]", enc(t))
      local big = {}
      for i = 1, 100000 do big[i] = i end
      local s = enc(big)
      assert.equal(100000, #dec(s))
      assert.equal("[1,2,3,", s:sub(1, 7))
    end)

    it("marks decoded empty arrays so that [] round-trips", function()
      local mt = getmetatable(wdt.array({}))
      assert.is_table(mt)
      assert.equal(mt, getmetatable(dec("[]")))
      assert.is_nil(getmetatable(dec("[1]")))
      assert.is_nil(getmetatable(dec("{}")))
      assert.equal("[]", enc(dec("[]")))
      assert.equal("{}", enc(dec("{}")))
      assert.equal('{"a":[],"b":{},"c":[[]]}', enc(dec('{"a":[],"b":{},"c":[[]]}')))
      -- a decoded empty array that is filled later is still an array
      local a = dec("[]")
      a[1] = "x"
      assert.equal('["x"]', enc(a))
    end)

    it("ignores other metatables", function()
      local t = setmetatable({ a = 1 }, { __index = function() return 2 end,
                                          __pairs = function() error("not called") end })
      assert.equal('{"a":1}', enc(t))
    end)

    it("keeps nulls inside arrays (length preserved)", function()
      local t = dec("[1,null,3,null]")
      assert.equal(4, #t)
      assert.equal(null, t[2])
      assert.equal(null, t[4])
      assert.equal("[1,null,3,null]", enc(t))
      assert.equal(null, dec("null"))
      assert.equal(null, dec('{"a":null}').a)
    end)

    it("refuses sparse, mixed and oddly keyed tables, naming where", function()
      has(enc_err({ a = { [1] = 1, [3] = 3 } }), "value.a: cannot encode a sparse array")
      has(enc_err({ [2] = "x" }), "value: cannot encode a sparse array")
      has(enc_err({ [0] = "x", "y" }), "value: cannot encode a sparse array")
      has(enc_err({ [-1] = "x" }), "value: cannot encode a sparse array")
      has(enc_err({ 1, 2, x = 3 }), "value: cannot encode a table with both integer and string keys")
      has(enc_err({ x = 3, [1] = 1 }), "value: cannot encode a table with both integer and string keys")
      has(enc_err({ [true] = 1 }), "value: cannot encode a table with a boolean key")
      has(enc_err({ [{}] = 1 }), "value: cannot encode a table with a table key")
      has(enc_err({ [1.5] = 1 }), "value: cannot encode a table with a non-integer number key")
      has(enc_err({ k = { [1] = 1, [2.5] = 2 } }), "value.k: cannot encode a table with a non-integer number key")
      has(enc_err(wdt.array({ x = 1 })), "value: cannot encode a table marked as an array with string keys")
      local holes = wdt.array({})
      holes[2] = 1
      has(enc_err(holes), "value: cannot encode a sparse array")
    end)

    it("names where an unencodable value sits", function()
      local args = { { { sync_id = 1 }, { sync_id = function() end } } }
      has(enc_err(args), "value[1][2].sync_id: cannot encode a function")
      has(enc_err({ co = coroutine.create(function() end) }), "value.co: cannot encode a thread")
      has(enc_err({ ["a b"] = { ["q\""] = print } }), 'value["a b"]["q\\""]: cannot encode a function')
      has(enc_err({ ["1x"] = io.stdout }), 'value["1x"]: cannot encode a userdata')
      has(enc_err(print), "value: cannot encode a function")
    end)

    it("detects cycles and names where the table contains itself", function()
      local t = { a = {} }
      t.a.b = t
      has(enc_err(t), "value.a.b: cycle (table contains itself)")
      local s = {}
      s[1] = s
      has(enc_err(s), "value[1]: cycle (table contains itself)")
      local deep = { x = { y = { z = {} } } }
      deep.x.y.z.w = deep.x
      has(enc_err({ deep }), "value[1].x.y.z.w: cycle (table contains itself)")
      -- a table used twice without a cycle is fine
      local shared = { 1 }
      assert.equal("[[1],[1],{\"a\":[1]}]", enc({ shared, shared, { a = shared } }))
    end)
  end)

  describe("nesting", function()
    it("encodes 1000 levels and refuses 1001", function()
      assert.equal(string.rep("[", 999) .. "{}" .. string.rep("]", 999), enc(nested_arrays(1000)))
      has(enc_err(nested_arrays(1001)), "nesting deeper than 1000")
      local o = {}
      for _ = 2, 1001 do o = { k = o } end
      has(enc_err(o), "nesting deeper than 1000")
    end)

    it("survives very deep tables without crashing", function()
      has(enc_err(nested_arrays(200000)), "nesting deeper than 1000")
    end)

    it("decodes 1000 levels and refuses 1001", function()
      local t = dec(string.rep("[", 1000) .. string.rep("]", 1000))
      local n = 0
      while type(t) == "table" do n = n + 1 t = t[1] end
      assert.equal(1000, n)
      has(dec_err(string.rep("[", 1001) .. string.rep("]", 1001)), "at byte 1001: nesting deeper than 1000")
      has(dec_err(string.rep('{"a":', 1001) .. "1" .. string.rep("}", 1001)), "nesting deeper than 1000")
    end)

    it("survives very deep input without crashing", function()
      has(dec_err(string.rep("[", 1000000)), "nesting deeper than 1000")
      has(dec_err(string.rep('{"a":[', 300000)), "nesting deeper than 1000")
    end)
  end)

  describe("decoding", function()
    it("reads every kind of value, with any JSON whitespace", function()
      local t = dec(' \t\r\n{ "a" : [ 1 , -2.5 , true , false , null , "s" , { } , [ ] ] , "b" : { "c" : "d" } } \n')
      assert.equal(1, t.a[1])
      assert.equal(-2.5, t.a[2])
      assert.equal(true, t.a[3])
      assert.equal(false, t.a[4])
      assert.equal(null, t.a[5])
      assert.equal("s", t.a[6])
      assert.same({}, t.a[7])
      assert.equal(0, #t.a[8])
      assert.equal("d", t.b.c)
      assert.equal(42, dec("42"))
      assert.equal("x", dec('"x"'))
      assert.equal(true, dec("true"))
    end)

    it("keeps the last of duplicate keys", function()
      assert.equal(2, dec('{"a":1,"a":2}').a)
    end)

    it("rejects what RFC 8259 does not allow, saying at which byte", function()
      local cases = {
        { "", "at byte 1: unexpected end of input" },
        { "   ", "at byte 4: unexpected end of input" },
        { "[1,2", "at byte 5: unexpected end of input" },
        { "[1,]", "at byte 4: unexpected character ']'" },
        { "[1 2]", "at byte 4: expected ',' or ']'" },
        { '{"a":1,}', "at byte 8: expected a string key" },
        { '{"a" 1}', "at byte 6: expected ':'" },
        { "{a:1}", "at byte 2: expected a string key" },
        { '{"a":1 "b":2}', "at byte 8: expected ',' or '}'" },
        { "01", "at byte 1: invalid number (leading zero)" },
        { "-01", "at byte 1: invalid number (leading zero)" },
        { "+1", "at byte 1: unexpected character '+'" },
        { ".5", "at byte 1: unexpected character '.'" },
        { "1.", "at byte 3: invalid number" },
        { "1.e5", "at byte 3: invalid number" },
        { "1e", "at byte 3: invalid number" },
        { "1e+", "at byte 4: invalid number" },
        { "-", "at byte 1: invalid number" },
        { "- 1", "at byte 1: invalid number" },
        { "NaN", "at byte 1: unexpected character 'N'" },
        { "nan", "at byte 1: invalid literal" },
        { "Infinity", "at byte 1: unexpected character 'I'" },
        { "-Infinity", "at byte 1: invalid number" },
        { "[1,-inf]", "at byte 4: invalid number" },
        { "tru", "at byte 1: invalid literal" },
        { "True", "at byte 1: unexpected character 'T'" },
        { "nul", "at byte 1: invalid literal" },
        { "0x10", "at byte 2: unexpected data after the value" },
        { "1 2", "at byte 3: unexpected data after the value" },
        { "{} x", "at byte 4: unexpected data after the value" },
        { "[]]", "at byte 3: unexpected data after the value" },
        { "1\0", "at byte 2: unexpected data after the value" },
        { "\239\187\191{}", "at byte 1: unexpected byte 0xef" },
        { '"abc', "at byte 1: unterminated string" },
        { '["abc\\"]', "at byte 2: unterminated string" },
        { '"\\x"', "at byte 2: invalid escape" },
        { '"\\U0041"', "at byte 2: invalid escape" },
        { '"\\u12"', "at byte 2: invalid \\u escape" },
        { '"\\u12g4"', "at byte 2: invalid \\u escape" },
        { '"\\ud800"', "at byte 2: lone surrogate" },
        { '"\\udc00"', "at byte 2: lone surrogate" },
        { '"ab\\ud800\\u0041"', "at byte 4: lone surrogate" },
        { '"\\ud800\\ud800"', "at byte 2: lone surrogate" },
        { '"\\udc00\\ud800"', "at byte 2: lone surrogate" },
        { '"a\nb"', "at byte 3: control character in string" },
        { '"a\tb"', "at byte 3: control character in string" },
        { '"\255"', "at byte 2: invalid UTF-8 in string" },
        { '"\192\175"', "at byte 2: invalid UTF-8 in string" },
        { '"\237\160\128"', "at byte 2: invalid UTF-8 in string" },
        { '"\228\184"', "at byte 2: invalid UTF-8 in string" },
        { '"x\\n\255"', "at byte 5: invalid UTF-8 in string" },
        { "[1]\n[2]", "at byte 5: unexpected data after the value" },
      }
      for _, c in ipairs(cases) do
        local err = dec_err(c[1])
        has(err, c[2])
      end
    end)

    it("raises from decode and returns nil, err from safe.decode", function()
      assert.has_error(function() dec("[") end)
      assert.has_error(function() enc(print) end)
      local v, err = json.safe.decode("[")
      assert.is_nil(v)
      has(err, "at byte 2")
      v, err = json.safe.encode({ f = print })
      assert.is_nil(v)
      has(err, "value.f: cannot encode a function")
      assert.equal("[1]", json.safe.encode({ 1 }))
      assert.same({ 1 }, json.safe.decode("[1]"))
    end)

    it("never raises nor crashes on garbage", function()
      math.randomseed(7)
      local alphabet = '[]{}",:0123456789-+.eEtrufalsn \\u\255\0\n'
      local doc = '{"data":[{"a":1,"b":[true,null,"x\\u00e9"],"c":-1.5e3}],"status":0}'
      for _ = 1, 3000 do
        local n = math.random(0, 40)
        local b = {}
        for i = 1, n do
          local k = math.random(1, #alphabet)
          b[i] = alphabet:sub(k, k)
        end
        local s = table.concat(b)
        local v, err = json.safe.decode(s)
        assert(v ~= nil or (type(err) == "string" and err:find("at byte %d+: ")), s)
      end
      for i = 0, #doc - 1 do                       -- every truncation is an error
        local v, err = json.safe.decode(doc:sub(1, i))
        assert(v == nil and err:find("at byte %d+: "), doc:sub(1, i))
      end
      assert.is_table(dec(doc))
    end)

    it("round-trips a realistic paged answer to the same bytes", function()
      local rows = {}
      for i = 1, 50 do
        rows[i] = string.format('{"created":"2024-05-0%d 12:00:00","is_part_sync":%s,"logistics_code":"SF",' ..
          '"logistics_name":"\233\161\186\228\184\176\233\128\159\232\191\144","logistics_no":"SF%012d",' ..
          '"oids":"%d,%d","platform_id":127,"shop_no":"s\\"1","sync_id":%d,"tid":"T%d","trade_id":%d}',
          i % 9 + 1, i % 2 == 0 and "true" or "false", i, i, i + 1, 88950 + i, i, 1000 + i)
      end
      local s = '{"data":[' .. table.concat(rows, ",") .. '],"status":0,"total":50}'
      local t = dec(s)
      assert.equal(50, #t.data)
      assert.equal('s"1', t.data[1].shop_no)
      assert.equal(s, enc(t))
    end)
  end)

  describe("the null sentinel", function()
    it("is lightuserdata(NULL), the same value as cjson.null", function()
      assert.equal("userdata", type(null))
      local ok, cjson = pcall(require, "cjson")
      if ok then assert.equal(cjson.null, null) end
    end)
  end)
end)
