-- Argument checks shared by the public functions. A bad argument raises at once, with a
-- message that names it and a position in the caller's code (not in wdt's own files).
local check = {}

-- How many stack levels up the first function outside wdt's Lua files is.
local function caller_level()
  local level = 3                       -- 1 = here, 2 = check.fail
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 0 end
    local src = info.source or ""
    if info.what ~= "C" and not src:find("[/\\]wdt[/\\][%w_/\\]*%.lua$") and src:sub(1, 1) == "@" then
      return level - 1                  -- error()'s levels count from check.fail's caller
    end
    level = level + 1
  end
end

-- check.fail("wdt.client", "timeout", "must be > 0") raises
-- "bad argument 'timeout' to 'wdt.client' (must be > 0)"
function check.fail(fname, name, msg)
  error(("bad argument '%s' to '%s' (%s)"):format(tostring(name), fname, msg), caller_level())
end

function check.is_whole(v)
  if math.type then return math.type(v) == "integer" or (math.type(v) == "float" and v % 1 == 0) end
  return type(v) == "number" and v % 1 == 0
end

-- A number in [min, max] (max optional); `whole` asks for an integer value.
function check.number(fname, name, v, min, max, whole)
  if type(v) ~= "number" or v ~= v then check.fail(fname, name, "number expected, got " .. type(v)) end
  if whole and not check.is_whole(v) then check.fail(fname, name, "integer expected") end
  if v < min or v == math.huge or (max and v > max) then
    check.fail(fname, name, max and ("must be a number from %s to %s"):format(min, max)
                               or ("must be a number >= %s"):format(min))
  end
end

-- Check a table of options against specs {name = {type, default}}: unknown names and
-- wrong types raise. Returns a new table with the defaults filled in.
function check.options(fname, opts, specs)
  if type(opts) ~= "table" then
    check.fail(fname, "options", "table expected, got " .. type(opts))
  end
  local out = {}
  for name, v in pairs(opts) do
    local spec = type(name) == "string" and specs[name]
    if not spec then check.fail(fname, name, "unknown option") end
    if type(v) ~= spec[1] then check.fail(fname, name, spec[1] .. " expected, got " .. type(v)) end
    out[name] = v
  end
  for name, spec in pairs(specs) do
    if out[name] == nil then out[name] = spec[2] end
  end
  return out
end

-- Method names are ASCII letters, digits, '.' and '_' (they go into the URL unescaped).
function check.method(fname, method)
  if type(method) ~= "string" or not method:match("^[A-Za-z0-9_][A-Za-z0-9_.]*$") then
    check.fail(fname, "method", "a method name of letters, digits, '.' and '_' expected, got "
      .. (type(method) == "string" and ("%q"):format(method) or type(method)))
  end
end

return check
