/* wdt_json: the exact JSON codec of the wdt core. Contract in wdt_json.h and
 * doc/architecture.md. Builds against Lua 5.4 and LuaJIT 2.1 (Lua 5.1 API).
 *
 * Design notes
 * ------------
 * - Both directions run inside a protected call (lua_pcall of a C function), so a
 *   memory error raised by the Lua API never escapes and never leaks our own heap
 *   buffers: everything malloc'd belongs to a state struct in the caller's frame and
 *   is freed after the pcall returns. The pcall also restores the Lua stack.
 * - Depth: both directions are recursive with small frames (no arrays on the C stack in
 *   the recursive functions) and stop at WDT_JSON_MAX_DEPTH (1000) levels, i.e. well
 *   under 200 KiB of C stack: safe on 8 MiB thread stacks and nginx worker stacks.
 *   Lua stack use is a few slots per level (LuaJIT allows a C function 8000 slots).
 * - Cycles: checked only from depth CYCLE_CHECK_FROM on (a cycle always gets there),
 *   by scanning the tables on the current path; the error then names the first place
 *   where the path repeats a table ("value.a.b: cycle (table contains itself)").
 * - Objects: values are kept on the Lua stack while the keys are collected (one lua_next
 *   pass, no second lookup), keys are sorted byte-wise (insertion sort for small
 *   objects, qsort beyond). Very large objects fall back to re-fetching values by key.
 * - Arrays: a table whose lua_next order is 1, 2, 3, ... is written during that single
 *   traversal; anything else is re-checked (count keys, compare with the maximum) and
 *   written with lua_rawgeti, or rejected as sparse/mixed.
 * - Numbers, locale: integers are formatted and parsed by hand (exact, no locale).
 *   Floats are written with snprintf("%.*g") and the round-trip check uses strtod, both
 *   in the current locale (so they agree with each other); the result is then
 *   normalised to a '.' decimal point, so the output is the same under any LC_NUMERIC.
 *   Decoding uses an exact fast path (mantissa <= 2^53, |exponent| <= 22: one correctly
 *   rounded multiplication or division, no locale involved) and otherwise strtod on a
 *   copy of the token whose '.' is replaced by the locale's decimal point.
 * - Strings: scanned 8 bytes at a time for bytes that need attention (control
 *   characters, '"', '\\', non-ASCII); decoded strings without escapes are pushed
 *   straight from the input.
 */
#include "wdt_json.h"

#include <lauxlib.h>

#include <locale.h>
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

/* Keep the leaves out of the recursive functions' frames (C stack per nesting level). */
#if defined(__GNUC__) || defined(__clang__)
#define compat_noinline __attribute__((noinline))
#else
#define compat_noinline
#endif

#define CYCLE_CHECK_FROM 16          /* depth from which the path is scanned for cycles */
#define OBJ_KEEP_MAX     512         /* object values kept on the Lua stack, per object */
/* ... and in all: LuaJIT gives a C function 8000 slots; 1000 levels use ~2 each */
#define KEEP_STACK_BUDGET 3000
#define HINT_MAX         4096        /* cap on table pre-sizing hints when decoding */

/* ------------------------------------------------------------------------------------ */
/* Shared helpers                                                                        */

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Non-zero when one of the 8 bytes is < 0x20, '"', '\\' or >= 0x80. */
static inline uint64_t swar_special(uint64_t x)
{
    uint64_t q = x ^ (ONES * 0x22);
    uint64_t b = x ^ (ONES * 0x5C);
    return (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | x) & HIGHS;
}

/* 1 for the bytes a JSON string cannot carry as they are (or that need UTF-8 checks). */
static const unsigned char special[256] = {
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
};

/* Length of the valid UTF-8 sequence (2..4 bytes) starting at p (*p >= 0x80), 0 if invalid
 * (overlong forms, surrogates, > U+10FFFF, truncated, bad continuation bytes). */
static inline int utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], c1;
    if (c < 0xC2)
        return 0;
    if (end - p < 2 || ((c1 = p[1]) & 0xC0) != 0x80)
        return 0;
    if (c < 0xE0)
        return 2;
    if (end - p < 3 || (p[2] & 0xC0) != 0x80)
        return 0;
    if (c < 0xF0) {
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F))
            return 0;
        return 3;
    }
    if (c > 0xF4 || end - p < 4 || (p[3] & 0xC0) != 0x80)
        return 0;
    if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
        return 0;
    return 4;
}

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

