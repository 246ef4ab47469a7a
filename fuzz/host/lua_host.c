/* A minimal Lua 5.4 interpreter for the sanitizer pass of `make sanitize`.
 *
 * Built with -fsanitize=address,undefined so that the ASan runtime is part of this one
 * process and not LD_PRELOADed: a preloaded runtime would also be inherited by every
 * program the specs start (sh, mktemp, nginx for the emulator), and LeakSanitizer would
 * fail those on their own harmless exit-time "leaks".
 *
 *   lua-asan SCRIPT [ARGS...]     runs SCRIPT with the global `arg` as lua.c sets it
 *
 * dlclose() is a no-op here: Lua unloads C modules when the state is closed, and a leak
 * in an unloaded module could not be symbolized (and the memory that libcurl and OpenSSL
 * keep for the life of the process would show up as leaked once they are unmapped).
 */
#include <stdio.h>
#include <stdlib.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int dlclose(void *handle);
int dlclose(void *handle)
{
    (void)handle;
    return 0;
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRIPT [ARGS...]\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "%s: cannot create a Lua state\n", argv[0]);
        return 1;
    }
    luaL_openlibs(L);
    lua_createtable(L, argc - 2, 2);            /* arg[-1] = host, arg[0] = script, ... */
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    lua_setglobal(L, "arg");

    lua_pushcfunction(L, traceback);
    int status = luaL_loadfile(L, argv[1]);
    if (status == LUA_OK) {
        luaL_checkstack(L, argc, "too many arguments");
        for (int i = 2; i < argc; i++)
            lua_pushstring(L, argv[i]);
        status = lua_pcall(L, argc - 2, 0, 1);
    }
    if (status != LUA_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_close(L);
    return 0;
}
