-- The release: one version everywhere, the rockspecs, the licence, errors that concatenate.
-- The version's one source is `project(wdt VERSION x.y.z)` in CMakeLists.txt; the C core gets
-- it at build time (wdt.core.version), the Lua layer and the CLI read it from there, and the
-- texts that must repeat it (rockspecs, CHANGELOG.md, README.md) are checked here.
local sh = require "spec.support.sh"
local compat = require "spec.support.compat"

local ROOT = sh.repo_root()

local function read(rel) return assert(sh.read_file(ROOT .. "/" .. rel), rel) end

local function cmake_version()
  return read("CMakeLists.txt"):match("\nproject%(wdt VERSION (%d+%.%d+%.%d+)[ )]")
end

-- a rockspec is Lua assignments: run it in an empty environment
local function rockspec(rel)
  local env = {}
  local chunk = assert(compat.load(read(rel), "@" .. rel, env))
  chunk()
  return env
end

local function run(cmd)
  local p = io.popen("cd " .. sh.quote(ROOT) .. " && " .. cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("rc=(%d+)\n$")), (out:gsub("rc=%d+\n$", ""))
end

describe("the release", function()
  local V = cmake_version()

  it("has its version in CMakeLists.txt", function()
    assert.is_string(V)
  end)

  it("reports that version from the C core, wdt._VERSION and the CLI", function()
    assert.equal(V, require("wdt.core").version)
    assert.equal("wdt " .. V, require("wdt")._VERSION)
    for _, flag in ipairs({ "--version", "-V" }) do
      local rc, out = run("lua5.4 bin/wdt " .. flag)
      assert.equal(0, rc, out)
      assert.equal("wdt " .. V .. "\n", out)
    end
    local rc, out = run("make -s version")
    assert.equal(0, rc, out)
    assert.equal(V .. "\n", out)
  end)

  it("has a versioned rockspec beside the scm one, alike but for version and source", function()
    local rel = rockspec("rockspecs/wdt-" .. V .. "-1.rockspec")
    local scm = rockspec("wdt-scm-1.rockspec")
    assert.equal(V .. "-1", rel.version)
    assert.equal("v" .. V, rel.source.tag)
    assert.is_nil(rel.source.branch)
    assert.equal("scm-1", scm.version)
    assert.equal(scm.source.url, rel.source.url)
    for _, field in ipairs({ "package", "rockspec_format", "description", "dependencies",
                             "external_dependencies", "build", "test" }) do
      assert.same(scm[field], rel[field], field)
    end
    -- no other versioned rockspec is left behind
    local _, listing = run("ls rockspecs")
    assert.equal("wdt-" .. V .. "-1.rockspec\n", listing)
  end)

  it("rockspecs: homepage, MIT as LICENSE says, the Lua versions make test runs, an offline test", function()
    local scm = rockspec("wdt-scm-1.rockspec")
    assert.matches("^https://", scm.description.homepage)
    assert.equal("MIT", scm.description.license)
    assert.matches("^MIT License\n", read("LICENSE"))
    assert.same({ "lua >= 5.1, < 5.5" }, scm.dependencies)
    assert.matches("MATRIX_LUAS %?= 5%.1 5%.2 5%.3\n", read("mk/matrix.mk"))
    -- each of them runs every spec, as the rockspecs' "Tested" comment and README say
    local mk = read("mk/matrix.mk")
    assert.matches("\nMATRIX_SPECS %?= spec\n", mk)
    assert.is_nil(mk:find("MATRIX_SPECS_", 1, true), "a Lua version that runs only some specs")
    local tested = read("wdt-scm-1.rockspec"):match("\n(%-%- Tested %(make test%):.-)\ndependencies")
    assert.truthy(tested and tested:find("every spec with Lua 5.1, 5.2, 5.3 and 5.4", 1, true), tested)
    assert.truthy(read("rockspecs/wdt-" .. V .. "-1.rockspec"):find(tested, 1, true), "the rockspecs disagree")
    assert.truthy(read("README.md"):find("every spec again under Lua 5.1,", 1, true))
    -- a command, not type "busted", which would look for busted on the network
    assert.same({ type = "command", command = "make specs" }, scm.test)
  end)

  it("names the version in CHANGELOG.md and README.md", function()
    assert.matches("\n## %[" .. V:gsub("%.", "%%.") .. "%]", read("CHANGELOG.md"))
    assert.truthy(read("README.md"):find("Version " .. V, 1, true))
    assert.truthy(read("README.md"):find("rockspecs/wdt-" .. V .. "-1.rockspec", 1, true))
  end)
end)

