-- wdt: a client for the WangDianTong flagship open API.
--   local wdt = require "wdt"
--   local client = wdt.client{ sid = …, key = …, secret = "secret:salt" }
local core = require "wdt.core"
local client = require "wdt.client"
local errors = require "wdt.errors"
local check = require "wdt.check"

-- The version comes from the C core, which has it from CMakeLists.txt (the one source).
local wdt = { _VERSION = "wdt " .. core.version }

wdt.client = client.new
wdt.null = core.null
wdt.is_error = errors.is

-- wdt.array(t): mark t (a new table when nil) as a JSON array, so `{}` encodes as `[]`.
function wdt.array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then check.fail("wdt.array", "t", "table expected, got " .. type(t), 2) end
  local mt = getmetatable(t)
  if mt ~= nil and mt ~= core.array_mt then check.fail("wdt.array", "t", "table already has a metatable", 2) end
  return setmetatable(t, core.array_mt)
end

-- wdt.sign(secret, params): the request signature (32 hex digits) over params, `body` included.
function wdt.sign(secret, params)
  if type(secret) ~= "string" then check.fail("wdt.sign", "secret", "string expected, got " .. type(secret), 2) end
  if type(params) ~= "table" then check.fail("wdt.sign", "params", "table expected, got " .. type(params), 2) end
  return core.sign(secret, params)
end

-- The codec the client uses: exact 64-bit integers, sorted keys, compact output.
-- wdt.json raises on errors as lua-cjson does; wdt.json.safe returns nil, message.
local function safe(f)
  return function(v)
    local ok, res = pcall(f, v)
    if ok then return res end
    return nil, res
  end
end

wdt.json = {
  encode = core.encode,
  decode = core.decode,
  null = core.null,
  array = wdt.array,
  safe = { encode = safe(core.encode), decode = safe(core.decode) },
}

return wdt
