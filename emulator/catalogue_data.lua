-- The catalogue's data (src/wdt/api/: index.lua, guide.lua, methods/*.lua), read by the
-- emulator without wdt's code: each file is plain data (`return { … }`), loaded here with an
-- empty environment. The shape of an entry is written down in src/wdt/api/init.lua.
-- Found beside the handlers: <root>/src/wdt/api in a checkout, <root>/api when installed
-- (<prefix>/share/wdt/api, see CMakeLists.txt). Runs in nginx's LuaJIT (Lua 5.1 syntax).
local M = {}

local function here()
  local src = debug.getinfo(1, "S").source
  return (src:match("^@(.*)/emulator/[^/]*$")) or "."
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local root = here()
local dir
for _, cand in ipairs({ root .. "/src/wdt/api", root .. "/api" }) do
  if exists(cand .. "/index.lua") then dir = cand; break end
end
M.dir = dir

local function load_data(path)
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  setfenv(chunk, {})
  local ok, v = pcall(chunk)
  if not ok then return nil, v end
  return v
end

local index, guide
local entries = {}

function M.index()
  if not index and dir then index = assert(load_data(dir .. "/index.lua")) end
  return index or {}
end

-- name -> the entry, or nil (an unknown method, or no catalogue found)
function M.get(name)
  local e = entries[name]
  if e == nil and M.index()[name] then
    e = assert(load_data(dir .. "/methods/" .. name:gsub("%.", "_") .. ".lua"))
    entries[name] = e
  end
  return e
end

function M.names()
  local names = {}
  for name in pairs(M.index()) do names[#names + 1] = name end
  table.sort(names)
  return names
end

function M.guide()
  if not guide and dir then guide = assert(load_data(dir .. "/guide.lua")) end
  return guide or {}
end

return M
