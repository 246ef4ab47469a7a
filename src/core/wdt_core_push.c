/* core.push_checker: the per-field checks of the push (src/wdt/push/validate.lua) and the
 * writing of its records, in C. The Lua side makes one checker per field list of
 * wdt.push.fields, once.
 *
 *   check, encode = core.push_checker(list)
 *     list: { {name, kind, req=, max=, values=, null_ok=}, ... } (up to 64 fields)
 *   encode(rec, omit, k1, v1, k2, v2, ...) -> raw | nil
 *     rec without its key `omit` (a string, or false), plus each pair k = v whose key rec
 *     lacks (a false k: the pair is left out), checked against the list and written as
 *     JSON in one pass over rec: raw is {text} with a metatable the codec writes as it is
 *     (WDT_JSON_RAW_MT, wdt_json.h). nil when the record needs the Lua side: a check fails,
 *     or a value is one this pass does not decide or write (a numeric string, a table,
 *     invalid UTF-8, NaN). rec is never changed, and the text is a snapshot of it.
 *   check(rec, start) -> nil | i, absent, value
 *     the first field from index `start` on that does not pass at once; absent: true when
 *     it is required and missing (nil, or null where null is not allowed). The Lua side
 *     decides such a value and words the reason, so both sides agree by construction.
 * Kinds: "string" (max in characters, counted as the Lua side does), "int" (a number with
 * no fraction, of magnitude under 2^53, in `values` when given), "decimal" (a finite number), "bool", "time"
 * ("YYYY-MM-DD HH:MM:SS" in form); any other kind passes. `values`: integers 0..127.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "wdt_compat.h"
#include "wdt_buf.h"
#include "wdt_json.h"
#include "wdt_push_rules.h"
#include "wdt_core_push.h"

#define SCHEMA_MT "wdt.core.push_schema"
#define INT53 9007199254740992LL    /* 2^53: integers are exact within it (int_value) */

enum { K_OTHER, K_STRING, K_INT, K_DECIMAL, K_BOOL, K_TIME };

typedef struct field_rule {
    unsigned char kind, req, null_ok, has_values;
    unsigned char key_len;      /* of key: the name as JSON and a colon; 0 when it needs escapes */
    char key[44];
    size_t max;                 /* SIZE_MAX: no limit */
    uint64_t values[2];         /* bit v set: v allowed (0..127) */
} field_rule;

#define HASH_SLOTS 128             /* > 2 x the longest list (fields.trade: 50) */

typedef struct push_schema {
    int n;
    const char **names;         /* the field names, anchored by the names upvalue */
    size_t *name_lens;
    uint64_t required;          /* bit i: field i is required (lists of up to 64) */
    int busy;                   /* the encoder's buffer is in use */
    wdt_buf buf;                /* the encoder's buffer, reused */
    unsigned char slot[HASH_SLOTS];   /* field index + 1 by the name's address; 0: none */
    field_rule f[];
} push_schema;

/* Short strings are interned (Lua 5.4 up to 40 bytes, LuaJIT all): a key that is a field
 * name has the name's very bytes, so the address finds it; any other key finds no field
 * or a different address (names are at most 40 bytes, see push_checker). */
static unsigned slot_of(const char *p)
{
    return (unsigned)(((uintptr_t)p >> 3) * 0x9E3779B1u) >> 25;
}

static int field_of(const push_schema *sc, const char *k)
{
    for (unsigned h = slot_of(k), i = 0; i < HASH_SLOTS; i++, h = (h + 1) & (HASH_SLOTS - 1)) {
        int fi = sc->slot[h];
        if (fi == 0)
            return -1;
        if (sc->names[fi - 1] == k)
            return fi - 1;
    }
    return -1;
}

static int in_values(const field_rule *f, lua_Number d)
{
    if (d < 0 || d > 127)
        return 0;
    unsigned v = (unsigned)d;
    return (f->values[v >> 6] >> (v & 63)) & 1;
}

/* 1 when the present, non-null value on top of the stack passes without the Lua side. */
static int value_ok(lua_State *L, const field_rule *f, int t, const char *s, size_t n)
{
    switch (f->kind) {
    case K_STRING:
        return t == LUA_TSTRING && (n <= f->max || wdt_utf8_chars(s, n) <= f->max);
    case K_INT: {
        if (t != LUA_TNUMBER)
            return 0;
#if COMPAT_HAS_INTEGERS
        if (lua_isinteger(L, -1)) {
            lua_Integer k = lua_tointeger(L, -1);
            if (k <= -INT53 || k >= INT53)
                return 0;
            return !f->has_values || (k >= 0 && k <= 127 && in_values(f, (lua_Number)k));
        }
#endif
        lua_Number d = lua_tonumber(L, -1);
        if (!isfinite(d) || d != floor(d) || d <= -(lua_Number)INT53 || d >= (lua_Number)INT53)
            return 0;
        return !f->has_values || in_values(f, d);
    }
    case K_DECIMAL:
        return t == LUA_TNUMBER && isfinite(lua_tonumber(L, -1));
    case K_BOOL:
        return t == LUA_TBOOLEAN;
    case K_TIME:
        return t == LUA_TSTRING && wdt_is_time19(s, n);
    default:
        return 1;
    }
}

