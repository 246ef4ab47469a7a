-- wdt.store: durable documents and run locks on local files, with real processes.
local store = require "wdt.store"
local sh = require "spec.support.sh"

local dir
setup(function() dir = sh.tmpdir() end)
teardown(function() os.execute("rm -rf " .. sh.quote(dir)) end)

describe("wdt.store.file", function()
  it("loads nil before the first save and keeps 64-bit integers exact", function()
    local s = store.file(dir .. "/state.json")
    assert.is_nil((s:load()))
    assert.is_true(s:save({ cursor = 123456789012345678, tids = { "a", "b" } }))
    local v = assert(s:load())
    assert.equals(123456789012345678, v.cursor)
    assert.same({ "a", "b" }, v.tids)
  end)

  it("replaces the document whole and leaves no temporary file", function()
    local s = store.file(dir .. "/whole.json")
    assert(s:save({ n = 1 }))
    assert(s:save({ n = 2 }))
    assert.equals('{"n":2}', sh.read_file(dir .. "/whole.json"))
    local p = io.popen("ls -A " .. sh.quote(dir) .. " | grep -c tmp")
    assert.equals("0", p:read("*l"))
    p:close()
  end)

  it("returns a store error for a folder that does not exist and for a corrupt file", function()
    local ok, err = store.file(dir .. "/missing/x.json"):save({})
    assert.is_nil(ok)
    assert.equals("store", err.kind)
    sh.write_file(dir .. "/bad.json", "{not json")
    local v, err2 = store.file(dir .. "/bad.json"):load()
    assert.is_nil(v)
    assert.equals("store", err2.kind)
    assert.matches("not a wdt state document", err2.message)
  end)

  it("raises on a path that is not a string, naming the argument", function()
    assert.has_error(function() store.file(42) end,
      "bad argument 'path' to 'wdt.store.file' (non-empty string expected, got number)")
  end)
end)

describe("wdt.store.lock", function()
  -- A child process that takes the lock and sleeps; its pid comes back on stdout.
  local function holder(path)
    local cmd = ("cd %s && lua5.4 -e %s & echo $!"):format(sh.quote(sh.repo_root()), sh.quote(sh.lua_paths() ..
      ("local l = assert(require('wdt.store').lock(%q)); io.open(%q,'w'):close(); os.execute('sleep 30')")
      :format(path, path .. ".ready")))
    local p = io.popen(cmd)
    local pid = tonumber(p:read("*l"))
    p:close()
    for _ = 1, 200 do
      if io.open(path .. ".ready") then break end
      os.execute("sleep 0.02")
    end
    return pid
  end

  it("refuses a second holder with the holder's pid, and is free once the holder is killed", function()
    local path = dir .. "/run.lock"
    local pid = holder(path)
    local lock, err = store.lock(path)
    assert.is_nil(lock)
    assert.equals("locked", err.kind)
    assert.equals(pid, err.holder)
    assert.matches("held by process " .. pid, tostring(err))
    os.execute("kill -9 " .. pid)
    for _ = 1, 100 do
      if not sh.alive(pid) then break end
      os.execute("sleep 0.02")
    end
    lock = assert(store.lock(path))
    lock:release()
    lock:release()   -- idempotent
    assert(store.lock(path)):release()
  end)
end)
