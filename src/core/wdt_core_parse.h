/* core.parse (wdt_core_parse.c): one HTTP answer -> the decoded response or an error. */
#ifndef WDT_CORE_PARSE_H
#define WDT_CORE_PARSE_H
#include "lua.h"
int wdt_core_parse(lua_State *L);
#endif
