/* wdt_json_encode.c: Lua value -> JSON, the encoding half of the codec (contract and
 * rules in wdt_json.h; what both halves share, wdt_json_internal.h; error paths,
 * wdt_json_path.c). Builds against Lua 5.4 and LuaJIT 2.1 (Lua 5.1 API). Over 500 lines on
 * purpose: one direction of the codec, whose recursion, key sorting and number rules are
 * read together.
 *
 * Design notes
 * ------------
 * - Cycles: checked only from depth CYCLE_CHECK_FROM on (a cycle always gets there),
 *   by scanning the tables on the current path; the error then names the first place
 *   where the path repeats a table ("value.a.b: cycle (table contains itself)").
 * - Objects: values are kept on the Lua stack while the keys are collected (one lua_next
 *   pass, no second lookup), keys are sorted byte-wise (insertion sort for small
 *   objects, qsort beyond). Very large objects fall back to re-fetching values by key.
 * - Arrays: a table whose lua_next order is 1, 2, 3, ... is written during that single
 *   traversal; anything else is re-checked (count keys, compare with the maximum) and
 *   written with lua_rawgeti, or rejected as sparse/mixed.
 * - Numbers, locale: integers are formatted by hand (exact, no locale). Floats are
 *   written with snprintf("%.*g") and the round-trip check uses strtod, both in the
 *   current locale (so they agree with each other); the result is then normalised to a
 *   '.' decimal point, so the output is the same under any LC_NUMERIC.
 */
#include "wdt_json_internal.h"

#include <lauxlib.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if LUA_VERSION_NUM >= 503
#define compat_absindex(L, i) lua_absindex((L), (i))
#else
#define compat_absindex(L, i) \
    (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
#endif

#define CYCLE_CHECK_FROM 16          /* depth from which the path is scanned for cycles */
#define OBJ_KEEP_MAX     512         /* object values kept on the Lua stack, per object */
/* ... and in all: LuaJIT gives a C function 8000 slots; 1000 levels use ~2 each */
#define KEEP_STACK_BUDGET 3000

/* ---- numbers ------------------------------------------------------------------------- */

static const char digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of v into o (room for 20 bytes); returns the length. No locale. */
static inline size_t fmt_i64(char *o, long long v)
{
    char tmp[24];
    char *t = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        t -= 2;
        memcpy(t, digits2 + 2 * r, 2);
    }
    if (u >= 10) {
        t -= 2;
        memcpy(t, digits2 + 2 * u, 2);
    } else {
        *--t = (char)('0' + u);
    }
    if (v < 0)
        *--t = '-';
    size_t n = (size_t)(tmp + sizeof tmp - t);
    memcpy(o, t, n);
    return n;
}

/* A finite double as the shortest of %.15g/%.16g/%.17g that strtod reads back to the
 * same value, with a '.' decimal point whatever the locale, and always looking like a
 * float ("1.0", "-0.0", "1e+300"). o needs 40 bytes. Returns the length. */
static size_t fmt_double(char *o, double x)
{
    if (x == floor(x) && fabs(x) < 1e15) {
        /* %.15g prints these as plain digits: do it exactly and faster by hand */
        size_t n;
        if (x == 0 && signbit(x)) {
            memcpy(o, "-0.0", 4);
            return 4;
        }
        n = fmt_i64(o, (long long)x);
        o[n++] = '.';
        o[n++] = '0';
        return n;
    }
    char buf[48];
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, x);
        /* same locale for snprintf and strtod: the check is consistent */
        if (prec == 17 || strtod(buf, NULL) == x)
            break;
    }
    if (n < 0 || n >= (int)sizeof buf)          /* cannot happen for a finite double */
        n = 0;
    size_t j = 0;
    int floatish = 0, i = 0;
    while (i < n) {
        char c = buf[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+') {
            o[j++] = c;
            i++;
        } else if (c == 'e' || c == 'E') {
            o[j++] = 'e';
            floatish = 1;
            i++;
        } else {
            /* the locale's decimal point, possibly several bytes */
            o[j++] = '.';
            floatish = 1;
            while (i < n && !((buf[i] >= '0' && buf[i] <= '9') || buf[i] == '-' ||
                              buf[i] == '+' || buf[i] == 'e' || buf[i] == 'E'))
                i++;
        }
    }
    if (!floatish) {
        o[j++] = '.';
        o[j++] = '0';
    }
    return j;
}

