/* wdt_http_internal.h: what wdt_http_pool.c takes from wdt_http.c beyond the public
 * wdt_http.h. Not for the rest of the core (the build hides every symbol but luaopen_wdt_core). */
#ifndef WDT_HTTP_INTERNAL_H
#define WDT_HTTP_INTERNAL_H

#include "wdt_http.h"

/* Fill in a failed result: kind, status 0, sent, and msg with any query string dropped
 * (the query holds the salt and the sign) and line breaks turned into spaces. */
void wdt_http_fail_result(wdt_http_result *res, wdt_http_kind kind, int sent,
                          const char *msg);

#endif
