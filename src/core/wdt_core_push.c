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
#include "wdt_push_schema.h"
#include "wdt_core_push.h"

#define INT53 9007199254740992LL    /* 2^53: integers are exact within it (int_value) */

/* The per-key steps run ~50 times an order: inlined into the record loop. */
#if defined(__GNUC__) || defined(__clang__)
#  define PUSH_INLINE static inline __attribute__((always_inline))
#  define PUSH_PREFETCH(p) __builtin_prefetch(p)
#else
#  define PUSH_INLINE static inline
#  define PUSH_PREFETCH(p) ((void)(p))
#endif

/* Short strings are interned (Lua 5.4 up to 40 bytes, LuaJIT all): a key that is a field
 * name has the name's very bytes, so the address finds it; any other key finds no field
 * or a different address (names are at most 40 bytes, see push_checker). */
static unsigned slot_of(const void *p)
{
    return (unsigned)(((uintptr_t)p >> 3) * 0x9E3779B1u) >> 24;
}

/* The field index by a name's identity in one of the two slot tables, or -1: `id` is the
 * name's address (field_of) or its string object (field_of_object); NULL is no name. */
PUSH_INLINE int probe(const void *const *ids, const unsigned char *index, const void *id)
{
    if (id == NULL)
        return -1;
    for (unsigned h = slot_of(id);; h = (h + 1) & (WDT_PUSH_HASH_SLOTS - 1)) {
        if (ids[h] == id)
            return index[h];
        if (ids[h] == NULL)
            return -1;
    }
}

PUSH_INLINE int field_of(const push_schema *sc, const char *k)
{
    return probe(sc->slot_name, sc->slot, k);
}

/* The field whose name is the string object `o` (sc->by_object), or -1 (NULL: a key that
 * is no string, as lua_topointer gives for numbers and booleans). */
PUSH_INLINE int field_of_object(const push_schema *sc, const void *o)
{
    return probe(sc->slot_object, sc->slot_by_object, o);
}

int wdt_push_field_named(const push_schema *sc, const char *name)
{
    for (int i = 0; i < sc->n; i++)
        if (strcmp(sc->names[i], name) == 0)
            return i;
    return -1;
}

PUSH_INLINE int in_values(const field_rule *f, lua_Number d)
{
    if (d < 0 || d > 127)
        return 0;
    unsigned v = (unsigned)d;
    return (f->values[v >> 6] >> (v & 63)) & 1;
}

/* The value on top of the stack, read once: its type, a string's bytes, a number's value. */
PUSH_INLINE void read_value(lua_State *L, int idx, push_value *v)
{
    v->type = lua_type(L, idx);
    v->is_int = 0;
    if (v->type == LUA_TSTRING) {
        v->s = lua_tolstring(L, idx, &v->n);
    } else if (v->type == LUA_TBOOLEAN) {
        v->i = lua_toboolean(L, idx);
    } else if (v->type == LUA_TNUMBER) {
#if COMPAT_HAS_INTEGERS
        if (lua_isinteger(L, idx)) {
            v->is_int = 1;
            v->i = (long long)lua_tointeger(L, idx);
            v->d = (double)v->i;
            return;
        }
#endif
        v->d = (double)lua_tonumber(L, idx);
    }
}