/* ------------------------------------------------------------------------------------ */
/* Encoder                                                                               */

typedef struct enc_seg {
    const char *key;      /* NULL: array index */
    size_t klen;
    long long idx;
    const void *tab;      /* the table at this depth (for cycle detection) */
} enc_seg;

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
    int status;
    enc_seg *path;
    int path_cap;
    enc_ent *ents;
    size_t nent, ent_cap;
    enc_seg path_inline[48];
} enc;

/* One path component, e.g. "[3]", ".sync_id", "[\"a b\"]"; o needs 256 bytes. */
static size_t seg_render(const enc_seg *s, char *o)
{
    if (s->key == NULL)
        return (size_t)snprintf(o, 32, "[%lld]", s->idx);
    const unsigned char *k = (const unsigned char *)s->key;
    size_t n = s->klen, j = 0, i;
    int ident = n > 0 && n <= 64 && !(k[0] >= '0' && k[0] <= '9');
    for (i = 0; ident && i < n; i++) {
        unsigned c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            ident = 0;
    }
    if (ident) {
        o[0] = '.';
        memcpy(o + 1, k, n);
        return n + 1;
    }
    o[j++] = '[';
    o[j++] = '"';
    for (i = 0; i < n && i < 40;) {
        unsigned c = k[i];
        if (c == '"' || c == '\\') {
            o[j++] = '\\';
            o[j++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            j += (size_t)snprintf(o + j, 8, "\\x%02x", c);
            i++;
        } else if (c < 0x80) {
            o[j++] = (char)c;
            i++;
        } else {
            int m = utf8_seq(k + i, k + n);
            if (m) {
                memcpy(o + j, k + i, (size_t)m);
                j += (size_t)m;
                i += (size_t)m;
            } else {
                j += (size_t)snprintf(o + j, 8, "\\x%02x", c);
                i++;
            }
        }
    }
    if (i < n) {
        memcpy(o + j, "...", 3);
        j += 3;
    }
    o[j++] = '"';
    o[j++] = ']';
    return j;
}

/* err = "<path to depth>: <msg>", eliding the middle of very long paths. */
compat_noinline static int enc_fail(enc *e, int depth, const char *fmt, ...)
{
    char msg[160], seg[256];
    va_list ap;
    e->status = -1;
    if (e->errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char *o = e->err;
    size_t cap = e->errlen, w = 0;
#define ERR_PUT(p, n) do { size_t n_ = (n); if (w + n_ >= cap) n_ = cap - 1 - w; \
                           memcpy(o + w, (p), n_); w += n_; } while (0)
    ERR_PUT(e->root, strlen(e->root));
    size_t total = 0;
    for (int d = 1; d <= depth; d++)
        total += seg_render(&e->path[d], seg);
    size_t budget = cap > strlen(msg) + w + 3 ? cap - strlen(msg) - w - 3 : 0;
    if (total <= budget) {
        for (int d = 1; d <= depth; d++)
            ERR_PUT(seg, seg_render(&e->path[d], seg));
    } else {
        size_t half = budget > 3 ? (budget - 3) / 2 : 0, used = 0;
        int d = 1, tail_from = depth + 1;
        for (; d <= depth; d++) {
            size_t n = seg_render(&e->path[d], seg);
            if (used + n > half)
                break;
            ERR_PUT(seg, n);
            used += n;
        }
        used = 0;
        while (tail_from - 1 > d) {
            size_t n = seg_render(&e->path[tail_from - 1], seg);
            if (used + n > half)
                break;
            used += n;
            tail_from--;
        }
        ERR_PUT("...", 3);
        for (int t = tail_from; t <= depth; t++)
            ERR_PUT(seg, seg_render(&e->path[t], seg));
    }
    ERR_PUT(": ", 2);
    ERR_PUT(msg, strlen(msg));
#undef ERR_PUT
    o[w] = '\0';
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
    OUT_RESERVE(e, len + 2, depth);
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
            int n = utf8_seq(p, end);
            if (n == 0) {
                b->len = w;
                return enc_fail(e, depth, "invalid UTF-8 in %s at byte %zu",
                                is_key ? "key" : "string", (size_t)(p - (const unsigned char *)s) + 1);
            }
            memcpy(d + w, p, (size_t)n);
            w += (size_t)n;
            p += n;
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

    int marked = 0;
    if (lua_getmetatable(L, idx)) {
        marked = lua_rawequal(L, -1, e->mt_idx);
        lua_pop(L, 1);
    }
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

/* Protected body: arg 1 the value, arg 2 the state. */
static int enc_protected(lua_State *L)
{
    enc *e = (enc *)lua_touserdata(L, 2);
    wdt_json_push_array_mt(L);
    e->mt_idx = lua_gettop(L);
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

/* ------------------------------------------------------------------------------------ */
/* Decoder                                                                               */

typedef struct dec {
    lua_State *L;
    const unsigned char *s, *p, *end;
    char *err;
    size_t errlen;
    int mt_idx;
    int status;
    wdt_buf scratch;
    uint16_t hint_arr[WDT_JSON_MAX_DEPTH + 1];
    uint16_t hint_obj[WDT_JSON_MAX_DEPTH + 1];
} dec;

compat_noinline static int dec_fail(dec *d, const unsigned char *at, const char *fmt, ...)
{
    va_list ap;
    d->status = -1;
    if (d->errlen == 0)
        return -1;
    int n = snprintf(d->err, d->errlen, "at byte %zu: ", (size_t)(at - d->s) + 1);
    if (n >= 0 && (size_t)n < d->errlen) {
        va_start(ap, fmt);
        vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

compat_noinline static int dec_unexpected(dec *d, const unsigned char *at)
{
    if (at >= d->end)
        return dec_fail(d, at, "unexpected end of input");
    if (*at > 0x20 && *at < 0x7f)
        return dec_fail(d, at, "unexpected character '%c'", *at);
    return dec_fail(d, at, "unexpected byte 0x%02x", *at);
}

static inline const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], x;
        if (c >= '0' && c <= '9')
            x = c - '0';
        else if (c >= 'a' && c <= 'f')
            x = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            x = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | x;
    }
    *out = v;
    return 0;
}

#define SCRATCH_RESERVE(d, n) do { \
        if (wdt_buf_reserve(&(d)->scratch, (n)) != 0) \
            return dec_fail((d), p, "out of memory"); \
    } while (0)

/* A string with escapes, from start (after the quote); p is at the first backslash. */
compat_noinline static int dec_string_slow(dec *d, const unsigned char *start, const unsigned char *p)
{
    const unsigned char *end = d->end;
    wdt_buf *sb = &d->scratch;
    sb->len = 0;
    SCRATCH_RESERVE(d, (size_t)(p - start) + 16);
    memcpy(sb->data, start, (size_t)(p - start));
    sb->len = (size_t)(p - start);
    for (;;) {
        const unsigned char *run = p;
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (swar_special(x))
                break;
            p += 8;
        }
        while (p < end && !special[*p])
            p++;
        if (p > run) {
            SCRATCH_RESERVE(d, (size_t)(p - run));
            memcpy(sb->data + sb->len, run, (size_t)(p - run));
            sb->len += (size_t)(p - run);
        }
        if (p >= end)
            return dec_fail(d, start - 1, "unterminated string");
        unsigned c = *p;
        if (c == '"') {
            lua_pushlstring(d->L, sb->data, sb->len);
            d->p = p + 1;
            return 0;
        }
        if (c >= 0x80) {
            int n = utf8_seq(p, end);
            if (n == 0)
                return dec_fail(d, p, "invalid UTF-8 in string");
            SCRATCH_RESERVE(d, (size_t)n);
            memcpy(sb->data + sb->len, p, (size_t)n);
            sb->len += (size_t)n;
            p += n;
            continue;
        }
        if (c != '\\')
            return dec_fail(d, p, "control character in string");
        /* escape */
        SCRATCH_RESERVE(d, 4);
        char *o = sb->data + sb->len;
        if (end - p < 2)
            return dec_fail(d, start - 1, "unterminated string");
        switch (p[1]) {
        case '"':  *o = '"'; break;
        case '\\': *o = '\\'; break;
        case '/':  *o = '/'; break;
        case 'b':  *o = '\b'; break;
        case 'f':  *o = '\f'; break;
        case 'n':  *o = '\n'; break;
        case 'r':  *o = '\r'; break;
        case 't':  *o = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 6 || hex4(p + 2, &cp))
                return dec_fail(d, p, "invalid \\u escape");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return dec_fail(d, p, "lone surrogate \\u%04x", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return dec_fail(d, p, "lone surrogate \\u%04x", cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                o[0] = (char)(0xF0 | (cp >> 18));
                o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[3] = (char)(0x80 | (cp & 0x3F));
                sb->len += 4;
                p += 12;
                continue;
            }
            if (cp < 0x80) {
                o[0] = (char)cp;
                sb->len += 1;
            } else if (cp < 0x800) {
                o[0] = (char)(0xC0 | (cp >> 6));
                o[1] = (char)(0x80 | (cp & 0x3F));
                sb->len += 2;
            } else {
                o[0] = (char)(0xE0 | (cp >> 12));
                o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[2] = (char)(0x80 | (cp & 0x3F));
                sb->len += 3;
            }
            p += 6;
            continue;
        }
        default:
            return dec_fail(d, p, "invalid escape");
        }
        sb->len += 1;
        p += 2;
    }
}

