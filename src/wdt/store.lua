-- wdt.store: durable state for flows that resume (push state, scan checkpoints) and the
-- run locks that keep two runs of one flow apart. Local files by default:
--
--   local s = store.file(path)   -- one JSON document
--   s:load()      -> value | nil (no file yet) | nil, err
--   s:save(value) -> true | nil, err   -- atomic and durable (wdt_fs.h): a crash leaves the
--                                      -- old document or the new one, never a mix
--   s:create(value) -> true | false (exists) | nil, err   -- save, unless one exists
-- load refuses what is not a regular file, or larger than store.MAX_BYTES (64 MiB).
--   store.lock(path) -> lock | nil, err   -- err.kind "locked" (err.holder: the holder's pid)
--   lock:release()                        -- idempotent; the kernel also drops it when the
--                                         -- holder dies, so a dead holder's lock is free
-- Values are encoded with wdt's codec, so 64-bit ids survive.
local core = require "wdt.core"
local errors = require "wdt.errors"

local store = {}

local function store_error(message, fields)
  local e = { kind = "store", message = message }
  for k, v in pairs(fields or {}) do e[k] = v end
  return errors.new(e)
end

local File = {}
File.__index = File

-- A state document larger than this is refused rather than read (a damaged file, or a
-- device named by mistake must not take the memory).
store.MAX_BYTES = 64 * 1024 * 1024

-- A folder that is not there is said plainly (the OS says only "No such file or
-- directory" about a temporary file's name), when the load finds nothing saved yet: before
-- any work that would be lost at the first save.
local function missing_folder(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil or dir == "" then return nil end
  local st = core.stat(dir)
  if st and st.dir then return nil end
  return store_error(("the folder %s of %s does not exist%s: create it (mkdir -p %s)")
    :format(dir, path, st and " (it is a file)" or "", dir), { path = path })
end

function File:load()
  -- looked at before opening: opening a FIFO to read waits for a writer
  local st = core.stat(self.path)
  if st and not st.regular then        -- /dev/zero, a FIFO, a folder: never a document
    return nil, store_error(self.path .. " is not a regular file")
  end
  local f, oerr, errno = io.open(self.path, "rb")
  if not f then
    if errno == 2 then return nil, missing_folder(self.path) end   -- ENOENT: nothing saved yet
    return nil, store_error("cannot read " .. tostring(oerr))
  end
  local text, rerr = f:read(store.MAX_BYTES + 1)
  f:close()
  if text == nil and rerr then return nil, store_error("cannot read " .. self.path .. ": " .. tostring(rerr)) end
  text = text or ""
  if #text > store.MAX_BYTES then
    return nil, store_error(("%s is larger than %d bytes: not a wdt state document"):format(self.path, store.MAX_BYTES))
  end
  local ok, value = pcall(core.decode, text)
  if not ok then
    return nil, store_error(self.path .. " is not a wdt state document: " .. tostring(value))
  end
  return value
end

function File:save(value)
  local ok, text = pcall(core.encode, value)
  if not ok then return nil, store_error("cannot encode the state: " .. tostring(text)) end
  local done, err = core.write_atomic(self.path, text)
  if not done then return nil, missing_folder(self.path) or store_error(err) end
  return true
end

-- Like save, only when no document exists yet: true | false (one exists) | nil, err.
function File:create(value)
  local ok, text = pcall(core.encode, value)
  if not ok then return nil, store_error("cannot encode the state: " .. tostring(text)) end
  local done, err = core.write_atomic(self.path, text, true)
  if done == nil then return nil, store_error(err) end
  return done
end

function store.file(path)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'wdt.store.file' (path string expected, got " .. type(path) .. ")", 2)
  end
  return setmetatable({ path = path }, File)
end

function store.lock(path)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'wdt.store.lock' (path string expected, got " .. type(path) .. ")", 2)
  end
  local lock, holder = core.lock(path)
  if lock then return lock end
  if lock == false then
    local who = holder ~= "" and ("process " .. holder) or "another process"
    return nil, store_error(path .. " is held by " .. who, { kind = "locked", holder = tonumber(holder) })
  end
  return nil, store_error(holder)
end

return store
