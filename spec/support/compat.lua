-- What the specs take from Lua 5.2/5.3 when they run under Lua 5.1 or 5.2 (mk/matrix.mk):
-- the same results on every version.
local compat = {}

compat.unpack = table.unpack or unpack  -- luacheck: ignore (5.1 global)

function compat.pack(...) return { n = select("#", ...), ... } end

-- x as an integer (cjson decodes every number as a float), nil when it has a fraction
function compat.tointeger(x)
  if math.tointeger then return math.tointeger(x) end
  if type(x) == "number" and x % 1 == 0 then return x end
  return nil
end

-- the integer subtype on Lua 5.3+; before that there is none: a whole number
function compat.is_integer(x)
  if math.type then return math.type(x) == "integer" end
  return type(x) == "number" and x % 1 == 0
end

-- os.execute as Lua 5.2+ answers it: true | nil, "exit" | "signal", code. Lua 5.1 answers
-- the wait status (exit code * 256), which is truthy even when the command failed.
function compat.execute(cmd)
  local a, how, code = os.execute(cmd)
  if type(a) ~= "number" then return a, how, code end
  if a % 256 == 0 then return a == 0 or nil, "exit", a / 256 end
  return nil, "signal", a % 128
end

-- load(text, name, "t", env) on every version (5.1 has loadstring and setfenv)
function compat.load(text, name, env)
  if setfenv then  -- luacheck: ignore (5.1 global)
    local chunk, err = loadstring(text, name)  -- luacheck: ignore (5.1 global)
    if chunk and env then setfenv(chunk, env) end  -- luacheck: ignore (5.1 global)
    return chunk, err
  end
  return load(text, name, "t", env)
end

return compat
