/* libFuzzer target: answer parsing, through the real binding (`core.parse` of
 * wdt_core_parse.c, which also runs the HTML snippet extraction for HTTP errors).
 * The first input byte picks the HTTP status (mostly 200), the rest is the body.
 * Promises: core.parse never raises on a number and a string; it answers either a table
 * whose integer `status` is exactly 0, or nil, err with err.kind http (status not 2xx),
 * decode (not a JSON object with an integer status >= 0) or api (status > 0, err.status
 * set, err.message a non-empty string, err.response the answer); a message never quotes a
 * body that mentions the sign, salt or secret. */
#include "fuzz_lua.h"

int luaopen_wdt_core(lua_State *L);

static int parse_ref = LUA_NOREF;

static const int statuses[] = { 200, 200, 200, 200, 201, 204, 299, 301, 400, 404, 429,
                                500, 502, 503, 504, 0, 100, 199, 300, 600, -1, 999 };

/* The oracle's own matcher, deliberately not wdt_core_parse.c's has_ci (a bug there must
 * not hide here): fold a copy of the text to lower case through an explicit A-Z test, then
 * compare each window whole with memcmp. `word` is lower case. */
static int mentions(const char *text, size_t n, const char *word)
{
    size_t m = strlen(word);
    if (m == 0 || m > n)
        return 0;
    char *folded = malloc(n);
    FUZZ_CHECK(folded != NULL, "malloc");
    for (size_t i = 0; i < n; i++)
        folded[i] = (text[i] >= 'A' && text[i] <= 'Z') ? (char)(text[i] - 'A' + 'a') : text[i];
    int found = 0;                     /* windows from the end: not has_ci's order either */
    for (size_t at = n - m + 1; at-- > 0 && !found;)
        found = memcmp(folded + at, word, m) == 0;
    free(folded);
    return found;
}

/* Does the text mention the request's credentials (what an echoing page would quote)? */
static int mentions_credentials(const char *text, size_t n)
{
    return mentions(text, n, "sign") || mentions(text, n, "salt") || mentions(text, n, "secret");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    if (parse_ref == LUA_NOREF) {
        luaL_requiref(L, "wdt.core", luaopen_wdt_core, 0);
        lua_getfield(L, -1, "parse");
        parse_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_pop(L, 1);
    }
    if (size == 0)
        return 0;
    int http = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    int top = lua_gettop(L);

    lua_rawgeti(L, LUA_REGISTRYINDEX, parse_ref);
    lua_pushinteger(L, http);
    lua_pushlstring(L, body, len);
    int rc = lua_pcall(L, 2, LUA_MULTRET, 0);
    FUZZ_CHECK(rc == LUA_OK, "core.parse raised: %s", lua_tostring(L, -1));
    int n = lua_gettop(L) - top;
    int base = top + 1;
    if (!lua_isnil(L, base)) {
        FUZZ_CHECK(n == 1 && lua_istable(L, base), "success is one table");
        FUZZ_CHECK(http >= 200 && http <= 299, "success on HTTP %d", http);
        lua_getfield(L, base, "status");
        FUZZ_CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 0, "success status");
    } else {
        FUZZ_CHECK(n == 2 && lua_istable(L, base + 1), "failure is nil, err");
        int err = base + 1;
        lua_getfield(L, err, "kind");
        lua_getfield(L, err, "message");
        lua_getfield(L, err, "status");
        lua_getfield(L, err, "response");
        const char *kind = lua_tostring(L, -4);
        size_t mlen = 0;
        const char *msg = lua_tolstring(L, -3, &mlen);
        FUZZ_CHECK(kind && msg && mlen > 0, "kind and message");
        if (strcmp(kind, "http") == 0) {
            FUZZ_CHECK(http < 200 || http > 299, "http kind on HTTP %d", http);
            if (mentions_credentials(body, len))
                FUZZ_CHECK(!mentions_credentials(msg, mlen), "message quotes: %s", msg);
        } else if (strcmp(kind, "decode") == 0) {
            FUZZ_CHECK(lua_isnil(L, -2), "decode with an api status");
        } else {
            FUZZ_CHECK(strcmp(kind, "api") == 0, "unknown kind %s", kind);
            FUZZ_CHECK(lua_isinteger(L, -2) && lua_tointeger(L, -2) > 0, "api status");
            FUZZ_CHECK(lua_istable(L, -1), "api response");
        }
    }
    lua_settop(L, top);
    return 0;
}
