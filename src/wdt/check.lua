-- Argument checks shared by the public functions: one message format,
--   bad argument '<name>' to '<function>' (<what is wrong>)
-- raised at once, at a position in the caller's code.
--
-- `level` works as luaL_argerror's stack level and error()'s: 1 is the function that calls
-- check.*, 2 (the default) that function's caller. A public function that checks its own
-- arguments leaves it out; a helper one frame further down passes 3, and so on. Public
-- functions that hand their arguments to a helper do so without a tail call (`return
-- f(...)` drops a frame on Lua 5.4 and LuaJIT, not on 5.1), so the count holds everywhere.
local check = {}

function check.message(fname, name, msg)
  return ("bad argument '%s' to '%s' (%s)"):format(tostring(name), fname, msg)
end

-- check.fail("wdt.client", "timeout", "must be > 0") raises
-- "bad argument 'timeout' to 'wdt.client' (must be > 0)"
function check.fail(fname, name, msg, level)
  error(check.message(fname, name, msg), (level or 2) + 1)
end

-- The type of v for a message: "nan" for NaN, which is a number but never a valid one.
function check.type_name(v)
  if v ~= v then return "nan" end
  return type(v)
end

-- An integer value: a finite number without a fraction (5 and 5.0 alike, on every Lua).
-- The one integer test of wdt.
function check.is_integer(v)
  return type(v) == "number" and v % 1 == 0 and v - v == 0
end

-- An id or key as text, the same for the same value on every Lua and across runs:
-- integers in full ("12345678901234", never "1.2345678901234e+13"), anything else by tostring.
function check.id_text(v)
  if math.type and math.type(v) == "integer" then return ("%d"):format(v) end
  if check.is_integer(v) and v > -2^53 and v < 2^53 then return ("%.0f"):format(v) end
  return tostring(v)
end

-- A number in [min, max] (max optional); `whole` asks for an integer value.
function check.number(fname, name, v, min, max, whole, level)
  level = (level or 2) + 1
  if type(v) ~= "number" or v ~= v then
    check.fail(fname, name, "number expected, got " .. check.type_name(v), level)
  end
  if whole and not check.is_integer(v) then check.fail(fname, name, "integer expected", level) end
  if v < min or v == math.huge or (max and v > max) then
    check.fail(fname, name, max and ("must be a number from %s to %s"):format(min, max)
                                 or ("must be a number >= %s"):format(min), level)
  end
end

-- Check a table of options against specs {name = {type, default}}: unknown names and
-- wrong types raise. Returns a new table with the defaults filled in.
function check.options(fname, opts, specs, level)
  level = (level or 2) + 1
  if type(opts) ~= "table" then
    check.fail(fname, "options", "table expected, got " .. type(opts), level)
  end
  local out = {}
  for name, v in pairs(opts) do
    local spec = type(name) == "string" and specs[name]
    if not spec then check.fail(fname, name, "unknown option", level) end
    if type(v) ~= spec[1] or v ~= v then
      check.fail(fname, name, spec[1] .. " expected, got " .. check.type_name(v), level)
    end
    out[name] = v
  end
  for name, spec in pairs(specs) do
    if out[name] == nil then out[name] = spec[2] end
  end
  return out
end

-- The length of list t: its largest positive integer key, when every position up to it
-- holds a value. A hole (a nil before the last value) would drop what follows it silently:
-- then nil, the first missing position and the last one.
function check.list_length(t)
  local n = 0
  for k in pairs(t) do
    if check.is_integer(k) and k > n then n = k end
  end
  for i = 1, n do
    if t[i] == nil then return nil, i, n end
  end
  return n
end

-- Method names are ASCII letters, digits, '.' and '_' (they go into the URL unescaped).
-- The one place this rule is written.
function check.is_method(method)
  return type(method) == "string" and method:match("^[A-Za-z0-9_][A-Za-z0-9_.]*$") ~= nil
end

function check.method(fname, method, level, name)
  if not check.is_method(method) then
    check.fail(fname, name or "method", "a method name of letters, digits, '.' and '_' expected, got "
      .. (type(method) == "string" and ("%q"):format(method) or type(method)), (level or 2) + 1)
  end
end

return check
