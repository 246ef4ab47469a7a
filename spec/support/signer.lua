-- An independent signer for the specs (Lua 5.4 only): MD5 in pure Lua and the canonical
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

local K, S = {}, {
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
  5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
}
for i = 0, 63 do K[i + 1] = math.floor(math.abs(math.sin(i + 1)) * 2 ^ 32) & 0xffffffff end

local function rotl(x, n)
  return ((x << n) | (x >> (32 - n))) & 0xffffffff
end

function M.md5(msg)
  local len = #msg
  msg = msg .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack("<I8", (len * 8) & 0xffffffffffffffff)
  assert(#msg % 64 == 0)
  local a0, b0, c0, d0 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
  local X = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do X[i] = string.unpack("<I4", msg, chunk + i * 4) end
    local a, b, c, d = a0, b0, c0, d0
    for i = 0, 63 do
      local f, g
      if i < 16 then
        f = (b & c) | (~b & d); g = i
      elseif i < 32 then
        f = (d & b) | (~d & c); g = (5 * i + 1) % 16
      elseif i < 48 then
        f = b ~ c ~ d; g = (3 * i + 5) % 16
      else
        f = c ~ (b | ~d); g = (7 * i) % 16
      end
      f = (f + a + K[i + 1] + X[g]) & 0xffffffff
      a, d, c = d, c, b
      b = (b + rotl(f, S[i + 1])) & 0xffffffff
    end
    a0 = (a0 + a) & 0xffffffff
    b0 = (b0 + b) & 0xffffffff
    c0 = (c0 + c) & 0xffffffff
    d0 = (d0 + d) & 0xffffffff
  end
  local out = string.pack("<I4<I4<I4<I4", a0, b0, c0, d0)
  return (out:gsub(".", function(ch) return string.format("%02x", ch:byte()) end))
end

local function str(v)
  if math.type(v) == "float" and v == math.floor(v) then return string.format("%d", v) end
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