/* ---- the value walk ------------------------------------------------------------------ */

typedef struct enc_ent {
    const char *k;
    size_t len;
    int slot;             /* stack index of the value, 0 when not kept */
} enc_ent;

typedef struct enc {
    lua_State *L;
    wdt_buf *out;
    const char *root;
    char *err;
    size_t errlen;
    int mt_idx;
    int raw_mt_idx;
    int status;
    enc_seg *path;
    int path_cap;
    enc_ent *ents;
    size_t nent, ent_cap;
    enc_seg path_inline[48];
} enc;

/* err = "<path to depth>: <msg>", eliding the middle of very long paths. */
compat_noinline static int enc_fail(enc *e, int depth, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    e->status = -1;
    if (e->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wdt_json_path_error(e->err, e->errlen, e->root, e->path, depth, msg);
    return -1;
}

static int enc_oom(enc *e, int depth)
{
    return enc_fail(e, depth, "out of memory");
}

#define OUT_RESERVE(e, n, depth) do { \
        if ((e)->out->cap - (e)->out->len < (size_t)(n) + 1 && \
            wdt_buf_reserve((e)->out, (size_t)(n)) != 0) \
            return enc_oom((e), (depth)); \
    } while (0)
#define OUT_PUTC(e, c) ((e)->out->data[(e)->out->len++] = (char)(c))

static int enc_value(enc *e, int idx, int depth);

compat_noinline static int enc_string(enc *e, const char *s, size_t len, int depth, int is_key)
{
    wdt_buf *b = e->out;
    OUT_RESERVE(e, len + 5, depth);   /* + 3: a UTF-8 sequence is copied 4 bytes at once */
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    char *d = b->data;
    size_t w = b->len;
    d[w++] = '"';
    for (;;) {
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (swar_special(x))
                break;
            memcpy(d + w, &x, 8);
            w += 8;
            p += 8;
        }
        while (p < end && !special[*p])
            d[w++] = (char)*p++;
        if (p >= end)
            break;
        unsigned c = *p;
        if (c >= 0x80) {
            do {                            /* non-ASCII text comes in runs */
                int n = utf8_seq(p, end);
                if (n == 0) {
                    b->len = w;
                    return enc_fail(e, depth, "invalid UTF-8 in %s at byte %zu",
                                    is_key ? "key" : "string", (size_t)(p - (const unsigned char *)s) + 1);
                }
                if (end - p >= 4)
                    memcpy(d + w, p, 4);    /* the bytes after it are overwritten next */
                else
                    memcpy(d + w, p, (size_t)n);
                w += (size_t)n;
                p += n;
            } while (p < end && *p >= 0x80);
            continue;
        }
        b->len = w;
        OUT_RESERVE(e, (size_t)(end - p) + 7, depth);
        d = b->data;
        switch (c) {
        case '"':  d[w++] = '\\'; d[w++] = '"'; break;
        case '\\': d[w++] = '\\'; d[w++] = '\\'; break;
        case '\n': d[w++] = '\\'; d[w++] = 'n'; break;
        case '\r': d[w++] = '\\'; d[w++] = 'r'; break;
        case '\t': d[w++] = '\\'; d[w++] = 't'; break;
        case '\b': d[w++] = '\\'; d[w++] = 'b'; break;
        case '\f': d[w++] = '\\'; d[w++] = 'f'; break;
        default:
            memcpy(d + w, "\\u00", 4);
            d[w + 4] = "0123456789abcdef"[c >> 4];
            d[w + 5] = "0123456789abcdef"[c & 15];
            w += 6;
        }
        p++;
    }
    d[w++] = '"';
    b->len = w;
    return 0;
}

compat_noinline static int enc_number(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    OUT_RESERVE(e, 48, depth);
    char *o = e->out->data + e->out->len;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        e->out->len += fmt_i64(o, (long long)lua_tointeger(L, idx));
        return 0;
    }
#endif
    double x = (double)lua_tonumber(L, idx);
    if (x != x)
        return enc_fail(e, depth, "cannot encode NaN");
    if (x == HUGE_VAL || x == -HUGE_VAL)
        return enc_fail(e, depth, "cannot encode %s", x > 0 ? "inf" : "-inf");
