/* libFuzzer target: wdt_json_encode of values generated from the input bytes, with a
 * decode round trip.
 * The input is read as a small program that builds a Lua value (integers, floats of any
 * bit pattern, strings of any bytes, booleans, null, arrays, objects, empty tables, and
 * tables that are neither arrays nor objects). The generator knows which values JSON
 * cannot carry (NaN, infinities, invalid UTF-8, sparse or mixed tables). Promises:
 *   - encoding fails if and only if the value holds such a thing;
 *   - the output decodes, and decodes to a value equal to the original (integers exact,
 *     floats bit for bit, strings byte for byte, empty arrays stay arrays);
 *   - encoding the same value twice gives the same bytes. */
#include <math.h>

#include "fuzz_lua.h"
#include "wdt_buf.h"
#include "wdt_json.h"

#define BAD 1
#define MAX_DEPTH 24

typedef struct rd { const uint8_t *p, *end; } rd;

static int take(rd *r) { return r->p < r->end ? *r->p++ : -1; }

static uint64_t take64(rd *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        int c = take(r);
        v = (v << 8) | (uint64_t)(c < 0 ? 0 : c);
    }
    return v;
}

/* An independent UTF-8 check (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        uint32_t cp;
        int k;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
        else return 0;
        if (i + (size_t)k >= n) return 0;              /* truncated */
        for (int j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000)) return 0;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += (size_t)k + 1;
    }
    return 1;
}

/* Push a string made of the next bytes; returns BAD when it is not valid UTF-8. */
static int gen_string(lua_State *L, rd *r, int ascii)
{
    int n = take(r);
    n = n < 0 ? 0 : n % 48;
    size_t avail = (size_t)(r->end - r->p);
    if ((size_t)n > avail)
        n = (int)avail;
    unsigned char buf[48];
    memcpy(buf, r->p, (size_t)n);
    r->p += n;
    if (ascii)
        for (int i = 0; i < n; i++)
            buf[i] &= 0x7F;
    lua_pushlstring(L, (const char *)buf, (size_t)n);
    return utf8_ok(buf, (size_t)n) ? 0 : BAD;
}

static int gen(lua_State *L, rd *r, int depth);

static int gen_object(lua_State *L, rd *r, int depth, int n)
{
    int flags = 0;
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        int kf = gen_string(L, r, take(r) & 1);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) != LUA_TNIL) {       /* duplicate key: skip */
            lua_pop(L, 2);
            continue;
        }
        lua_pop(L, 1);
        int vf = gen(L, r, depth + 1);
        lua_rawset(L, -3);
        flags |= kf | vf;
    }
    return flags;
}

static int gen(lua_State *L, rd *r, int depth)
{
    int op = take(r);
    luaL_checkstack(L, 8, "fuzz");
    if (op < 0 || depth > MAX_DEPTH) {
        lua_pushinteger(L, depth);
        return 0;
    }
    switch (op % 14) {
    case 0:
        lua_pushinteger(L, (lua_Integer)take64(r));
        return 0;
    case 1: {                                       /* any bit pattern */
        uint64_t bits = take64(r);
        double d;
        memcpy(&d, &bits, sizeof d);
        lua_pushnumber(L, d);
        return isfinite(d) ? 0 : BAD;
    }
    case 2: {                                       /* short decimals, e.g. 1.2, -0.001 */
        int a = take(r), b = take(r);
        double d = (double)(int16_t)((a < 0 ? 0 : a) << 8 | (b < 0 ? 0 : b)) / pow(10, (a & 7));
        lua_pushnumber(L, d);
        return 0;
    }
    case 3:                                          /* integral floats, -0.0 */
        lua_pushnumber(L, (double)(int8_t)take(r));
        if (op & 0x80) { lua_pop(L, 1); lua_pushnumber(L, -0.0); }
        return 0;
    case 4:
        return gen_string(L, r, 0);
    case 5:
        return gen_string(L, r, 1);
    case 6:
        lua_pushboolean(L, op & 0x40);
        return 0;
    case 7:
        lua_pushlightuserdata(L, NULL);
        return 0;
    case 8: {                                        /* array of 1..8 */
        int n = take(r);
        n = (n < 0 ? 0 : n % 8) + 1;
        int flags = 0;
        lua_createtable(L, n, 0);
        for (int i = 1; i <= n; i++) {
            flags |= gen(L, r, depth + 1);
            lua_rawseti(L, -2, i);
        }
        if (op & 0x80) {                             /* marked as well */
            wdt_json_push_array_mt(L);
            lua_setmetatable(L, -2);
        }
        return flags;
    }
    case 9: {
        int n = take(r);
        return gen_object(L, r, depth, (n < 0 ? 0 : n % 6) + 1);
    }
    case 10:                                         /* empty array */
        lua_newtable(L);
        wdt_json_push_array_mt(L);
        lua_setmetatable(L, -2);
        return 0;
    case 11:                                         /* empty object */
        lua_newtable(L);
        return 0;
    case 12: {                                       /* sparse: {1, nil, 3} */
        lua_newtable(L);
        gen(L, r, depth + 1);
        lua_rawseti(L, -2, 1);
        gen(L, r, depth + 1);
        lua_rawseti(L, -2, 3);
        return BAD;
    }
    default: {                                       /* mixed: {x, k = y} */
        lua_newtable(L);
        gen(L, r, depth + 1);
        lua_rawseti(L, -2, 1);
        gen(L, r, depth + 1);
        lua_setfield(L, -2, "k");
        return BAD;
    }
    }
}

