/* cl:send_many: the batch binding (wdt_batch.c) and what it takes from wdt_core.c. */
#ifndef WDT_BATCH_H
#define WDT_BATCH_H

#include "wdt_compat.h"
#include "wdt_http.h"

typedef struct wdt_send_opts {
    long timeout_ms;
    long connect_timeout_ms;
    int  fresh_connect;
} wdt_send_opts;

/* wdt_core.c: the open client at index 1 (raises when closed), the send options of the
 * table at opts_arg (timeout, connect_timeout, fresh_connect; nil: the client's), and the
 * client's pool, created on first use; NULL when it cannot be created (out of memory). */
wdt_http_pool *wdt_core_client_pool(lua_State *L, int opts_arg, wdt_send_opts *so);
const char *wdt_core_kind_name(wdt_http_kind k);

/* wdt_batch.c: cl:send_many(list, concurrency, opts) -> results (see wdt_batch.c). */
int wdt_l_client_send_many(lua_State *L);

#endif