#if LUA_VERSION_NUM < 503
    /* doubles only: integral values that are exact as integers are written as such */
    if (x == floor(x) && fabs(x) < 9007199254740992.0 && !(x == 0 && signbit(x))) {
        e->out->len += fmt_i64(o, (long long)x);
        return 0;
    }
#endif
    e->out->len += fmt_double(o, x);
    return 0;
}

compat_noinline static int ensure_path(enc *e, int depth)
{
    if (depth + 2 <= e->path_cap)
        return 0;
    int cap = e->path_cap * 2;
    while (cap < depth + 2)
        cap *= 2;
    if (cap > WDT_JSON_MAX_DEPTH + 2)
        cap = WDT_JSON_MAX_DEPTH + 2;
    enc_seg *np;
    if (e->path == e->path_inline) {
        np = malloc((size_t)cap * sizeof *np);
        if (np)
            memcpy(np, e->path, (size_t)e->path_cap * sizeof *np);
    } else {
        np = realloc(e->path, (size_t)cap * sizeof *np);
    }
    if (np == NULL)
        return -1;
    e->path = np;
    e->path_cap = cap;
    return 0;
}

/* Integer value of the number key at i, if it is one. */
static int int_key(lua_State *L, int i, long long *k)
{
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, i)) {
        *k = (long long)lua_tointeger(L, i);
        return 1;
    }
    return 0;
#else
    double d = (double)lua_tonumber(L, i);
    if (d != floor(d) || d < -9.2e18 || d > 9.2e18)
        return 0;
    *k = (long long)d;
    return 1;
#endif
}

static inline int key_is(lua_State *L, int i, long long n)
{
#if LUA_VERSION_NUM >= 503
    return lua_type(L, i) == LUA_TNUMBER && lua_isinteger(L, i) && lua_tointeger(L, i) == n;
#else
    return lua_type(L, i) == LUA_TNUMBER && lua_tonumber(L, i) == (lua_Number)n;
#endif
}

compat_noinline static int bad_key(enc *e, int depth, int ki, int has_str)
{
    lua_State *L = e->L;
    long long k;
    if (lua_type(L, ki) == LUA_TNUMBER) {
        if (!int_key(L, ki, &k))
            return enc_fail(e, depth, "cannot encode a table with a non-integer number key");
        if (has_str)
            return enc_fail(e, depth, "cannot encode a table with both integer and string keys");
        return enc_fail(e, depth, "cannot encode a sparse array (integer keys must be exactly 1..n)");
    }
    return enc_fail(e, depth, "cannot encode a table with a %s key", lua_typename(L, lua_type(L, ki)));
}

