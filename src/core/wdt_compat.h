/* Lua 5.1 / LuaJIT 2.1 / Lua 5.4 shims for the C core.
 *
 * Every shim has a `compat_` name and is `static inline`, so nothing here is exported and
 * nothing clashes with what the host happens to provide: LuaJIT 2.1 already exports
 * luaL_setfuncs, luaL_testudata, luaL_setmetatable and lua_tointegerx, plain Lua 5.1 does
 * not, and a module that defined its own `luaL_setfuncs` would collide with LuaJIT's (or
 * silently bind to it). The bindings (wdt_core*.c) include it; the codec has its own few.
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
#else
#  define COMPAT_EXPORT
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

/* Register the metatable `tname` once: the metamethods of `meta`, the functions of `methods`
 * (NULL for none) as __index, and a __metatable field so Lua code cannot swap it. */
static inline void compat_register_mt(lua_State *L, const char *tname, const luaL_Reg *meta,
                                      const luaL_Reg *methods)
{
    if (luaL_newmetatable(L, tname)) {
        compat_setfuncs(L, meta, 0);
        if (methods) {
            compat_newlib(L, methods);
            lua_setfield(L, -2, "__index");
        }
        lua_pushstring(L, tname);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
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

/* ---- numbers ---------------------------------------------------------------------- */

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
