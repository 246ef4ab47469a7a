/* The file bindings of wdt.core, for durable state (wdt.store) and run locks:
 *   core.write_atomic(path, bytes[, exclusive]) -> true | nil, message; exclusive: false,
 *                                   "exists" when path exists already (nothing written)
 *   core.lock(path)                 -> lock | false, holder_pid | nil, message
 *   lock:release()                  idempotent; also __gc (and __close on 5.4)
 *   core.private_dir(path)          -> true | nil, message
 *   core.stat(path)                 -> {mode=, uid=, dir=, regular=} | nil, message
 *   core.sync_output(fd)            -> true (a regular file, fsync'd) | false, "a pipe" (or
 *                                      "a terminal", ...: nothing to sync) | nil, message
 *   core.ignore_sigpipe()           a write to a closed pipe fails with EPIPE, not a signal
 *   core.euid()                     -> the effective user id
 * The mechanics, and why they are safe against crashes, are in wdt_fs.h. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "wdt_compat.h"
#include "wdt_fs.h"
#include "wdt_core_fs.h"

#define LOCK_MT "wdt.core.lock"

typedef struct { int fd; } fs_lock;

/* true, or nil and the message, for an operation that answered rc (0 = done) */
static int push_outcome(lua_State *L, int rc, const char *err)
{
    if (rc != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_write_atomic(lua_State *L)
{
    size_t len;
    const char *path = luaL_checkstring(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    int exclusive = lua_toboolean(L, 3), rc;
    char err[512];
    rc = wdt_fs_write_new_or_atomic(path, data, len, exclusive, err, sizeof err);
    if (rc == 1) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "exists");
        return 2;
    }
    return push_outcome(L, rc, err);
}

static int l_sync_output(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    const char *kind;
    int rc = wdt_fs_sync_fd(fd, &kind);
    if (rc < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot sync the output (%s): %s", kind, strerror(errno));
        return 2;
    }
    lua_pushboolean(L, rc == 0);
    lua_pushstring(L, kind);
    return 2;
}

static int l_ignore_sigpipe(lua_State *L)
{
    (void)L;
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int l_lock(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char err[512], holder[64];
    int fd = -1, rc;
    fs_lock *lk = (fs_lock *)compat_newuserdata(L, sizeof *lk);   /* before: no leak on OOM */
    lk->fd = -1;
    compat_setmetatable(L, LOCK_MT);
    rc = wdt_fs_lock(path, &fd, holder, sizeof holder, err, sizeof err);
    if (rc == 0) {
        lk->fd = fd;
        return 1;
    }
    if (rc == 1) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, holder);
        return 2;
    }
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

static int l_lock_release(lua_State *L)
{
    fs_lock *lk = (fs_lock *)luaL_checkudata(L, 1, LOCK_MT);
    wdt_fs_unlock(lk->fd);
    lk->fd = -1;
    return 0;
}

static int l_lock_held(lua_State *L)
{
    fs_lock *lk = (fs_lock *)luaL_checkudata(L, 1, LOCK_MT);
    lua_pushboolean(L, lk->fd >= 0);
    return 1;
}

static int l_private_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char err[512];
    return push_outcome(L, wdt_fs_private_dir(path, err, sizeof err), err);
}

static int l_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    unsigned mode;
    long uid;
    int kind;
    if (wdt_fs_stat(path, &mode, &uid, &kind) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(errno));
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)mode);
    lua_setfield(L, -2, "mode");
    lua_pushinteger(L, (lua_Integer)uid);
    lua_setfield(L, -2, "uid");
    lua_pushboolean(L, kind == 2);
    lua_setfield(L, -2, "dir");
    lua_pushboolean(L, kind == 0);
    lua_setfield(L, -2, "regular");
    return 1;
}

static int l_euid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)geteuid());
    return 1;
}

static const luaL_Reg lock_methods[] = {
    { "release", l_lock_release },
    { "held",    l_lock_held },
    { NULL, NULL }
};

static const luaL_Reg lock_meta[] = {
    { "__gc",    l_lock_release },
#if LUA_VERSION_NUM >= 504
    { "__close", l_lock_release },
#endif
    { NULL, NULL }
};

static const luaL_Reg fs_funcs[] = {
    { "write_atomic", l_write_atomic },
    { "lock",         l_lock },
    { "private_dir",  l_private_dir },
    { "stat",         l_stat },
    { "euid",         l_euid },
    { "sync_output",  l_sync_output },
    { "ignore_sigpipe", l_ignore_sigpipe },
    { NULL, NULL }
};

void wdt_core_open_fs(lua_State *L)
{
    compat_register_mt(L, LOCK_MT, lock_meta, lock_methods);
    compat_setfuncs(L, fs_funcs, 0);
}
