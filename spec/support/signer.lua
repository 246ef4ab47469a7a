-- An independent signer for the specs (Lua 5.1 to 5.4): MD5 in pure Lua and the canonical
-- string of protocol.md, written apart from wdt's C core and from the emulator (which uses
-- nginx's ngx.md5), so that neither is checked only against the other.
--
--   local signer = require "spec.support.signer"
--   signer.md5(bytes)                      -> 32 lowercase hex digits
--   signer.canonical(secret, params)       -> secret .. k1 .. v1 .. k2 .. v2 ... .. secret
--   signer.sign(secret, params)            -> md5 of the canonical string
--   signer.timestamp([unix_time])          -> seconds since 2012-01-01 00:00:00 UTC
--   signer.query(params)                   -> "k=v&..." (sorted, percent-encoded)
--   signer.signed_query{sid=, key=, appsecret= | secret= + salt=, method=, body=,
--                       timestamp=, v=, page={page_size=, page_no=, calc_total=}, extra=}
--                                          -> query string with sign, and the params table
-- `params` maps names to strings or numbers and includes `body`; `sign` is skipped.
local M = {}

local W = 4294967296   -- 2^32 (an integer on 5.3+)

-- 32-bit operations: the operators on Lua 5.3+, bit32 on 5.2, arithmetic on 5.1 (AND of
-- two bytes from a table; OR and XOR follow from it: a|b = a+b-(a&b), a~b = a+b-2(a&b)).
local bits
local bit32 = rawget(_G, "bit32")   -- Lua 5.2's library
if _VERSION >= "Lua 5.3" then
  bits = require "spec.support.bits53"
elseif bit32 then
  bits = { band = bit32.band, bor = bit32.bor, bxor = bit32.bxor, bnot = bit32.bnot, rotl = bit32.lrotate }
else
  local AND = {}
  for a = 0, 255 do
    for b = 0, 255 do
      local r, bit, x, y = 0, 1, a, b
      for _ = 1, 8 do
        if x % 2 == 1 and y % 2 == 1 then r = r + bit end
        x, y, bit = math.floor(x / 2), math.floor(y / 2), bit * 2
      end
      AND[a * 256 + b] = r
    end
  end
  local function band(a, b)
    local r, m = 0, 1
    for _ = 1, 4 do
      r = r + AND[(a % 256) * 256 + b % 256] * m
      a, b, m = math.floor(a / 256), math.floor(b / 256), m * 256
    end
    return r
  end
  bits = {
    band = band,
    bor = function(a, b) return a + b - band(a, b) end,
    bxor = function(a, b) return a + b - 2 * band(a, b) end,
    bnot = function(a) return W - 1 - a end,
    rotl = function(x, n) return (x * 2 ^ n) % W + math.floor(x / 2 ^ (32 - n)) end,
  }
end
local band, bor, bxor, bnot, rotl = bits.band, bits.bor, bits.bxor, bits.bnot, bits.rotl

local K, S = {}, {
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
}
for i = 0, 63 do K[i + 1] = math.floor(math.abs(math.sin(i + 1)) * W) % W end

-- n as `count` little-endian bytes
local function le_bytes(n, count)
  local out = {}
  for i = 1, count do
    out[i] = string.char(n % 256)
    n = math.floor(n / 256)
  end
  return table.concat(out)
end

function M.md5(msg)
  local len = #msg
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64) .. le_bytes(len * 8, 8)
  assert(#msg % 64 == 0)
  local a0, b0, c0, d0 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
  local X = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      local b1, b2, b3, b4 = msg:byte(chunk + i * 4, chunk + i * 4 + 3)
      X[i] = b1 + b2 * 256 + b3 * 65536 + b4 * 16777216
    end
    local a, b, c, d = a0, b0, c0, d0
    for i = 0, 63 do
      local f, g
      if i < 16 then
        f = bor(band(b, c), band(bnot(b), d)); g = i
      elseif i < 32 then
        f = bor(band(d, b), band(bnot(d), c)); g = (5 * i + 1) % 16
      elseif i < 48 then
        f = bxor(bxor(b, c), d); g = (3 * i + 5) % 16
      else
        f = bxor(c, bor(b, bnot(d))); g = (7 * i) % 16
      end
      f = (f + a + K[i + 1] + X[g]) % W
      a, d, c = d, c, b
      b = (b + rotl(f, S[i + 1])) % W
    end
    a0, b0, c0, d0 = (a0 + a) % W, (b0 + b) % W, (c0 + c) % W, (d0 + d) % W
  end
  local out = le_bytes(a0, 4) .. le_bytes(b0, 4) .. le_bytes(c0, 4) .. le_bytes(d0, 4)
  return (out:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
end

-- A whole number without a fraction or exponent ("5", not "5.0" or "5e+15"), whatever
-- its subtype.
local function str(v)
  if type(v) == "number" and v % 1 == 0 and v > -2 ^ 53 and v < 2 ^ 53 then
    return string.format("%.0f", v)
  end
  return tostring(v)
end

function M.canonical(secret, params)
  local keys = {}
  for k in pairs(params) do
    if k ~= "sign" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local parts = { secret }
  for _, k in ipairs(keys) do
    parts[#parts + 1] = k
    parts[#parts + 1] = str(params[k])
  end
  parts[#parts + 1] = secret
  return table.concat(parts)
end

function M.sign(secret, params)
  return M.md5(M.canonical(secret, params))
end

function M.timestamp(unix_time)
  return math.floor(unix_time or os.time()) - 1325347200
end

local function escape(s)
  return (str(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.escape = escape

function M.query(params)
  local keys = {}
  for k in pairs(params) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = escape(k) .. "=" .. escape(params[k]) end
  return table.concat(parts, "&")
end

-- Build the public parameters of one call, sign them, and return the query string (sign
-- included) and the parameter table (without body).
function M.signed_query(o)
  local secret, salt = o.secret, o.salt
  if o.appsecret then
    local colon = assert(o.appsecret:find(":", 1, true), "appsecret must be secret:salt")
    secret = secret or o.appsecret:sub(1, colon - 1)
    salt = salt or o.appsecret:sub(colon + 1)
  end
  local params = {
    sid = o.sid, key = o.key, salt = salt, method = o.method,
    v = o.v == nil and "1.0" or o.v,
    timestamp = o.timestamp or M.timestamp(),
  }
  if o.page then
    params.page_size = o.page.page_size
    params.page_no = o.page.page_no or 0
    if o.page.calc_total ~= nil then
      local ct = o.page.calc_total
      params.calc_total = (ct == true or ct == 1 or ct == "1") and 1 or 0
    end
  end
  for k, v in pairs(o.extra or {}) do params[k] = v end
  for _, k in ipairs(o.drop or {}) do params[k] = nil end
  if o.v == false then params.v = nil end
  local signing = {}
  for k, v in pairs(params) do signing[k] = v end
  signing.body = o.body or ""
  params.sign = o.sign or M.sign(secret, signing)
  return M.query(params), params
end

return M