/* d->p is at the opening quote; pushes the string. */
compat_noinline static int dec_string(dec *d)
{
    const unsigned char *start = d->p + 1, *p = start, *end = d->end;
    for (;;) {
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (swar_special(x))
                break;
            p += 8;
        }
        while (p < end && !special[*p])
            p++;
        if (p >= end)
            return dec_fail(d, start - 1, "unterminated string");
        unsigned c = *p;
        if (c == '"') {
            lua_pushlstring(d->L, (const char *)start, (size_t)(p - start));
            d->p = p + 1;
            return 0;
        }
        if (c >= 0x80) {
            int n = utf8_seq(p, end);
            if (n == 0)
                return dec_fail(d, p, "invalid UTF-8 in string");
            p += n;
            continue;
        }
        if (c == '\\')
            return dec_string_slow(d, start, p);
        return dec_fail(d, p, "control character in string");
    }
}

static const double pow10_tab[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/* strtod on a copy of the token with '.' replaced by the locale's decimal point. */
static double slow_strtod(dec *d, const unsigned char *s, size_t n, int *ok)
{
    const char *dp = localeconv()->decimal_point;
    size_t dpl = (dp && *dp) ? strlen(dp) : 1;
    char small[128], *buf = small;
    if (n * dpl + 1 > sizeof small) {
        if (wdt_buf_reserve(&d->scratch, n * dpl + 1) != 0) {
            *ok = 0;
            return 0;
        }
        buf = d->scratch.data;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && dp && *dp) {
            memcpy(buf + j, dp, dpl);
            j += dpl;
        } else {
            buf[j++] = (char)s[i];
        }
    }
    buf[j] = '\0';
    char *endp;
    double v = strtod(buf, &endp);
    *ok = (size_t)(endp - buf) == j;
    return v;
}

