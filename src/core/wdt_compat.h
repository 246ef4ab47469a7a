/* Lua 5.1 / LuaJIT 2.1 / Lua 5.4 shims for the C core.
 *
 * Every shim has a `compat_` name and is `static inline`, so nothing here is exported and
 * nothing clashes with what the host happens to provide: LuaJIT 2.1 already exports
 * luaL_setfuncs, luaL_testudata, luaL_setmetatable and lua_tointegerx, plain Lua 5.1 does
 * not, and a module that defined its own `luaL_setfuncs` would collide with LuaJIT's (or
 * silently bind to it). Only wdt_core.c and wdt_batch.c (through wdt_batch.h) include it.
 */
#ifndef WDT_COMPAT_H
#define WDT_COMPAT_H

#include <stddef.h>
#include <math.h>

#include "lua.h"
#include "lauxlib.h"

/* Symbol visibility: the build uses -fvisibility=hidden; the one entry point says so. */
#if defined(__GNUC__) || defined(__clang__)
#  define COMPAT_EXPORT __attribute__((visibility("default")))
#  define COMPAT_HIDDEN __attribute__((visibility("hidden")))
#else
#  define COMPAT_EXPORT
#  define COMPAT_HIDDEN
#endif

#ifndef LUA_OK
#  define LUA_OK 0
#endif

#if LUA_VERSION_NUM >= 503
#  define COMPAT_HAS_INTEGERS 1
#else
#  define COMPAT_HAS_INTEGERS 0
#endif

/* ---- stack and table helpers ------------------------------------------------------ */

static inline int compat_absindex(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 502
    return lua_absindex(L, idx);
#else
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
#endif
}

/* Raw length (no __len). */
static inline size_t compat_rawlen(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 502
    return (size_t)lua_rawlen(L, idx);
#else
    return (size_t)lua_objlen(L, idx);
#endif
}

/* lua_getfield that returns the type of the pushed value, as in 5.3+. */
static inline int compat_getfield(lua_State *L, int idx, const char *k)
{
#if LUA_VERSION_NUM >= 503
    return lua_getfield(L, idx, k);
#else
    lua_getfield(L, idx, k);
    return lua_type(L, -1);
#endif
}

/* Registry (or any table) slots keyed by a C address. */
static inline int compat_rawgetp(lua_State *L, int idx, const void *p)
{
#if LUA_VERSION_NUM >= 502
#  if LUA_VERSION_NUM >= 503
    return lua_rawgetp(L, idx, p);
#  else
    lua_rawgetp(L, idx, p);
    return lua_type(L, -1);
#  endif
#else
    idx = compat_absindex(L, idx);
    lua_pushlightuserdata(L, (void *)p);
    lua_rawget(L, idx);
    return lua_type(L, -1);
#endif
}

/* Pops the value on top into t[p]. */
static inline void compat_rawsetp(lua_State *L, int idx, const void *p)
{
#if LUA_VERSION_NUM >= 502
    lua_rawsetp(L, idx, p);
#else
    idx = compat_absindex(L, idx);
    lua_pushlightuserdata(L, (void *)p);
    lua_insert(L, -2);
    lua_rawset(L, idx);
#endif
}

/* ---- registration ----------------------------------------------------------------- */

/* Set the functions of `l` into the table below `nup` upvalues on the top of the stack,
 * sharing those upvalues; pops the upvalues. Written out so 5.1 and LuaJIT behave alike. */
static inline void compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        for (int i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        if (l->func)
            lua_pushcclosure(L, l->func, nup);
        else
            lua_pushboolean(L, 0);          /* placeholder, as in 5.2+ */
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}

static inline void compat_newlib(lua_State *L, const luaL_Reg *l)
{
    int n = 0;
    while (l[n].name)
        n++;
    lua_createtable(L, 0, n);
    compat_setfuncs(L, l, 0);
}

/* ---- userdata --------------------------------------------------------------------- */

static inline void *compat_newuserdata(lua_State *L, size_t size)
{
#if LUA_VERSION_NUM >= 504
    return lua_newuserdatauv(L, size, 0);
#else
    return lua_newuserdata(L, size);
#endif
}

static inline void compat_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}

/* The userdata at `ud` if its metatable is `tname`'s, else NULL (never raises). */
static inline void *compat_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_touserdata(L, ud);
    if (p == NULL || !lua_getmetatable(L, ud))
        return NULL;
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}

/* ---- numbers ---------------------------------------------------------------------- */

/* True when the value is a number with the integer subtype (always false before 5.3). */
static inline int compat_isinteger(lua_State *L, int idx)
{
#if COMPAT_HAS_INTEGERS
    return lua_isinteger(L, idx);
#else
    (void)L; (void)idx;
    return 0;
#endif
}

/* An exact integer out of a number value: integer subtype on 5.3+, or an integral float
 * within +-2^53 everywhere. Strings are not converted. 1 on success, 0 otherwise. */
static inline int compat_tointeger_strict(lua_State *L, int idx, lua_Integer *out)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
#if COMPAT_HAS_INTEGERS
    if (lua_isinteger(L, idx)) {
        *out = lua_tointeger(L, idx);
        return 1;
    }
#endif
    {
        lua_Number d = lua_tonumber(L, idx);
        if (d != d || d < -9007199254740992.0 || d > 9007199254740992.0 || floor(d) != d)
            return 0;
        *out = (lua_Integer)d;
        return 1;
    }
}

#endif
