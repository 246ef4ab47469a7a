# Release targets, included by the Makefile:
#
#   make rock       `luarocks pack` of the versioned rockspec into a source rock,
#                   build/wdt-VERSION-1.src.rock, offline: git is pointed at this checkout
#                   (mk/git-from-checkout), so the rock holds its committed state: the tag
#                   (or branch) the rockspec names when the checkout has it, else its HEAD
#   make rock ROCKSPEC=wdt-scm-1.rockspec    the same for the scm rockspec
ROCKSPEC ?= rockspecs/wdt-$(WDT_VERSION)-1.rockspec

.PHONY: rock

rock:
	@sh mk/apt-install git luarocks zip
	@mkdir -p $(BUILD)
	printf 'variables = { GIT = "%s" }\n' "$(CURDIR)/mk/git-from-checkout" > $(BUILD)/luarocks-pack.lua
	cd $(BUILD) && LUAROCKS_CONFIG=$(abspath $(BUILD))/luarocks-pack.lua WDT_CHECKOUT=$(CURDIR) \
	  luarocks --lua-version=5.4 pack $(abspath $(ROCKSPEC))
	@ls -l $(BUILD)/*.src.rock