compat_noinline static int dec_number(dec *d)
{
    const unsigned char *start = d->p, *p = start, *end = d->end;
    int neg = 0, isfloat = 0, ovf = 0;
    uint64_t m = 0;
    long e10 = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return dec_fail(d, start, "invalid number");
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return dec_fail(d, start, "invalid number (leading zero)");
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned dg = (unsigned)(*p - '0');
            if (m > (UINT64_MAX - dg) / 10)
                ovf = 1;
            else if (!ovf)
                m = m * 10 + dg;
            p++;
        }
    }
    if (p < end && *p == '.') {
        isfloat = 1;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return dec_fail(d, p, "invalid number (digit expected after '.')");
        while (p < end && *p >= '0' && *p <= '9') {
            unsigned dg = (unsigned)(*p - '0');
            if (!ovf) {
                if (m > (UINT64_MAX - dg) / 10) {
                    ovf = 1;
                } else {
                    m = m * 10 + dg;
                    e10--;
                }
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        long ev = 0;
        isfloat = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9')
            return dec_fail(d, p, "invalid number (digit expected in exponent)");
        while (p < end && *p >= '0' && *p <= '9') {
            if (ev < 100000)
                ev = ev * 10 + (*p - '0');
            p++;
        }
        e10 += eneg ? -ev : ev;
    }
    d->p = p;

    if (!isfloat && !ovf) {
        if (neg ? m <= (uint64_t)INT64_MAX + 1 : m <= (uint64_t)INT64_MAX) {
            long long v = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)m)
                              : (long long)m;
#if LUA_VERSION_NUM >= 503
            lua_pushinteger(d->L, (lua_Integer)v);
#else
            lua_pushnumber(d->L, (lua_Number)v);
#endif
            return 0;
        }
        /* beyond int64 but within uint64: the conversion rounds correctly */
        double v = (double)m;
        lua_pushnumber(d->L, (lua_Number)(neg ? -v : v));
        return 0;
    }
    double v;
    if (!ovf && m <= (1ULL << 53) && e10 >= -22 && e10 <= 22) {
        /* exact operands, one correctly rounded operation */
        v = (double)m;
        v = e10 < 0 ? v / pow10_tab[-e10] : v * pow10_tab[e10];
        if (neg)
            v = -v;
    } else if (!ovf && m == 0) {
        v = neg ? -0.0 : 0.0;
    } else {
        int ok;
        v = slow_strtod(d, start, (size_t)(p - start), &ok);
        if (!ok)
            return dec_fail(d, start, "invalid number");
    }
    if (v == HUGE_VAL || v == -HUGE_VAL)
        return dec_fail(d, start, "number out of range");
    lua_pushnumber(d->L, (lua_Number)v);
    return 0;
}

