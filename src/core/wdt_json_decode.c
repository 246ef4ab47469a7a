/* wdt_json_decode.c: JSON -> Lua value, the decoding half of the codec (contract and
 * rules in wdt_json.h; what both halves share, wdt_json_internal.h), and the array marker
 * metatable both halves use. Builds against Lua 5.4 and LuaJIT 2.1 (Lua 5.1 API). Over 500
 * lines on purpose: one direction of the codec, read as a whole.
 *
 * Design notes
 * ------------
 * - The full RFC 8259 grammar, strict; errors read "at byte N: ..." (1-based).
 * - Scanning: whitespace is skipped only where the next byte is not already significant
 *   (compact input costs nothing); strings are scanned 8 bytes at a time and a string
 *   without escapes is pushed straight from the input; one with escapes is rebuilt in a
 *   scratch buffer.
 * - Tables are pre-sized with the size of the previous array/object at the same depth
 *   (capped at HINT_MAX): the rows of a list are usually alike.
 * - Numbers: integers are parsed by hand (exact, no locale). Other numbers take an exact
 *   fast path (mantissa <= 2^53, |exponent| <= 22: one correctly rounded multiplication
 *   or division, no locale involved) and otherwise strtod on a copy of the token whose
 *   '.' is replaced by the locale's decimal point.
 */
#include "wdt_json_internal.h"

#include <lauxlib.h>

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HINT_MAX         4096        /* cap on table pre-sizing hints when decoding */

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
        p = skip_plain(p, end);
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
        p = skip_plain(p, end);
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

/* 1 when the literal `word` (n bytes) stands at p; d->p then moves past it. */
static int dec_literal(dec *d, const unsigned char *p, const char *word, size_t n)
{
    if ((size_t)(d->end - p) < n || memcmp(p, word, n) != 0)
        return 0;
    d->p = p + n;
    return 1;
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
        if (!dec_literal(d, p, "true", 4))
            return dec_fail(d, p, "invalid literal");
        lua_pushboolean(d->L, 1);
        return 0;
    case 'f':
        if (!dec_literal(d, p, "false", 5))
            return dec_fail(d, p, "invalid literal");
        lua_pushboolean(d->L, 0);
        return 0;
    case 'n':
        if (!dec_literal(d, p, "null", 4))
            return dec_fail(d, p, "invalid literal");
        lua_pushlightuserdata(d->L, NULL);
        return 0;
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

/* ---- the array marker (the encoder reads it, the decoder puts it on empty arrays) --- */

void wdt_json_push_array_mt(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, WDT_JSON_ARRAY_MT);
    if (lua_istable(L, -1))
        return;
    lua_pop(L, 1);
    luaL_newmetatable(L, WDT_JSON_ARRAY_MT);
}

void wdt_json_push_raw_mt(lua_State *L)
{
    luaL_newmetatable(L, WDT_JSON_RAW_MT);     /* pushes the one there is, or a new one */
}
