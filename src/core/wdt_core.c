/* luaopen_wdt_core: the module table. The client userdata is wdt_core_client.c, answer
 * parsing wdt_core_parse.c, the file bindings wdt_core_fs.c, the push's checker
 * wdt_core_push.c; here the stateless bindings (sign, encode, decode, unix_time, monotonic, sleep)
 * and the registration of the rest.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wdt_compat.h"
#include "wdt_buf.h"
#include "wdt_json.h"
#include "wdt_sign.h"
#include "wdt_http.h"
#include "wdt_core_client.h"
#include "wdt_core_parse.h"
#include "wdt_core_fs.h"
#include "wdt_core_push.h"

#define BUFBOX_MT   "wdt.core.buf"
/* WDT_VERSION: project(... VERSION) in CMakeLists.txt, the one source of the version. */
#ifndef WDT_VERSION
#  error "WDT_VERSION is defined by the build (CMakeLists.txt's project version)"
#endif

static const char *check_str(lua_State *L, int arg, const char *name, size_t *len)
{
    if (lua_type(L, arg) != LUA_TSTRING)
        luaL_argerror(L, arg, lua_pushfstring(L, "%s: string expected, got %s", name,
                                              luaL_typename(L, arg)));
    return lua_tolstring(L, arg, len);
}

/* A box for a temporary buffer: freed by __gc even when an error unwinds the stack. */
static int bufbox_gc(lua_State *L)
{
    wdt_buf *b = (wdt_buf *)luaL_checkudata(L, 1, BUFBOX_MT);
    wdt_buf_free(b);
    return 0;
}

static wdt_buf *push_bufbox(lua_State *L)
{
    wdt_buf *b = (wdt_buf *)compat_newuserdata(L, sizeof *b);
    wdt_buf_init(b);
    compat_setmetatable(L, BUFBOX_MT);
    return b;
}

/* ---- core.sign, encode, decode, time ----------------------------------------------------- */

/* core.sign(secret, params) -> 32 hex digits. params: string keys, string/number values. */
static int l_sign(lua_State *L)
{
    size_t secret_len;
    const char *secret = check_str(L, 1, "secret", &secret_len);
    size_t n = 0, i = 0;
    char hex[33];

    if (lua_type(L, 2) != LUA_TTABLE)
        luaL_argerror(L, 2, lua_pushfstring(L, "params: table expected, got %s", luaL_typename(L, 2)));
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        n++;
        lua_pop(L, 1);
    }
    wdt_param *p = (wdt_param *)compat_newuserdata(L, (n ? n : 1) * sizeof *p);
    lua_createtable(L, (int)n, 0);       /* anchors the strings made from numbers */
    int anchor = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_argerror(L, 2, lua_pushfstring(L, "params: keys must be strings, got a %s key",
                                                luaL_typename(L, -2)));
        if (i >= n)
            luaL_argerror(L, 2, "params: changed while being read");
        p[i].key = lua_tolstring(L, -2, &p[i].key_len);
        int ty = lua_type(L, -1);
        if (ty == LUA_TNUMBER) {
            lua_Integer iv;
            if (compat_tointeger_strict(L, -1, &iv)) {
                snprintf(hex, sizeof hex, "%lld", (long long)iv);
                lua_pushstring(L, hex);
            } else {
                lua_pushvalue(L, -1);
                lua_tostring(L, -1);
            }
            p[i].val = lua_tolstring(L, -1, &p[i].val_len);
            lua_rawseti(L, anchor, (int)i + 1);
        } else if (ty == LUA_TSTRING) {
            p[i].val = lua_tolstring(L, -1, &p[i].val_len);
        } else {
            luaL_argerror(L, 2, lua_pushfstring(L, "params.%s: string or number expected, got %s",
                                                p[i].key, luaL_typename(L, -1)));
        }
        i++;
        lua_pop(L, 1);
    }
    if (wdt_sign(secret, secret_len, p, i, hex) != 0)
        return luaL_error(L, "MD5 is not available from OpenSSL");
    lua_pushlstring(L, hex, 32);
    return 1;
}

static int l_encode(lua_State *L)
{
    char err[256];
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    wdt_buf *b = push_bufbox(L);
    if (wdt_json_encode(L, 1, "value", b, err, sizeof err) != 0) {
        wdt_buf_free(b);
        lua_pushstring(L, err);
        return lua_error(L);
    }
    lua_pushlstring(L, b->data ? b->data : "", b->len);
    wdt_buf_free(b);
    return 1;
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = check_str(L, 1, "s", &len);
    char err[256];
    if (wdt_json_decode(L, s, len, err, sizeof err) != 0) {
        lua_pushstring(L, err);
        return lua_error(L);
    }
    return 1;
}

static int l_unix_time(lua_State *L)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
    return 1;
}

/* core.monotonic(): seconds on a clock that never steps (CLOCK_MONOTONIC, shared by the
 * processes of one host): for intervals (lock renewal, rate windows, waits), which must not
 * follow the wall clock when it is set back or forward. */
static int l_monotonic(lua_State *L)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    lua_pushnumber(L, (lua_Number)now.tv_sec + (lua_Number)now.tv_nsec / 1e9);
    return 1;
}

/* core.sleep(seconds): blocks the thread; for the retry back-off outside nginx. */
static int l_sleep(lua_State *L)
{
    double s = (double)luaL_checknumber(L, 1);
    struct timespec req, rem;
    if (!(s > 0))
        return 0;
    if (s > 86400.0)
        s = 86400.0;
    req.tv_sec = (time_t)s;
    req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
    return 0;
}

/* ---- the module ---------------------------------------------------------------------------- */

static const luaL_Reg bufbox_meta[] = {
    { "__gc", bufbox_gc },
    { NULL, NULL }
};

static const luaL_Reg core_funcs[] = {
    { "parse",      wdt_core_parse },
    { "sign",       l_sign },
    { "encode",     l_encode },
    { "decode",     l_decode },
    { "unix_time",  l_unix_time },
    { "monotonic",  l_monotonic },
    { "sleep",      l_sleep },
    { NULL, NULL }
};

COMPAT_EXPORT int luaopen_wdt_core(lua_State *L);

COMPAT_EXPORT int luaopen_wdt_core(lua_State *L)
{
    static int curl_ready = 0;
    if (!curl_ready) {
        /* thread-safe in libcurl >= 7.84; hosts load modules from one thread anyway */
        if (wdt_http_global_init() != 0)
            return luaL_error(L, "wdt.core: curl_global_init failed");
        curl_ready = 1;
    }
    compat_register_mt(L, BUFBOX_MT, bufbox_meta, NULL);

    compat_newlib(L, core_funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    wdt_json_push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
    lua_pushliteral(L, WDT_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "curl_version");
    wdt_core_open_client(L);
    wdt_core_open_fs(L);
    wdt_core_open_push(L);
    wdt_core_open_push_batch(L);
    return 1;
}
