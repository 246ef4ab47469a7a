rockspec_format = "3.0"
package = "wdt"
version = "scm-1"

source = {
  url = "git+https://github.com/wdt-lua/wdt.git",
  branch = "main",
}

description = {
  summary = "WangDianTong (旺店通) ERP flagship open API SDK for Lua 5.1-5.4 and LuaJIT/OpenResty",
  detailed = [[
A C core (exact JSON codec, request signing, kept-alive libcurl transport) under a Lua
layer with retries, clock-skew handling, paging and the logistics/stock sync flows; a
cosocket transport for OpenResty and a local emulator of the API for tests.
]],
  homepage = "https://github.com/wdt-lua/wdt",
  license = "MIT",
  labels = { "erp", "api", "wangdiantong", "openresty" },
}

-- Tested (make test): every spec with Lua 5.1, 5.2, 5.3 and 5.4 as the library's host (make
-- matrix, make specs; the wdt command itself runs under 5.4), and LuaJIT 2.1 inside nginx
-- (OpenResty / nginx's Lua module).
dependencies = {
  "lua >= 5.1, < 5.5",
}

-- Debian/Ubuntu keep curl/curl.h in the multiarch include dir (/usr/include/<triplet>),
-- where LuaRocks does not look, so libcurl is checked by its library only; CMake's
-- FindCURL finds the header. Pass CURL_DIR / OPENSSL_DIR for non-system installs.
external_dependencies = {
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}

build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUADIR = "$(LUADIR)",
    LIBDIR = "$(LIBDIR)",
    CURL_ROOT = "$(CURL_DIR)",
    OPENSSL_ROOT_DIR = "$(OPENSSL_DIR)",
  },
  install = {
    bin = {
      ["wdt"] = "bin/wdt",
      ["wdt-emulator"] = "bin/wdt-emulator",
    },
  },
}

-- `luarocks test` from a checkout: the specs with the system's busted (Debian's lua-busted),
-- through the Makefile, so nothing is fetched from the network.
test = {
  type = "command",
  command = "make specs",
}