static int dec_value(dec *d, int depth);

static int dec_array(dec *d, int depth)
{
    lua_State *L = d->L;
    const unsigned char *p;
    int n = 0;

    if (depth >= WDT_JSON_MAX_DEPTH)
        return dec_fail(d, d->p, "nesting deeper than %d", WDT_JSON_MAX_DEPTH);
    if (!lua_checkstack(L, 4))
        return dec_fail(d, d->p, "out of Lua stack space");
    p = skip_ws(d->p + 1, d->end);
    if (p < d->end && *p == ']') {
        lua_createtable(L, 0, 0);
        lua_pushvalue(L, d->mt_idx);
        lua_setmetatable(L, -2);
        d->p = p + 1;
        return 0;
    }
    lua_createtable(L, d->hint_arr[depth], 0);
    d->p = p;
    for (;;) {
        if (dec_value(d, depth + 1))
            return -1;
        lua_rawseti(L, -2, ++n);
        p = d->p;
        if (p < d->end && *p > ' ')
            ; /* compact input: no whitespace */
        else
            p = skip_ws(p, d->end);
        if (p < d->end && *p == ',') {
            d->p = p + 1;
            continue;
        }
        if (p < d->end && *p == ']') {
            d->p = p + 1;
            break;
        }
        if (p >= d->end)
            return dec_fail(d, p, "unexpected end of input (expected ',' or ']')");
        return dec_fail(d, p, "expected ',' or ']'");
    }
    d->hint_arr[depth] = (uint16_t)(n < HINT_MAX ? n : HINT_MAX);
    return 0;
}

static int dec_object(dec *d, int depth)
{
    lua_State *L = d->L;
    const unsigned char *p, *end = d->end;
    int n = 0;

    if (depth >= WDT_JSON_MAX_DEPTH)
        return dec_fail(d, d->p, "nesting deeper than %d", WDT_JSON_MAX_DEPTH);
    if (!lua_checkstack(L, 4))
        return dec_fail(d, d->p, "out of Lua stack space");
    p = skip_ws(d->p + 1, end);
    if (p < end && *p == '}') {
        lua_createtable(L, 0, 0);
        d->p = p + 1;
        return 0;
    }
    lua_createtable(L, 0, d->hint_obj[depth]);
    for (;;) {
        if (p >= end || *p != '"') {
            if (p >= end)
                return dec_fail(d, p, "unexpected end of input (expected a string key)");
            return dec_fail(d, p, "expected a string key");
        }
        d->p = p;
        if (dec_string(d))
            return -1;
        p = skip_ws(d->p, end);
        if (p >= end || *p != ':') {
            if (p >= end)
                return dec_fail(d, p, "unexpected end of input (expected ':')");
            return dec_fail(d, p, "expected ':'");
        }
        d->p = p + 1;
        if (dec_value(d, depth + 1))
            return -1;
        lua_rawset(L, -3);
        n++;
        p = d->p;
        if (!(p < end && *p > ' '))
            p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            d->p = p + 1;
            break;
        }
        if (p >= end)
            return dec_fail(d, p, "unexpected end of input (expected ',' or '}')");
        return dec_fail(d, p, "expected ',' or '}'");
    }
    d->hint_obj[depth] = (uint16_t)(n < HINT_MAX ? n : HINT_MAX);
    return 0;
}