static inline int ent_cmp(const enc_ent *a, const enc_ent *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    if (n && a->k[0] != b->k[0])            /* usually decided by the first byte */
        return (unsigned char)a->k[0] < (unsigned char)b->k[0] ? -1 : 1;
    int c = memcmp(a->k, b->k, n);
    if (c)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int ent_qcmp(const void *a, const void *b)
{
    return ent_cmp((const enc_ent *)a, (const enc_ent *)b);
}

compat_noinline static void sort_ents(enc_ent *v, size_t n)
{
    if (n > 24) {
        qsort(v, n, sizeof *v, ent_qcmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        enc_ent t = v[i];
        size_t j = i;
        while (j > 0 && ent_cmp(&t, &v[j - 1]) < 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = t;
    }
}

static int enc_object(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    size_t first = e->nent, cnt, i;
    int base = lua_gettop(L), kept = 0;

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return bad_key(e, depth, -2, 1);
        if (e->nent == e->ent_cap) {
            size_t cap = e->ent_cap ? e->ent_cap * 2 : 64;
            enc_ent *nv = realloc(e->ents, cap * sizeof *nv);
            if (nv == NULL)
                return enc_oom(e, depth);
            e->ents = nv;
            e->ent_cap = cap;
        }
        enc_ent *en = &e->ents[e->nent++];
        /* the key string is anchored by the table itself: the pointer stays valid */
        en->k = lua_tolstring(L, -2, &en->len);
        if (kept < OBJ_KEEP_MAX && lua_gettop(L) < KEEP_STACK_BUDGET && lua_checkstack(L, 4)) {
            lua_insert(L, -2);                 /* keep the value below the key */
            en->slot = lua_gettop(L) - 1;
            kept++;
        } else {
            lua_pop(L, 1);
            en->slot = 0;
        }
    }
    cnt = e->nent - first;
    sort_ents(e->ents + first, cnt);

    OUT_RESERVE(e, 1, depth);
    OUT_PUTC(e, '{');
    for (i = 0; i < cnt; i++) {
        enc_ent en = e->ents[first + i];      /* copy: recursion may move the vector */
        e->path[depth + 1].key = en.k;
        e->path[depth + 1].klen = en.len;
        if (i) {
            OUT_RESERVE(e, 1, depth);
            OUT_PUTC(e, ',');
        }
        if (enc_string(e, en.k, en.len, depth + 1, 1))
            return -1;
        OUT_RESERVE(e, 1, depth);
        OUT_PUTC(e, ':');
        if (en.slot) {
            if (enc_value(e, en.slot, depth + 1))
                return -1;
        } else {
            lua_pushlstring(L, en.k, en.len);
            lua_rawget(L, idx);
            if (enc_value(e, lua_gettop(L), depth + 1))
                return -1;
            lua_pop(L, 1);
        }
    }
    OUT_RESERVE(e, 1, depth);
    OUT_PUTC(e, '}');
    lua_settop(L, base);
    e->nent = first;
    return 0;
}

/* The text of {src, k, serial} (wdt_json.h), or NULL when it is not one or is stale. */
static const char *raw_src_text(lua_State *L, int idx, size_t *n)
{
    const wdt_json_raw_src *src = (const wdt_json_raw_src *)lua_touserdata(L, -1);
    int ok = src != NULL && lua_type(L, -1) == LUA_TUSERDATA && lua_getmetatable(L, -1);
    if (ok) {
        luaL_getmetatable(L, WDT_JSON_RAW_SRC_MT);
        ok = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_rawgeti(L, idx, 2);
    lua_Integer k = lua_tointeger(L, -1);
    lua_rawgeti(L, idx, 3);
    ok = ok && (k == 1 || k == 2) && lua_tointeger(L, -1) == src->serial && src->text[k - 1] != NULL;
    lua_pop(L, 2);
    if (!ok)
        return NULL;
    *n = src->len[k - 1];
    return src->text[k - 1];
}

/* JSON text the push's encoder wrote and checked (WDT_JSON_RAW_MT): {text}, as it is. */
compat_noinline static int enc_raw(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    size_t n;
    const char *s;
    lua_rawgeti(L, idx, 1);
    if (lua_type(L, -1) == LUA_TSTRING)
        s = lua_tolstring(L, -1, &n);
    else if ((s = raw_src_text(L, idx, &n)) == NULL)
        return enc_fail(e, depth, "cannot encode a raw JSON value without its text (or whose text has changed)");
    OUT_RESERVE(e, n, depth);
    memcpy(e->out->data + e->out->len, s, n);
    e->out->len += n;
    lua_pop(L, 1);
    return 0;
}

/* Tables whose traversal order is not simply 1, 2, 3, ...: classify, then write. */
static int enc_table_slow(enc *e, int idx, int depth, int marked)
{
    lua_State *L = e->L;
    long long n = 0, max = 0, k;
    int nstr = 0, nonpos = 0;

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int t = lua_type(L, -1);
        if (t == LUA_TSTRING) {
            nstr++;
        } else if (t == LUA_TNUMBER && int_key(L, -1, &k)) {
            if (k < 1) {
                nonpos = 1;
            } else {
                n++;
                if (k > max)
                    max = k;
            }
        } else {
            return bad_key(e, depth, -1, 0);
        }
    }
    if (nstr && (n || nonpos))
        return enc_fail(e, depth, "cannot encode a table with both integer and string keys");
    if (nstr) {
        if (marked)
            return enc_fail(e, depth, "cannot encode a table marked as an array with string keys");
        return enc_object(e, idx, depth);
    }
    if (nonpos || max != n)
        return enc_fail(e, depth, "cannot encode a sparse array (integer keys must be exactly 1..n)");
    OUT_RESERVE(e, 1, depth);
    OUT_PUTC(e, '[');
    for (long long i = 1; i <= n; i++) {
        if (i > 1) {
            OUT_RESERVE(e, 1, depth);
            OUT_PUTC(e, ',');
        }
        e->path[depth + 1].key = NULL;
        e->path[depth + 1].idx = i;
        lua_rawgeti(L, idx, (int)i);
        if (enc_value(e, lua_gettop(L), depth + 1))
            return -1;
        lua_pop(L, 1);
    }
    OUT_RESERVE(e, 1, depth);
    OUT_PUTC(e, ']');
    return 0;
}

static int enc_table(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    if (ensure_path(e, depth))
        return enc_oom(e, depth);
    const void *self = lua_topointer(L, idx);
    e->path[depth].tab = self;
    if (depth >= CYCLE_CHECK_FROM) {
        for (int i = 0; i < depth; i++) {
            if (e->path[i].tab == self) {
                /* report the first place where the path repeats a table */
                for (int j = 1; j <= depth; j++)
                    for (int k = 0; k < j; k++)
                        if (e->path[k].tab == e->path[j].tab)
                            return enc_fail(e, j, "cycle (table contains itself)");
            }
        }
    }
    if (depth >= WDT_JSON_MAX_DEPTH)
        return enc_fail(e, depth, "nesting deeper than %d", WDT_JSON_MAX_DEPTH);
    if (!lua_checkstack(L, 8))
        return enc_fail(e, depth, "out of Lua stack space");

    int marked = 0, raw = 0;
    if (lua_getmetatable(L, idx)) {
        marked = lua_rawequal(L, -1, e->mt_idx);
        raw = !marked && lua_rawequal(L, -1, e->raw_mt_idx);
        lua_pop(L, 1);
    }
    if (raw)
        return enc_raw(e, idx, depth);
    wdt_buf *b = e->out;
    size_t start = b->len;
    int base = lua_gettop(L);

    lua_pushnil(L);
    if (!lua_next(L, idx)) {
        OUT_RESERVE(e, 2, depth);
        OUT_PUTC(e, marked ? '[' : '{');
        OUT_PUTC(e, marked ? ']' : '}');
        return 0;
    }
    if (lua_type(L, -2) == LUA_TSTRING && !marked) {
        lua_settop(L, base);
        return enc_object(e, idx, depth);
    }
    if (key_is(L, -2, 1)) {
        /* optimistic: write the elements in traversal order while it is 1, 2, 3, ... */
        long long n = 1;
        OUT_RESERVE(e, 1, depth);
        OUT_PUTC(e, '[');
        for (;;) {
            e->path[depth + 1].key = NULL;
            e->path[depth + 1].idx = n;
            if (enc_value(e, lua_gettop(L), depth + 1))
                return -1;
            lua_pop(L, 1);
            if (!lua_next(L, idx))
                break;
            if (!key_is(L, -2, ++n))
                goto slow;
            OUT_RESERVE(e, 1, depth);
            OUT_PUTC(e, ',');
        }
        OUT_RESERVE(e, 1, depth);
        OUT_PUTC(e, ']');
        return 0;
    }
slow:
    lua_settop(L, base);
    b->len = start;
    return enc_table_slow(e, idx, depth, marked);
}

static int enc_value(enc *e, int idx, int depth)
{
    lua_State *L = e->L;
    int t = lua_type(L, idx);
    switch (t) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return enc_string(e, s, n, depth, 0);
    }
    case LUA_TNUMBER:
        return enc_number(e, idx, depth);
    case LUA_TTABLE:
        return enc_table(e, idx, depth);
    case LUA_TBOOLEAN:
        OUT_RESERVE(e, 5, depth);
        if (lua_toboolean(L, idx)) {
            memcpy(e->out->data + e->out->len, "true", 4);
            e->out->len += 4;
        } else {
            memcpy(e->out->data + e->out->len, "false", 5);
            e->out->len += 5;
        }
        return 0;
    case LUA_TNIL:
        OUT_RESERVE(e, 4, depth);
        memcpy(e->out->data + e->out->len, "null", 4);
        e->out->len += 4;
        return 0;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            OUT_RESERVE(e, 4, depth);
            memcpy(e->out->data + e->out->len, "null", 4);
            e->out->len += 4;
            return 0;
        }
        return enc_fail(e, depth, "cannot encode a lightuserdata (only the null sentinel)");
    default:
        return enc_fail(e, depth, "cannot encode a %s", lua_typename(L, t));
    }
}

