/* libFuzzer target: the push's one-pass checker and writer (core.push_checker,
 * src/core/wdt_core_push.c) on records decoded from the input (JSON, any shape).
 * Promises, for a field list with every kind:
 *   - neither `encode` nor `check` raises or crashes, whatever the record holds;
 *   - when `encode` writes a record, `check` finds nothing wrong with it (the C pass never
 *     accepts what the checker refuses), and the text is JSON that decodes to an object
 *     with the record's keys but `omit`, plus the overlay's keys the record lacks. */
#include "fuzz_lua.h"
#include "wdt_buf.h"
#include "wdt_json.h"
#include "wdt_core_push.h"

static int check_ref = LUA_NOREF, encode_ref = LUA_NOREF;

static const char *const LIST =
    "return { { 's', 'string', req = true, max = 5 }, { 'i', 'int', values = { [0] = true, [2] = true, [90] = true } },"
    " { 'd', 'decimal' }, { 'b', 'bool' }, { 't', 'time', req = true }, { 'n', 'time', null_ok = true },"
    " { 'x', 'int' }, { 'w', 'other' } }";

static void setup(lua_State *L)
{
    lua_newtable(L);
    wdt_core_open_push(L);
    lua_getfield(L, -1, "push_checker");
    FUZZ_CHECK(luaL_dostring(L, LIST) == LUA_OK, "the list: %s", lua_tostring(L, -1));
    FUZZ_CHECK(lua_pcall(L, 1, 2, 0) == LUA_OK, "push_checker: %s", lua_tostring(L, -1));
    encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
}

static int count_keys(lua_State *L, int idx)
{
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        lua_pop(L, 1);
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    char err[256];
    if (encode_ref == LUA_NOREF)
        setup(L);
    int top = lua_gettop(L);
    if (wdt_json_decode(L, (const char *)data, size, err, sizeof err) != 0)
        return 0;
    if (!lua_istable(L, -1) || lua_getmetatable(L, -1)) {
        lua_settop(L, top);
        return 0;
    }
    int rec = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, encode_ref);
    lua_pushvalue(L, rec);
    lua_pushliteral(L, "omit");
    lua_pushliteral(L, "d");
    lua_pushnumber(L, 1.5);
    lua_pushboolean(L, 0);                      /* a pair left out */
    lua_pushinteger(L, 7);
    lua_pushliteral(L, "added");
    lua_pushliteral(L, "yes");
    FUZZ_CHECK(lua_pcall(L, 8, 1, 0) == LUA_OK, "encode raised: %s", lua_tostring(L, -1));
    int raw = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
    lua_pushvalue(L, rec);
    lua_pushinteger(L, 1);
    FUZZ_CHECK(lua_pcall(L, 2, 3, 0) == LUA_OK, "check raised: %s", lua_tostring(L, -1));
    int found = !lua_isnil(L, -3);
    lua_pop(L, 3);
    if (!lua_isnil(L, raw)) {
        FUZZ_CHECK(!found, "encode wrote a record that check refuses");
        lua_rawgeti(L, raw, 1);
        size_t n;
        const char *text = lua_tolstring(L, -1, &n);
        FUZZ_CHECK(text != NULL, "raw without its text");
        FUZZ_CHECK(wdt_json_decode(L, text, n, err, sizeof err) == 0, "the text does not decode: %s", err);
        int want = count_keys(L, rec);
        lua_getfield(L, rec, "omit");
        want -= !lua_isnil(L, -1);
        lua_getfield(L, rec, "d");
        want += lua_isnil(L, -1);
        lua_getfield(L, rec, "added");
        want += lua_isnil(L, -1);
        lua_pop(L, 3);
        int got = lua_istable(L, -1) ? count_keys(L, lua_gettop(L)) : -1;
        FUZZ_CHECK(got == want || (got == 0 && want == 0), "%d keys written, %d expected", got, want);
    }
    lua_settop(L, top);
    return 0;
}
