-- The transport contract over libcurl (cl:send, and cl:post that prepares and sends in
-- one): the cases of spec/support/transport_contract.lua,
-- which spec/openresty_spec.lua runs over cosockets inside nginx.
local wdt = require "wdt"
local emulator = require "spec.support.emulator"
local fixtures = require "spec.support.fixtures"
local contract = require "spec.support.transport_contract"

local SID, KEY, APPSECRET = fixtures.SID, fixtures.KEY, fixtures.APPSECRET

describe("the transport contract over libcurl", function()
  local emu

  setup(function()
    emu = emulator.start { config = {
      tenants = { { sid = SID, key = KEY, secret = APPSECRET } },
      logistics = { [SID] = { pending = 3, shop_no = "s1" } },
    } }
  end)

  teardown(function()
    if emu then emu:stop() end
  end)

  -- one version source: CMakeLists.txt's project version, which spec/release_spec.lua
  -- checks wdt.core.version against
  it("sends the User-Agent wdt-lua/VERSION", function()
    local client = wdt.client { url = emu.url, sid = SID, key = KEY, secret = APPSECRET, retries = 0 }
    assert(client:call(contract.METHOD, { shop_no = "s1", is_own_platform = true }))
    client:close()
    assert.equal("wdt-lua/" .. require("wdt.core").version, emu:state().user_agent)
  end)

  for _, via in ipairs({ "send", "post" }) do
    for i, case in ipairs(contract.cases) do
      it(case.name .. " (" .. via .. ")", function()
        emu:faults(case.fault or {})
        local r = contract.run(wdt, { url = emu.url, sid = SID, key = KEY, secret = APPSECRET }, i,
                               emulator.free_port(), via)
        emu:faults {}
        assert.same({}, contract.check(i, r, { "abcde" }))
      end)
    end
  end
end)
