-- A small strict JSON codec for the emulator (runs in nginx's LuaJIT; Lua 5.1 syntax).
--
-- Written for the emulator alone (it shares no code with wdt's client or C core) because
-- the server must judge request bodies the way the real one does:
--   * `decode(s, compact)` with compact = true refuses any whitespace outside strings;
--   * arrays and objects come back with distinct metatables (`json.ARRAY`, `json.OBJECT`),
--     so `[]` and `{}` can be told apart when checking argument shapes;
--   * `null` is `json.null`, so arrays keep their length;
--   * integers up to 2^53 are read and written exactly (`%.0f`), which is what the big
--     sync_id / trade_id values need under LuaJIT (numbers are doubles).
local M = {}

local ARRAY = { __jsontype = "array" }
local OBJECT = { __jsontype = "object" }
local null = setmetatable({}, { __tostring = function() return "null" end, __jsontype = "null" })
M.ARRAY, M.OBJECT, M.null = ARRAY, OBJECT, null

local byte, sub, find, char, format = string.byte, string.sub, string.find, string.char, string.format
local concat, floor, huge = table.concat, math.floor, math.huge

function M.array(t) return setmetatable(t or {}, ARRAY) end
function M.object(t) return setmetatable(t or {}, OBJECT) end
function M.is_array(v) return type(v) == "table" and getmetatable(v) == ARRAY end
function M.is_object(v) return type(v) == "table" and getmetatable(v) == OBJECT end

---------------------------------------------------------------------------------------------
-- decoding

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
              0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local escapes = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f",
                  [110] = "\n", [114] = "\r", [116] = "\t" }

-- state: s (text), compact (bool); functions return value, next_pos or raise {msg}
local function fail(pos, msg) error({ at = pos, msg = msg }, 0) end

local decode_value

-- a byte test first: most positions have no whitespace, and a pattern costs far more
local function skip(s, pos, compact)
  local c = byte(s, pos)
  if c ~= 32 and c ~= 10 and c ~= 13 and c ~= 9 then return pos end
  local _, e = find(s, "^[ \t\r\n]+", pos)
  if e then
    if compact then fail(pos, "whitespace outside a string (the body must be compact JSON)") end
    return e + 1
  end
  return pos
end

local function decode_string(s, pos)
  -- pos is at the opening quote; most strings have no escape: taken whole, by a loop over
  -- bytes (LuaJIT compiles it; a pattern search it does not)
  local q = pos + 1
  while true do
    local c = byte(s, q)
    if c == 34 then return sub(s, pos + 1, q - 1), q + 1 end
    if c == nil or c == 92 or c < 32 or c == 127 then break end
    q = q + 1
  end
  local parts, n, i = {}, 0, pos + 1
  while true do
    local a, b = find(s, '^[^"\\%c]+', i)
    if a then n = n + 1; parts[n] = sub(s, a, b); i = b + 1 end
    local c = byte(s, i)
    if c == nil then fail(i, "unterminated string") end
    if c == 34 then return concat(parts), i + 1 end
    if c == 92 then
      local e = byte(s, i + 1)
      if e == 117 then
        local hex = sub(s, i + 2, i + 5)
        if not find(hex, "^%x%x%x%x$") then fail(i, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        i = i + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = sub(s, i, i + 5)
          if not find(lo, "^\\u[dD][c-fC-F]%x%x$") then fail(i, "lone surrogate") end
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(sub(lo, 3), 16) - 0xDC00)
          i = i + 6
        elseif cp >= 0xDC00 and cp <= 0xDFFF then
          fail(i - 6, "lone surrogate")
        end
        n = n + 1; parts[n] = utf8_char(cp)
      else
        local r = escapes[e or -1]
        if not r then fail(i, "bad escape") end
        n = n + 1; parts[n] = r
        i = i + 2
      end
    else
      -- a control character (DEL included by %c) inside a string
      if c == 127 then n = n + 1; parts[n] = "\127"; i = i + 1
      else fail(i, "control character in string") end
    end
  end
end

local function decode_number(s, pos)
  -- the common case first: an integer without a leading zero, ended by , ] or }
  local i, c = pos, byte(s, pos)
  if c == 45 then i = i + 1; c = byte(s, i) end
  if c and c >= 49 and c <= 57 then
    repeat i = i + 1; c = byte(s, i) until not c or c < 48 or c > 57
    if c == 44 or c == 93 or c == 125 then return tonumber(sub(s, pos, i - 1)), i end
  end
  local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not a then fail(pos, "unexpected character") end
  local text = sub(s, a, b)
  if not find(text, "^-?0$") and not find(text, "^-?[1-9]%d*$")
     and not find(text, "^-?0%.%d+$") and not find(text, "^-?[1-9]%d*%.%d+$")
     and not find(text, "^-?%d+%.?%d*[eE][-+]?%d+$") then
    fail(pos, "bad number")
  end
  if find(text, "^-?0%d") then fail(pos, "bad number (leading zero)") end
  local v = tonumber(text)
  if not v then fail(pos, "bad number") end
  return v, b + 1
end

local function decode_array(s, pos, compact, depth)
  local t, n = setmetatable({}, ARRAY), 0
  pos = skip(s, pos + 1, compact)
  if byte(s, pos) == 93 then return t, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, compact, depth)
    n = n + 1; t[n] = v
    pos = skip(s, pos, compact)
    local c = byte(s, pos)
    if c == 93 then return t, pos + 1 end
    if c ~= 44 then fail(pos, "expected ',' or ']'") end
    pos = skip(s, pos + 1, compact)
  end
end