-- A tree unpacked from the source rock has no .git: `luarocks test` there runs every spec,
-- and packing a rock needs the git history, so that one says why it does not run.
local function in_git_checkout()
  return compat.execute("test -e " .. sh.quote(ROOT .. "/.git") .. " && git -C " .. sh.quote(ROOT)
                        .. " rev-parse >/dev/null 2>&1") == true
end

describe("a checkout", function()
  local packs = "packs a source rock with luarocks pack, offline (make rock)"
  if not in_git_checkout() then
    pending(packs .. ": skipped, " .. ROOT .. " is not a git checkout (a tree unpacked from the rock)")
  else it(packs, function()
    local v = cmake_version()
    local dir = sh.tmpdir()
    -- any try to reach the network fails: a proxy that is not there, git limited to file://
    local rc, out = run("http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 " ..
      "GIT_ALLOW_PROTOCOL=file make -s rock BUILD=" .. sh.quote(dir))
    assert.equal(0, rc, out)
    local rock = dir .. "/wdt-" .. v .. "-1.src.rock"
    local listing
    rc, listing = run("unzip -Z1 " .. sh.quote(rock))
    assert.equal(0, rc, listing)
    assert.truthy(listing:find("^wdt%-" .. v:gsub("%.", "%%.") .. "%-1%.rockspec\n"), listing)
    for _, f in ipairs({ "wdt/CMakeLists.txt", "wdt/src/wdt/init.lua", "wdt/LICENSE", "wdt/bin/wdt" }) do
      assert.truthy(listing:find("\n" .. f .. "\n", 1, true), f .. " in\n" .. listing)
    end
    assert.is_nil(listing:find("wdt/.git/", 1, true))
    run("rm -rf " .. sh.quote(dir))
  end) end

  it("is usable from any folder after eval \"$(make env)\"", function()
    local rc, out = run("eval \"$(make -s env)\" && cd / && " ..
      "lua5.4 -e 'print(require(\"wdt\")._VERSION)' && wdt -V")
    assert.equal(0, rc, out)
    local v = cmake_version()
    assert.equal("wdt " .. v .. "\nwdt " .. v .. "\n", out)
  end)

  it("installs with CMake and uninstalls exactly that", function()
    local dir = sh.tmpdir()
    run("mkdir -p " .. sh.quote(dir .. "/share"))
    sh.write_file(dir .. "/share/keep.txt", "not ours\n")
    -- build/install_manifest.txt is one file for every run of this spec (make matrix runs
    -- three at once): install, list and uninstall under one lock
    local rc, out = run("flock build/install.lock sh -c " .. sh.quote(
      "cmake --install build --prefix " .. sh.quote(dir) .. " >/dev/null && " ..
      "find " .. sh.quote(dir) .. " -type f | sort && " ..
      "cmake --build build --target uninstall >/dev/null"))
    assert.equal(0, rc, out)
    assert.truthy(out:find("/lib/lua/5.4/wdt/core.so\n", 1, true), out)
    assert.truthy(out:find("/share/lua/5.4/wdt/init.lua\n", 1, true), out)
    assert.truthy(out:find("/share/wdt/emulator/server.lua\n", 1, true), out)
    local _, files = run("find " .. sh.quote(dir) .. " -type f -o -type d -name wdt")
    assert.equal(dir .. "/share/keep.txt\n", files)
    run("rm -rf " .. sh.quote(dir))
  end)
end)

describe("error objects", function()
  local errors = require "wdt.errors"

  it("concatenate on either side, as their tostring", function()
    local err = errors.new { kind = "api", status = 7, method = "m.x", message = "too early" }
    assert.equal("failed: wdt: api error 7 in m.x: too early", "failed: " .. err)
    assert.equal("wdt: api error 7 in m.x: too early!", err .. "!")
    assert.equal(tostring(err) .. tostring(err), err .. err)
  end)
end)