static int dec_value(dec *d, int depth)
{
    const unsigned char *p = d->p, *end = d->end;
    if (!(p < end && *p > ' '))
        p = skip_ws(p, end);
    d->p = p;
    if (p >= end)
        return dec_fail(d, p, "unexpected end of input");
    switch (*p) {
    case '"':
        return dec_string(d);
    case '{':
        return dec_object(d, depth);
    case '[':
        return dec_array(d, depth);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return dec_number(d);
    case 't':
        if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
            lua_pushboolean(d->L, 1);
            d->p = p + 4;
            return 0;
        }
        return dec_fail(d, p, "invalid literal");
    case 'f':
        if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
            lua_pushboolean(d->L, 0);
            d->p = p + 5;
            return 0;
        }
        return dec_fail(d, p, "invalid literal");
    case 'n':
        if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
            lua_pushlightuserdata(d->L, NULL);
            d->p = p + 4;
            return 0;
        }
        return dec_fail(d, p, "invalid literal");
    default:
        return dec_unexpected(d, p);
    }
}

/* Protected body: arg 1 the state. Returns the value, or nothing on failure. */
static int dec_protected(lua_State *L)
{
    dec *d = (dec *)lua_touserdata(L, 1);
    wdt_json_push_array_mt(L);
    d->mt_idx = lua_gettop(L);
    if (dec_value(d, 0))
        return 0;
    const unsigned char *p = skip_ws(d->p, d->end);
    if (p != d->end) {
        dec_fail(d, p, "unexpected data after the value");
        return 0;
    }
    return 1;
}

int wdt_json_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen)
{
    dec *d;
    int top = lua_gettop(L), rc;
    /* the pre-sizing hints make the state ~4 KiB: keep it off the C stack */
    d = (dec *)malloc(sizeof *d);
    if (d == NULL) {
        if (errlen)
            snprintf(err, errlen, "at byte 1: out of memory");
        return -1;
    }
    memset(d, 0, offsetof(dec, hint_arr));
    memset(d->hint_arr, 0, sizeof d->hint_arr);
    memset(d->hint_obj, 0, sizeof d->hint_obj);
    d->L = L;
    d->s = d->p = (const unsigned char *)(s ? s : "");
    d->end = d->s + (s ? len : 0);
    d->err = err;
    d->errlen = errlen;
    wdt_buf_init(&d->scratch);
    if (errlen)
        err[0] = '\0';

    if (!lua_checkstack(L, 4)) {
        dec_fail(d, d->s, "out of Lua stack space");
        free(d);
        return -1;
    }
    lua_pushcfunction(L, dec_protected);
    lua_pushlightuserdata(L, d);
    rc = lua_pcall(L, 1, 1, 0);
    if (rc != 0 && d->status == 0) {
        if (rc == LUA_ERRMEM) {
            dec_fail(d, d->p, "out of memory");
        } else {
            const char *m = lua_tostring(L, -1);
            dec_fail(d, d->p, "internal error: %s", m ? m : "?");
        }
    }
    int failed = rc != 0 || d->status != 0;
    wdt_buf_free(&d->scratch);
    free(d);
    if (failed) {
        lua_settop(L, top);
        return -1;
    }
    return 0;
}

void wdt_json_push_array_mt(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, WDT_JSON_ARRAY_MT);
    if (lua_istable(L, -1))
        return;
    lua_pop(L, 1);
    luaL_newmetatable(L, WDT_JSON_ARRAY_MT);
}
