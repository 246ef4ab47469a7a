/* cl:send_many(list, concurrency, opts): many POSTs at once over the client's libcurl
 * multi handle (wdt_http_pool_run), for wdt.batch (client:call_many).
 *
 *   list         {{url, body}, ...}; an item may say fresh_connect = true (a write that
 *                must not be sent twice goes out on a new connection) and carry its own
 *                timeout / connect_timeout (seconds)
 *   concurrency  1..WDT_HTTP_MAX_CONCURRENCY transfers in flight
 *   opts         nil or {timeout =, connect_timeout =, fresh_connect =} as for cl:send
 *   -> results   results[i] for list[i]: {status =, body =, date =} for any HTTP answer,
 *                {kind =, message =, sent =} when there was none (kind "network",
 *                "timeout", "too_large", "tls"; sent == false: the request never left)
 *
 * Nothing raises while libcurl runs: the answers are gathered in C memory (a box that
 * __gc frees on any error) and only then turned into Lua values.
 */
#include <math.h>
#include <string.h>

#include "wdt_batch.h"

#define JOBS_MT "wdt.core.jobs"
#define MAX_ITEMS 1000000

typedef struct jobs_box {
    size_t       n;
    wdt_http_job jobs[1];
} jobs_box;

static int jobs_gc(lua_State *L)
{
    jobs_box *b = (jobs_box *)luaL_checkudata(L, 1, JOBS_MT);
    for (size_t i = 0; i < b->n; i++)
        wdt_buf_free(&b->jobs[i].answer);
    b->n = 0;
    return 0;
}

static jobs_box *push_jobs_box(lua_State *L, size_t n)
{
    size_t size = sizeof(jobs_box) + (n ? n - 1 : 0) * sizeof(wdt_http_job);
    jobs_box *b = (jobs_box *)compat_newuserdata(L, size);
    memset(b, 0, size);                 /* zeroed answers: __gc-safe before the run */
    b->n = n;
    if (luaL_newmetatable(L, JOBS_MT)) {
        lua_pushcfunction(L, jobs_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, JOBS_MT);
        lua_setfield(L, -2, "__metatable");
    }
    lua_setmetatable(L, -2);
    return b;
}

static const char *item_str(lua_State *L, int item, int k, size_t i, size_t *len)
{
    lua_rawgeti(L, item, k);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_argerror(L, 2, lua_pushfstring(L, "list[%d][%d]: %s expected, got %s", (int)i, k,
                                            k == 1 ? "url string" : "body string",
                                            luaL_typename(L, -1)));
    const char *s = lua_tolstring(L, -1, len);
    lua_pop(L, 1);                      /* still referenced by the item, which is in list */
    return s;
}

/* item.timeout / item.connect_timeout (seconds) in ms; 0 when absent */
static long item_ms(lua_State *L, int item, const char *name, size_t i)
{
    long ms = 0;
    if (compat_getfield(L, item, name) != LUA_TNIL) {
        double sec = lua_type(L, -1) == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : -1.0;
        if (!(sec > 0) || sec > 86400.0 * 24)
            luaL_argerror(L, 2, lua_pushfstring(L, "list[%d].%s: a positive number of seconds "
                                                "(at most 24 days) expected", (int)i, name));
        ms = (long)ceil(sec * 1000.0);
        if (ms < 1)
            ms = 1;
    }
    lua_pop(L, 1);
    return ms;
}

int wdt_l_client_send_many(lua_State *L)
{
    lua_Integer conc = 0;
    wdt_send_opts so;

    if (lua_type(L, 2) != LUA_TTABLE)
        luaL_argerror(L, 2, lua_pushfstring(L, "list: table expected, got %s", luaL_typename(L, 2)));
    if (!compat_tointeger_strict(L, 3, &conc) || conc < 1 || conc > WDT_HTTP_MAX_CONCURRENCY)
        luaL_argerror(L, 3, lua_pushfstring(L, "concurrency: an integer from 1 to %d expected",
                                            WDT_HTTP_MAX_CONCURRENCY));
    wdt_http_pool *pool = wdt_core_client_pool(L, 4, &so);
    size_t n = compat_rawlen(L, 2);
    if (n > MAX_ITEMS)
        luaL_argerror(L, 2, "list: more than 1000000 items");
    lua_settop(L, 4);
    jobs_box *box = push_jobs_box(L, n);

    for (size_t i = 0; i < n; i++) {
        wdt_http_job *j = &box->jobs[i];
        size_t url_len;
        lua_rawgeti(L, 2, (int)(i + 1));
        int item = lua_gettop(L);
        if (lua_type(L, item) != LUA_TTABLE)
            luaL_argerror(L, 2, lua_pushfstring(L, "list[%d]: {url, body} expected, got %s",
                                                (int)(i + 1), luaL_typename(L, item)));
        j->url = item_str(L, item, 1, i + 1, &url_len);
        if (strlen(j->url) != url_len)
            luaL_argerror(L, 2, lua_pushfstring(L, "list[%d][1]: url contains a NUL byte", (int)(i + 1)));
        j->body = item_str(L, item, 2, i + 1, &j->body_len);
        int ty = compat_getfield(L, item, "fresh_connect");
        if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
            luaL_argerror(L, 2, lua_pushfstring(L, "list[%d].fresh_connect: boolean expected",
                                                (int)(i + 1)));
        j->fresh_connect = ty == LUA_TNIL ? so.fresh_connect : lua_toboolean(L, -1);
        lua_pop(L, 1);
        j->timeout_ms = item_ms(L, item, "timeout", i + 1);
        j->connect_timeout_ms = item_ms(L, item, "connect_timeout", i + 1);
        lua_pop(L, 1);
    }

    if (pool == NULL) {
        for (size_t i = 0; i < n; i++) {
            box->jobs[i].res.kind = WDT_HTTP_NETWORK;
            box->jobs[i].res.sent = 0;
            strcpy(box->jobs[i].res.message, "cannot create the libcurl handles (out of memory?)");
        }
    } else {
        /* the url and body strings stay anchored by `list` (argument 2) during the run */
        wdt_http_pool_run(pool, box->jobs, n, (size_t)conc, so.timeout_ms, so.connect_timeout_ms);
    }

    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        wdt_http_job *j = &box->jobs[i];
        if (j->res.kind == WDT_HTTP_OK) {
            lua_createtable(L, 0, 3);
            lua_pushinteger(L, (lua_Integer)j->res.status);
            lua_setfield(L, -2, "status");
            lua_pushlstring(L, j->answer.data ? j->answer.data : "", j->answer.len);
            lua_setfield(L, -2, "body");
            if (j->date[0]) {
                lua_pushstring(L, j->date);
                lua_setfield(L, -2, "date");
            }
            wdt_buf_free(&j->answer);   /* as we go: the peak is one copy of each answer */
        } else {
            lua_createtable(L, 0, 3);
            lua_pushstring(L, wdt_core_kind_name(j->res.kind));
            lua_setfield(L, -2, "kind");
            lua_pushstring(L, j->res.message);
            lua_setfield(L, -2, "message");
            lua_pushboolean(L, j->res.sent);
            lua_setfield(L, -2, "sent");
        }
        lua_rawseti(L, -2, (int)(i + 1));
    }
    return 1;
}