/* ---- scalars for the push's encoder (wdt_core_push.c) ------------------------------ */

/* An enc for the scalar writers alone: no path, no message (enc_fail returns -1). */
static void scalar_enc(enc *e, lua_State *L, wdt_buf *out)
{
    e->L = L;
    e->out = out;
    e->err = NULL;
    e->errlen = 0;
    e->status = 0;
}

int wdt_json_append_scalar(lua_State *L, int idx, wdt_buf *out)
{
    enc e;
    size_t start = out->len;
    int rc;
    scalar_enc(&e, L, out);
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        rc = enc_string(&e, s, n, 0, 0);
        break;
    }
    case LUA_TNUMBER:
        rc = enc_number(&e, idx, 0);
        break;
    case LUA_TBOOLEAN:
    case LUA_TNIL:
        rc = enc_value(&e, idx, 0);
        break;
    case LUA_TLIGHTUSERDATA:
        rc = lua_touserdata(L, idx) == NULL ? enc_value(&e, idx, 0) : -1;
        break;
    default:
        rc = -1;
    }
    if (rc != 0)
        out->len = start;
    return rc;
}

int wdt_json_put_string(wdt_buf *out, const char *s, size_t n)
{
    const unsigned char *end = (const unsigned char *)s + n;
    if (skip_plain((const unsigned char *)s, end) == end) {   /* nothing to escape or check */
        if (out->cap - out->len < n + 3 && wdt_buf_reserve(out, n + 2) != 0)
            return -1;
        char *d = out->data + out->len;
        d[0] = '"';
        memcpy(d + 1, s, n);
        d[n + 1] = '"';
        out->len += n + 2;
        return 0;
    }
    enc e;
    size_t start = out->len;
    scalar_enc(&e, NULL, out);
    if (enc_string(&e, s, n, 0, 0) != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

int wdt_json_put_integer(wdt_buf *out, long long v)
{
    if (out->cap - out->len < 24 && wdt_buf_reserve(out, 24) != 0)
        return -1;
    out->len += fmt_i64(out->data + out->len, v);
    return 0;
}

/* Protected body: arg 1 the value, arg 2 the state. */
static int enc_protected(lua_State *L)
{
    enc *e = (enc *)lua_touserdata(L, 2);
    wdt_json_push_array_mt(L);
    e->mt_idx = lua_gettop(L);
    wdt_json_push_raw_mt(L);
    e->raw_mt_idx = lua_gettop(L);
    enc_value(e, 1, 0);
    return 0;
}

int wdt_json_encode(lua_State *L, int idx, const char *root, wdt_buf *out, char *err, size_t errlen)
{
    enc e;
    int top = lua_gettop(L), rc;
    size_t start = out->len;

    memset(&e, 0, sizeof e);
    e.L = L;
    e.out = out;
    e.root = root ? root : "value";
    e.err = err;
    e.errlen = errlen;
    e.path = e.path_inline;
    e.path_cap = (int)(sizeof e.path_inline / sizeof e.path_inline[0]);
    if (errlen)
        err[0] = '\0';

    idx = compat_absindex(L, idx);
    if (!lua_checkstack(L, 4)) {
        enc_fail(&e, 0, "out of Lua stack space");
        return -1;
    }
    lua_pushcfunction(L, enc_protected);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, &e);
    rc = lua_pcall(L, 2, 0, 0);
    if (rc != 0 && e.status == 0) {
        if (rc == LUA_ERRMEM) {
            enc_fail(&e, 0, "out of memory");
        } else {
            const char *m = lua_tostring(L, -1);
            enc_fail(&e, 0, "internal error: %s", m ? m : "?");
        }
    }
    lua_settop(L, top);
    if (e.path != e.path_inline)
        free(e.path);
    free(e.ents);
    if (e.status != 0 || rc != 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return -1;
    }
    if (out->data)
        out->data[out->len] = '\0';
    return 0;
}