/* 1 when the present, non-null value passes without the Lua side. */
PUSH_INLINE int value_ok(const field_rule *f, const push_value *v)
{
    switch (f->kind) {
    case K_STRING:
        return v->type == LUA_TSTRING && (v->n <= f->max || wdt_utf8_chars(v->s, v->n) <= f->max);
    case K_INT:
        if (v->type != LUA_TNUMBER)
            return 0;
        if (v->is_int) {
            if (v->i <= -INT53 || v->i >= INT53)
                return 0;
            return !f->has_values || (v->i >= 0 && v->i <= 127 && in_values(f, (lua_Number)v->i));
        }
        if (!isfinite(v->d) || v->d != floor(v->d) || v->d <= -(double)INT53 || v->d >= (double)INT53)
            return 0;
        return !f->has_values || in_values(f, v->d);
    case K_DECIMAL:
        return v->type == LUA_TNUMBER && isfinite(v->d);
    case K_BOOL:
        return v->type == LUA_TBOOLEAN;
    case K_TIME:
        return v->type == LUA_TSTRING && wdt_is_time19(v->s, v->n);
    default:
        return 1;
    }
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
        push_value v;
        lua_rawgeti(L, names, (int)i);
        lua_rawget(L, 1);
        read_value(L, -1, &v);
        int is_null = v.type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == NULL;
        int absent = v.type == LUA_TNIL || (is_null && !f->null_ok);
        if (absent ? f->req : !is_null && !value_ok(f, &v)) {
            lua_pushinteger(L, i);
            lua_pushboolean(L, absent);
            lua_pushvalue(L, -3);
            return 3;
        }
        lua_pop(L, 1);
    }
    return 0;
}

PUSH_INLINE int put_field(lua_State *L, const push_schema *sc, int fi, push_rec *r, int kidx, int vidx)
{
    wdt_buf *b = r->out;
    push_value v;
    read_value(L, vidx, &v);
    if (fi >= 0) {
        const field_rule *f = &sc->f[fi];
        uint64_t bit = (uint64_t)1 << fi;
        int is_null = v.type == LUA_TLIGHTUSERDATA && lua_touserdata(L, vidx) == NULL;
        r->present |= bit;
        if (is_null && !f->null_ok) {
            if (f->req)
                return -1;
        } else if (!is_null && !value_ok(f, &v)) {
            return -1;
        } else {
            r->seen |= bit;
        }
        if (r->keep && r->keep[fi] >= 0)
            r->kept[r->keep[fi]] = v;
        /* the key as JSON, copied whole: a fixed-size copy is a few moves */
        if (b->cap - b->len < WDT_PUSH_KEY_BYTES + 2 && wdt_buf_reserve(b, WDT_PUSH_KEY_BYTES + 1) != 0)
            return -1;
        if (!r->first)
            b->data[b->len++] = ',';
        if (f->key_len) {
            memcpy(b->data + b->len, f->key, WDT_PUSH_KEY_BYTES);
            b->len += f->key_len;
        } else if (wdt_json_append_scalar(L, kidx, b) != 0 || wdt_buf_putc(b, ':') != 0) {
            return -1;
        }
    } else {
        if (!r->first && wdt_buf_putc(b, ',') != 0)
            return -1;
        if (wdt_json_append_scalar(L, kidx, b) != 0 || wdt_buf_putc(b, ':') != 0)
            return -1;
    }
    r->first = 0;
    if (v.type == LUA_TSTRING)
        return wdt_json_put_string(b, v.s, v.n);
    if (v.is_int)
        return wdt_json_put_integer(b, v.i);
    return wdt_json_append_scalar(L, vidx, b);
}

int wdt_push_put_field(lua_State *L, const push_schema *sc, int fi, push_rec *r)
{
    int top = lua_gettop(L);
    return put_field(L, sc, fi, r, top - 1, top);
}

/* A record's pairs at most, for the two passes below (more: the Lua side). */
#define MAX_PAIRS 120

