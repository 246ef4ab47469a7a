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
local check = require "wdt.check"

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
-- directory" about a temporary file's name); by load too, before any work that would be
-- lost at the first save.
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

-- save, or with `exclusive` create: true | false (create: one exists) | nil, err.
local function write(path, value, exclusive)
  local ok, text = pcall(core.encode, value)
  if not ok then return nil, store_error("cannot encode the state: " .. tostring(text)) end
  local done, err = core.write_atomic(path, text, exclusive)
  if done == nil then return nil, missing_folder(path) or store_error(err) end
  return done
end

function File:save(value) return write(self.path, value, false) end

-- Like save, only when no document exists yet.
function File:create(value) return write(self.path, value, true) end

-- nil for a usable path, else what is wrong with it.
local function bad_path(path)
  if type(path) ~= "string" or path == "" then
    return "non-empty string expected, got " .. (path == "" and '""' or type(path))
  end
end

function store.file(path)
  local bad = bad_path(path)
  if bad then check.fail("wdt.store.file", "path", bad, 2) end
  return setmetatable({ path = path }, File)
end

function store.lock(path)
  local bad = bad_path(path)
  if bad then check.fail("wdt.store.lock", "path", bad, 2) end
  local lock, holder = core.lock(path)
  if lock then return lock end
  if lock == false then
    local who = holder ~= "" and ("process " .. holder) or "another process"
    return nil, store_error(path .. " is held by " .. who, { kind = "locked", holder = tonumber(holder) })
  end
  return nil, store_error(holder)
end

return store
