/* The client userdata (wdt_core_client.c): adds core.client_new to the wdt.core table on
 * top of the stack and registers the client's metatable. */
#ifndef WDT_CORE_CLIENT_H
#define WDT_CORE_CLIENT_H
#include "lua.h"
void wdt_core_open_client(lua_State *L);
#endif