int wdt_push_put_fields(lua_State *L, const push_schema *sc, int rec, const char *omit,
                        size_t omit_len, push_rec *r)
{
    const int base = lua_gettop(L);
    int n = 0, rc = 0;
    if (wdt_buf_putc(r->out, '{') != 0)
        return -1;
    r->first = 1;
    /* First pass: the pairs onto the stack, each value's memory asked for at once: the
     * strings of a record built long ago lie apart, and their cache misses then overlap
     * instead of coming one at a time in the second pass. */
    if (!lua_checkstack(L, 40))                 /* 16 pairs' room; checked again each 16 */
        return -1;
    signed char fi[MAX_PAIRS];                  /* a field's index by its name object, or -1 */
    lua_pushnil(L);
    while (lua_next(L, rec)) {
        const void *p = lua_topointer(L, -1);     /* strings too on 5.4; NULL elsewhere */
        if (p)
            PUSH_PREFETCH(p);
        if (n >= MAX_PAIRS || ((n & 15) == 15 && !lua_checkstack(L, 40))) {
            lua_settop(L, base);
            return -1;
        }
        fi[n++] = (signed char)(sc->by_object ? field_of_object(sc, lua_topointer(L, -2)) : -1);
        lua_pushvalue(L, -2);
    }
    /* Second pass: check and write each pair. A key that is a field's name is one by
     * construction; any other key is read (by_object: it is no field's name). */
    for (int i = 0; i < n && rc == 0; i++) {
        const int kidx = base + 1 + 2 * i;
        size_t klen;
        if (fi[i] >= 0) {
            rc = put_field(L, sc, fi[i], r, kidx, kidx + 1);
            continue;
        }
        if (lua_type(L, kidx) != LUA_TSTRING) {
            rc = -1;
            break;
        }
        const char *k = lua_tolstring(L, kidx, &klen);
        if (!(omit && klen == omit_len && (k == omit || memcmp(k, omit, klen) == 0)))
            rc = put_field(L, sc, sc->by_object ? -1 : field_of(sc, k), r, kidx, kidx + 1);
    }
    lua_settop(L, base);
    return rc;
}

/* The record at 1 without the key at 2 (a string, or false), plus the pairs from 3 on
 * for keys it lacks (a false key: a pair left out), checked and written as JSON text. */
static int encode_record(lua_State *L, push_schema *sc)
{
    const int top = lua_gettop(L);
    size_t omit_len = 0;
    const char *omit = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &omit_len) : NULL;
    push_rec r = { &sc->buf, 0, 0, 1, NULL, NULL };
    sc->buf.len = 0;
    if (wdt_push_put_fields(L, sc, 1, omit, omit_len, &r) != 0)
        return -1;
    for (int j = 3; j < top; j += 2) {
        if (lua_type(L, j) != LUA_TSTRING)
            continue;
        lua_pushvalue(L, j);
        lua_rawget(L, 1);
        int present = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (present)
            continue;
        lua_pushvalue(L, j);
        lua_pushvalue(L, j + 1);
        if (wdt_push_put_field(L, sc, field_of(sc, lua_tostring(L, j)), &r))
            return -1;
        lua_pop(L, 2);
    }
    if ((r.seen & sc->required) != sc->required)
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
    compat_setmetatable(L, WDT_PUSH_SCHEMA_MT);
    sc->n = n;
    sc->names = (const char **)(void *)((char *)sc + rules);
    sc->name_lens = (size_t *)(void *)(sc->names + n);
    const void *objects[WDT_PUSH_MAX_FIELDS];
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
        objects[i - 1] = lua_topointer(L, -1);
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
        while (sc->slot_name[h])
            h = (h + 1) & (WDT_PUSH_HASH_SLOTS - 1);
        sc->slot_name[h] = sc->names[i];
        sc->slot[h] = (unsigned char)i;
    }
    sc->by_object = n > 0;
    for (int i = 0; i < n; i++)
        sc->by_object = sc->by_object && objects[i] != NULL;
    for (int i = 0; i < n && sc->by_object; i++) {
        unsigned h = slot_of(objects[i]);
        while (sc->slot_object[h])
            h = (h + 1) & (WDT_PUSH_HASH_SLOTS - 1);
        sc->slot_object[h] = objects[i];
        sc->slot_by_object[h] = (unsigned char)i;
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushcclosure(L, l_check, 2);
    lua_pushvalue(L, 2);
    wdt_json_push_raw_mt(L);
    lua_pushvalue(L, 3);                              /* the names: their strings stay alive */
    lua_pushcclosure(L, l_encode, 3);
    return 2;
}

void wdt_core_open_push(lua_State *L)
{
    compat_register_mt(L, WDT_PUSH_SCHEMA_MT, schema_meta, NULL);
    lua_pushcfunction(L, l_push_checker);
    lua_setfield(L, -2, "push_checker");
}