-- LuaJIT's table.new: an object is made with room for as many keys as the one before it
-- (a request's objects come in lists of one kind), not grown key by key
local ok_new, new_tab = pcall(require, "table.new")
if not ok_new then new_tab = function() return {} end end
local last_keys = 0

local function decode_object(s, pos, compact, depth)
  local t, n = setmetatable(new_tab(0, last_keys), OBJECT), 0
  pos = skip(s, pos + 1, compact)
  if byte(s, pos) == 125 then return t, pos + 1 end
  while true do
    if byte(s, pos) ~= 34 then fail(pos, "expected a string key") end
    local k
    k, pos = decode_string(s, pos)
    pos = skip(s, pos, compact)
    if byte(s, pos) ~= 58 then fail(pos, "expected ':'") end
    pos = skip(s, pos + 1, compact)
    local v
    v, pos = decode_value(s, pos, compact, depth)
    t[k] = v
    n = n + 1
    pos = skip(s, pos, compact)
    local c = byte(s, pos)
    if c == 125 then last_keys = n; return t, pos + 1 end
    if c ~= 44 then fail(pos, "expected ',' or '}'") end
    pos = skip(s, pos + 1, compact)
  end
end

decode_value = function(s, pos, compact, depth)
  if depth > 200 then fail(pos, "too deep") end
  local c = byte(s, pos)
  if c == 34 then return decode_string(s, pos) end
  if c == 123 then return decode_object(s, pos, compact, depth + 1) end
  if c == 91 then return decode_array(s, pos, compact, depth + 1) end
  if c == 116 and sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
  if c == 102 and sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
  if c == 110 and sub(s, pos, pos + 3) == "null" then return null, pos + 4 end
  if c == nil then fail(pos, "unexpected end") end
  return decode_number(s, pos)
end

-- decode(text, compact) -> value | nil, "at byte N: message"
function M.decode(s, compact)
  if type(s) ~= "string" then return nil, "not a string" end
  local ok, v = pcall(function()
    local p = skip(s, 1, compact)
    local value, q = decode_value(s, p, compact, 0)
    q = skip(s, q, compact)
    if q <= #s then fail(q, "trailing characters") end
    return value
  end)
  if ok then return v end
  if type(v) == "table" then return nil, format("at byte %d: %s", v.at - 1, v.msg) end
  return nil, tostring(v)
end

---------------------------------------------------------------------------------------------
-- encoding

local str_escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
                      ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape_char(c)
  return str_escapes[c] or format("\\u%04x", byte(c))
end

local function encode_string(s)
  -- a loop over bytes first (LuaJIT compiles it; gsub it does not): most strings need no escape
  for i = 1, #s do
    local c = byte(s, i)
    if c < 32 or c == 34 or c == 92 or c == 127 then
      return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
    end
  end
  return '"' .. s .. '"'
end
M.encode_string = encode_string

local function encode_number(x)
  if x ~= x or x == huge or x == -huge then error("cannot encode NaN or infinity") end
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then
    return format("%.0f", x)
  end
  for _, f in ipairs({ "%.15g", "%.16g", "%.17g" }) do
    local s = format(f, x)
    if tonumber(s) == x then return s end
  end
  return format("%.17g", x)
end

local encode_value

-- An answer's objects come in lists of one shape: the sorted keys of each shape, and each
-- key's text, are kept (the keys in the order pairs gave them name the shape; a hit is
-- checked against the object, so two key sets that join alike cannot be mixed up).
local shapes, key_texts = {}, {}
local shape_count, key_count = 0, 0
local function sorted_keys(t, keys, k)
  local shape = concat(keys, "\0", 1, k)
  local cached = shapes[shape]
  if cached and #cached == k then
    local same = true
    for i = 1, k do if t[cached[i]] == nil then same = false; break end end
    if same then return cached end
  end
  table.sort(keys)
  if shape_count < 1000 then shapes[shape] = keys; shape_count = shape_count + 1 end
  return keys
end

local function encode_table(t, out, n, depth)
  if depth > 200 then error("cannot encode: too deep") end
  local mt = getmetatable(t)
  local is_array
  if mt == ARRAY then is_array = true
  elseif mt == OBJECT then is_array = false
  else is_array = t[1] ~= nil end
  if is_array then
    n = n + 1; out[n] = "["
    for i = 1, #t do
      if i > 1 then n = n + 1; out[n] = "," end
      n = encode_value(t[i], out, n, depth + 1)
    end
    n = n + 1; out[n] = "]"
  else
    local keys, k = {}, 0
    for key in pairs(t) do
      if type(key) ~= "string" then error("cannot encode: object key is not a string") end
      k = k + 1; keys[k] = key
    end
    keys = sorted_keys(t, keys, k)
    n = n + 1; out[n] = "{"
    for i = 1, k do
      if i > 1 then n = n + 1; out[n] = "," end
      local key = keys[i]
      local text = key_texts[key]
      if not text then
        text = encode_string(key) .. ":"
        if key_count < 10000 then key_texts[key] = text; key_count = key_count + 1 end
      end
      n = n + 1; out[n] = text
      n = encode_value(t[keys[i]], out, n, depth + 1)
    end
    n = n + 1; out[n] = "}"
  end
  return n
end

encode_value = function(v, out, n, depth)
  local tv = type(v)
  if v == nil or v == null then n = n + 1; out[n] = "null"
  elseif tv == "boolean" then n = n + 1; out[n] = v and "true" or "false"
  elseif tv == "number" then n = n + 1; out[n] = encode_number(v)
  elseif tv == "string" then n = n + 1; out[n] = encode_string(v)
  elseif tv == "table" then n = encode_table(v, out, n, depth)
  else error("cannot encode a " .. tv) end
  return n
end

-- encode(value) -> compact JSON text (raises on values JSON cannot hold)
function M.encode(v)
  local out = {}
  local n = encode_value(v, out, 0, 0)
  return concat(out, "", 1, n)
end

return M
