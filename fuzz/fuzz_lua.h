/* Shared by the libFuzzer targets: one Lua state for the whole run, contract checks.
 * The targets link the C core's sources with liblua5.4 (a fuzz build only; the module
 * itself never links Lua). */
#ifndef WDT_FUZZ_LUA_H
#define WDT_FUZZ_LUA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* A broken promise of the code under test: report and abort (libFuzzer saves the input). */
#define FUZZ_CHECK(cond, ...) do { if (!(cond)) { \
        fprintf(stderr, "fuzz check failed: %s (%s:%d): ", #cond, __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } } while (0)

static lua_State *fuzz_L;
static unsigned long fuzz_runs;

static lua_State *fuzz_state(void)
{
    if (fuzz_L == NULL) {
        fuzz_L = luaL_newstate();
        FUZZ_CHECK(fuzz_L != NULL, "luaL_newstate");
        luaL_openlibs(fuzz_L);
    }
    /* A full collection before each input: what the previous one allocated is freed, so
     * the heap does not grow and libFuzzer's leak check (mallocs != frees in one run)
     * does not fire on mere Lua garbage. */
    lua_gc(fuzz_L, LUA_GCCOLLECT, 0);
    fuzz_runs++;
    return fuzz_L;
}

#endif
