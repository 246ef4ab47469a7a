/* Adds the push's bindings (push_checker, view_mt) to the wdt.core table on top of the stack. */
#ifndef WDT_CORE_PUSH_H
#define WDT_CORE_PUSH_H
#include "lua.h"
void wdt_core_open_push(lua_State *L);
/* Adds push_batch (wdt_core_push_batch.c). */
void wdt_core_open_push_batch(lua_State *L);
#endif