static int is_array_mt(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    wdt_json_push_array_mt(L);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* Deep equality of the values at a (original) and b (decoded). */
static int same(lua_State *L, int a, int b, int depth)
{
    a = lua_absindex(L, a);
    b = lua_absindex(L, b);
    luaL_checkstack(L, 6, "fuzz");
    int ta = lua_type(L, a), tb = lua_type(L, b);
    if (ta != tb)
        return 0;
    switch (ta) {
    case LUA_TNUMBER:
        if (lua_isinteger(L, a) != lua_isinteger(L, b))
            return 0;
        if (lua_isinteger(L, a))
            return lua_tointeger(L, a) == lua_tointeger(L, b);
        {
            double x = lua_tonumber(L, a), y = lua_tonumber(L, b);
            return memcmp(&x, &y, sizeof x) == 0;
        }
    case LUA_TSTRING: {
        size_t la, lb;
        const char *sa = lua_tolstring(L, a, &la), *sb = lua_tolstring(L, b, &lb);
        return la == lb && memcmp(sa, sb, la) == 0;
    }
    case LUA_TBOOLEAN:
        return lua_toboolean(L, a) == lua_toboolean(L, b);
    case LUA_TLIGHTUSERDATA:
        return lua_touserdata(L, a) == lua_touserdata(L, b);
    case LUA_TTABLE: {
        size_t na = 0, nb = 0;
        lua_pushnil(L);
        while (lua_next(L, a)) {
            na++;
            lua_pushvalue(L, -2);
            lua_rawget(L, b);
            int ok = same(L, -2, -1, depth + 1);
            lua_pop(L, 2);
            if (!ok) {
                lua_pop(L, 1);
                return 0;
            }
        }
        lua_pushnil(L);
        while (lua_next(L, b)) {
            nb++;
            lua_pop(L, 1);
        }
        if (na != nb)
            return 0;
        if (na == 0)                                 /* [] stays [], {} stays {} */
            return is_array_mt(L, a) == is_array_mt(L, b);
        return 1;
    }
    default:
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    rd r = { data, data + size };
    char err[256];
    int top = lua_gettop(L);
    int flags = gen(L, &r, 0);
    int v = lua_gettop(L);
    wdt_buf a, b;
    wdt_buf_init(&a);
    wdt_buf_init(&b);

    int rc = wdt_json_encode(L, v, "value", &a, err, sizeof err);
    FUZZ_CHECK(lua_gettop(L) == v, "encode changed the stack");
    if (flags & BAD) {
        FUZZ_CHECK(rc != 0, "encoded a value JSON cannot carry:\n%.*s", (int)a.len, a.data);
        FUZZ_CHECK(strncmp(err, "value", 5) == 0, "the message names no path: %s", err);
        FUZZ_CHECK(a.len == 0, "output left after a failure");
    } else {
        FUZZ_CHECK(rc == 0, "could not encode a valid value: %s", err);
        rc = wdt_json_encode(L, v, "value", &b, err, sizeof err);
        FUZZ_CHECK(rc == 0 && a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
                   "two encodings differ");
        rc = wdt_json_decode(L, a.data, a.len, err, sizeof err);
        FUZZ_CHECK(rc == 0, "the output does not decode: %s\n%.*s", err, (int)a.len, a.data);
        FUZZ_CHECK(same(L, v, -1, 0), "round trip changed the value:\n%.*s", (int)a.len, a.data);
    }
    wdt_buf_free(&a);
    wdt_buf_free(&b);
    lua_settop(L, top);
    return 0;
}