static int same_name(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (a == b || memcmp(a, b, alen) == 0);
}

static int l_check(lua_State *L)
{
    const push_schema *sc = (const push_schema *)lua_touserdata(L, lua_upvalueindex(1));
    const int names = lua_upvalueindex(2);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer start = luaL_optinteger(L, 2, 1);
    lua_settop(L, 2);
    luaL_checkstack(L, 8, "push checker");
    for (lua_Integer i = start < 1 ? 1 : start; i <= sc->n; i++) {
        const field_rule *f = &sc->f[i - 1];
        lua_rawgeti(L, names, (int)i);
        lua_rawget(L, 1);
        int t = lua_type(L, -1);
        size_t n = 0;
        const char *s = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        int is_null = t == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL;
        int absent = t == LUA_TNIL || (is_null && !f->null_ok);
        if (absent ? f->req : !is_null && !value_ok(L, f, t, s, n)) {
            lua_pushinteger(L, i);
            lua_pushboolean(L, absent);
            lua_pushvalue(L, -3);
            return 3;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* One field of the record being encoded: its key at -2, its value on top. Checks it when
 * it is a field of the list (marking it seen) and writes it; -1 when it needs the Lua
 * side (it fails a check, or is not a plain JSON scalar). */
static int put_field(lua_State *L, push_schema *sc, int fi, uint64_t *seen, int first)
{
    wdt_buf *b = &sc->buf;
    int t = lua_type(L, -1);
    size_t n = 0;
    const char *s = t == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    const field_rule *f = fi >= 0 ? &sc->f[fi] : NULL;
    if (f) {
        int is_null = t == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL;
        if (is_null && !f->null_ok) {
            if (f->req)
                return -1;
        } else if (!is_null && !value_ok(L, f, t, s, n)) {
            return -1;
        } else {
            *seen |= (uint64_t)1 << fi;
        }
    }
    if (b->cap - b->len < 48 && wdt_buf_reserve(b, 48) != 0)
        return -1;
    if (!first)
        b->data[b->len++] = ',';
    if (f && f->key_len) {
        memcpy(b->data + b->len, f->key, f->key_len);
        b->len += f->key_len;
    } else if (wdt_json_append_scalar(L, -2, b) != 0 || wdt_buf_putc(b, ':') != 0) {
        return -1;
    }
    if (s)
        return wdt_json_put_string(b, s, n);
#if COMPAT_HAS_INTEGERS
    if (t == LUA_TNUMBER && lua_isinteger(L, -1))
        return wdt_json_put_integer(b, (long long)lua_tointeger(L, -1));
#endif
    return wdt_json_append_scalar(L, -1, b);
}

/* The record at 1 without the key at 2 (a string, or false), plus the pairs from 3 on
 * for keys it lacks (a false key: a pair left out), checked and written as JSON text. */
static int encode_record(lua_State *L, push_schema *sc)
{
    const int rec = 1, top = lua_gettop(L);
    size_t omit_len = 0, klen;
    const char *omit = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &omit_len) : NULL;
    uint64_t seen = 0;
    int first = 1;
    sc->buf.len = 0;
    if (wdt_buf_putc(&sc->buf, '{') != 0)
        return -1;
    lua_pushnil(L);
    while (lua_next(L, rec)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return -1;
        const char *k = lua_tolstring(L, -2, &klen);
        if (!(omit && same_name(k, klen, omit, omit_len))) {
            if (put_field(L, sc, field_of(sc, k), &seen, first))
                return -1;
            first = 0;
        }
        lua_pop(L, 1);
    }
    for (int j = 3; j < top; j += 2) {
        if (lua_type(L, j) != LUA_TSTRING)
            continue;
        lua_pushvalue(L, j);
        lua_rawget(L, rec);
        int present = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (present)
            continue;
        lua_pushvalue(L, j);
        lua_pushvalue(L, j + 1);
        if (put_field(L, sc, field_of(sc, lua_tostring(L, j)), &seen, first))
            return -1;
        first = 0;
        lua_pop(L, 2);
    }
    if ((seen & sc->required) != sc->required)
        return -1;
    return wdt_buf_putc(&sc->buf, '}');
}

/* encode(rec, omit, k1, v1, ...) -> raw JSON (a {text} the codec writes as it is) | nil
 * when the record needs the Lua side: a check fails (or is skipped there), a value is not
 * a plain scalar. Never changes rec. */
static int l_encode(lua_State *L)
{
    push_schema *sc = (push_schema *)lua_touserdata(L, lua_upvalueindex(1));
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_gettop(L) < 2)
        lua_settop(L, 2);
    if (sc->busy)
        return 0;
    luaL_checkstack(L, 8, "push encoder");
    sc->busy = 1;
    int rc = encode_record(L, sc);
    sc->busy = 0;
    if (rc != 0)
        return 0;
    lua_createtable(L, 1, 0);
    lua_pushlstring(L, sc->buf.data, sc->buf.len);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_setmetatable(L, -2);
    return 1;
}

static int schema_gc(lua_State *L)
{
    push_schema *sc = (push_schema *)lua_touserdata(L, 1);
    wdt_buf_free(&sc->buf);
    return 0;
}

static const luaL_Reg schema_meta[] = {
    { "__gc", schema_gc },
    { NULL, NULL }
};

static int kind_of(const char *k)
{
    static const char *const kinds[] = { "string", "int", "decimal", "bool", "time" };
    for (int i = 0; i < 5; i++)
        if (strcmp(k, kinds[i]) == 0)
            return K_STRING + i;
    return K_OTHER;
}

/* One spec (on top of the stack) into *f; raises on a spec this checker cannot hold. */
static void read_rule(lua_State *L, int i, field_rule *f)
{
    memset(f, 0, sizeof *f);
    f->max = SIZE_MAX;
    lua_rawgeti(L, -1, 2);
    f->kind = (unsigned char)kind_of(lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "");
    lua_pop(L, 1);
    f->req = (unsigned char)(compat_getfield(L, -1, "req") != LUA_TNIL && lua_toboolean(L, -1));
    f->null_ok = (unsigned char)(compat_getfield(L, -2, "null_ok") != LUA_TNIL && lua_toboolean(L, -1));
    if (compat_getfield(L, -3, "max") == LUA_TNUMBER && lua_tonumber(L, -1) >= 0)
        f->max = (size_t)lua_tonumber(L, -1);
    lua_pop(L, 3);
    if (compat_getfield(L, -1, "values") == LUA_TTABLE) {
        f->has_values = 1;
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_Number d = lua_type(L, -2) == LUA_TNUMBER ? lua_tonumber(L, -2) : -1;
            if (d < 0 || d > 127 || d != floor(d))
                luaL_error(L, "push_checker: list[%d].values: integers 0..127 expected", i);
            f->values[(unsigned)d >> 6] |= (uint64_t)1 << ((unsigned)d & 63);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* "name": as JSON, when the name needs no escapes (names are at most 40 bytes). */
static void set_key(field_rule *f, const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            return;
    }
    f->key[0] = '"';
    memcpy(f->key + 1, name, len);
    f->key[len + 1] = '"';
    f->key[len + 2] = ':';
    f->key_len = (unsigned char)(len + 3);
}

static int l_push_checker(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)compat_rawlen(L, 1);
    if (n > 64)
        return luaL_error(L, "push_checker: lists of up to 64 fields");
    lua_settop(L, 1);
    size_t rules = sizeof(push_schema) + (size_t)n * sizeof(field_rule);
    rules = (rules + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
    push_schema *sc = (push_schema *)compat_newuserdata(L, rules + (size_t)n * (sizeof(char *) + sizeof(size_t)));
    memset(sc, 0, sizeof *sc);
    wdt_buf_init(&sc->buf);
    compat_setmetatable(L, SCHEMA_MT);
    sc->n = n;
    sc->names = (const char **)(void *)((char *)sc + rules);
    sc->name_lens = (size_t *)(void *)(sc->names + n);
    lua_createtable(L, n, 0);                         /* the names */
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, 1, i);
        if (lua_type(L, -1) != LUA_TTABLE)
            return luaL_error(L, "push_checker: list[%d]: table expected", i);
        lua_rawgeti(L, -1, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "push_checker: list[%d][1]: field name expected", i);
        const char *name = lua_tolstring(L, -1, &sc->name_lens[i - 1]);
        if (sc->name_lens[i - 1] > 40)
            return luaL_error(L, "push_checker: list[%d][1]: names up to 40 bytes", i);
        sc->names[i - 1] = name;
        lua_rawseti(L, -3, i);
        read_rule(L, i, &sc->f[i - 1]);
        set_key(&sc->f[i - 1], name, sc->name_lens[i - 1]);
        if (sc->f[i - 1].req)
            sc->required |= (uint64_t)1 << (i - 1);
        lua_pop(L, 1);
    }
    /* the names table anchors the strings: index them by address once it holds them */
    for (int i = 0; i < n; i++) {
        unsigned h = slot_of(sc->names[i]);
        while (sc->slot[h])
            h = (h + 1) & (HASH_SLOTS - 1);
        sc->slot[h] = (unsigned char)(i + 1);
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushcclosure(L, l_check, 2);
    lua_pushvalue(L, 2);
    wdt_json_push_raw_mt(L);
    lua_pushcclosure(L, l_encode, 2);
    return 2;
}

void wdt_core_open_push(lua_State *L)
{
    compat_register_mt(L, SCHEMA_MT, schema_meta, NULL);
    lua_pushcfunction(L, l_push_checker);
    lua_setfield(L, -2, "push_checker");
}
