-- Argument checks shared by the public functions: one message format,
--   bad argument '<name>' to '<function>' (<what is wrong>)
-- raised at the line of the public function's caller, as luaL_argerror does, without
-- counting frames: a failed check raises a Bad (the message) however deep it runs, and the
-- public function, which ran its checks through check.run, raises the message at level 2:
--   local ok, o = check.run(check_options, opts)
--   if not ok then error(o, 2) end
--   return the_work(o)                  -- a tail call is fine: the checks are done
-- A function checking its own arguments in its body may pass level 2 to check.fail.
local check = {}

function check.message(fname, name, msg)
  return ("bad argument '%s' to '%s' (%s)"):format(tostring(name), fname, msg)
end

local Bad = {}
Bad.__tostring = function(b) return b.message end

-- Raises a Bad carrying `message` (already worded).
function check.raise(message)
  error(setmetatable({ message = message }, Bad), 0)
end

-- check.fail("wdt.client", "timeout", "must be > 0") raises
-- "bad argument 'timeout' to 'wdt.client' (must be > 0)": a Bad for check.run, or with
-- `level` a string at that level (as error()'s: 2 is the caller of check.fail's caller).
function check.fail(fname, name, msg, level)
  if level then error(check.message(fname, name, msg), level + 1) end
  check.raise(check.message(fname, name, msg))
end

-- f(...) -> true, f's results | false, the message of the check that failed in it. Any
-- other error passes through.
local unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)
local function pack(...) return { n = select("#", ...), ... } end

function check.run(f, ...)
  local res = pack(pcall(f, ...))
  if res[1] then return unpack(res, 1, res.n) end
  if getmetatable(res[2]) == Bad then return false, res[2].message end
  error(res[2], 0)
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

-- A number in [min, max] (max optional); `integer` asks for an integer value.
function check.number(fname, name, v, min, max, integer)
  if type(v) ~= "number" or v ~= v then
    check.fail(fname, name, "number expected, got " .. check.type_name(v))
  end
  if integer and not check.is_integer(v) then check.fail(fname, name, "integer expected") end
  if v < min or v == math.huge or (max and v > max) then
    check.fail(fname, name, max and ("must be a number from %s to %s"):format(min, max)
                                 or ("must be a number >= %s"):format(min))
  end
end

-- Check a table of options against specs: name = { types, default, min =, max =, integer = }
-- where types is a type name, several joined by '|' ("boolean|table"), or "any"; a number
-- with min is checked by check.number. Unknown names and wrong types raise. Returns a new
-- table with the defaults filled in. `what` names a table of options that is itself an
-- option ("rate": its fields are named "rate.window").
function check.options(fname, opts, specs, what)
  if type(opts) ~= "table" then
    check.fail(fname, what or "options", "table expected, got " .. type(opts))
  end
  local prefix = what and (what .. ".") or ""
  local out = {}
  for name, v in pairs(opts) do
    local spec = type(name) == "string" and specs[name]
    if not spec then check.fail(fname, prefix .. tostring(name), "unknown option") end
    local types = spec[1]
    if types ~= "any" and (v ~= v or not ("|" .. types .. "|"):find("|" .. type(v) .. "|", 1, true)) then
      check.fail(fname, prefix .. name, (types:gsub("|", " or ")) .. " expected, got " .. check.type_name(v))
    end
    if spec.min and type(v) == "number" then
      check.number(fname, prefix .. name, v, spec.min, spec.max, spec.integer)
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
  if getmetatable(t) == nil then   -- a plain list (the usual case: a push's 10,000 orders)
    local n, count, i = #t, 0, 1
    for _ in pairs(t) do count = count + 1 end
    while i <= n and t[i] ~= nil do i = i + 1 end
    if i > n and count == n then return n end   -- n keys, 1..n all there: nothing else
  end
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

function check.method_message(fname, method, name)
  return check.message(fname, name or "method", "a method name of letters, digits, '.' and '_' expected, got "
    .. (type(method) == "string" and ("%q"):format(method) or type(method)))
end

return check
