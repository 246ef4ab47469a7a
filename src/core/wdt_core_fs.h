/* Adds the file bindings (write_atomic, lock) to the wdt.core table on top of the stack. */
#ifndef WDT_CORE_FS_H
#define WDT_CORE_FS_H
#include "lua.h"
void wdt_core_open_fs(lua_State *L);
#endif
